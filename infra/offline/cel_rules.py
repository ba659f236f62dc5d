"""The CEL rules of custom resource schemas (`x-kubernetes-validations`), evaluated as the API
server does on create: a structural check passes a Karpenter NodePool with a reserved label or an
HTTPRoute with a bad path match, which `pulumi up` then has refused.

The API server defaults an object from its schema before it validates, runs each rule where its
field is present, skips transition rules (`oldSelf`) on create, and refuses the object when a
rule is false or fails to evaluate (a missing key the rule does not guard with `has`). Beyond
standard CEL the rules we ship use Kubernetes' regex (`find`), strings (`split`, `lowerAscii`)
and quantity (`quantity`, `isGreaterThan`, `isLessThan`) libraries, implemented here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import celpy
from celpy import celtypes


def cel_value(value: Any) -> Any:
    """JSON as CEL values; booleans first (a Python bool is also an int, as is a CEL bool)."""
    if isinstance(value, celtypes.BoolType):
        return value
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, dict):
        return celtypes.MapType({celtypes.StringType(k): cel_value(v) for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([cel_value(v) for v in value])
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    return value


def _find(text: Any, pattern: Any) -> celtypes.StringType:
    """The first match of `pattern` in `text`, or ""."""
    match = re.search(str(pattern), str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _split(text: Any, separator: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(p) for p in str(text).split(str(separator))])


def _lower_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType("".join(c.lower() if c.isascii() else c for c in str(text)))


# Kubernetes quantity suffixes (k8s.io/apimachinery resource.Quantity): binary, then decimal.
_SUFFIXES = {
    **{f"{p}i": Decimal(1024) ** (n + 1) for n, p in enumerate("KMGTPE")},
    **{"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)},
    **{p: Decimal(1000) ** (n + 1) for n, p in enumerate("kMGTPE")},
}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]*)$")


def _quantity(text: Any) -> celtypes.DoubleType:
    """A Kubernetes quantity as its value in base units (1Gi, 500m, 2e3)."""
    spelled = str(text)
    match = _QUANTITY.match(spelled)
    if match is None or (match.group(2)[:1] not in "eE" and match.group(2) not in _SUFFIXES):
        raise ValueError(f"{spelled!r} is not a quantity")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E") and suffix[1:]:
        return celtypes.DoubleType(float(Decimal(number + suffix)))
    return celtypes.DoubleType(float(Decimal(number) * _SUFFIXES[suffix]))


FUNCTIONS: dict[str, Any] = {
    "find": _find,
    "split": _split,
    "lowerAscii": _lower_ascii,
    "quantity": _quantity,
    "isGreaterThan": lambda a, b: celtypes.BoolType(float(a) > float(b)),
    "isLessThan": lambda a, b: celtypes.BoolType(float(a) < float(b)),
}


@cache
def _program(expression: str) -> Any:
    """Each rule is compiled once per run (the parser is the slow part)."""
    environment = celpy.Environment()
    return environment.program(environment.compile(expression), functions=FUNCTIONS)


def evaluate(expression: str, activation: dict[str, Any]) -> Any:
    """A CEL expression over JSON values; raises celpy's errors as they come."""
    return _program(expression).evaluate(
        {name: cel_value(value) for name, value in activation.items()}
    )


@dataclass(frozen=True)
class BrokenRule:
    path: str  # where the rule sits, as a JSON path into the object
    rule: str
    message: str


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """`value` with the schema's defaults filled in where a field is absent (the API server
    defaults before it validates)."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        filled = {}
        for key, child in value.items():
            if key in properties:
                filled[key] = with_defaults(properties[key], child)
            elif isinstance(schema.get("additionalProperties"), dict):
                filled[key] = with_defaults(schema["additionalProperties"], child)
            else:
                filled[key] = child
        for key, child_schema in properties.items():
            if key not in filled and "default" in child_schema:
                filled[key] = with_defaults(child_schema, copy.deepcopy(child_schema["default"]))
        return filled
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def broken_rules(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[BrokenRule]:
    """Every rule of `schema` (and below) that `value`, already defaulted, breaks on create."""
    for rule in schema.get("x-kubernetes-validations", []):
        expression = rule["rule"]
        if "oldSelf" in expression:
            continue  # a transition rule: updates only
        message = rule.get("message") or f"failed rule: {expression}"
        try:
            passed = evaluate(expression, {"self": value})
        except (celpy.CELEvalError, ValueError, TypeError) as error:
            yield BrokenRule(path or ".", expression, f"{message} (evaluation failed: {error})")
            continue
        if isinstance(passed, celpy.CELEvalError):
            yield BrokenRule(path or ".", expression, f"{message} (evaluation failed: {passed})")
        elif not passed:
            yield BrokenRule(path or ".", expression, message)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, child in value.items():
            if key in properties:
                yield from broken_rules(properties[key], child, f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from broken_rules(schema["additionalProperties"], child, f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from broken_rules(schema["items"], item, f"{path}[{index}]")


def rule_count(schema: dict[str, Any]) -> int:
    nested = [*schema.get("properties", {}).values()]
    nested += [
        schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)
    ]
    return len(schema.get("x-kubernetes-validations", [])) + sum(rule_count(n) for n in nested)


def object_rule_failures(schema: dict[str, Any], document: dict[str, Any]) -> list[BrokenRule]:
    """The rules a custom resource breaks; the metadata is the API machinery's, not the CRD's."""
    if not rule_count(schema):
        return []
    return list(broken_rules(schema, with_defaults(schema, document)))
