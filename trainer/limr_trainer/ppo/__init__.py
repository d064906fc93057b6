"""PPO for LIMR: the math (`core`, `advantages`) apart from Ray; batches (`batch`); roles
(`workers`, `groups`, `roles`); checkpoints and metrics; the single-controller loop (`trainer`).

`import limr_trainer.ppo` stays free of torch and Ray until a name below is used.
"""

from __future__ import annotations

__all__ = ["PPOTrainer", "run_ppo_step"]


def __getattr__(name: str):
    if name in __all__:
        from limr_trainer.ppo import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
