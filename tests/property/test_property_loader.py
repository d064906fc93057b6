"""Fuzzing the LIMRJob loader: arbitrary bytes, arbitrary YAML structures and mutated valid jobs
only ever give a job or a JobError (never another exception), and a valid job loads the same after
edits that do not change its meaning (issue 14, property-based tests)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from limr_api.errors import JobError
from limr_api.loader import load_job

VALID = {
    "apiVersion": "limr.io/v1alpha1",
    "kind": "LIMRJob",
    "metadata": {"name": "small"},
    "spec": {
        "model": {"name": "Qwen/Qwen2.5-Math-7B"},
        "dataset": {"uri": "s3://data/math.json"},
        "storage": {"uri": "s3://runs/limr"},
        "selection": {"threshold": 0.6},
        "ppo": {"klCoef": 0.01, "rolloutBatchSize": 1024},
    },
}

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=25)
# YAML's own tricky syntax: anchors, aliases, tags, merge keys, flow collections, documents.
YAML_PIECES = ["&a ", "*a", "<<: ", "!!python/object:os.system ", "!!binary ", "---\n", "...\n", "{", "}", "[",
               "]", ": ", "- ", "? ", "\n", "  ", "'", '"', "#", "|\n", ">\n", ".nan", ".inf", "0x1F", "~",
               "spec", "metadata", "apiVersion: limr.io/v1alpha1\n", "kind: LIMRJob\n", "\t", "%YAML 1.1\n"]
yaml_like = st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=5), max_size=40).map("".join)
nested = st.tuples(st.integers(1, 5000), st.sampled_from(["[", "{a: ", "- "])).map(
    lambda nk: "spec: " + nk[1] * nk[0] + ("]" * nk[0] if nk[1] == "[" else "}" * nk[0] if nk[1] == "{a: " else "x"))


def load_text(data: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.yaml"
        path.write_bytes(data)
        return load_job(path)


def job_or_job_error(load, arg) -> None:
    try:
        load(arg)
    except JobError as err:
        assert err.errors and all(isinstance(p, str) and isinstance(m, str) and m for p, m in err.errors)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_a_job_error(data):
    job_or_job_error(load_text, data)


@given(yaml_like | nested)
def test_yaml_syntax_soup_gives_a_job_error(text):
    job_or_job_error(load_text, text.encode("utf-8", "surrogatepass"))


@given(structures)
def test_arbitrary_structures_give_a_job_error(value):
    job_or_job_error(load_job, value if isinstance(value, dict) else {"spec": value})
    job_or_job_error(load_text, yaml.safe_dump(value).encode())


paths = st.lists(st.sampled_from(["metadata", "spec", "model", "name", "dataset", "uri", "storage", "selection",
                                  "threshold", "ppo", "klCoef", "rolloutBatchSize", "apiVersion", "kind"]),
                 min_size=1, max_size=3)


@given(paths, structures)
def test_a_valid_job_with_any_one_field_replaced_gives_a_job_or_a_job_error(path, value):
    job = copy.deepcopy(VALID)
    node = job
    for key in path[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            break
        node = child
    node[path[-1]] = value
    job_or_job_error(load_job, job)
    job_or_job_error(load_text, yaml.safe_dump(job).encode())


@given(st.sampled_from(["block", "flow", "json"]), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_the_same_job_in_any_yaml_style_loads_the_same(style, comments, newline):
    text = {"block": yaml.safe_dump(VALID), "flow": yaml.safe_dump(VALID, default_flow_style=True),
            "json": __import__("json").dumps(VALID, indent=2)}[style]
    if comments:
        text = "# a LIMRJob\n" + text.replace("\n", "  # note\n", 3) if style == "block" else "# a LIMRJob\n" + text
    job = load_text(text.replace("\n", newline).encode())
    assert job.model_dump() == load_job(VALID).model_dump()
