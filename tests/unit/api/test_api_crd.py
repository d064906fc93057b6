"""The CRD is generated from the pydantic API and checked in; it must be a valid structural CRD."""

from __future__ import annotations

import subprocess
import sys
import typing

import kubernetes_validate
import pytest
import yaml
from crd_check import crd_errors, normalize, structural_problems
from limr_api import cli
from limr_api.constants import DNS_LABEL_PATTERN, LABEL_VALUE_PATTERN, STORAGE_URI_PATTERN
from limr_api.crd import crd, crd_yaml, openapi_schema
from limr_api.job import LIMRJobSpec, to_manifest
from limr_api.loader import load_job
from limr_api.rules import RULES
from limr_api.status import LIMRJobStatus
from limrjob_cases import MINIMAL
from paths import REPO
from pydantic import BaseModel

CHECKED_IN = [
    REPO / "manifests/crd/limr.io_limrjobs.yaml",
    REPO / "charts/limr-operator/crds/limr.io_limrjobs.yaml",
]
CRD = crd()


def _schema() -> dict:
    return CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _node(path: str) -> dict:
    node = _schema()["properties"]["spec"]
    for part in [p for p in path.split(".") if p]:
        node = node["properties"][part]
    return node


def test_limr_crd_prints_the_checked_in_files(capsys):
    assert cli.main(["crd"]) == 0
    printed = capsys.readouterr().out
    assert printed == crd_yaml()
    for path in CHECKED_IN:
        assert path.read_text() == printed, (
            f"{path.relative_to(REPO)} differs from `limr crd`: run `make crd`"
        )


def test_output_is_deterministic_across_processes():
    env_out = subprocess.run(
        [sys.executable, "-m", "limr_trainer", "crd"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert env_out == crd_yaml()


def test_crd_is_a_valid_structural_crd():
    obj = yaml.safe_load(CHECKED_IN[0].read_text())
    assert structural_problems(obj) == []
    kubernetes_validate.validate(obj, "1.30", strict=True)  # the CRD object itself, offline


def test_names_columns_and_subresources():
    s = CRD["spec"]
    assert CRD["metadata"]["name"] == "limrjobs.limr.io"
    assert s["scope"] == "Namespaced"
    assert s["names"]["shortNames"] == ["limr"] and s["names"]["kind"] == "LIMRJob"
    assert "limr" in s["names"]["categories"]
    (version,) = s["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: (c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ("string", ".status.phase")
    assert columns["Selected"] == ("string", ".status.selectedOfTotal")
    assert columns["Reward"] == ("number", ".status.metrics.rewardMean")
    assert columns["Age"] == ("date", ".metadata.creationTimestamp")


def test_every_rule_sits_at_its_path():
    for rule in RULES:
        entries = _node(rule.path).get("x-kubernetes-validations", [])
        match = [e for e in entries if e["rule"] == rule.cel]
        assert match, f"rule for spec.{rule.path} missing: {rule.cel}"
        assert match[0]["message"] == rule.message
        assert match[0].get("fieldPath", "") == (f".{rule.field}" if rule.field else "")
        assert ("oldSelf" in rule.cel) == rule.transition
    transitions = {r.path for r in RULES if r.transition}
    assert transitions == {"model", "dataset"}


def _walk(node: dict, at: str):
    yield at, node
    for key, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{at}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key], f"{at}[]" if key == "items" else f"{at}{{}}")


def test_everything_a_cel_rule_can_read_is_bounded():
    # The API server estimates each rule's worst-case cost from maxLength / maxItems / maxProperties;
    # the root spec rule can read the whole spec, so every string, list and map there is bounded.
    unbounded = []
    for at, node in _walk(_schema()["properties"]["spec"], "spec"):
        kind = node.get("type")
        if kind == "string" and "maxLength" not in node:
            unbounded.append(at)
        if kind == "array" and "maxItems" not in node:
            unbounded.append(at)
        if kind == "object" and "additionalProperties" in node and "maxProperties" not in node:
            unbounded.append(at)
        if kind == "integer" and "maximum" not in node:
            unbounded.append(at)
    assert unbounded == []


def test_schema_carries_the_pydantic_constraints():
    assert "lambda" in _node("ppo")["properties"] and "lambd" not in _node("ppo")["properties"]
    assert _node("rollout.backend")["enum"] == ["vllm", "hf"]
    assert _node("selection.threshold") == {
        **_node("selection.threshold"),
        "type": "number",
        "nullable": True,
        "maximum": 1,
    }
    assert _node("ppo.clipRange")["exclusiveMinimum"] is True and _node("ppo.clipRange")["minimum"] == 0
    assert _node("storage.uri")["pattern"] == STORAGE_URI_PATTERN
    assert _node("cluster.workerGroups")["maxItems"] == 16
    assert _node("cluster.workerGroups")["items"]["properties"]["gpus"]["minimum"] == 0
    assert _node("cluster.head.nodeSelector")["additionalProperties"] == {
        "type": "string", "maxLength": 63, "pattern": LABEL_VALUE_PATTERN}
    # Complete defaults: the API server checks each against its CEL rules without nested defaulting.
    assert _node("ppo.actor")["default"] == {"replicas": 4, "gpus": 1.0, "cpus": 1.0}
    assert _node("model")["required"] == ["name"]
    meta = _schema()["properties"]["metadata"]["properties"]["name"]
    assert meta["maxLength"] == 40 and meta["pattern"] == DNS_LABEL_PATTERN


def _optional_fields(model: type, at: str):
    for name, info in model.model_fields.items():
        key = info.alias or name
        yield f"{at}.{key}", info
        ann = info.annotation
        if type(None) in typing.get_args(ann):  # X | None
            (ann,) = [a for a in typing.get_args(ann) if a is not type(None)]
        origin = typing.get_origin(ann)
        suffix, cls = {
            list: ("[]", (typing.get_args(ann) or [None])[0]),
            dict: ("{}", (typing.get_args(ann) or [None, None])[-1]),
        }.get(origin, ("", ann))
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            yield from _optional_fields(cls, f"{at}.{key}{suffix}")


@pytest.mark.parametrize("model,root", [(LIMRJobSpec, "spec"), (LIMRJobStatus, "status")])
def test_every_field_is_described_and_optional_means_nullable(model, root):
    nodes = dict(_walk(_schema()["properties"][root], root))
    for at, info in _optional_fields(model, root):
        node = nodes[at]
        assert node.get("description"), f"{at} has no description"
        nullable = type(None) in typing.get_args(info.annotation)
        if "enum" in node:  # the API server refuses null for an enum even when nullable: it stays non-nullable,
            nullable = False  # so an explicit null is dropped (means "not set", as None)
        assert node.get("nullable", False) == nullable, at
        assert "default" not in node or node["default"] is not None, at


def test_crd_defaults_expand_to_the_pydantic_defaults():
    # What the API server stores after defaulting equals what pydantic fills in.
    defaulted = normalize(MINIMAL, _schema())
    assert defaulted["spec"] == to_manifest(load_job(MINIMAL))["spec"]
    assert crd_errors(CRD, MINIMAL) == []


def test_openapi_schema_is_typed_everywhere():
    for at, node in _walk(openapi_schema(), ""):
        assert "type" in node, at
        assert not {"anyOf", "oneOf", "allOf", "$ref", "const", "title"} & set(node), at
