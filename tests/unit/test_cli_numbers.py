"""Every numeric flag of every `limr` command refuses nan, inf and out-of-range values at the command
line (issue 14: "non-finite and out-of-range numbers refused everywhere a number comes from a user"):
exit 2, the flag named, no traceback, nothing started."""

from __future__ import annotations

import pytest
from limr_api.cli import main as limr

JOB = "no-such-job.yaml"  # parsing fails on the number before the job is ever read
BAD_REAL = ["nan", "NaN", "inf", "-inf", "1e999"]

CASES: list[tuple[str, list[str], str, list[str]]] = [
    # command, other required arguments, flag, bad values
    ("reward", ["--input", "in.jsonl", "--output", "out.jsonl"], "--timeout", [*BAD_REAL, "0", "-1", "3601"]),
    ("reward", ["--input", "in.jsonl", "--output", "out.jsonl"], "--workers", ["0", "-1", "257", "1.5", "nan"]),
    ("select", ["--input", "in", "--output", "out"], "--threshold", [*BAD_REAL, "1.5"]),
    ("select", ["--input", "in", "--output", "out"], "--size", ["0", "-1", str(2**31), "nan"]),
    ("select", ["--input", "in", "--output", "out"], "--seed", ["-1", str(2**31), "nan"]),
    ("select", ["--input", "in", "--output", "out"], "--steps-per-epoch", ["0", "-3", "inf"]),
    ("select", ["--input", "in", "--output", "out"], "--max-epochs", ["0", "nan"]),
    ("select", ["--input", "in", "--output", "out"], "--success-threshold", BAD_REAL),
    ("select", ["--input", "in", "--output", "out"], "--workers", ["0", "257"]),
    ("logs", [JOB], "--attempt", ["0", "-1", "102", "nan"]),
    ("logs", [JOB], "--interval", [*BAD_REAL, "0", "3601"]),
    ("run", [JOB], "--num-cpus", ["0", "-1", "nan", "1000000"]),
    ("phase", ["--job", JOB, "--step", "baseline"], "--attempt", ["0", "-1", "102", "nan"]),
    ("render", [JOB], "--attempt", ["0", "-1", "102", "nan"]),
    ("operator", ["--standalone"], "--interval", [*BAD_REAL, "0", "-5"]),
    ("operator", ["--standalone"], "--metrics-port", ["-1", "65536", "nan"]),
    ("operator", ["--standalone"], "--health-port", ["-1", "65536", "nan"]),
]


@pytest.mark.parametrize(
    "command,args,flag,value",
    [pytest.param(c, a, f, v, id=f"{c} {f} {v}") for c, a, f, values in CASES for v in values],
)
def test_a_bad_number_is_refused_at_the_command_line(capsys, command, args, flag, value):
    assert limr([command, *args, f"{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err, err


def test_a_bad_interval_from_the_environment_is_refused_too(capsys, monkeypatch):
    monkeypatch.setenv("LIMR_RECONCILE_INTERVAL", "nan")
    assert limr(["operator", "--standalone"]) == 2
    assert "--interval" in capsys.readouterr().err


def test_the_attempt_bound_follows_the_api_backoff_limit():
    from limr_api.cliargs import MAX_ATTEMPT
    from limr_api.job import LIMRJobSpec

    (le,) = [m.le for m in LIMRJobSpec.model_fields["backoffLimit"].metadata if hasattr(m, "le")]
    assert MAX_ATTEMPT == le + 1  # attempt 1 plus every retry
