"""LIMR trainer: everything that runs inside a Ray cluster (or locally) for one LIMRJob."""

__version__ = "0.1.0"
