"""The base of every stack-file model: camelCase keys, unknown keys refused, values immutable."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from infra.stack.names import QUANTITY_PATTERN


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
