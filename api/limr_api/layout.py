"""Every storage key of a LIMRJob's artifacts, relative to `spec.storage.uri` (pure functions).

The same job, step, epoch and step number always give the same key, so a retried write overwrites
its object instead of adding a duplicate. `<step>` is a step key of `limr_api.plan`:

    <job>/<step>/rewards/epoch=EEEE/step=SSSSSS.parquet   reward records of one PPO step
    <job>/<step>/metrics.jsonl                            one line per PPO step
    <job>/<step>/checkpoints/step=SSSSSS/...              resumable checkpoints (+ latest.json)
    <job>/<step>/checkpoints/final/actor_hf/              the trained policy (Hugging Face folder)
    <job>/<step>/logs/attempt-N.log                       driver output of attempt N, as it runs
    <job>/<step>/_DONE.json                               the step's summary, written last
    <job>/<step>/heldout.jsonl                            held-out accuracy every evaluation.everySteps steps
    <job>/<step>/early-selection/epoch=EEEE.json          the selection after data epoch EEEE (earlyStop)
    <job>/selection/{summary.json, scores.jsonl, selected.json, arms/<arm>.json, *.png}
    <job>/evaluation/arms/<arm>.json, <job>/evaluation/report/{report.md, report.json, *.png}
"""

from __future__ import annotations

import re

from .constants import DNS_LABEL_PATTERN, JOB_NAME_MAX
from .plan import EVALUATION, SELECTION, parse_step

MAX_EPOCH = 9999
MAX_STEP = 999999
DONE_FILE = "_DONE.json"
METRICS_FILE = "metrics.jsonl"

# The Selection's outputs (one format, written by the one selection core; summary.json last).
SUMMARY_FILE = "summary.json"
SCORES_FILE = "scores.jsonl"
SELECTED_FILE = "selected.json"
PLOTS = ("trajectories.png", "score_histogram.png")

_JOB_RE = re.compile(DNS_LABEL_PATTERN)
_PLOT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
_ARM_RE = re.compile(r"^[a-z][a-z0-9]*$")
_REWARDS_RE = re.compile(r"(?:^|/)rewards/epoch=(\d{4})/step=(\d{6})\.parquet$")


def check_job(job: str) -> str:
    """Return `job` if it is a LIMRJob name (a DNS-1035 label of at most 40), else ValueError."""
    if not isinstance(job, str) or len(job) > JOB_NAME_MAX or not _JOB_RE.match(job):
        raise ValueError(
            f"invalid job name {job!r}: a DNS label (lowercase letters, digits, '-') of at most {JOB_NAME_MAX}"
        )
    return job


def check_step(step: str) -> str:
    """Return `step` if it is a step key (`baseline`, `retrain-random`, ...), else ValueError."""
    parse_step(step)
    return step


def step_prefix(job: str, step: str) -> str:
    """`<job>/<step>/`: everything one step wrote (delete it to redo the step)."""
    return f"{check_job(job)}/{check_step(step)}/"


def done_key(job: str, step: str) -> str:
    """`<job>/<step>/_DONE.json`: the step's summary, written after everything else it writes."""
    return step_prefix(job, step) + DONE_FILE


def rewards_prefix(job: str, step: str, epoch: int | None = None) -> str:
    """Prefix of a step's reward records, or of one data epoch's records."""
    base = step_prefix(job, step) + "rewards/"
    return base if epoch is None else f"{base}epoch={_check_int('epoch', epoch, MAX_EPOCH):04d}/"


def rewards_key(job: str, step: str, epoch: int, ppo_step: int) -> str:
    """`<job>/<step>/rewards/epoch=EEEE/step=SSSSSS.parquet`: one PPO step's reward records."""
    return f"{rewards_prefix(job, step, epoch)}step={_check_int('step', ppo_step, MAX_STEP):06d}.parquet"


def parse_rewards_key(key: str) -> tuple[int, int]:
    """(epoch, step) of a rewards key (a full key, or any path ending in the rewards part)."""
    match = _REWARDS_RE.search(key)
    if not match:
        raise ValueError(f"not a rewards key: {key!r} (expected .../rewards/epoch=EEEE/step=SSSSSS.parquet)")
    return int(match.group(1)), int(match.group(2))


def checkpoints_prefix(job: str, step: str) -> str:
    """`<job>/<step>/checkpoints/`: all checkpoints of a step."""
    return step_prefix(job, step) + "checkpoints/"


def checkpoint_tag(ppo_step: int) -> str:
    """The folder name of the checkpoint taken after global PPO step `ppo_step`: `step=SSSSSS`."""
    return f"step={_check_int('step', ppo_step, MAX_STEP):06d}"


