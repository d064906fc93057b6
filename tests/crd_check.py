"""Validate objects against a CustomResourceDefinition the way the API server does, offline.

No kube-apiserver can run in tests, so this helper does its job for one CRD version:
1. apiVersion / kind must name the CRD (else the server has no such resource);
2. null values of non-nullable fields are dropped, then schema defaults are applied
   (nested defaults too), as the server's decoding and defaulting do;
3. the `openAPIV3Schema` is checked with `jsonschema`, unknown fields being errors as with
   `kubectl --validate=strict` (additionalProperties: false where a node lists properties,
   except ObjectMeta), plus the `x-kubernetes-list-type` set/map uniqueness;
4. every `x-kubernetes-validations` rule is evaluated with `cel-python` at its node with `self`
   bound (and `oldSelf` for transition rules on update, when the old object has that node).
   As in the server, a null field of an object with properties counts as absent for `has()`.

Used by the API, operator and chart tests: `crd_errors(crd, obj, old=None) -> list[str]`, empty
when the server would accept the object; `cel_errors` gives the CEL rules' verdict alone;
`structural_problems(crd)` checks the CRD itself.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

__all__ = ["cel_errors", "crd_errors", "normalize", "structural_problems", "to_jsonschema"]


def _version(crd: dict[str, Any], api_version: str | None) -> dict[str, Any] | None:
    group = crd["spec"]["group"]
    for v in crd["spec"]["versions"]:
        if api_version in (None, f"{group}/{v['name']}") and v.get("served", True):
            return v
    return None


def _path(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out


# ------------------------------------------------------------------------------- pruning, defaulting


def normalize(value: Any, schema: dict[str, Any]) -> Any:
    """A copy of `value` with non-nullable nulls dropped and defaults applied (API server order)."""
    value = copy.deepcopy(value)
    _drop_nulls(value, schema)
    _default(value, schema)
    return value


def _child_schemas(value: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    out = []
    for key in value:
        if key in props:
            out.append((key, props[key]))
        elif isinstance(extra, dict):
            out.append((key, extra))
    return out


def _drop_nulls(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in _child_schemas(value, schema):
            if value[key] is None and not sub.get("nullable", False):
                del value[key]
            else:
                _drop_nulls(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _drop_nulls(item, schema["items"])


def _default(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if "default" in sub and key not in value:
                value[key] = copy.deepcopy(sub["default"])
        for key, sub in _child_schemas(value, schema):
            _default(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


# ------------------------------------------------------------------------------------ OpenAPI schema

_COPY = [
    "type",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "format",
]


def to_jsonschema(schema: dict[str, Any], *, strict: bool = True, _root: bool = True) -> dict[str, Any]:
    """The CRD's OpenAPI 3.0 schema as a JSON Schema draft 7 (nullable, boolean exclusive bounds).

    With `strict`, nodes that list properties get `additionalProperties: false` (except the root's
    `metadata`, which is the full ObjectMeta on the server).
    """
    out: dict[str, Any] = {k: copy.deepcopy(schema[k]) for k in _COPY if k in schema}
    if out.get("format") not in ("date-time", "date"):
        out.pop("format", None)
    for bound, key in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(key) is True:
            out[key] = out.pop(bound)
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in schema:
        out["properties"] = {
            k: to_jsonschema(v, strict=strict, _root=False) for k, v in schema["properties"].items()
        }
        if strict:
            out["additionalProperties"] = False
        if _root and "metadata" in out["properties"]:
            # The server's metadata is the whole ObjectMeta: its fields are known, others refused.
            meta = out["properties"]["metadata"]
            meta["properties"] = {**{k: {} for k in OBJECT_META_FIELDS}, **meta.get("properties", {})}
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = to_jsonschema(
            schema["additionalProperties"], strict=strict, _root=False
        )
    if isinstance(schema.get("items"), dict):
        out["items"] = to_jsonschema(schema["items"], strict=strict, _root=False)
    return out


INT64 = (-(2**63), 2**63 - 1)
OBJECT_META_FIELDS = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                      "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                      "annotations", "ownerReferences", "finalizers", "managedFields")


def _as_decoded(value: Any) -> Any:
    """Integers beyond int64 decode as floats on the server (so they are not `integer`)."""
    if isinstance(value, dict):
        return {k: _as_decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        return float(value)
    return value


def _schema_errors(obj: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(to_jsonschema(schema))
    errors = sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    out = [f"{_path(list(e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
    out += _list_type_errors(obj, schema, [])
    return out


def _list_type_errors(value: Any, schema: dict[str, Any], at: list[Any]) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for key, sub in _child_schemas(value, schema):
            out += _list_type_errors(value[key], sub, [*at, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        kind = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: list[Any] = []
        for i, item in enumerate(value):
            if kind == "set":
                ident = item
            elif kind == "map" and isinstance(item, dict):
                ident = tuple(item.get(k) for k in keys)
            else:
                ident = None
            if kind in ("set", "map"):
                if ident in seen:
                    out.append(f"{_path([*at, i])}: Duplicate value: {ident!r}")
                seen.append(ident)
            out += _list_type_errors(item, schema["items"], [*at, i])
    return out


# ------------------------------------------------------------------------------------- CEL rules


@functools.cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _to_cel(value: Any, schema: dict[str, Any]) -> Any:
    if value is None:
        return None
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        if props is not None:  # null fields of an object with properties read as absent
            items = {k: _to_cel(v, props[k]) for k, v in value.items() if k in props and v is not None}
        else:
            extra = schema.get("additionalProperties") or {}
            items = {k: _to_cel(v, extra) for k, v in value.items()}
        return celtypes.MapType({celtypes.StringType(k): v for k, v in items.items()})
    if kind == "array":
        return celtypes.ListType([_to_cel(v, schema.get("items") or {}) for v in value])
    if kind == "string":
        return celtypes.StringType(value)
    if kind == "integer":
        return celtypes.IntType(value)
    if kind == "number":
        return celtypes.DoubleType(float(value))
    if kind == "boolean":
        return celtypes.BoolType(value)
    raise ValueError(f"no CEL type for schema {schema}")


def _cel_errors(value: Any, old: Any, schema: dict[str, Any], at: list[Any]) -> list[str]:
    if value is None:
        return []
    out: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue  # transition rules run on update only, where the old object has this node
        where = _path(at) + rule.get("fieldPath", "")
        try:
            activation = {"self": _to_cel(value, schema)}
            if transition:
                activation["oldSelf"] = _to_cel(old, schema)
            result = _program(rule["rule"]).evaluate(activation)
        except (celpy.CELEvalError, ValueError, TypeError, KeyError, AttributeError) as exc:  # invalid
            out.append(f"{where}: rule evaluation error ({rule['rule']}): {exc}")
            continue
        if isinstance(result, celtypes.BoolType) and bool(result) is True:
            continue
        if isinstance(result, celtypes.BoolType):
            out.append(f"{where}: {rule.get('message') or 'failed rule: ' + rule['rule']}")
        else:
            out.append(f"{where}: rule evaluation error ({rule['rule']}): {result!r}")
    if isinstance(value, dict):
        for key, sub in _child_schemas(value, schema):
            old_child = old.get(key) if isinstance(old, dict) else None
            out += _cel_errors(value[key], old_child, sub, [*at, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys", [])
        old_by_key = {}
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list):
            old_by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(value):
            old_item = old_by_key.get(tuple(item.get(k) for k in keys)) if isinstance(item, dict) else None
            out += _cel_errors(item, old_item, schema["items"], [*at, i])
    return out


# ------------------------------------------------------------------------------------------- API


def crd_errors(crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """What the API server would refuse about `obj` (an update of `old` when given); [] if accepted."""
    names = crd["spec"]["names"]
    version = _version(crd, obj.get("apiVersion"))
    if version is None:
        return [f"apiVersion: {obj.get('apiVersion')!r} is not served by {crd['metadata']['name']}"]
    if "kind" in obj and obj["kind"] != names["kind"]:
        return [f"kind: {obj['kind']!r} is not {names['kind']!r}"]
    schema = version["schema"]["openAPIV3Schema"]
    new = normalize(_as_decoded(obj), schema)
    errors = _schema_errors(new, schema)
    meta = new.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        errors.append("metadata.name: Required value: name or generateName is required")
    if errors:
        return errors  # the server skips CEL rules on objects that already fail the schema
    old_n = normalize(_as_decoded(old), schema) if old is not None else None
    return _cel_errors(new, old_n, schema, [])


def cel_errors(crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Only the CEL rules' verdict (after defaulting), even where the schema already fails."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    old_n = normalize(_as_decoded(old), schema) if old is not None else None
    return _cel_errors(normalize(_as_decoded(obj), schema), old_n, schema, [])


# ----------------------------------------------------------------------------- the CRD's own shape

_FORBIDDEN = ("$ref", "anyOf", "oneOf", "allOf", "not", "const", "title", "definitions", "$defs")


def structural_problems(crd: dict[str, Any]) -> list[str]:
    """Ways the CRD's schemas break Kubernetes' structural-schema rules ([] when none)."""
    problems: list[str] = []
    for version in crd["spec"]["versions"]:
        root = version["schema"]["openAPIV3Schema"]
        _structural(root, [version["name"]], problems, root=True)
        meta = root.get("properties", {}).get("metadata")
        if meta is not None and set(meta.get("properties", {})) - {"name", "generateName"}:
            problems.append(f"{version['name']}.metadata: only name and generateName may be restricted")
    return problems


def _structural(node: dict[str, Any], at: list[Any], problems: list[str], root: bool = False) -> None:
    where = _path(at)
    for key in _FORBIDDEN:
        if key in node:
            problems.append(f"{where}: {key} is not allowed in a structural schema")
    untyped_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in node and not untyped_ok:
        problems.append(f"{where}: missing type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{where}: properties and additionalProperties are mutually exclusive")
    if node.get("additionalProperties") is False:
        problems.append(f"{where}: additionalProperties: false is not allowed")
    if "default" in node:
        errs = [
            e.message
            for e in jsonschema.Draft7Validator(to_jsonschema(node)).iter_errors(
                normalize(node["default"], node)
            )
        ]
        problems += [f"{where}.default: {e}" for e in errs]
    if node.get("x-kubernetes-list-type") == "set" and node.get("items", {}).get("type") in (
        "object",
        "array",
    ):
        problems.append(f"{where}: list-type set needs scalar items")
    if node.get("x-kubernetes-list-type") == "map":
        items = node.get("items", {})
        for key in node.get("x-kubernetes-list-map-keys", []):
            sub = items.get("properties", {}).get(key)
            if sub is None or (key not in items.get("required", []) and "default" not in sub):
                problems.append(f"{where}: map key {key} must be a required or defaulted property")
    for key, sub in (node.get("properties") or {}).items():
        if root and key == "metadata":
            continue
        _structural(sub, [*at, key], problems)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _structural(node[key], [*at, key], problems)
