"""Early selection: the selection recomputed after every baseline epoch, and the rule that ends the
Baseline once it has settled (`spec.selection.earlyStop`).

LIM needs the whole baseline before it can select. Here, after each data epoch k of the baseline,
the job's own selection (strategy, threshold) is run on the reward records of epochs 0..k and stored
(`layout.early_selection_key`); the baseline stops after epoch k when k + 1 >= minEpochs and each of
the last stableEpochs selections overlaps the one before it by at least minJaccard. Every epoch's
selection is recomputed from the stored records when it is missing, so a baseline resumed after a
crash judges stability on all the epochs already done, not only those of the current attempt.
The decision itself is a pure function (`stop_epoch`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from limr_api import layout

from limr_trainer.ppo.trainer import TrainerHook


def early_stop_text(early: dict[str, Any]) -> str:
    """What selection.earlyStop did to the baseline, in words."""
    planned, epochs = early["steps_planned"], early["epochs_planned"]
    if early.get("stopped_after_epoch"):
        return (f"stopped after epoch {early['stopped_after_epoch']} of {epochs} (selection stable): "
                f"{early['steps_saved']} of {planned} baseline steps saved ({100 * early['saved_share']:.0f}%)")
    if early.get("stable_after_epoch"):
        would = planned - early["steps_needed"]
        return (f"selection stable after epoch {early['stable_after_epoch']} of {epochs} (observe only: stopping "
                f"there would save {would} of {planned} baseline steps)")
    return f"selection not stable before the last epoch: all {epochs} epochs ran"


def jaccard(a: set[str] | list[str], b: set[str] | list[str]) -> float:
    """|A & B| / |A | B|; two empty selections are the same selection (1.0)."""
    a, b = set(a), set(b)
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


@dataclass(frozen=True)
class EpochSelection:
    """The selection made from data epochs 0..epoch (0-based) of a baseline."""

    epoch: int
    selected: tuple[str, ...]
    scored: int

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "epochs": self.epoch + 1, "count": len(self.selected), "scored": self.scored,
                "selected": list(self.selected)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpochSelection:
        return cls(int(data["epoch"]), tuple(map(str, data["selected"])), int(data["scored"]))


def overlaps(history: list[EpochSelection]) -> list[float | None]:
    """Per epoch, the Jaccard overlap with the previous epoch's selection (None for the first)."""
    return [None if i == 0 else jaccard(history[i - 1].selected, s.selected) for i, s in enumerate(history)]


def stop_epoch(history: list[EpochSelection], min_epochs: int, stable_epochs: int, min_jaccard: float) -> int | None:
    """The first epoch (0-based) after which the rule stops the baseline, or None.

    Stop after epoch k when k + 1 >= min_epochs and the selections of epochs k - stable_epochs + 1 .. k
    each overlap their predecessor by at least min_jaccard."""
    jac = overlaps(history)
    for k in range(len(history)):
        if k + 1 < min_epochs or k < stable_epochs:
            continue
        if all(j is not None and j >= min_jaccard for j in jac[k - stable_epochs + 1:k + 1]):
            return k
    return None


def select_from_epochs(ctx: Any, step_key: str, epochs: int) -> EpochSelection:
    """The job's selection (strategy, threshold) on the first `epochs` data epochs of a step's records."""
    from limr_trainer.selection.core import SelectionConfig, build_outputs

    sel = ctx.job.spec.selection
    uri = ctx.storage.uri(layout.rewards_prefix(ctx.name, step_key).rstrip("/"))
    files = build_outputs(SelectionConfig(input=uri, strategy=sel.strategy, threshold=sel.threshold, seed=sel.seed,
                                          format="limr", max_epochs=epochs, no_plots=True, settings=ctx.settings))
    summary = json.loads(files["summary.json"])
    selected = tuple(str(r["prompt_id"]) for r in json.loads(files["selected.json"]))
    return EpochSelection(epochs - 1, selected, int(summary["scored"]))


class EarlySelection(TrainerHook):
    """After every baseline epoch: the selection so far (stored), and whether it has settled."""

    def __init__(self, ctx: Any, step_key: str, rule: Any, epochs: int, steps_per_epoch: int):
        self.ctx, self.step_key, self.rule = ctx, step_key, rule
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.history: list[EpochSelection] = []
        self.decided: int | None = None  # the first epoch after which the rule says stop
        self.stopped_after: int | None = None  # the epoch after which this hook ended the baseline

    def selection_after(self, epoch: int) -> EpochSelection:
        """Epoch `epoch`'s selection: stored by an earlier attempt, else computed from the records."""
        key = layout.early_selection_key(self.ctx.name, self.step_key, epoch)
        if self.ctx.storage.exists(key):
            return EpochSelection.from_json(self.ctx.storage.get_json(key))
        found = select_from_epochs(self.ctx, self.step_key, epoch + 1)
        self.ctx.storage.put_json(key, found.to_json())
        return found

    def stored_history(self) -> list[EpochSelection]:
        """The epochs' selections stored so far, in epoch order, up to the first gap."""
        out = []
        while self.ctx.storage.exists(layout.early_selection_key(self.ctx.name, self.step_key, len(out))):
            out.append(self.selection_after(len(out)))
        return out

    def after_epoch(self, trainer: Any, epoch: int) -> bool:
        self.history = [self.selection_after(k) for k in range(epoch + 1)]
        rule = self.rule
        self.decided = stop_epoch(self.history, rule.minEpochs, rule.stableEpochs, rule.minJaccard)
        jac = overlaps(self.history)[-1]
        self.ctx.emit(self.step_key, "log", message=(
            f"early selection after epoch {epoch + 1}: {len(self.history[-1].selected)} selected"
            + (f", overlap with epoch {epoch} {jac:.2f}" if jac is not None else "")
            + (f"; stable since epoch {self.decided + 1}" if self.decided is not None else "")))
        if self.decided is not None and not rule.observeOnly:
            self.stopped_after = epoch
            return True
        return False

    def summary(self) -> dict[str, Any]:
        history = self.history if len(self.history) >= len(stored := self.stored_history()) else stored
        if self.decided is None:
            self.decided = stop_epoch(history, self.rule.minEpochs, self.rule.stableEpochs, self.rule.minJaccard)
        planned = self.epochs * self.steps_per_epoch
        ran = planned if self.stopped_after is None else (self.stopped_after + 1) * self.steps_per_epoch
        needed = None if self.decided is None else (self.decided + 1) * self.steps_per_epoch
        return {"early_stop": {
            "rule": {"minEpochs": self.rule.minEpochs, "stableEpochs": self.rule.stableEpochs,
                     "minJaccard": self.rule.minJaccard, "observeOnly": self.rule.observeOnly},
            "stable_after_epoch": None if self.decided is None else self.decided + 1,
            "stopped_after_epoch": None if self.stopped_after is None else self.stopped_after + 1,
            "epochs_planned": self.epochs,
            "steps_planned": planned,
            "steps_run": ran,
            "steps_saved": planned - ran,
            "saved_share": round(1 - ran / planned, 4),
            "steps_needed": needed,  # what stopping at the first stable epoch takes (observeOnly: would have)
            "per_epoch": [{"epoch": s.epoch + 1, "selected": len(s.selected), "jaccard_previous": j}
                          for s, j in zip(history, overlaps(history))],
        }}
