"""Deterministic storage keys of a LIMRJob's artefacts (DESIGN.md "Storage").

Pure functions: the same job, phase, epoch and step always give the same key, so a retried step
overwrites its object instead of adding a duplicate. Keys are relative to the storage root:

    <job>/<phase>/rewards/epoch=EEEE/step=SSSSSS.parquet
    <job>/<phase>/checkpoints/<tag>/...
    <job>/<phase>/metrics.jsonl
    <job>/selection/{scores.parquet,selected.jsonl,summary.json,*.png}

Phases are lowercase: baseline, selection, retrain, evaluation; a comparison arm's retrain run
is `retrain-<arm>` (e.g. retrain-random, retrain-linear).
"""

from __future__ import annotations

import re

PHASES = ("baseline", "selection", "retrain", "evaluation")
SELECTION = "selection"
SCORES_FILE = "scores.parquet"
SELECTED_FILE = "selected.jsonl"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
MAX_EPOCH = 9999
MAX_STEP = 999999

# Kubernetes object names (DNS-1123 subdomain): the job name is the LIMRJob's metadata.name.
_JOB_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_ARM_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PLOT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
_REWARDS_RE = re.compile(r"(?:^|/)rewards/epoch=(\d{4})/step=(\d{6})\.parquet$")


def phase_name(phase: str, arm: str | None = None) -> str:
    """The folder name of a phase: `retrain` plus an arm gives `retrain-<arm>`."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
    if arm is None:
        return phase
    if phase != "retrain":
        raise ValueError(f"only the retrain phase has comparison arms, not {phase!r}")
    if not _ARM_RE.match(arm):
        raise ValueError(f"invalid arm {arm!r}: lowercase letters, digits and '-'")
    return f"retrain-{arm}"


def check_phase(phase: str) -> str:
    """Return `phase` if it is a phase folder name (`retrain-<arm>` included), else ValueError."""
    if phase in PHASES:
        return phase
    head, sep, arm = phase.partition("-")
    if head == "retrain" and sep and _ARM_RE.match(arm):
        return phase
    raise ValueError(
        f"invalid phase {phase!r}: expected one of {', '.join(PHASES)} or retrain-<arm> (e.g. retrain-random)"
    )


def check_job(job: str) -> str:
    """Return `job` if it is a valid LIMRJob name (a DNS-1123 subdomain), else ValueError."""
    if not isinstance(job, str) or not _JOB_RE.match(job):
        raise ValueError(f"invalid job name {job!r}: lowercase letters, digits, '-' and '.', at most 253")
    return job


def phase_prefix(job: str, phase: str) -> str:
    """`<job>/<phase>/`: everything one phase wrote (delete it to redo the phase)."""
    return f"{check_job(job)}/{check_phase(phase)}/"


def rewards_prefix(job: str, phase: str, epoch: int | None = None) -> str:
    """Prefix of a phase's reward records, or of one data epoch's records."""
    base = phase_prefix(job, phase) + "rewards/"
    return base if epoch is None else f"{base}epoch={_check_int('epoch', epoch, MAX_EPOCH):04d}/"


def rewards_key(job: str, phase: str, epoch: int, step: int) -> str:
    """`<job>/<phase>/rewards/epoch=EEEE/step=SSSSSS.parquet`: one step's reward records."""
    return f"{rewards_prefix(job, phase, epoch)}step={_check_int('step', step, MAX_STEP):06d}.parquet"


def parse_rewards_key(key: str) -> tuple[int, int]:
    """(epoch, step) of a rewards key (a full key, or any path ending in the rewards part)."""
    match = _REWARDS_RE.search(key)
    if not match:
        raise ValueError(f"not a rewards key: {key!r} (expected .../rewards/epoch=EEEE/step=SSSSSS.parquet)")
    return int(match.group(1)), int(match.group(2))


def checkpoints_prefix(job: str, phase: str) -> str:
    """`<job>/<phase>/checkpoints/`: all checkpoints of a phase."""
    return phase_prefix(job, phase) + "checkpoints/"


def checkpoint_tag(step: int) -> str:
    """The folder name of the checkpoint taken after global step `step`: `step=SSSSSS`."""
    return f"step={_check_int('step', step, MAX_STEP):06d}"


def checkpoint_prefix(job: str, phase: str, tag: str) -> str:
    """`<job>/<phase>/checkpoints/<tag>/`: one checkpoint's files (tag e.g. step=000008 or final)."""
    if not _TAG_RE.match(tag):
        raise ValueError(f"invalid checkpoint tag {tag!r}: letters, digits, '.', '_', '=', '-'")
    return f"{checkpoints_prefix(job, phase)}{tag}/"


def parse_checkpoint_tag(tag: str) -> int | None:
    """The step of a `step=SSSSSS` tag, None for other tags (e.g. final)."""
    match = re.fullmatch(r"step=(\d{6})", tag)
    return int(match.group(1)) if match else None


def metrics_key(job: str, phase: str) -> str:
    """`<job>/<phase>/metrics.jsonl`: one line of step metrics per training step."""
    return phase_prefix(job, phase) + METRICS_FILE


def selection_prefix(job: str) -> str:
    """`<job>/selection/`: the Selection phase's outputs."""
    return phase_prefix(job, SELECTION)


def scores_key(job: str) -> str:
    """`<job>/selection/scores.parquet`: one row per scored sample."""
    return selection_prefix(job) + SCORES_FILE


def selected_key(job: str) -> str:
    """`<job>/selection/selected.jsonl`: the selected subset, one dataset record per line."""
    return selection_prefix(job) + SELECTED_FILE


def summary_key(job: str) -> str:
    """`<job>/selection/summary.json`: strategy, threshold and counts."""
    return selection_prefix(job) + SUMMARY_FILE


def plot_key(job: str, name: str) -> str:
    """`<job>/selection/<name>.png`: a selection plot (name must end in .png)."""
    if not _PLOT_RE.match(name):
        raise ValueError(f"invalid plot name {name!r}: a plain file name ending in .png")
    return selection_prefix(job) + name


def _check_int(what: str, value: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{what} must be an integer in [0, {maximum}], not {value!r}")
    return value
