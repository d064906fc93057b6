"""Bad input: `limr validate` and the generated CRD reject the same jobs, with messages a user can act on.

Each invalid job is run through the real CLI (`limr_trainer.cli.main`, in-process; once as a
subprocess) and, when it is a YAML object, through the CRD itself (openAPIV3Schema with jsonschema,
x-kubernetes-validations with cel-python, via tests/crd_check.py).
"""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from crd_check import cel_errors, crd_errors
from limr_api import JobError, cli, load_job
from limr_api.crd import crd
from limr_api.rules import RULES
from paths import REPO

CRD = crd()
EXAMPLES = sorted((REPO / "manifests/examples").glob("*.yaml"))
DELETE = object()

BASE: dict[str, Any] = {
    "apiVersion": "limr.io/v1alpha1",
    "kind": "LIMRJob",
    "metadata": {"name": "math-run"},
    "spec": {
        "model": {"name": "Qwen/Qwen2.5-Math-7B"},
        "dataset": {"uri": "s3://limr-data/math.8k.json"},
        "storage": {"uri": "s3://limr-artifacts/runs", "secretRef": {"name": "s3-creds"}},
        "cluster": {
            "workerGroups": [
                {"name": "rollout", "role": "rollout", "replicas": 1, "gpus": 4},
                {"name": "train", "role": "train", "replicas": 3, "gpus": 4},
            ]
        },
    },
}


