"""The base of every stack-file model: camelCase keys, unknown keys refused, values immutable."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

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
        if field is not None and _boolean_for_number(field.annotation, value):
            raise ValueError(f"expected a number, not a boolean (got {value!r})")
        if field is not None and _number_for_boolean(field.annotation, value):
            raise ValueError(f"expected true or false, not a number (got {value!r})")
        return value


def _numeric(annotation: Any) -> bool:
    """int or float (or an Optional/Annotated of one), never bool."""
    if annotation in (int, float):
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _numeric(get_args(annotation)[0])
    if origin in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return bool(members) and all(_numeric(a) for a in members)
    return False


def _number_for_boolean(annotation: Any, value: Any) -> bool:
    """A number where the annotation wants a boolean: pydantic reads 0 and 1 as false and true
    (`protect: 0`), which in a stack file is a slip, not a choice."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if annotation is bool:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType, Annotated):
        members = [a for a in args if a is not type(None)] if origin is not Annotated else args[:1]
        return bool(members) and all(a is bool for a in members)
    return False


def _boolean_for_number(annotation: Any, value: Any) -> bool:
    """A boolean where the annotation wants a number, directly or inside a dict or list."""
    if isinstance(value, bool):
        return _numeric(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType, Annotated):
        return any(_boolean_for_number(a, value) for a in args if a is not type(None))
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return any(_boolean_for_number(args[1], v) for v in value.values())
    if origin is list and args and isinstance(value, list):
        return any(_boolean_for_number(args[0], v) for v in value)
    return False


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
