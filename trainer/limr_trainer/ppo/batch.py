"""Pure batch building for one PPO step: which prompts, which seeds, which tensors (no Ray, no models).

Everything random is a function of (seed, epoch, step), so a step replayed after a crash makes
the same prompts, the same samples and the same reward records (deterministic storage keys).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class StepPlan:
    """Which prompts each global step uses: an epoch is a seeded shuffle cut into full batches."""

    n_prompts: int
    batch: int
    epochs: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.n_prompts // self.batch)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.steps_per_epoch)
        order = list(range(self.n_prompts))
        random.Random(self.seed * 100_003 + epoch).shuffle(order)
        size = min(self.batch, self.n_prompts)
        return order[i * size:(i + 1) * size]


def generation_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_033 + epoch * 10_007 + step) % (2**31 - 1)


def build_batch(groups: list[list[Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded prompt+response sequences and the action mask from per-prompt completions."""
    seqs, starts = [], []
    for comps in groups:
        for c in comps:
            seqs.append(list(c.prompt_token_ids) + list(c.token_ids))
            starts.append(len(c.prompt_token_ids))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), width), dtype=torch.long)
    act = torch.zeros((len(seqs), width - 1), dtype=torch.float32)
    for i, (s, p) in enumerate(zip(seqs, starts)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        act[i, p - 1: len(s) - 1] = 1.0  # position t predicts token t+1
    return {"sequences": ids, "attention_mask": att, "action_mask": act}


def scalar_scores(results: list, spec_reward) -> torch.Tensor:
    """The job's reward levels (spec.reward) for each checker result."""
    return torch.tensor([spec_reward.correct if r.correct else spec_reward.formatError if r.format_error
                         else spec_reward.wrong for r in results], dtype=torch.float32)


def plan_micro_batches(lengths: list[int], max_rows: int, max_tokens: int | None = None) -> list[list[int]]:
    """Row indices of each micro batch: rows sorted by length (longest first) and packed while the
    micro batch holds at most `max_rows` rows and, when set, `max_tokens` tokens once padded to its
    longest row. Similar lengths share a micro batch, so little compute goes to padding."""
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        fits_tokens = max_tokens is None or longest * (len(current) + 1) <= max_tokens
        if current and (len(current) >= max_rows or not fits_tokens):
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out
