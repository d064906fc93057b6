"""Advantage estimators, registered by name (`spec.ppo.advantageEstimator`), as pure functions.

An estimator takes the batch (with `action_mask`, `old_logprobs`, `ref_logprobs`, `group_ids` (the
prompt of each sample) and, for GAE, the critic's `old_values`), the sequence scores and the PPO
spec; it adds `advantages` and `returns` to the batch and returns statistics for the metrics.
In every estimator the KL penalty enters the per-token reward (k1 x klCoef on each response token,
the score on the last), as in LIMR's OpenRLHF:
- gae: GAE with the critic's values (gamma, lambda); whitened over the batch when set.
- grpo: scores normalised within each prompt's group, then KL-shaped returns (gamma 1); not re-whitened.
- rloo: scores minus the mean of the group's other samples, then as grpo.
- reinforce++: raw scores, KL-shaped returns, whitened over the batch (REINFORCE++).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from limr_trainer.ppo import core

Estimator = Callable[[dict[str, torch.Tensor], torch.Tensor, Any], dict[str, float]]
ESTIMATORS: dict[str, Estimator] = {}
NEEDS_CRITIC: set[str] = set()


def register(name: str, critic: bool = False) -> Callable[[Estimator], Estimator]:
    def add(fn: Estimator) -> Estimator:
        ESTIMATORS[name] = fn
        if critic:
            NEEDS_CRITIC.add(name)
        return fn

    return add


def needs_critic(name: str) -> bool:
    return name in NEEDS_CRITIC


def compute_advantages(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo: Any) -> dict[str, float]:
    """Run the job's estimator (in place on `batch`); returns statistics such as the mean KL."""
    name = getattr(ppo, "advantageEstimator", "gae")
    if name not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {name!r}: expected one of {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[name](batch, scores, ppo)


@register("gae", critic=True)
def gae_estimator(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo: Any) -> dict[str, float]:
    """GAE over per-token rewards: the KL penalty on every response token, the score on the last."""
    mask = batch["action_mask"]
    kl = _kl(batch, ppo)
    rewards = core.token_rewards(scores, kl, mask, ppo.klCoef)
    adv, ret = core.gae(rewards, batch["old_values"], mask, ppo.gamma, ppo.lambd)
    batch["advantages"] = core.masked_whiten(adv, mask) if ppo.whitenAdvantages else adv
    batch["returns"] = ret
    return {"kl": core.masked_mean(kl, mask, dim=1).mean().item()}


def _kl(batch: dict[str, torch.Tensor], ppo: Any) -> torch.Tensor:
    mask = batch["action_mask"]
    return core.kl_penalty(batch["old_logprobs"], batch["ref_logprobs"], ppo.klEstimator) * mask


def _critic_free(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo: Any, whiten: bool,
                 gamma: float) -> dict[str, float]:
    mask = batch["action_mask"]
    kl = _kl(batch, ppo)
    returns = core.discounted_returns(core.token_rewards(scores, kl, mask, ppo.klCoef), mask, gamma)
    batch["advantages"] = core.masked_whiten(returns, mask) if whiten else returns
    batch["returns"] = returns
    return {"kl": core.masked_mean(kl, mask, dim=1).mean().item()}


@register("grpo")
def grpo_estimator(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo: Any) -> dict[str, float]:
    return _critic_free(batch, core.group_normalize(scores, batch["group_ids"]), ppo, whiten=False, gamma=1.0)


@register("rloo")
def rloo_estimator(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo: Any) -> dict[str, float]:
    return _critic_free(batch, core.leave_one_out(scores, batch["group_ids"]), ppo, whiten=False, gamma=1.0)


@register("reinforce++")
def reinforce_pp_estimator(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo: Any) -> dict[str, float]:
    return _critic_free(batch, scores, ppo, whiten=ppo.whitenAdvantages, gamma=ppo.gamma)
