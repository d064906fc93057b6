"""values.yaml, values.schema.json and the chart README agree; typos in values are rejected.

Pure file checks (jsonschema, no helm): the helm-level checks live in
tests/integration/test_helm_chart.py.
"""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest
import yaml
from chart_support import CHART

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
# Free-form maps and Kubernetes objects passed through as they are.
FREE_FORM = {"annotations", "labels", "podLabels", "podAnnotations", "nodeSelector", "affinity",
             "podSecurityContext", "securityContext", "requests", "limits"}


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(SCHEMA)


def test_default_values_pass_the_schema() -> None:
    errors = [e.message for e in _validator().iter_errors(VALUES)]
    assert errors == []


def test_every_object_of_the_schema_rejects_unknown_keys() -> None:
    def walk(node: dict, path: str) -> list[str]:
        bad = []
        structured = node.get("type") == "object" and path.split(".")[-1] not in FREE_FORM
        if structured and node.get("additionalProperties") is not False:
            bad.append(path or "<root>")
        for key, child in node.get("properties", {}).items():
            bad += walk(child, f"{path}.{key}".lstrip("."))
        return bad

    assert walk(SCHEMA, "") == []


def test_schema_and_values_declare_the_same_keys() -> None:
    """Every value has a schema entry and every schema entry a documented default."""

    def keys(values: dict, schema: dict, path: str) -> list[str]:
        diff = []
        props = schema.get("properties", {})
        for key in set(values) ^ set(props):
            diff.append(f"{path}{key}")
        for key in set(values) & set(props):
            if isinstance(values[key], dict) and props[key].get("properties") and key not in FREE_FORM:
                diff += keys(values[key], props[key], f"{path}{key}.")
        return diff

    assert keys(VALUES, SCHEMA, "") == []


@pytest.mark.parametrize("path, value", [
    ("replicaCont", 1),                      # top-level typo
    ("metrics.serviceMonitor.enabeld", True),  # nested typo
    ("watch.scope", "clusterwide"),          # not one of the choices
    ("metrics.port", 0),                     # out of range
    ("image.digest", "latest"),              # not a digest
])
def test_schema_rejects_typos_and_bad_values(path: str, value: object) -> None:
    values = copy.deepcopy(VALUES)
    node = values
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    assert list(_validator().iter_errors(values)), f"{path}={value!r} was accepted"


def test_readme_values_table_covers_every_top_level_value() -> None:
    readme = (CHART / "README.md").read_text()
    section = readme.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-zA-Z][\w.]*)` \|", section, flags=re.MULTILINE)
    assert set(VALUES) - {key.split(".")[0] for key in documented} == set(), "values missing from the table"
    for key in documented:  # every documented key exists
        node = VALUES
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"README documents {key}, not in values.yaml"
            node = node[part]