def checkpoint_prefix(job: str, step: str, tag: str) -> str:
    """`<job>/<step>/checkpoints/<tag>/`: one checkpoint's files (tag e.g. step=000008 or final)."""
    if not _TAG_RE.match(tag):
        raise ValueError(f"invalid checkpoint tag {tag!r}: letters, digits, '.', '_', '=', '-'")
    return f"{checkpoints_prefix(job, step)}{tag}/"


def parse_checkpoint_tag(tag: str) -> int | None:
    """The step of a `step=SSSSSS` tag, None for other tags (e.g. final)."""
    match = re.fullmatch(r"step=(\d{6})", tag)
    return int(match.group(1)) if match else None


def latest_checkpoint_key(job: str, step: str) -> str:
    """`<job>/<step>/checkpoints/latest.json`: points at the newest complete checkpoint."""
    return checkpoints_prefix(job, step) + "latest.json"


def final_model_prefix(job: str, step: str) -> str:
    """`<job>/<step>/checkpoints/final/actor_hf/`: the step's trained policy as a Hugging Face folder."""
    return checkpoint_prefix(job, step, "final") + "actor_hf/"


def metrics_key(job: str, step: str) -> str:
    """`<job>/<step>/metrics.jsonl`: one line of metrics per PPO step."""
    return step_prefix(job, step) + METRICS_FILE


HELDOUT_FILE = "heldout.jsonl"


def heldout_key(job: str, step: str) -> str:
    """`<job>/<step>/heldout.jsonl`: one line per held-out evaluation during training (evaluation.everySteps)."""
    return step_prefix(job, step) + HELDOUT_FILE


def early_selection_prefix(job: str, step: str) -> str:
    """`<job>/<step>/early-selection/`: the selections recomputed after each data epoch (selection.earlyStop)."""
    return step_prefix(job, step) + "early-selection/"


def early_selection_key(job: str, step: str, epoch: int) -> str:
    """`<job>/<step>/early-selection/epoch=EEEE.json`: the selection from data epochs 0..EEEE (0-based)."""
    return f"{early_selection_prefix(job, step)}epoch={_check_int('epoch', epoch, MAX_EPOCH):04d}.json"


def log_key(job: str, step: str, attempt: int) -> str:
    """`<job>/<step>/logs/attempt-N.log`: what attempt N's driver printed, uploaded as it runs."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, not {attempt!r}")
    return step_prefix(job, step) + f"logs/attempt-{attempt}.log"


def logs_prefix(job: str, step: str) -> str:
    return step_prefix(job, step) + "logs/"


# ------------------------------------------------------------------------------------- selection


def selection_prefix(job: str) -> str:
    """`<job>/selection/`: the Selection step's outputs."""
    return step_prefix(job, SELECTION.key)


def summary_key(job: str) -> str:
    """`<job>/selection/summary.json`: strategy, threshold and counts (written last of the set)."""
    return selection_prefix(job) + SUMMARY_FILE


def scores_key(job: str) -> str:
    """`<job>/selection/scores.jsonl`: one line per scored sample."""
    return selection_prefix(job) + SCORES_FILE


def selected_key(job: str) -> str:
    """`<job>/selection/selected.json`: the selected dataset records (a JSON list)."""
    return selection_prefix(job) + SELECTED_FILE


def arm_subset_key(job: str, arm: str) -> str:
    """`<job>/selection/arms/<arm>.json`: the prompt ids of a comparison arm's subset."""
    if not _ARM_RE.match(arm):
        raise ValueError(f"invalid arm {arm!r}")
    return selection_prefix(job) + f"arms/{arm}.json"


def plot_key(job: str, name: str) -> str:
    """`<job>/selection/<name>.png`: a selection plot (name must end in .png)."""
    if not _PLOT_RE.match(name):
        raise ValueError(f"invalid plot name {name!r}: a plain file name ending in .png")
    return selection_prefix(job) + name


# ------------------------------------------------------------------------------------ evaluation


def arm_result_key(job: str, arm: str) -> str:
    """`<job>/evaluation/arms/<arm>.json`: one evaluated arm's accuracies (written as it finishes)."""
    if not _ARM_RE.match(arm):
        raise ValueError(f"invalid arm {arm!r}")
    return step_prefix(job, EVALUATION.key) + f"arms/{arm}.json"


def report_prefix(job: str) -> str:
    """`<job>/evaluation/report/`: report.md, report.json and the plots."""
    return step_prefix(job, EVALUATION.key) + "report/"


def _check_int(what: str, value: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{what} must be an integer in [0, {maximum}], not {value!r}")
    return value
