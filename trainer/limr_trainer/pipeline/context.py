"""What every step of a job needs: the job, its storage, a progress sink, and the done markers.

Each step writes its `_DONE.json` marker (its summary) last, into its own storage folder; a step
whose marker exists is skipped, so running a job again resumes it. Inside a training step,
resuming from the latest checkpoint is the trainer's job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from limr_api import layout
from limr_api.job import LIMRJob

from limr_trainer.storage import Storage, StorageSettings

# progress(step key, event, fields): event "start" (total=...), "step" (step=, total=, metrics...), "log"
Progress = Callable[[str, str, dict[str, Any]], None]


@dataclass
class Context:
    job: LIMRJob
    storage: Storage
    progress: Progress | None = None
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.job.metadata.name

    @property
    def settings(self) -> StorageSettings:
        return StorageSettings.of(self.job.spec)

    def emit(self, key: str, event: str, /, **fields: Any) -> None:
        """Tell the progress sink about step `key` (fields may hold a PPO `step` number)."""
        if self.progress is not None:
            self.progress(key, event, fields)

    def dataset_rows(self) -> list[dict[str, Any]]:
        """The job's dataset, read once."""
        if self._rows is None:
            from limr_trainer.data.dataset import load_rows

            self._rows = load_rows(self.job.spec.dataset, self.settings)
        return self._rows

    def done_summary(self, step: str) -> dict[str, Any] | None:
        """The summary a finished step left, or None when it has not completed."""
        key = layout.done_key(self.name, step)
        return self.storage.get_json(key) if self.storage.exists(key) else None

    def once(self, step: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run a step's work unless its marker exists, time it, and write the marker last, so an
        interrupted step is never taken for a finished one."""
        if (done := self.done_summary(step)) is not None:
            return {**done, "skipped": True}
        started = time.time()
        summary = {**_jsonable(work()), "phase": step, "seconds": round(time.time() - started, 1)}
        self.storage.put_json(layout.done_key(self.name, step), summary)
        return summary


def _jsonable(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {"result": str(result)}
    return json.loads(json.dumps(result, default=str))
