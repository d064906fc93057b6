"""The base of every spec model: validates input exactly as the API server validates the CRD."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def nullable(annotation: Any) -> bool:
    """Whether a field annotation admits None (`X | None`)."""
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )


def _integer(annotation: Any) -> bool:
    if nullable(annotation):
        return any(a is int for a in typing.get_args(annotation))
    return annotation is int


@cache
def _field_kinds(cls: type[BaseModel]) -> dict[str, tuple[bool, bool]]:
    """Input key (alias and name) -> (nullable, integer) for one model."""
    kinds: dict[str, tuple[bool, bool]] = {}
    for name, info in cls.model_fields.items():
        kind = (nullable(info.annotation), _integer(info.annotation))
        kinds[name] = kind
        if info.alias:
            kinds[info.alias] = kind
    return kinds


class Strict(BaseModel):
    """Base: validates input exactly as the API server validates the generated CRD.

    Unknown fields are errors (strict field validation), types are strict (no "3" for 3, no "yes"
    for true), and two normalisations the API server applies before validation are mirrored here:
    an explicit null on a non-nullable field is dropped (so its default applies), and a whole
    float such as 2.0 counts as the integer 2 (kubectl's YAML to JSON conversion writes it as 2).
    """

    # allow_inf_nan=False: JSON (and so the API server) has no NaN or infinity; YAML's .nan / .inf
    # would otherwise pass here and fail later at `kubectl apply`.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True, strict=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _as_the_api_server_sees_it(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kinds = _field_kinds(cls)
        out = {}
        for key, value in data.items():
            may_be_null, integer = kinds.get(key, (True, False))
            if value is None and not may_be_null:
                continue
            if integer and isinstance(value, float) and value.is_integer():
                value = int(value)
            out[key] = value
        return out

