"""PPO for LIMR: pure math in `core`, Ray roles in `workers`, the single-controller loop in `loop`."""

from __future__ import annotations

__all__ = ["final_model_prefix", "run_ppo_phase"]


def __getattr__(name: str):  # keep `import limr_trainer.ppo` free of torch/Ray until used
    if name in __all__:
        from limr_trainer.ppo import loop

        return getattr(loop, name)
    raise AttributeError(name)
