"""The sections of a LIMRJob that switch and shape its phases: baseline, selection, retrain, evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .constants import (
    DNS_LABEL_PATTERN,
    FIELD_MAX,
    INT32_MAX,
    LIST_MAP_BY_NAME,
    LIST_SET,
    SOURCE_URI_PATTERN,
    URI_MAX,
)
from .strict import Strict


class BaselineSpec(Strict):
    """PPO on the full dataset; records every sample's reward trajectory."""

    enabled: bool = Field(default=True, description="Run the baseline phase.")
    epochs: int = Field(default=21, ge=1, le=1000, description="Data epochs (LIMR: 21 of 8 steps).")
    recordsUri: str | None = Field(
        default=None,
        min_length=1,
        max_length=URI_MAX,
        pattern=SOURCE_URI_PATTERN,
        description="Start from existing baseline reward records at this URI instead of running "
        "the baseline (requires enabled: false).",
    )


class EarlyStopSpec(Strict):
    """End the Baseline once the selection has settled (early selection).

    After every baseline epoch k the selection is recomputed from the records of epochs 1..k; the
    baseline stops after epoch k when k >= minEpochs and each of the last stableEpochs selections
    overlaps the one before it by at least minJaccard (|A & B| / |A | B|). The Selection then
    scores the epochs that ran."""

    minEpochs: int = Field(default=3, ge=1, le=1000, description="Epochs to run before the baseline may stop.")
    stableEpochs: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="Consecutive epochs whose selection must overlap the previous epoch's by minJaccard.",
    )
    minJaccard: float = Field(
        default=0.9, ge=0, le=1, description="Jaccard overlap with the previous epoch's selection that counts as stable."
    )
    observeOnly: bool = Field(
        default=False,
        description="Record the per-epoch selections and the epoch the rule would stop at, but train every "
        "epoch (to measure what stopping would cost).",
    )


class SelectionSpec(Strict):
    """LIM scoring and thresholding of the baseline trajectories."""

    enabled: bool = Field(default=True, description="Run the selection phase.")
    strategy: Literal["lim", "linear", "random"] = Field(default="lim", description="Scoring strategy.")
    threshold: float | None = Field(
        default=None,
        le=1,
        description="Keep samples with score >= threshold (default: 0.6 for lim, 0.7 for linear).",
    )
    size: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description="Subset size for random (default: the number LIM selects).",
    )
    seed: int = Field(default=0, ge=0, le=INT32_MAX, description="Seed of the random strategy.")
    earlyStop: EarlyStopSpec | None = Field(
        default=None,
        description="Recompute the selection after every baseline epoch and end the baseline once it is "
        "stable (unset: the baseline runs all its epochs).",
    )

    def resolved_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return 0.7 if self.strategy == "linear" else 0.6


class RetrainSpec(Strict):
    """PPO from the same base model on the selected subset."""

    enabled: bool = Field(default=True, description="Run the retrain phase.")
    epochs: int = Field(default=21, ge=1, le=1000, description="Data epochs over the subset.")
    comparisons: list[Literal["random", "linear", "full"]] = Field(
        default_factory=list,
        max_length=3,
        json_schema_extra=LIST_SET,
        description="Extra arms trained like the LIM subset for the paper's Table 2: a random and a "
        "linear subset of the same size, and the full dataset.",
    )


class BenchmarkSpec(Strict):
    """One evaluation benchmark."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=40, description="Benchmark name in the report.")
    uri: str = Field(
        min_length=1, max_length=URI_MAX, pattern=SOURCE_URI_PATTERN,
        description="JSONL/JSON file with question and answer fields.",
    )
    promptField: str = Field(
        default="question", min_length=1, max_length=FIELD_MAX, description="Question field."
    )
    answerField: str = Field(
        default="answer", min_length=1, max_length=FIELD_MAX, description="Answer field."
    )
    samples: int = Field(default=1, ge=1, le=64, description="Samples per question (n).")
    temperature: float = Field(default=0.0, ge=0, le=5, description="0 = greedy.")
    limit: int | None = Field(default=None, ge=1, le=INT32_MAX, description="Use the first N questions only.")


def _default_benchmarks() -> list[BenchmarkSpec]:
    return [
        BenchmarkSpec(name="math500", uri="/data/eval/math500.jsonl", samples=1, temperature=0.0),
        BenchmarkSpec(name="aime24", uri="/data/eval/aime24.jsonl", samples=4, temperature=0.4),
        BenchmarkSpec(name="amc23", uri="/data/eval/amc23.jsonl", samples=4, temperature=0.4),
    ]


class EvaluationSpec(Strict):
    """Accuracy of each arm on held-out benchmarks."""

    enabled: bool = Field(default=True, description="Run the evaluation phase.")
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=_default_benchmarks,
        max_length=32,
        json_schema_extra=LIST_MAP_BY_NAME,
        description="Benchmarks (paper: MATH500, AIME24, AMC23); names unique.",
    )
    topP: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling mass.")
    maxNewTokens: int = Field(default=3072, ge=1, le=1_048_576, description="Generation budget per answer.")
    includeBaseModel: bool = Field(
        default=True, description="Also evaluate the base model (first table row)."
    )
    everySteps: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description="Also evaluate the policy being trained on the benchmarks every N PPO steps of each "
        "training step (the report plots held-out accuracy against step); unset: final models only.",
    )
