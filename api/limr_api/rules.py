"""Cross-field rules of a LIMRJob spec, each stated once in CEL (for the API server) and in Python.

Each rule is placed in the generated CRD as `x-kubernetes-validations` at its path and run by
pydantic on `LIMRJobSpec`; a test checks both agree on every example and every invalid job.
Transition rules (model and dataset immutable) need the old object: only the CRD checks them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .constants import (
    ANNOTATIONS_MAX_BYTES,
    IMAGE_PATTERN,
    KUEUE_MAX_POD_SETS,
    KUEUE_RESERVED_GROUP,
    LABEL_VALUE_MAX,
    LABEL_VALUE_PATTERN,
    NAMESPACE_PATTERN,
    QUALIFIED_NAME_PATTERN,
    QUALIFIED_PREFIX_PATTERN,
)


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


# ------------------------------------------------------------------ the API server's own name rules
# Label keys, label values and annotation keys as k8s.io/apimachinery validates them (IsQualifiedName,
# IsValidLabelValue, ValidateAnnotations), in Python and as CEL over a map's keys.
_QUALIFIED = re.compile(QUALIFIED_NAME_PATTERN)
_QUALIFIED_PREFIX = re.compile(QUALIFIED_PREFIX_PATTERN)
_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
_IMAGE = re.compile(IMAGE_PATTERN)
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
QUALIFIED_NAME_HELP = (
    "an optional DNS-subdomain prefix of at most 253 characters and '/', then a name of at most 63 "
    "letters, digits, '-', '_' or '.' that starts and ends with a letter or digit (e.g. nvidia.com/gpu)"
)
LABEL_VALUE_HELP = (
    f"at most {LABEL_VALUE_MAX} letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)


def is_qualified_name(key: str) -> bool:
    """A label or annotation key (IsQualifiedName)."""
    return bool(_QUALIFIED.match(key)) and ("/" not in key or bool(_QUALIFIED_PREFIX.match(key)))


def is_label_value(value: str) -> bool:
    return len(value) <= LABEL_VALUE_MAX and bool(_LABEL_VALUE.match(value))


def cel_string(text: str) -> str:
    """A CEL string literal of `text` (regular expressions keep their backslashes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel_qualified_name(var: str) -> str:
    """CEL: `var` is a qualified name (the structure by pattern, the prefix's length by a second one)."""
    return (f"{var}.matches({cel_string(QUALIFIED_NAME_PATTERN)}) && "
            f"(!{var}.contains('/') || {var}.matches({cel_string(QUALIFIED_PREFIX_PATTERN)}))")


def _refuse(message: str) -> None:
    raise RuleViolations([("", message)])  # reported at the field itself


def check_label_value(value: str) -> str:
    """A string field that is a label value (a pydantic after-validator with the server's words)."""
    if not is_label_value(value):
        _refuse(f"expected a label value: {LABEL_VALUE_HELP} (got {value!r:.80})")
    return value


def check_qualified_name(value: str) -> str:
    if not is_qualified_name(value):
        _refuse(f"expected a label key: {QUALIFIED_NAME_HELP} (got {value!r:.80})")
    return value


def check_namespace(value: str) -> str:
    if len(value) > LABEL_VALUE_MAX or not _NAMESPACE.match(value):
        _refuse(f"a namespace is a DNS label: at most {LABEL_VALUE_MAX} lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit (got {value!r:.80})")
    return value


def check_image(value: str) -> str:
    if not _IMAGE.match(value):
        _refuse(f"an image reference has no whitespace (got {value!r:.80})")
    return value


def label_problems(labels: dict[str, str]) -> list[str]:
    """What the API server refuses in metadata.labels, one line per key."""
    out = []
    for key, value in labels.items():
        if not is_qualified_name(key):
            out.append(f"label key {key!r} is not a qualified name: {QUALIFIED_NAME_HELP}")
        if not is_label_value(value):
            out.append(f"label {key!r}: value {value!r:.80} is not a label value: {LABEL_VALUE_HELP}")
    return out


def annotation_problems(annotations: dict[str, str]) -> list[str]:
    """What the API server refuses in metadata.annotations (keys, lowercased, and the total size)."""
    out = [f"annotation key {key!r} is not a qualified name: {QUALIFIED_NAME_HELP}"
           for key in annotations if not is_qualified_name(key.lower())]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        out.append(f"annotations take {size} bytes, more than the API server's {ANNOTATIONS_MAX_BYTES}")
    return out


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
        "",
        "!has(self.selection.earlyStop) || self.baseline.enabled",
        "selection.earlyStop ends the baseline run early: enable baseline (records from recordsUri are "
        "used as they are)",
        lambda s: s.selection.earlyStop is None or s.baseline.enabled,
        field="selection",
    ),
    Rule(
        "",
        "!has(self.selection.earlyStop) || self.selection.earlyStop.minEpochs < self.baseline.epochs",
        "selection.earlyStop.minEpochs must be below baseline.epochs (else the baseline can never stop early)",
        lambda s: s.selection.earlyStop is None or s.selection.earlyStop.minEpochs < s.baseline.epochs,
        field="selection",
    ),
    Rule(
        "selection",
        "self.strategy != 'random' || !has(self.earlyStop)",
        "earlyStop waits for the lim or linear selection to settle; a random selection has no trajectories",
        lambda s: s.strategy != "random" or s.earlyStop is None,
        field="earlyStop",
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
        "cluster",
        f"!has(self.queue) || size(self.workerGroups) <= {KUEUE_MAX_POD_SETS - 2}",
        f"with a Kueue queue at most {KUEUE_MAX_POD_SETS - 2} worker groups: Kueue's Workload holds "
        f"{KUEUE_MAX_POD_SETS} pod sets, and the head and the submitter take two",
        lambda c: c.queue is None or len(c.workerGroups) <= KUEUE_MAX_POD_SETS - 2,
        field="workerGroups",
    ),
    Rule(
        "cluster",
        f"!has(self.queue) || self.workerGroups.all(g, g.name != '{KUEUE_RESERVED_GROUP}' && "
        "g.name != 'submitter')",
        f"with a Kueue queue no worker group may be named {KUEUE_RESERVED_GROUP!r} or 'submitter': Kueue "
        "names the head's and the submitter's pod sets so",
        lambda c: c.queue is None or all(g.name not in (KUEUE_RESERVED_GROUP, "submitter") for g in c.workerGroups),
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


# ------------------------------------------------------------------ rules of one model, wherever it is
# Rules of a model that appears in lists (tolerations, worker groups): `path` is "" (self is the
# model), the CRD carries them on the model's schema at every place it occurs, and the model's own
# validator runs the Python side (errors are reported at the model's location plus `field`).

_NODE_SELECTOR_KEYS = Rule(
    "",
    f"self.nodeSelector.all(k, {cel_qualified_name('k')})",
    f"nodeSelector keys are label keys: {QUALIFIED_NAME_HELP}",
    lambda g: all(is_qualified_name(k) for k in g.nodeSelector),
    field="nodeSelector",
)

MODEL_RULES: dict[str, list[Rule]] = {
    "Toleration": [
        Rule(
            "",
            "!has(self.key) || !self.key.contains('/') || "
            f"self.key.matches({cel_string(QUALIFIED_PREFIX_PATTERN)})",
            "the key's prefix (before '/') may have at most 253 characters",
            lambda t: t.key is None or is_qualified_name(t.key),
            field="key",
        ),
        Rule(
            "",
            "has(self.key) || (has(self.operator) && self.operator == 'Exists')",
            "a toleration without a key tolerates every taint: its operator must be Exists",
            lambda t: t.key is not None or t.operator == "Exists",
            field="operator",
        ),
        Rule(
            "",
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "operator Exists matches any value: leave value empty (or use operator Equal)",
            lambda t: t.operator != "Exists" or not t.value,
            field="value",
        ),
        Rule(
            "",
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "tolerationSeconds applies to effect NoExecute only (how long a pod stays after such a taint)",
            lambda t: t.tolerationSeconds is None or t.effect == "NoExecute",
            field="tolerationSeconds",
        ),
    ],
    "HeadGroup": [_NODE_SELECTOR_KEYS],
    "WorkerGroup": [_NODE_SELECTOR_KEYS],
}


def check_model(model: Any) -> Any:
    """Run the MODEL_RULES of `model`'s class; raises RuleViolations (paths relative to the model)."""
    broken = [(rule.where, rule.message) for rule in MODEL_RULES.get(type(model).__name__, [])
              if not rule.check(model)]
    if broken:
        raise RuleViolations(broken)
    return model
