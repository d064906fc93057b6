"""The `hf` rollout backend: transformers `generate` in this process (baseline and fallback).

Slower than vLLM, but needs nothing beyond transformers; also the reference point of the rollout
benchmark. Sampling is seeded per prompt (seed, index) like the vLLM backend, one prompt's n
samples in one batch, so results do not depend on how prompts are batched.
"""

from __future__ import annotations

from limr_trainer.rollout.base import Completion, RolloutBackend, SamplingConfig
from limr_trainer.rollout.vllm_backend import prompt_seed
from limr_trainer.runtime.model import ModelSource, as_source, resolve_model


class HFBackend(RolloutBackend):
    def __init__(self, model: ModelSource | str, device: str = "cpu", dtype: str = "float32", seed: int = 0,
                 **_: object):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = resolve_model(as_source(model))
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
        self.device = device
        self.seed = seed

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        torch = self.torch
        tok = self.tokenizer
        results = []
        for index, prompt in enumerate(prompts):
            prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids] * sampling.n, device=self.device)
            seed = prompt_seed(sampling.seed if sampling.seed is not None else self.seed, index)
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            greedy = sampling.temperature == 0
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=sampling.max_tokens,
                    do_sample=not greedy, temperature=None if greedy else sampling.temperature,
                    top_p=None if greedy else sampling.top_p,
                    top_k=None if greedy or sampling.top_k < 0 else sampling.top_k,
                    eos_token_id=list(sampling.stop_token_ids) or tok.eos_token_id, pad_token_id=tok.pad_token_id,
                    output_scores=sampling.logprobs, return_dict_in_generate=True,
                )
            torch.random.set_rng_state(generator_state)
            comps = []
            stops = set(sampling.stop_token_ids) or {tok.eos_token_id}
            for row in range(sampling.n):
                new = out.sequences[row, len(prompt_ids):].tolist()
                end = next((i for i, t in enumerate(new) if t in stops), None)
                ended = end is not None
                new = new[: end + 1] if ended else new
                logprobs = None
                if sampling.logprobs:
                    logprobs = [float(out.scores[t][row].log_softmax(-1)[tok_id]) for t, tok_id in enumerate(new)]
                comps.append(Completion(text=tok.decode(new, skip_special_tokens=True), token_ids=new,
                                        prompt_token_ids=list(prompt_ids), truncated=not ended, logprobs=logprobs))
            results.append(comps)
        return results

    def update_weights(self, state_dict: dict) -> None:
        self.model.load_state_dict(state_dict, strict=False)

    def load_model(self, model: ModelSource | str) -> None:
        from transformers import AutoModelForCausalLM

        other = AutoModelForCausalLM.from_pretrained(resolve_model(as_source(model)), dtype=self.model.dtype)
        self.model.load_state_dict(other.state_dict(), strict=False)

    def prompt_logprobs(self, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
        torch = self.torch
        ids = torch.tensor([list(prompt_ids) + list(response_ids)], device=self.device)
        with torch.no_grad():
            logp = self.model(ids).logits[0, :-1].float().log_softmax(-1)
        tail = logp[len(prompt_ids) - 1:]
        return tail.gather(-1, torch.tensor(response_ids, device=self.device)[:, None])[:, 0].tolist()

    def close(self) -> None:
        self.model = None
