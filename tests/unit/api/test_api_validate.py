"""Bad input: `limr validate` and the generated CRD reject the same jobs, with messages a user can act on.

Each invalid job is run through the real CLI (`limr_trainer.cli.main`, in-process; once as a
subprocess) and, when it is a YAML object, through the CRD itself (openAPIV3Schema with jsonschema,
x-kubernetes-validations with cel-python, via tests/crd_check.py).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from crd_check import cel_errors, crd_errors
from limr_api import JobError, cli, load_job
from limr_api.crd import crd
from limr_api.rules import MODEL_RULES, RULES
from limrjob_cases import BAD, BASE, GOOD, METADATA_CASES, OBJECT_CASES, Bad, edit
from paths import REPO

CRD = crd()
EXAMPLES = sorted((REPO / "manifests/examples").glob("*.yaml"))

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


@pytest.mark.parametrize("rule", [r for rules in MODEL_RULES.values() for r in rules],
                         ids=lambda r: f"{r.field}:{r.cel[:30]}")
def test_every_model_rule_is_broken_by_a_case_and_both_sides_say_so(rule, cel_verdicts):
    """Rules of a model that occurs in lists (tolerations, groups) report at `<where it is>.<field>`;
    pydantic names the same field (the key's own check words the prefix rule its way)."""
    suffix = f".{rule.field}: {rule.message}"
    hits = [(b, e.split(": ", 1)[0]) for b in OBJECT_CASES for e in cel_verdicts[b.id] if e.endswith(suffix)]
    assert hits, f"no invalid job breaks {rule.cel}"
    for case, where in hits:
        assert where in [p for p, _ in _pydantic_errors(edit(BASE, case.changes))], (case.id, where)


@pytest.mark.parametrize("case", METADATA_CASES, ids=lambda b: b.id)
def test_metadata_is_checked_as_the_api_server_checks_it(case: Bad, tmp_path, capsys):
    """Namespace, labels and annotations: the CRD cannot restrict them (the API server checks every
    object's metadata itself), so `limr validate` mirrors the server's rules (issue 14.8)."""
    path = write_case(tmp_path, case)
    code, out, err = run_validate(capsys, path)
    assert code == 2, out
    assert any(case.cli in line for line in err.splitlines()[1:]), f"expected {case.cli!r} in:\n{err}"


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
