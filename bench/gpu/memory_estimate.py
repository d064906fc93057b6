"""Peak GPU memory per role at the paper's scale, computed from the trainer's own sizes.

    .venv/bin/python bench/gpu/memory_estimate.py [--job manifests/examples/qwen-math-7b-limr.yaml]
                                                  [--config bench/gpu/configs/qwen2.5-math-7b.json]
writes bench/gpu/MEMORY.md. Every number comes from what the code does with the job: the
DeepSpeed config (`ppo.roles.trained_role_options`: ZeRO stage, optimizer offload), the micro
batch (`ppo.microBatchSize` rows of at most prompt + generation tokens, or `microBatchTokens`), the
chunk of positions whose vocabulary logits exist at once (`ppo.workers.LOGPROB_CHUNK`), gradient
checkpointing, the weight-sync stream (one parameter at a time), and vLLM's memory share. It is an
estimate (allocator slack, CUDA context and NCCL buffers are a flat allowance), not a measurement:
bench/gpu/run.sh measures the real peaks on a GPU when one is available.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GB = 1e9
CONTEXT_GB = 2.5  # CUDA context, allocator slack, NCCL buffers (flat allowance)


def params(cfg: dict) -> dict[str, float]:
    h, i, layers, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * (h // cfg["num_attention_heads"])
    per_layer = h * h + 2 * h * kv + h * h + 3 * h * i + 2 * h + (h + 2 * kv)  # q, k, v, o, mlp, norms, biases
    embed = v * h
    head = 0 if cfg.get("tie_word_embeddings") else v * h
    return {"total": layers * per_layer + embed + head + h, "largest": max(embed, 3 * h * i, head), "embed": embed,
            "head": head}


def estimate(job_path: Path, cfg: dict) -> dict:
    from limr_api.loader import load_job
    from limr_trainer.ppo.roles import trained_role_options
    from limr_trainer.ppo.workers import LOGPROB_CHUNK

    job = load_job(job_path)
    spec, ppo = job.spec, job.spec.ppo
    p = params(cfg)
    seq = ppo.promptMaxLength + ppo.generateMaxLength
    tokens = min(ppo.microBatchSize * seq, ppo.microBatchTokens or ppo.microBatchSize * seq)
    h, inter, layers, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    kv_dim = cfg["num_key_value_heads"] * (h // cfg["num_attention_heads"])
    bf = 2  # bytes per bf16 value

    def trained(world: int, lm_head: bool) -> dict[str, float]:
        options = trained_role_options(spec, world, "cuda", total_ppo_steps=1)
        zero = options["config"]["zero_optimization"]
        stage, offload = zero["stage"], "offload_optimizer" in zero
        shard = world if stage == 3 else 1
        n = p["total"] if lm_head else p["total"] - p["head"] + h  # the critic: backbone + a scalar head
        out = {
            "parameters (bf16)": n * bf / shard,
            "gradients (bf16)": n * bf / (world if stage >= 2 else 1),
            "Adam fp32 master + moments": 0.0 if offload else n * 12 / (world if stage >= 1 else 1),
            "gathered layer (ZeRO-3)": p["largest"] * bf * 2 if stage == 3 else 0.0,
            "checkpointed activations": layers * tokens * h * bf if ppo.gradientCheckpointing else 0.0,
            "one layer recomputed": tokens * (4 * h + 2 * kv_dim + 3 * inter) * bf,
        }
        if lm_head:  # logits of LOGPROB_CHUNK positions per row at a time, fp32, plus their log-softmax
            chunk_tokens = min(tokens, ppo.microBatchSize * LOGPROB_CHUNK)
            out["logit chunk (fp32, x2)"] = chunk_tokens * vocab * 4 * 2
        out["context and slack"] = CONTEXT_GB * GB
        return out

    def reference() -> dict[str, float]:
        chunk_tokens = min(tokens, ppo.microBatchSize * LOGPROB_CHUNK)
        return {"parameters (bf16, whole model)": p["total"] * bf,
                "one layer forward": tokens * (4 * h + 2 * kv_dim + 3 * inter) * bf,
                "logit chunk (fp32, x2)": chunk_tokens * vocab * 4 * 2, "context and slack": CONTEXT_GB * GB}

    def engine(card_gb: float) -> dict[str, float]:
        budget = spec.rollout.gpuMemoryUtilization * card_gb * GB
        weights = p["total"] * bf / spec.rollout.tensorParallelSize
        kv_per_token = 2 * layers * kv_dim * bf / spec.rollout.tensorParallelSize
        kv = max(0.0, budget - weights - 1.5 * GB)
        return {"parameters (bf16)": weights, "weight-sync stream (largest tensor)": p["largest"] * bf,
                "KV cache (rest of the vLLM share)": kv, "concurrent tokens the KV cache holds": kv / kv_per_token,
                "context and slack": CONTEXT_GB * GB}

    return {"job": job, "params": p, "tokens": tokens, "seq": seq, "actor": trained(ppo.actor.replicas, True),
            "critic": trained(ppo.critic.replicas, False), "reference": reference(), "engine": engine}


def render(est: dict, cards: tuple[float, ...] = (80.0, 141.0)) -> str:
    job, ppo = est["job"], est["job"].spec.ppo
    lines = [
        "# Peak GPU memory per role at the paper's scale (estimate)",
        "",
        (f"Job `{job.metadata.name}` ({job.spec.model.name}, {est['params']['total'] / 1e9:.2f} B parameters), "
         f"ZeRO-{ppo.zeroStage}{' + optimizer offload' if ppo.offloadOptimizer else ''}, "
         f"micro batch {ppo.microBatchSize} x {est['seq']} tokens = {est['tokens']:,} tokens, "
         f"gradient checkpointing {'on' if ppo.gradientCheckpointing else 'off'}; "
         f"{ppo.actor.replicas} actor, {ppo.critic.replicas} critic, {ppo.reference.replicas} reference GPUs, "
         f"{job.spec.rollout.engines} vLLM engines at TP {job.spec.rollout.tensorParallelSize}. "
         "Written by `bench/gpu/memory_estimate.py` from the trainer's own configuration code."),
        "",
    ]
    for role in ("actor", "critic", "reference"):
        parts = est[role]
        total = sum(parts.values())
        lines += [f"## {role}", "", "| part | GB |", "|---|---:|"]
        lines += [f"| {k} | {v / GB:.1f} |" for k, v in parts.items()]
        fits = " ".join(f"Fits an {c:.0f} GB card: {'yes' if total / GB <= c else 'no'}." for c in cards)
        lines += [f"| **peak** | **{total / GB:.1f}** |", "", fits, ""]
    lines += ["## vLLM engine", "", "| part | " + " | ".join(f"{c:.0f} GB card" for c in cards) + " |",
              "|---|" + "---:|" * len(cards)]
    per_card = [est["engine"](c) for c in cards]
    for key in per_card[0]:
        cells = [f"{v[key]:,.0f}" if "tokens" in key else f"{v[key] / GB:.1f}" for v in per_card]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    note = ("The engine takes `gpuMemoryUtilization` of the card; what the weights leave is KV cache. "
            "Before the streamed weight sync, each engine worker received the whole model into a list "
            f"before loading it ({est['params']['total'] * 2 / GB:.1f} GB extra); now one parameter at a time "
            f"(the largest, the embedding: {est['params']['largest'] * 2 / GB:.1f} GB).")
    lines += ["", note, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job", default=str(REPO / "manifests" / "examples" / "qwen-math-7b-limr.yaml"))
    parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "qwen2.5-math-7b.json"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "MEMORY.md"))
    args = parser.parse_args()
    text = render(estimate(Path(args.job), json.loads(Path(args.config).read_text())))
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
