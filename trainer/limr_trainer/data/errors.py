"""The error of a dataset that cannot be read or lacks a field."""

from __future__ import annotations


class DatasetError(ValueError):
    """The dataset cannot be read or lacks a required field; the message says which."""
