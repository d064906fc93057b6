"""Job files under hostile and careless input (issue 14 points 4 and 11): the YAML limits (size,
depth, alias expansion) hold before anything is built, for `limr validate` and `limr render` alike,
and bad bytes are reported by line. Each command runs through the `limr` script as a user runs it."""

from __future__ import annotations

import pytest
from limr_api.cli import main as limr

JOB = """\
apiVersion: limr.io/v1alpha1
kind: LIMRJob
metadata:
  name: small
{extra}spec:
  model:
    name: Qwen/Qwen2.5-Math-7B
  dataset:
    uri: s3://data/math.json
  storage:
    uri: s3://runs/limr
"""


def billion_laughs(levels: int = 9) -> str:
    """Anchors that expand to 10**levels strings: under a kilobyte of text."""
    anchors = ['    x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        anchors.append(f"    x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]")
    return "  annotations:\n" + "\n".join(anchors) + "\n"


@pytest.fixture
def write(tmp_path):
    def _write(text: str | bytes, name: str = "job.yaml"):
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    return _write


def test_the_plain_job_is_valid(write, capsys):
    assert limr(["validate", write(JOB.format(extra=""))]) == 0


@pytest.mark.timeout(60)  # hang guard: render used to grow to 3.6 GB on this file
@pytest.mark.parametrize("command", [["validate"], ["render"], ["run"], ["logs"],
                                     ["phase", "--step", "baseline", "--job"]], ids=lambda c: c[0])
def test_a_yaml_bomb_is_refused_before_it_expands(write, capsys, command):
    assert limr([*command, write(JOB.format(extra=billion_laughs()))]) == 2
    err = capsys.readouterr().err
    assert "anchors and aliases" in err and "Traceback" not in err


def test_a_file_over_the_api_servers_request_limit_is_refused(write, capsys):
    padding = "# padding\n" * (400 * 1024)  # 4 MiB of comments: valid YAML, and the job itself is fine
    assert limr(["validate", write(JOB.format(extra="") + padding)]) == 2
    assert "larger than 3 MiB" in capsys.readouterr().err


@pytest.mark.parametrize("depth", [65, 20_000])
def test_deep_nesting_is_refused_by_depth_not_by_a_recursion_error(write, capsys, depth):
    deep = "  annotations:\n    deep: " + "[" * depth + "]" * depth + "\n"
    assert limr(["validate", write(JOB.format(extra=deep))]) == 2
    err = capsys.readouterr().err
    assert "nested deeper than 64 levels" in err and "Traceback" not in err


def test_invalid_utf8_is_reported_by_line(write, capsys):
    data = JOB.format(extra="").encode().replace(b"Qwen2.5", b"Qwen\xff2.5")
    assert limr(["validate", write(data)]) == 2
    err = capsys.readouterr().err
    assert "line 7" in err and "not UTF-8" in err and "position" not in err


def test_duplicate_keys_are_refused_with_the_first_line(write, capsys):
    text = JOB.format(extra="").replace("  storage:\n", "  model:\n    name: other\n  storage:\n")
    assert limr(["validate", write(text)]) == 2
    assert "duplicate key 'model' (first at line 6)" in capsys.readouterr().err


def test_a_few_anchors_as_a_manifest_author_uses_them_still_load(write, capsys):
    extra = "  labels:\n    team: &team limr\n  annotations:\n    owner: *team\n"
    assert limr(["validate", write(JOB.format(extra=extra))]) == 0


def test_a_deeply_nested_object_body_is_a_job_error_not_a_recursion_error():
    from limr_api.errors import JobError
    from limr_api.loader import load_job

    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    body = {"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": "x", "annotations": deep}}
    with pytest.raises(JobError, match="nested deeper than 64 levels"):
        load_job(body)
