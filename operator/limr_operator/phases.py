"""The ordered stages of a LIMRJob and the steps (phase or comparison arm) each one runs.

One place decides which phases a spec enables; builders, reconcile and `limr render` all use it.
A stage is a status phase (`Baseline`, ...); a step is one child workload of a stage: the main
run, or a comparison arm of Retrain (`retrain-random`), each with its own attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

from limr_trainer.spec import LIMRJobSpec

STAGES = ("Baseline", "Selection", "Retrain", "Evaluation")


@dataclass(frozen=True)
class Step:
    """One child workload: `phase` is the trainer's phase name, `arm` a comparison arm or None."""

    stage: str
    phase: str
    arm: str | None = None

    @property
    def key(self) -> str:
        """Key in status.phases: `baseline`, `retrain`, `retrain-random`..."""
        return f"{self.phase}-{self.arm}" if self.arm else self.phase

    @property
    def gpu(self) -> bool:
        """Selection is CPU-only scoring; every other phase runs PPO or inference on a Ray cluster."""
        return self.phase != "selection"


def stage_enabled(spec: LIMRJobSpec, stage: str) -> bool:
    return bool(getattr(spec, stage.lower()).enabled)


def enabled_stages(spec: LIMRJobSpec) -> list[str]:
    return [s for s in STAGES if stage_enabled(spec, s)]


def steps_of(spec: LIMRJobSpec, stage: str) -> list[Step]:
    """The steps of a stage: Retrain runs the selected subset plus one step per comparison arm."""
    phase = stage.lower()
    steps = [Step(stage, phase)]
    if stage == "Retrain":
        steps += [Step(stage, phase, arm) for arm in spec.retrain.comparisons]
    return steps


def all_steps(spec: LIMRJobSpec) -> list[Step]:
    return [step for stage in enabled_stages(spec) for step in steps_of(spec, stage)]
