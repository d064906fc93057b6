"""A checker for the pool tests that dies on demand (a stand-in for a checker that segfaults)."""

from __future__ import annotations

import os

from limr_trainer.reward import check


def check_or_die(response: str, gold: str, truncated: bool = False):
    if "DIE" in response:
        os._exit(3)
    if "RAISE" in response:
        raise RuntimeError("checker bug")
    return check(response, gold, truncated)


def where_checked(response: str, gold: str, truncated: bool = False):
    """The real check, with `answer` replaced by the id of the process that ran it."""
    result = check(response, gold, truncated)
    return type(result)(result.reward, result.correct, result.reason, str(os.getpid()))
