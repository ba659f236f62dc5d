"""The base of every stack-file model: camelCase keys, unknown keys refused, values immutable."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from infra.stack.names import QUANTITY_PATTERN

# Upper bounds that keep the checks' simulations finite and a typo (an extra zero, 10^30) from
# passing: EKS allows 450 nodes per managed node group (docs.aws.amazon.com/eks/latest/userguide/
# service-quotas.html), which no pool or multinode worker of ours exceeds either; a thousand
# replicas of one role is beyond any GPU fleet a stack serves; gp3 volumes end at 16 TiB.
MAX_NODES = 450
MAX_REPLICAS = 1000
MAX_VOLUME_GIB = 16384


class Spec(BaseModel):
    """Base of every config object: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Pydantic reads true as 1; in a stack file it is always a mistake (`gpusPerWorker: yes`)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and boolean_for_number(field.annotation, value):
            raise ValueError(f"expected a number, not a boolean (got {value!r})")
        if field is not None and _number_for_boolean(field.annotation, value):
            raise ValueError(f"expected true or false, not a number (got {value!r})")
        return value


def _number_for_boolean(annotation: Any, value: Any) -> bool:
    """A number where the annotation wants a boolean only: pydantic reads 0 and 1 as false and
    true (`protect: 0`), which in a stack file is a slip, not a choice."""
    if isinstance(value, bool) or not isinstance(value, int | float) or annotation is Any:
        return False
    return _takes_bool(annotation) and not _takes_number(annotation)


def _takes_bool(annotation: Any) -> bool:
    """True where a boolean is a legitimate value (bool, Any, a Literal of True/False)."""
    if annotation is bool or annotation is Any:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return any(isinstance(a, bool) for a in args)
    if origin is Annotated:
        return _takes_bool(args[0])
    if origin in (Union, UnionType):
        return any(_takes_bool(a) for a in args)
    return False


def _takes_number(annotation: Any) -> bool:
    """True where a number is a legitimate value: int, float, an IntEnum, an int Literal."""
    if isinstance(annotation, type) and issubclass(annotation, int | float):
        return annotation is not bool
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return any(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
    if origin is Annotated:
        return _takes_number(args[0])
    if origin in (Union, UnionType):
        return any(_takes_number(a) for a in args)
    return False


def boolean_for_number(annotation: Any, value: Any) -> bool:
    """A boolean where the annotation wants a number, directly or inside a list, set or dict:
    pydantic's lax mode (TensorRT-LLM's too) reads true as 1, and YAML reads yes/on as true, so
    in a stack file or an engine config it is always a slip. Shared by both schemas."""
    if isinstance(value, bool):
        return _takes_number(annotation) and not _takes_bool(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return boolean_for_number(args[0], value)
    if origin in (Union, UnionType):
        members = [a for a in args if a is not type(None)]
        # A container value is checked against the container members only.
        containers = [a for a in members if get_origin(a) in (list, set, frozenset, tuple, dict)]
        return any(boolean_for_number(a, value) for a in containers or members)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return any(boolean_for_number(args[1], v) for v in value.values())
    if origin in (list, set, frozenset) and args and isinstance(value, list | tuple):
        return any(boolean_for_number(args[0], v) for v in value)
    if origin is tuple and args and isinstance(value, list | tuple):
        slots = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return any(boolean_for_number(a, v) for a, v in zip(slots, value, strict=False))
    return False


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
