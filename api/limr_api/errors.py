"""The one error a job file or object raises when it cannot be used."""

from __future__ import annotations


class JobError(Exception):
    """A job that cannot be used; `errors` holds (field path, message) pairs (path "" = the file)."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("\n".join(f"{path}: {msg}" if path else msg for path, msg in errors))
