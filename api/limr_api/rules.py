"""Cross-field rules of a LIMRJob spec, each stated once in CEL (for the API server) and in Python.

Each rule is placed in the generated CRD as `x-kubernetes-validations` at its path and run by
pydantic on `LIMRJobSpec`; a test checks both agree on every example and every invalid job.
Transition rules (model and dataset immutable) need the old object: only the CRD checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class RuleViolations(ValueError):
    """Cross-field rules a spec breaks, as (field path below spec, message) pairs."""

    def __init__(self, violations: list[tuple[str, str]]):
        self.violations = violations
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in violations))


@dataclass(frozen=True)
class Rule:
    """One cross-field rule, stated in CEL for the API server and in Python for pydantic.

    `path` is the dotted field path (below `spec`) where the CRD carries the rule; `cel` sees
    that object as `self`; `check` receives the same object as a pydantic model. `field`, when
    set, is the child field the error is reported at (the CRD rule's `fieldPath`).
    """

    path: str
    cel: str
    message: str
    check: Callable[[Any], bool]
    transition: bool = False  # uses oldSelf: only evaluated on update
    field: str = ""

    @property
    def where(self) -> str:
        """Dotted path below `spec` of the field an error points at."""
        return ".".join(p for p in (self.path, self.field) if p)

    def target(self, spec: Any) -> Any:
        obj: Any = spec
        for part in [p for p in self.path.split(".") if p]:
            obj = getattr(obj, part)
        return obj

    def holds(self, spec: Any) -> bool:
        return True if self.transition else bool(self.check(self.target(spec)))


def _has_train_group(groups: list[Any]) -> bool:
    return any(g.role in ("train", "any") and g.replicas > 0 for g in groups)


def _unique(values: list[Any]) -> bool:
    return len(set(values)) == len(values)


RULES: list[Rule] = [
    Rule(
        "",
        "self.baseline.enabled || self.selection.enabled || self.retrain.enabled || self.evaluation.enabled",
        "enable at least one phase (baseline, selection, retrain or evaluation)",
        lambda s: s.baseline.enabled or s.selection.enabled or s.retrain.enabled or s.evaluation.enabled,
    ),
    Rule(
        "",
        "!self.selection.enabled || self.baseline.enabled || has(self.baseline.recordsUri) || "
        "(self.selection.strategy == 'random' && has(self.selection.size))",
        "selection needs baseline reward records: enable baseline, set baseline.recordsUri, "
        "or use strategy random with a size",
        lambda s: (
            (not s.selection.enabled)
            or s.baseline.enabled
            or s.baseline.recordsUri is not None
            or (s.selection.strategy == "random" and s.selection.size is not None)
        ),
        field="selection",
    ),
    Rule(
        "",
        "!self.retrain.enabled || self.selection.enabled",
        "retrain trains on the selected subset: enable selection too",
        lambda s: (not s.retrain.enabled) or s.selection.enabled,
        field="retrain",
    ),
    Rule(
        "storage",
        "self.uri.startsWith('s3://') || (!has(self.endpoint) && !has(self.secretRef))",
        "endpoint and secretRef apply to s3:// storage only: use an s3:// uri or remove them",
        lambda s: s.uri.startswith("s3://") or (s.endpoint is None and s.secretRef is None),
    ),
    Rule(
        "baseline",
        "!has(self.recordsUri) || !self.enabled",
        "recordsUri replaces the baseline run: set enabled: false to use existing records",
        lambda b: b.recordsUri is None or not b.enabled,
        field="recordsUri",
    ),
    Rule(
        "selection",
        "self.strategy != 'linear' || !has(self.threshold) || self.threshold >= 0.0",
        "linear scores are R^2 in [0, 1]: threshold must be between 0 and 1",
        lambda s: s.strategy != "linear" or s.threshold is None or s.threshold >= 0.0,
        field="threshold",
    ),
    Rule(
        "selection",
        "self.strategy == 'random' || !has(self.size)",
        "size applies to strategy random only (lim and linear select by threshold)",
        lambda s: s.strategy == "random" or s.size is None,
        field="size",
    ),
    Rule(
        "retrain",
        "self.comparisons.all(c, self.comparisons.filter(d, d == c).size() == 1)",
        "comparisons must not repeat an arm",
        lambda r: _unique(r.comparisons),
        field="comparisons",
    ),
    Rule(
        "evaluation",
        "!self.enabled || self.benchmarks.size() > 0",
        "evaluation needs at least one benchmark (or set enabled: false)",
        lambda e: (not e.enabled) or len(e.benchmarks) > 0,
        field="benchmarks",
    ),
    Rule(
        "evaluation",
        "self.benchmarks.all(b, self.benchmarks.filter(c, c.name == b.name).size() == 1)",
        "benchmark names must be unique",
        lambda e: _unique([b.name for b in e.benchmarks]),
        field="benchmarks",
    ),
    Rule(
        "ppo",
        "self.trainBatchSize % self.microBatchSize == 0",
        "trainBatchSize must be a multiple of microBatchSize",
        lambda p: p.trainBatchSize % p.microBatchSize == 0,
        field="trainBatchSize",
    ),
    Rule(
        "ppo",
        "(self.rolloutBatchSize * self.samplesPerPrompt) % self.trainBatchSize == 0",
        "rolloutBatchSize x samplesPerPrompt must be a multiple of trainBatchSize",
        lambda p: (p.rolloutBatchSize * p.samplesPerPrompt) % p.trainBatchSize == 0,
        field="rolloutBatchSize",
    ),
    Rule(
        "ppo",
        "self.adamBetas.all(b, b >= 0.0 && b < 1.0)",
        "adamBetas must each be in [0, 1)",
        lambda p: all(0.0 <= b < 1.0 for b in p.adamBetas),
        field="adamBetas",
    ),
    Rule(
        "cluster",
        "self.workerGroups.all(g, self.workerGroups.filter(h, h.name == g.name).size() == 1)",
        "worker group names must be unique",
        lambda c: _unique([g.name for g in c.workerGroups]),
        field="workerGroups",
    ),
    Rule(
        "cluster",
        "self.workerGroups.exists(g, (g.role == 'train' || g.role == 'any') && g.replicas > 0)",
        "at least one worker group with replicas > 0 must have role train or any "
        "(actor, critic and reference run there)",
        lambda c: _has_train_group(c.workerGroups),
        field="workerGroups",
    ),
    Rule(
        "model",
        "self == oldSelf",
        "model is immutable: create a new LIMRJob to train another model",
        lambda m: True,
        transition=True,
    ),
    Rule(
        "dataset",
        "self == oldSelf",
        "dataset is immutable: create a new LIMRJob to train on other data",
        lambda d: True,
        transition=True,
    ),
]
