"""LIMR trainer: everything that runs inside a Ray cluster (or locally) for one LIMRJob.

Packages, in import order (each imports only those before it): storage, data, runtime, reward,
rollout -> ppo, selection, evaluation -> pipeline -> commands. See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
