"""CEL as the API server evaluates it, for tests: cel-python plus the Kubernetes CEL libraries'
`find` (regex) and `split` (strings), with JSON turned into CEL values."""

from __future__ import annotations

import re
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
    """Kubernetes' regex library: the first match of `pattern` in `text`, or ""."""
    match = re.search(str(pattern), str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _split(text: Any, separator: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(p) for p in str(text).split(str(separator))])


def evaluate(expression: str, activation: dict[str, Any]) -> Any:
    env = celpy.Environment()
    program = env.program(env.compile(expression), functions={"find": _find, "split": _split})
    return program.evaluate({name: cel_value(value) for name, value in activation.items()})
