"""The one plan of a LIMRJob: which steps run, in which order, and what each step is called.

A *stage* is a status phase that does work (`Baseline`, `Selection`, `Retrain`, `Evaluation`).
A *step* is one workload of a stage: the main run, or a comparison arm of Retrain. A step's `key`
(`baseline`, `selection`, `retrain`, `retrain-random`, ...) is used everywhere a step is named:
the key in `status.phases`, the folder under `<root>/<job>/` in storage, and the argument of
`limr phase --step`. The operator, the trainer, the report and the metrics all read this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STAGES = ("Baseline", "Selection", "Retrain", "Evaluation")
PHASES = ("Pending", *STAGES, "Succeeded", "Failed", "Suspended")  # every value of status.phase
TERMINAL_PHASES = ("Succeeded", "Failed")

LIM_ARM = "lim"
COMPARISON_ARMS = ("random", "linear", "full")
ARMS = (LIM_ARM, *COMPARISON_ARMS)  # the order Retrain trains them in
BASE_ARM = "base"  # the untrained model, evaluated beside the arms
REPORT_ORDER = (BASE_ARM, "full", LIM_ARM, "random", "linear")  # the rows of the results table

_KINDS = {stage.lower(): stage for stage in STAGES}


@dataclass(frozen=True)
class Step:
    """One workload of a job: a stage and, in Retrain, the arm it trains."""

    stage: str
    arm: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}: expected one of {', '.join(STAGES)}")
        if (self.stage == "Retrain") != (self.arm is not None):
            raise ValueError("a Retrain step names its arm; other stages have none")
        if self.arm is not None and self.arm not in ARMS:
            raise ValueError(f"unknown arm {self.arm!r}: expected one of {', '.join(ARMS)}")

    @property
    def kind(self) -> str:
        """`baseline`, `selection`, `retrain` or `evaluation`: what the step runs."""
        return self.stage.lower()

    @property
    def key(self) -> str:
        """Status key, storage folder and CLI name: the LIM arm is `retrain`, others `retrain-<arm>`."""
        if self.arm is None or self.arm == LIM_ARM:
            return self.kind
        return f"{self.kind}-{self.arm}"

    @property
    def trains(self) -> bool:
        """Whether the step runs PPO (writes reward records, checkpoints and metrics.jsonl)."""
        return self.stage in ("Baseline", "Retrain")

    @property
    def gpu(self) -> bool:
        """Selection is CPU-only scoring; every other step runs PPO or inference on a Ray cluster."""
        return self.stage != "Selection"


BASELINE = Step("Baseline")
SELECTION = Step("Selection")
EVALUATION = Step("Evaluation")


def retrain(arm: str = LIM_ARM) -> Step:
    return Step("Retrain", arm)


def parse_step(key: str) -> Step:
    """The step named by `key` (`baseline`, `retrain-random`, ...); ValueError for anything else."""
    kind, sep, arm = key.partition("-")
    stage = _KINDS.get(kind)
    if stage is None:
        raise ValueError(f"unknown step {key!r}: expected {', '.join(all_keys())}")
    if stage != "Retrain":
        if sep:
            raise ValueError(f"unknown step {key!r}: only retrain has arms ({', '.join(all_keys())})")
        return Step(stage)
    if sep and arm == LIM_ARM:
        raise ValueError(f"the LIM arm's step is 'retrain', not {key!r}")
    try:
        return Step(stage, arm if sep else LIM_ARM)
    except ValueError:
        raise ValueError(f"unknown step {key!r}: expected {', '.join(all_keys())}") from None


def all_keys() -> list[str]:
    """Every step key there can be."""
    return ["baseline", "selection", *[retrain(a).key for a in ARMS], "evaluation"]


# ------------------------------------------------------------------------------- what a spec runs


def stage_enabled(spec: Any, stage: str) -> bool:
    return bool(getattr(spec, stage.lower()).enabled)


def enabled_stages(spec: Any) -> list[str]:
    return [s for s in STAGES if stage_enabled(spec, s)]


def full_arm_reuses_baseline(spec: Any) -> bool:
    """The full-data arm is the baseline run itself when both train the same data for as long.

    Same base model, data, recipe, seed and epochs: it is the paper's "full data" row, and training
    it again would only repeat the baseline, so no `retrain-full` step runs.
    """
    return bool(spec.baseline.enabled and spec.retrain.epochs == spec.baseline.epochs)


def retrain_arms(spec: Any) -> list[str]:
    """The arms Retrain trains: lim, then the comparisons in table order (full left out when it
    reuses the baseline)."""
    if not spec.retrain.enabled:
        return []
    arms = [LIM_ARM]
    for arm in COMPARISON_ARMS:
        if arm in spec.retrain.comparisons and not (arm == "full" and full_arm_reuses_baseline(spec)):
            arms.append(arm)
    return arms


def stage_steps(spec: Any, stage: str) -> list[Step]:
    """The steps of one stage (Retrain: one per arm)."""
    if stage == "Retrain":
        return [retrain(arm) for arm in retrain_arms(spec)]
    return [Step(stage)]


def steps(spec: Any) -> list[Step]:
    """Every step the spec runs, in order; disabled stages left out."""
    return [step for stage in enabled_stages(spec) for step in stage_steps(spec, stage)]


def epochs(spec: Any, step: Step) -> int:
    """Data epochs a training step runs."""
    if step.stage == "Baseline":
        return spec.baseline.epochs
    if step.stage == "Retrain":
        return spec.retrain.epochs
    raise ValueError(f"{step.key} does not train")


def evaluated_arms(spec: Any) -> list[tuple[str, str | None]]:
    """(arm, key of the step whose final model it is; None = the base model), in report order.

    The baseline is a full-data run, so the `full` row shows it unless a separate retrain-full
    step trains the full dataset for retrain.epochs.
    """
    trained = retrain_arms(spec)
    out: list[tuple[str, str | None]] = []
    for arm in REPORT_ORDER:
        if arm == BASE_ARM and spec.evaluation.includeBaseModel:
            out.append((arm, None))
        elif arm in trained:
            out.append((arm, retrain(arm).key))
        elif arm == "full" and spec.baseline.enabled:
            out.append((arm, BASELINE.key))
    return out
