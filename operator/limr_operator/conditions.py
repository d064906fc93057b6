"""Kubernetes API-convention conditions: lastTransitionTime moves only when `status` changes."""

from __future__ import annotations

from typing import Any


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  generation: int | None, now: str) -> list[dict[str, Any]]:
    """Return a new list with `type_` set; reason/message/observedGeneration may change in place."""
    out = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        changed = cond.get("status") != status
        out.append({
            "type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": now if changed else cond.get("lastTransitionTime", now),
        })
    if not found:
        out.append({"type": type_, "status": status, "reason": reason, "message": message,
                    "observedGeneration": generation, "lastTransitionTime": now})
    return out


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
