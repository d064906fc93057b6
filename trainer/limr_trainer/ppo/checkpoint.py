"""Checkpoints of a PPO phase in storage, and finding the one to resume from.

One checkpoint = `<job>/<phase>/checkpoints/step=SSSSSS/` holding `actor/` and `critic/` (each
rank's DeepSpeed shards: weights and optimizer state, uploaded by the rank itself) and
`state.json` (data cursor, RNG states, reward-normaliser statistics, metrics so far). The pointer
`checkpoints/latest.json` is written last, so a crash mid-save leaves the previous checkpoint in
charge; older checkpoints are pruned only after the pointer moved.
"""

from __future__ import annotations

import base64
import pickle
import random
from typing import Any

from limr_api import layout

from limr_trainer.storage import ObjectNotFound, Storage

STATE = "state.json"


def latest_key(job: str, phase: str) -> str:
    return layout.latest_checkpoint_key(job, phase)


def step_prefix(job: str, phase: str, step: int) -> str:
    return layout.checkpoint_prefix(job, phase, layout.checkpoint_tag(step))


def rng_snapshot() -> str:
    """Python and torch RNG states of this process, as text for state.json."""
    import torch

    return base64.b64encode(pickle.dumps({"python": random.getstate(), "torch": torch.get_rng_state()})).decode()


def rng_restore(text: str) -> None:
    import torch

    states = pickle.loads(base64.b64decode(text))
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])


def save(storage: Storage, job: str, phase: str, step: int, state: dict[str, Any], save_roles, keep: int = 2) -> str:
    """Write checkpoint `step`: `save_roles(prefix)` uploads the roles' shards, then state, then the pointer."""
    prefix = step_prefix(job, phase, step)
    storage.delete_prefix(prefix)  # a half-written copy of this step from a crashed attempt
    save_roles(prefix)
    storage.put_json(prefix + STATE, {**state, "step": step, "rng": rng_snapshot()})
    storage.put_json(latest_key(job, phase), {"step": step, "tag": layout.checkpoint_tag(step), "prefix": prefix})
    prune(storage, job, phase, keep)
    return prefix


def load_latest(storage: Storage, job: str, phase: str) -> dict[str, Any] | None:
    """The newest complete checkpoint's state (with "prefix"), or None to start fresh."""
    try:
        pointer = storage.get_json(latest_key(job, phase))
    except ObjectNotFound:
        return None
    state = storage.get_json(pointer["prefix"] + STATE)
    return {**state, "prefix": pointer["prefix"]}


def prune(storage: Storage, job: str, phase: str, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints (never the one `latest` points to)."""
    base = layout.checkpoints_prefix(job, phase)
    steps = sorted({s for key in storage.list(base)
                    if (s := layout.parse_checkpoint_tag(key[len(base):].split("/", 1)[0])) is not None})
    try:
        current = storage.get_json(latest_key(job, phase))["step"]
    except ObjectNotFound:
        current = None
    for step in steps[:-keep] if keep > 0 else steps:
        if step != current:
            storage.delete_prefix(step_prefix(job, phase, step))
