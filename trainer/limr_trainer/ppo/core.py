"""PPO math as pure tensor functions (no models, no Ray): easy to test against hand computations.

Conventions: per-token tensors have shape (batch, T) and come with `mask` (1 on response tokens,
0 on prompt and padding); responses are contiguous, padding only after them. Gradients flow only
where a function says so.
"""

from __future__ import annotations

import math

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    return (x * mask).sum() if dim is None else (x * mask).sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean over masked entries (all of them, or per row along `dim`); 0 where the mask is empty."""
    return masked_sum(x, mask, dim) / mask.sum(dim if dim is not None else None).clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over masked entries (population variance); zero outside the mask."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token KL(pi || ref) estimate from sampled tokens' logprobs.

    k1 = log pi - log ref; k2 = (log pi - log ref)^2 / 2; k3 = (r - 1) - log r with r = ref / pi.
    """
    diff = logp - ref_logp
    if estimator == "k1":
        return diff
    if estimator == "k2":
        return 0.5 * diff**2
    if estimator == "k3":
        return torch.expm1(-diff) + diff
    raise ValueError(f"unknown KL estimator {estimator!r}")


def token_rewards(score: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards: -kl_coef * KL on every response token, plus the sequence score on its last one."""
    rewards = -kl_coef * kl * mask
    last = last_index(mask)
    rewards[torch.arange(mask.shape[0]), last] += score.to(rewards.dtype)
    return rewards


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last 1 in each row of `mask` (0 for an empty row)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return (positions * (mask > 0)).max(dim=1).values


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation; returns (advantages, returns), zero outside the mask.

    delta_t = r_t + gamma * V_{t+1} - V_t with V = 0 after the last response token (episode end).
    """
    rewards, values = rewards * mask, values * mask
    T = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        running = running * mask[:, t] + 0.0 * (1 - mask[:, t])  # nothing flows through non-response slots
        advantages[:, t] = running
    returns = (advantages + values) * mask
    return advantages * mask, returns


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip: float, tokens: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate: mean over tokens of max(-A r, -A clip(r, 1-eps, 1+eps)); r = pi / pi_old.

    `tokens`: normalise by this many tokens instead (the micro batch's share of a larger batch's mean).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    worst = torch.maximum(unclipped, clipped)
    loss = masked_mean(worst, mask) if tokens is None else token_normalized(worst, mask, tokens)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).float(), mask).item()
        approx_kl = masked_mean(old_logp - logp, mask).item()
    return loss, {"clip_fraction": clipfrac, "approx_kl": approx_kl}


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float | None, tokens: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """0.5 * mean of max((V - R)^2, (V_clipped - R)^2), V_clipped = V_old + clip(V - V_old, +-clip)."""
    def mean(x: torch.Tensor) -> torch.Tensor:
        return masked_mean(x, mask) if tokens is None else token_normalized(x, mask, tokens)

    unclipped = (values - returns) ** 2
    if clip is None:
        return 0.5 * mean(unclipped), {"value_clip_fraction": 0.0}
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * mean(torch.maximum(unclipped, clipped))
    with torch.no_grad():
        frac = masked_mean((clipped > unclipped).float(), mask).item()
    return loss, {"value_clip_fraction": frac}


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the softmax over the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def gather_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] per position (logits (B, T, V), tokens (B, T))."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


class RunningMoments:
    """Running mean / std of scalar rewards (Chan et al. parallel update); part of the checkpoint."""

    def __init__(self, mean: float = 0.0, var: float = 1.0, count: float = 1e-4):
        self.mean, self.var, self.count = mean, var, count

    def update(self, values: list[float] | torch.Tensor) -> None:
        x = torch.as_tensor(values, dtype=torch.float64).flatten()
        if x.numel() == 0:
            return
        b_mean, b_var, b_count = x.mean().item(), x.var(unbiased=False).item(), x.numel()
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean += delta * b_count / total
        self.var = (self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total) / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 1e-12))

    def normalize(self, values: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return (values - self.mean) / (self.std + eps)

    def state_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    @classmethod
    def from_state(cls, state: dict[str, float]) -> RunningMoments:
        return cls(state["mean"], state["var"], state["count"])


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_{k >= t} gamma^(k-t) r_k over each row's response tokens; zero outside the mask."""
    rewards = rewards * mask
    out = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        running = (rewards[:, t] + gamma * running) * mask[:, t]
        out[:, t] = running
    return out


def group_normalize(scores: torch.Tensor, groups: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """GRPO: (r - mean of its group) / (std of its group + eps), unbiased std as OpenRLHF's group_norm."""
    out = torch.empty_like(scores, dtype=torch.float32)
    for g in torch.unique(groups):
        idx = groups == g
        values = scores[idx].float()
        std = values.std() if values.numel() > 1 else torch.zeros((), dtype=values.dtype)
        out[idx] = (values - values.mean()) / (std + eps)
    return out


def leave_one_out(scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """RLOO: r_i - mean of the *other* samples of its group (a group of one keeps r_i)."""
    out = torch.empty_like(scores, dtype=torch.float32)
    for g in torch.unique(groups):
        idx = groups == g
        values = scores[idx].float()
        n = values.numel()
        out[idx] = values - (values.sum() - values) / (n - 1) if n > 1 else values
    return out


def token_normalized(per_token: torch.Tensor, mask: torch.Tensor, tokens: float) -> torch.Tensor:
    """sum over masked tokens / `tokens`: a micro batch's share of a token mean over a larger batch."""
    return masked_sum(per_token, mask) / max(float(tokens), 1.0)


def chunked_logprobs(hidden: torch.Tensor, head: torch.nn.Module, tokens: torch.Tensor, chunk: int = 1024,
                     entropy: bool = False, checkpoint: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(head(hidden))[token] per position, `chunk` positions at a time.

    The full (batch, T, vocab) fp32 logits never exist at once: each chunk's logits are made, reduced
    to the sampled token's log-probability (and entropy) and dropped. With `checkpoint` (training),
    the backward pass recomputes each chunk's logits instead of keeping them.
    """
    from torch.utils.checkpoint import checkpoint as recompute

    def piece(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(head(h).float(), dim=-1)
        return logp.gather(-1, t.unsqueeze(-1)).squeeze(-1)

    outs, ents = [], []
    for start in range(0, hidden.shape[1], chunk):
        h, t = hidden[:, start:start + chunk], tokens[:, start:start + chunk]
        outs.append(recompute(piece, h, t, use_reentrant=False) if checkpoint else piece(h, t))
        if entropy:
            with torch.no_grad():
                ents.append(entropy_from_logits(head(h)))
    return torch.cat(outs, dim=1), (torch.cat(ents, dim=1) if entropy else None)


def warmup_cosine(step: int, warmup: int, total: int, floor: float, schedule: str = "cosine") -> float:
    """Learning-rate multiplier at optimizer step `step`: linear warm-up over `warmup` steps, then
    cosine decay to `floor` at `total` steps (LIMR's cosine_with_min_lr), or constant."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
