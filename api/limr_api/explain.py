"""Pydantic validation errors as (field path, what to do) pairs a user can act on."""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from .constants import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENDPOINT_PATTERN,
    QUANTITY_PATTERN,
    REGION_PATTERN,
    SECRET_KEY_PATTERN,
    SOURCE_URI_PATTERN,
    STORAGE_URI_PATTERN,
    VERSION_PATTERN,
)
from .job import LIMRJob
from .rules import RuleViolations
from .strict import nullable

_USERINFO = re.compile(r"(://)[^/?#@\s'\"]*@")


def redact_userinfo(text: str) -> str:
    """`text` with any `scheme://user:password@` reduced to `scheme://***@`: an error message never
    repeats a secret someone put in a URI. (The trainer's storage layer, which must not import the
    API, does the same for the URIs it opens: limr_trainer.storage.redact_userinfo.)"""
    return _USERINFO.sub(r"\1***@", text)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


# What a pattern means, for error messages a user can act on.
_PATTERN_HELP = {
    STORAGE_URI_PATTERN: "a storage URI: s3://bucket[/prefix], file:///path or a local path "
    "(other schemes such as gs:// or http:// are not supported; no user:password: credentials belong "
    "in spec.storage.secretRef)",
    DNS_LABEL_PATTERN: "a DNS label: lowercase letters, digits and '-', starting with a letter "
    "and ending with a letter or digit",
    DNS_SUBDOMAIN_PATTERN: "a DNS subdomain: lowercase letters, digits, '-' and '.'",
    QUANTITY_PATTERN: "a Kubernetes quantity such as 8, 500m or 64Gi",
    SECRET_KEY_PATTERN: "a Secret key: letters, digits, '-', '_' and '.'",
    VERSION_PATTERN: "a version such as 2.60.0",
    ENDPOINT_PATTERN: "an http:// or https:// URL such as http://minio.storage:9000, without "
    "user:password (credentials belong in spec.storage.secretRef)",
    REGION_PATTERN: "a region such as us-east-1",
    SOURCE_URI_PATTERN: "a hub id, a path or a URI without user:password (credentials come from the "
    "environment or spec.storage.secretRef, never the URI)",
}


def _unwrap(annotation: Any) -> Any:
    if nullable(annotation):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class at a pydantic error location below LIMRJob (None when not a model)."""
    current: Any = LIMRJob
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(part, int) and origin is list:
            current = typing.get_args(current)[0]
        elif isinstance(part, str) and origin is dict:
            current = typing.get_args(current)[1]
        elif isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_field_message(loc: tuple[Any, ...]) -> str:
    msg = "unknown field: remove it or check its spelling"
    model = _model_at(loc[:-1])
    if model is not None and isinstance(loc[-1], str):
        known = [info.alias or name for name, info in model.model_fields.items()]
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        if not close:
            close = [k for k in known if k.lower() == loc[-1].lower()]
        if close:
            msg += f" (did you mean {close[0]!r}?)"
    return msg


def explain(err: ValidationError) -> list[tuple[str, str]]:
    """Turn pydantic errors into (field path, what is expected) pairs a user can act on."""
    result: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path = _loc_to_path(loc)
        kind = e["type"]
        ctx = e.get("ctx") or {}
        if kind == "extra_forbidden":
            msg = _unknown_field_message(loc)
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "value_error" and isinstance(ctx.get("error"), RuleViolations):
            for sub_path, sub_msg in ctx["error"].violations:
                result.append((".".join(p for p in (path, sub_path) if p), sub_msg))
            continue
        elif kind == "value_error":
            for m in str(ctx.get("error", e["msg"])).split("; "):
                sub_path, _, sub_msg = m.partition(": ")
                result.append((".".join(p for p in (path, sub_path) if p), sub_msg or m))
            continue
        else:
            msg = e["msg"]
            if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_HELP:
                msg = "expected " + _PATTERN_HELP[ctx["pattern"]]
            elif kind in ("model_type", "dict_type"):
                msg = "expected a mapping of fields"
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f" (got {redact_userinfo(repr(e['input']))})"
        result.append((path, msg))
    return result