def edit(job: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `job` with dotted paths (`a.b[0].c`) set, or removed with DELETE."""
    job = copy.deepcopy(job)
    for path, value in changes.items():
        parts: list[Any] = []
        for piece in path.split("."):
            name, _, index = piece.partition("[")
            parts.append(name)
            if index:
                parts.append(int(index.rstrip("]")))
        node = job
        for part in parts[:-1]:
            node = node[part] if isinstance(part, int) else node.setdefault(part, {})
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return job


@dataclass
class Bad:
    """An invalid job: `cli` must appear in one `limr validate` error line, `crd` in one CRD error."""

    id: str
    changes: dict[str, Any] = field(default_factory=dict)
    cli: str = ""
    crd: str | None = None  # None: not a YAML object (the API server never sees it)
    text: str | None = None  # raw file content instead of BASE + changes


SPEC_ONLY_LOCAL = {"spec.storage": {"uri": "/data/limr"}}
BAD: list[Bad] = [
    # wrong types
    Bad(
        "number-as-string",
        {"spec.ppo.gamma": "1"},
        "spec.ppo.gamma: Input should be a valid number",
        "spec.ppo.gamma: '1' is not of type 'number'",
    ),
    Bad(
        "int-as-string",
        {"spec.baseline.epochs": "21"},
        "spec.baseline.epochs: Input should be a valid integer",
        "spec.baseline.epochs: '21' is not of type 'integer'",
    ),
    Bad(
        "fractional-int",
        {"spec.retrain.epochs": 2.5},
        "spec.retrain.epochs: Input should be a valid integer",
        "spec.retrain.epochs: 2.5 is not of type 'integer'",
    ),
    Bad(
        "bool-as-string",
        {"spec.suspend": "yes"},
        "spec.suspend: Input should be a valid boolean",
        "spec.suspend: 'yes' is not of type 'boolean'",
    ),
    Bad(
        "object-as-number",
        {"spec.ppo": 5},
        "spec.ppo: expected a mapping of fields (got 5)",
        "spec.ppo: 5 is not of type 'object'",
    ),
    Bad(
        "list-as-string",
        {"spec.retrain.comparisons": "random"},
        "spec.retrain.comparisons: Input should be a valid list",
        "spec.retrain.comparisons: 'random' is not of type 'array'",
    ),
    # unknown fields
    Bad(
        "unknown-field-typo",
        {"spec.ppo.lambd": 0.9},
        "spec.ppo.lambd: unknown field: remove it or check its spelling (did you mean 'lambda'?)",
        "('lambd' was unexpected)",
    ),
    Bad("unknown-spec-field", {"spec.epochs": 21}, "spec.epochs: unknown field", "('epochs' was unexpected)"),
    Bad("unknown-top-field", {"specs": {}}, "specs: unknown field", "('specs' was unexpected)"),
    # missing / null required
    Bad(
        "missing-model",
        {"spec.model": DELETE},
        "spec.model: required field is missing",
        "'model' is a required property",
    ),
    Bad(
        "null-required",
        {"spec.storage": None},
        "spec.storage: required field is missing",
        "'storage' is a required property",
    ),
    Bad(
        "missing-benchmark-uri",
        {"spec.evaluation.benchmarks": [{"name": "math500"}]},
        "spec.evaluation.benchmarks[0].uri: required field is missing",
        "'uri' is a required property",
    ),
    # out of range
    Bad(
        "threshold-above-1",
        {"spec.selection.threshold": 1.5},
        "spec.selection.threshold: Input should be less than or equal to 1",
        "spec.selection.threshold: 1.5 is greater than the maximum of 1",
    ),
    Bad(
        "negative-temperature",
        {"spec.rollout.sampling.temperature": -0.1},
        "spec.rollout.sampling.temperature: Input should be greater than or equal to 0",
        "less than the minimum of 0",
    ),
    Bad(
        "zero-clip",
        {"spec.ppo.clipRange": 0},
        "spec.ppo.clipRange: Input should be greater than 0",
        "less than or equal to the minimum of 0",
    ),
    Bad(
        "negative-gpus",
        {"spec.cluster.workerGroups[1].gpus": -4},
        "spec.cluster.workerGroups[1].gpus: Input should be greater than or equal to 0",
        "spec.cluster.workerGroups[1].gpus: -4 is less than the minimum of 0",
    ),
    Bad(
        "negative-role-gpus",
        {"spec.ppo.actor.gpus": -1},
        "spec.ppo.actor.gpus: Input should be greater than or equal to 0",
        "spec.ppo.actor.gpus",
    ),
    Bad(
        "too-many-gpus",
        {"spec.cluster.workerGroups[0].gpus": 17},
        "spec.cluster.workerGroups[0].gpus: Input should be less than or equal to 16",
        "17 is greater than the maximum of 16",
    ),
    Bad(
        "betas-length",
        {"spec.ppo.adamBetas": [0.9, 0.95, 0.99]},
        "spec.ppo.adamBetas: List should have at most 2 items",
        "is too long",
    ),
    Bad(
        "too-many-groups",
        {"spec.cluster.workerGroups": [{"name": f"g{i}", "role": "train"} for i in range(17)]},
        "spec.cluster.workerGroups: List should have at most 16 items",
        "is too long",
    ),
    # enums, patterns, names
    Bad(
        "bad-backend",
        {"spec.rollout.backend": "sglang"},
        "spec.rollout.backend: Input should be 'vllm' or 'hf'",
        "'sglang' is not one of ['vllm', 'hf']",
    ),
    Bad(
        "bad-strategy",
        {"spec.selection.strategy": "LIM"},
        "spec.selection.strategy: Input should be 'lim', 'linear' or 'random'",
        "'LIM' is not one of",
    ),
    Bad(
        "bad-storage-scheme",
        {"spec.storage.uri": "gs://bucket/runs"},
        "spec.storage.uri: expected a storage URI",
        "spec.storage.uri: 'gs://bucket/runs' does not match",
    ),
    Bad(
        "bad-bucket",
        {"spec.storage.uri": "s3://B/x"},
        "spec.storage.uri: expected a storage URI",
        "spec.storage.uri: 's3://B/x' does not match",
    ),
    Bad(
        "bad-endpoint",
        {"spec.storage.endpoint": "minio:9000"},
        "spec.storage.endpoint: expected an http:// or https:// URL",
        "spec.storage.endpoint: 'minio:9000' does not match",
    ),
    Bad(
        "bad-job-name",
        {"metadata.name": "Math_Run"},
        "metadata.name: expected a DNS label",
        "metadata.name: 'Math_Run' does not match",
    ),
    Bad(
        "long-job-name",
        {"metadata.name": "a" * 41},
        "metadata.name: String should have at most 40 characters",
        "metadata.name: '" + "a" * 41 + "' is too long",
    ),
    Bad(
        "bad-group-name",
        {"spec.cluster.workerGroups[0].name": "rollout_pods"},
        "spec.cluster.workerGroups[0].name: expected a DNS label",
        "does not match",
    ),
    Bad(
        "bad-memory",
        {"spec.cluster.head.memory": "lots"},
        "spec.cluster.head.memory: expected a Kubernetes quantity",
        "spec.cluster.head.memory: 'lots' does not match",
    ),
    Bad(
        "empty-model-name",
        {"spec.model.name": ""},
        "spec.model.name: String should have at least 1 character",
        "spec.model.name: '' should be non-empty",
    ),
    Bad(
        "wrong-api-version",
        {"apiVersion": "limr.io/v1"},
        "apiVersion: Input should be 'limr.io/v1alpha1'",
        "apiVersion: 'limr.io/v1' is not served",
    ),
    Bad(
        "wrong-kind", {"kind": "RayJob"}, "kind: Input should be 'LIMRJob'", "kind: 'RayJob' is not 'LIMRJob'"
    ),
    # cross-field rules (CEL in the CRD)
    Bad(
        "no-phase",
        {
            "spec.baseline.enabled": False,
            "spec.selection.enabled": False,
            "spec.retrain.enabled": False,
            "spec.evaluation.enabled": False,
        },
        "spec: enable at least one phase",
        "spec: enable at least one phase",
    ),
    Bad(
        "selection-without-records",
        {"spec.baseline.enabled": False},
        "spec.selection: selection needs baseline reward records",
        "spec.selection: selection needs baseline reward records",
    ),
    Bad(
        "retrain-without-selection",
        {"spec.selection.enabled": False},
        "spec.retrain: retrain trains on the selected subset",
        "spec.retrain: retrain trains on the selected subset",
    ),
    Bad(
        "endpoint-on-local-storage",
        {"spec.storage": {"uri": "/data/limr", "endpoint": "http://minio:9000"}},
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
    ),
    Bad(
        "secret-on-local-storage",
        {"spec.storage.uri": "file:///data/limr"},
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
        "spec.storage: endpoint and secretRef apply to s3:// storage only",
    ),
    Bad(
        "records-with-baseline",
        {"spec.baseline.recordsUri": "s3://old/run/baseline"},
        "spec.baseline.recordsUri: recordsUri replaces the baseline run",
        "spec.baseline.recordsUri: recordsUri replaces the baseline run",
    ),
    Bad(
        "linear-negative-threshold",
        {"spec.selection.strategy": "linear", "spec.selection.threshold": -0.2},
        "spec.selection.threshold: linear scores are R^2 in [0, 1]",
        "spec.selection.threshold: linear scores are R^2 in [0, 1]",
    ),
    Bad(
        "size-with-lim",
        {"spec.selection.size": 1389},
        "spec.selection.size: size applies to strategy random only",
        "spec.selection.size: size applies to strategy random only",
    ),
    Bad(
        "repeated-comparison",
        {"spec.retrain.comparisons": ["random", "random"]},
        "spec.retrain.comparisons: comparisons must not repeat an arm",
        "spec.retrain.comparisons[1]: Duplicate value",
    ),
    Bad(
        "evaluation-without-benchmarks",
        {"spec.evaluation.benchmarks": []},
        "spec.evaluation.benchmarks: evaluation needs at least one benchmark",
        "spec.evaluation.benchmarks: evaluation needs at least one benchmark",
    ),
    Bad(
        "duplicate-benchmarks",
        {
            "spec.evaluation.benchmarks": [
                {"name": "aime24", "uri": "a.jsonl"},
                {"name": "aime24", "uri": "b.jsonl"},
            ]
        },
        "spec.evaluation.benchmarks: benchmark names must be unique",
        "spec.evaluation.benchmarks[1]: Duplicate value",
    ),
    Bad(
        "micro-batch-divides",
        {"spec.ppo.microBatchSize": 3},
        "spec.ppo.trainBatchSize: trainBatchSize must be a multiple of microBatchSize",
        "spec.ppo.trainBatchSize: trainBatchSize must be a multiple of microBatchSize",
    ),
    Bad(
        "rollout-batch-divides",
        {"spec.ppo.rolloutBatchSize": 1000, "spec.ppo.samplesPerPrompt": 1},
        "spec.ppo.rolloutBatchSize: rolloutBatchSize x samplesPerPrompt must be a multiple of trainBatchSize",
        "spec.ppo.rolloutBatchSize: rolloutBatchSize x samplesPerPrompt",
    ),
    Bad(
        "beta-of-one",
        {"spec.ppo.adamBetas": [0.9, 1.0]},
        "spec.ppo.adamBetas: adamBetas must each be in [0, 1)",
        "spec.ppo.adamBetas: adamBetas must each be in [0, 1)",
    ),
    Bad(
        "duplicate-group-names",
        {"spec.cluster.workerGroups[1].name": "rollout"},
        "spec.cluster.workerGroups: worker group names must be unique",
        "spec.cluster.workerGroups[1]: Duplicate value",
    ),
    Bad(
        "no-train-group",
        {"spec.cluster.workerGroups[1].role": "rollout"},
        "spec.cluster.workerGroups: at least one worker group with replicas > 0 must have role train or any",
        "spec.cluster.workerGroups: at least one worker group",
    ),
    Bad(
        "empty-train-group",
        {"spec.cluster.workerGroups[1].replicas": 0},
        "spec.cluster.workerGroups: at least one worker group with replicas > 0",
        "spec.cluster.workerGroups: at least one worker group",
    ),
    # files that are not a job
    Bad(
        "malformed-yaml",
        text="apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nspec:\n  model: {name: x\n  dataset: [\n",
        cli="malformed YAML at line 5",
    ),
    Bad(
        "bad-indentation",
        text="apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata:\n  name: a\n   spec: x\n",
        cli="malformed YAML at line 5, column 8",
    ),
    Bad(
        "duplicate-key",
        text="apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata: {name: a}\nspec: {}\nspec: {}\n",
        cli="malformed YAML at line 5, column 1: duplicate key 'spec' (first at line 4)",
    ),
    Bad(
        "not-a-mapping",
        text="- apiVersion: limr.io/v1alpha1\n",
        cli="a LIMRJob is a mapping with apiVersion, kind, metadata and spec",
    ),
    Bad(
        "two-documents",
        text="kind: LIMRJob\n---\nkind: LIMRJob\n",
        cli="expected exactly one YAML document, found 2",
    ),
    Bad("empty-file", text="# nothing here\n", cli="expected exactly one YAML document, found 0"),
    Bad("missing-file", cli="no-such-job.yaml: no such file"),
]
OBJECT_CASES = [b for b in BAD if b.crd is not None]

GOOD: dict[str, dict[str, Any]] = {
    "base": BASE,
    "local-minimal": edit(BASE, {**SPEC_ONLY_LOCAL, "spec.cluster": DELETE}),
    "null-on-nullable": edit(BASE, {"spec.selection.threshold": None, "spec.model.revision": None}),
    "null-on-defaulted": edit(BASE, {"spec.ppo": None, "spec.suspend": None}),
    "whole-float-int": edit(BASE, {"spec.baseline.epochs": 21.0}),
    "int-for-number": edit(BASE, {"spec.ppo.gamma": 1, "spec.ppo.adamBetas": [0, 0.5]}),
    "random-without-baseline": edit(
        BASE,
        {"spec.baseline.enabled": False, "spec.selection.strategy": "random", "spec.selection.size": 1389},
    ),
    "existing-records": edit(
        BASE, {"spec.baseline.enabled": False, "spec.baseline.recordsUri": "s3://old/run"}
    ),
    "evaluation-only": edit(
        BASE, {"spec.baseline.enabled": False, "spec.selection.enabled": False, "spec.retrain.enabled": False}
    ),
    "linear-threshold": edit(BASE, {"spec.selection.strategy": "linear", "spec.selection.threshold": 0.7}),
    "lim-negative-threshold": edit(BASE, {"spec.selection.threshold": -0.5}),
}


# Every YAML-object job by key; the CRD's verdict on each is computed once (CEL in Python is slow).
JOBS: dict[str, dict[str, Any]] = {
    **{f"bad-{b.id}": edit(BASE, b.changes) for b in OBJECT_CASES},
    **{f"good-{k}": j for k, j in GOOD.items()},
    **{f"example-{p.stem}": yaml.safe_load(p.read_text()) for p in EXAMPLES},
}


@functools.cache
def crd_verdict(key: str) -> list[str]:
    return crd_errors(CRD, JOBS[key])


def write_case(tmp_path: Path, case: Bad) -> Path:
    path = tmp_path / f"{case.id}.yaml"
    if case.id == "missing-file":
        return tmp_path / "no-such-job.yaml"
    text = case.text if case.text is not None else yaml.safe_dump(edit(BASE, case.changes), sort_keys=False)
    path.write_text(text)
    return path


def run_validate(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, str, str]:
    code = cli.main(["validate", *map(str, paths)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_there_are_at_least_20_distinct_invalid_jobs():
    assert len({b.id for b in BAD}) == len(BAD) >= 20
    assert len(OBJECT_CASES) >= 20


@pytest.mark.parametrize("case", BAD, ids=lambda b: b.id)
def test_limr_validate_rejects_with_the_expected_message(case: Bad, tmp_path, capsys):
    path = write_case(tmp_path, case)
    code, out, err = run_validate(capsys, path)
    assert code == 2, out
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}: invalid LIMRJob (")
    assert any(case.cli in line for line in lines[1:]), f"expected {case.cli!r} in:\n{err}"


@pytest.mark.parametrize("case", OBJECT_CASES, ids=lambda b: b.id)
def test_the_crd_rejects_the_same_job(case: Bad):
    errors = crd_verdict(f"bad-{case.id}")
    assert any(case.crd in e for e in errors), f"expected {case.crd!r} in {errors}"


@pytest.mark.parametrize("key", sorted(JOBS))
def test_pydantic_and_the_crd_agree(key):
    try:
        load_job(JOBS[key])
        pydantic_ok = True
    except JobError:
        pydantic_ok = False
    errors = crd_verdict(key)
    assert pydantic_ok == (errors == []), errors


@pytest.mark.parametrize("name", sorted(GOOD))
def test_valid_variants_pass_both(name, tmp_path, capsys):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(GOOD[name], sort_keys=False))
    code, out, err = run_validate(capsys, path)
    assert (code, err) == (0, "")
    assert out.startswith(f"OK {path}: LIMRJob math-run: ") and out.count("\n") == 1
    assert crd_verdict(f"good-{name}") == []


def test_examples_exist_and_validate(capsys):
    assert REPO / "manifests/examples/qwen-math-7b-limr.yaml" in EXAMPLES
    code, out, err = run_validate(capsys, *EXAMPLES)
    assert (code, err) == (0, "")
    assert out.count("\nOK ") + out.startswith("OK ") == len(EXAMPLES)
    for path in EXAMPLES:
        assert crd_verdict(f"example-{path.stem}") == [], path.name


def test_paper_example_is_the_paper_run():
    job = load_job(REPO / "manifests/examples/qwen-math-7b-limr.yaml")
    s = job.spec
    assert s.model.name == "Qwen/Qwen2.5-Math-7B" and s.dataset.uri.startswith("s3://")
    assert (
        s.baseline.epochs == 21 and s.selection.strategy == "lim" and s.selection.resolved_threshold() == 0.6
    )
    groups = {g.role: g for g in s.cluster.workerGroups}
    assert groups["rollout"].replicas * groups["rollout"].gpus == 4
    assert groups["train"].replicas * groups["train"].gpus == 12
    assert s.rollout.engines * s.rollout.tensorParallelSize == 4
    assert [s.ppo.actor.replicas, s.ppo.critic.replicas, s.ppo.reference.replicas] == [4, 4, 4]
    assert s.storage.uri.startswith("s3://") and s.storage.secretRef is not None
    assert {b.name for b in s.evaluation.benchmarks} == {"math500", "aime24", "amc23"}


def test_every_error_is_printed_with_its_line(tmp_path, capsys):
    job = edit(BASE, {"spec.ppo.gamma": "1", "spec.rollout.backend": "sglang", "spec.ppo.lambd": 0.9})
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    code, _, err = run_validate(capsys, path)
    lines = err.splitlines()
    assert code == 2 and lines[0] == f"{path}: invalid LIMRJob (3 errors)"
    text = path.read_text().splitlines()
    for field_name, prefix in [
        ("gamma", "spec.ppo.gamma: "),
        ("backend", "spec.rollout.backend: "),
        ("lambd", "spec.ppo.lambd: "),
    ]:
        (line,) = [l for l in lines if l.startswith(prefix)]
        number = int(line.rsplit("[line ", 1)[1].rstrip("]"))
        assert text[number - 1].strip().startswith(f"{field_name}:"), (line, text[number - 1])


def test_invalid_and_valid_files_together_exit_2(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    code, out, err = run_validate(capsys, good, tmp_path / "absent.yaml")
    assert code == 2 and out.startswith("OK ") and "absent.yaml: no such file" in err


def test_limr_validate_as_a_subprocess(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(edit(BASE, {"spec.storage.uri": "gs://bucket", "spec.ppo.microBatchSize": 0}))
    )
    proc = subprocess.run(
        [sys.executable, "-m", "limr_trainer", "validate", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc
    assert "spec.storage.uri: expected a storage URI" in proc.stderr
    assert "spec.ppo.microBatchSize: Input should be greater than or equal to 1" in proc.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "limr_trainer",
            "validate",
            str(REPO / "manifests/examples/qwen-math-7b-limr.yaml"),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("OK ") and ok.stderr == ""


def test_usage_errors_exit_2(capsys):
    assert cli.main(["validate"]) == 2
    assert "usage: limr validate" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cel_verdicts() -> dict[str, list[str]]:
    return {b.id: cel_errors(CRD, edit(BASE, b.changes)) for b in OBJECT_CASES}


def _pydantic_errors(job: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        load_job(job)
    except JobError as err:
        return err.errors
    return []


@pytest.mark.parametrize("rule", [r for r in RULES if not r.transition], ids=lambda r: r.where or "spec")
def test_every_cel_rule_is_broken_by_a_case_and_both_sides_say_so(rule, cel_verdicts):
    # Some rules are also enforced by list-type uniqueness, which the API server checks first;
    # here each CEL rule is evaluated on its own, so none goes untested.
    path = f"spec.{rule.where}".rstrip(".")
    cases = [b for b in OBJECT_CASES if f"{path}: {rule.message}" in cel_verdicts[b.id]]
    assert cases, f"no invalid job breaks {rule.cel}"
    assert any((path, rule.message) in _pydantic_errors(edit(BASE, b.changes)) for b in cases)


# ------------------------------------------------------------------------ transition rules (updates)


def test_changing_the_model_or_dataset_is_rejected_on_update():
    old = BASE
    assert crd_errors(CRD, old, old=old) == []
    same_after_defaulting = edit(old, {"spec.model.dtype": "bfloat16"})  # the default, spelled out
    assert crd_errors(CRD, same_after_defaulting, old=old) == []
    other_model = edit(old, {"spec.model.name": "Qwen/Qwen2.5-Math-1.5B"})
    assert crd_errors(CRD, other_model, old=old) == [
        "spec.model: model is immutable: create a new LIMRJob to train another model"
    ]
    other_revision = edit(old, {"spec.model.revision": "main"})
    assert crd_errors(CRD, other_revision, old=old) != []
    other_data = edit(old, {"spec.dataset.promptField": "question"})
    assert crd_errors(CRD, other_data, old=old) == [
        "spec.dataset: dataset is immutable: create a new LIMRJob to train on other data"
    ]
    # other fields may change, and a create (no old object) never runs transition rules
    assert crd_errors(CRD, edit(old, {"spec.suspend": True, "spec.ppo.seed": 7}), old=old) == []
    assert crd_errors(CRD, other_model) == []
