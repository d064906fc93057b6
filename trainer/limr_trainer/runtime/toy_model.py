"""A tiny, fully offline stand-in for a base model: `toy://SIZE?seed=S&warm_steps=N...`.

No model can be downloaded on the development and CI machines, so tests, benchmarks and the
embedded `limr run` default build one here, deterministically from its parameters:
- a byte-level BPE tokenizer trained locally with `tokenizers` on the toy corpus, with a
  Qwen-style chat template (system + user turns, assistant generation prompt, `<|im_end|>` as EOS);
- a random-init Qwen2-architecture model (~1-3M parameters, tied embeddings) saved with
  `save_pretrained`, so vLLM (GPU or CPU) and transformers both load it;
- `warm_start`: a short supervised fine-tune that turns the random model into a weak base model
  PPO can improve.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from limr_api.constants import LIMR_SYSTEM_PROMPT

from limr_trainer.data.prompts import render_prompt
from limr_trainer.data.synthetic import arithmetic_rows, solution_text
from limr_trainer.runtime.cache import locked

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# name -> Qwen2 shape; "tiny" is the test model (~1.2M parameters with the toy vocabulary).
MODEL_SIZES: dict[str, dict] = {
    "tiny": {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 2,
                 "num_key_value_heads": 1, "head_dim": 64},
    "small": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "head_dim": 64},
}


def _corpus(seed: int = 0) -> list[str]:
    rows = arithmetic_rows(3000, seed=seed + 7919)
    texts = [LIMR_SYSTEM_PROMPT, "system", "user", "assistant", "\n"]
    texts += [r["prompt"] for r in rows] + [solution_text(r) for r in rows]
    return texts


# --------------------------------------------------------------------------------------- tokenizer


def build_tokenizer(out_dir: str | Path, vocab_size: int = 384, seed: int = 0):
    """Train a byte-level BPE tokenizer on the toy corpus, save it with the chat template, return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=None,
        model_max_length=1024, padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


# ------------------------------------------------------------------------------------------- model


def build_model(out_dir: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random-init Qwen2 model + toy tokenizer to `out_dir` (deterministic in `seed`)."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(out, seed=seed)
    eos = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer), max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=pad, eos_token_id=eos, pad_token_id=pad, rope_theta=10000.0,
        torch_dtype="float32", **MODEL_SIZES[size],
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=pad).save_pretrained(out)
    return out


# ------------------------------------------------------------------------------------ warm start


def warm_start(model_dir: str | Path, rows: list[dict], steps: int, lr: float = 3e-3, batch_size: int = 32,
               seed: int = 0, system_prompt: str = LIMR_SYSTEM_PROMPT,
               progress: Callable[[str], None] | None = None) -> dict:
    """Supervised fine-tune on `solution_text` (loss on response tokens only), saved in place.

    A few dozen steps give a weak model: right format often, right answer sometimes. Returns
    {"loss": last loss}.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    encoded = _encode_solutions(tok, rows, system_prompt)
    loss_value = float("nan")
    every = max(1, steps // 10)
    for done in range(steps):
        batch = rng.sample(encoded, min(batch_size, len(encoded)))
        width = max(len(s) for s, _ in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        lab = torch.full((len(batch), width), -100)
        for i, (s, n_prompt) in enumerate(batch):
            ids[i, : len(s)] = torch.tensor(s)
            att[i, : len(s)] = 1
            lab[i, n_prompt : len(s)] = torch.tensor(s[n_prompt:])
        loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = float(loss.detach())
        if progress and ((done + 1) % every == 0 or done + 1 == steps):
            progress(f"warm start: step {done + 1}/{steps}, loss {loss_value:.3f}")
    model.save_pretrained(model_dir, safe_serialization=True)
    return {"loss": loss_value}


def _encode_solutions(tok, rows: list[dict], system_prompt: str) -> list[tuple[list[int], int]]:
    """(prompt + solution token ids, prompt length) per row; each distinct question encoded once."""
    cache: dict[str, tuple[list[int], int]] = {}
    out = []
    for row in rows:
        key = "\x00".join((row["prompt"], row["answer"], row.get("difficulty", "")))
        if key not in cache:
            p_ids = tok(render_prompt(tok, row["prompt"], system_prompt), add_special_tokens=False)["input_ids"]
            r_ids = tok(solution_text(row), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            cache[key] = (p_ids + r_ids, len(p_ids))
        out.append(cache[key])
    return out


# ------------------------------------------------------------------------------------------ cache


def ensure_toy_model(cache_root: str | Path, size: str = "tiny", seed: int = 0, warm_steps: int = 0,
                     warm_rows: int = 2000, warm_lr: float = 3e-3, warm_mix: str | None = None,
                     warm_split: str | None = None, warm_batch: int = 32,
                     progress: Callable[[str], None] | None = None) -> Path:
    """The toy model folder for these settings, built once under `cache_root`.

    The warm start learns from `warm_rows` questions of the synthetic task: by default its standard
    mix over the whole question space; `warm_mix` (e.g. `easy:2,sum2:6`) and `warm_split` (`train`:
    never a held-out question of `synthetic://...&split=test`) choose others, `warm_batch` its batch.
    Built in a temporary folder renamed into place, under a lock, so concurrent processes on one
    host build it once and never load half a model. `progress(message)` hears about each stage.
    """
    from limr_trainer.data.synthetic import parse_mix

    mix = parse_mix(warm_mix, "warm_mix") if warm_mix is not None else None
    settings = {"size": size, "seed": seed, "warm_steps": warm_steps, "warm_rows": warm_rows, "warm_lr": warm_lr,
                "v": 1}
    for name, value, default in (("warm_mix", warm_mix, None), ("warm_split", warm_split, None),
                                 ("warm_batch", warm_batch, 32)):
        if value != default:  # keys of models built before these settings existed stay the same
            settings[name] = value
    key = json.dumps(settings, sort_keys=True)
    out = Path(cache_root) / f"toy-{size}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    if (out / "config.json").exists():
        return out
    say = progress or (lambda message: None)
    with locked(out):
        if (out / "config.json").exists():
            return out
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"toy model {size} (seed {seed}): tokenizer and random-init weights")
        build_model(tmp, size=size, seed=seed)
        if warm_steps:
            say(f"warm start: {warm_steps} supervised steps of {warm_batch} on {warm_rows} questions")
            warm_start(tmp, arithmetic_rows(warm_rows, seed=seed + 1, mix=mix, split=warm_split), steps=warm_steps,
                       lr=warm_lr, batch_size=warm_batch, seed=seed, progress=say)
        (tmp / "toy.json").write_text(key)
        tmp.rename(out)
        say(f"toy model ready: {out}")
    return out


# ------------------------------------------------------------------------------------- toy job

# The CPU recipe that makes the toy model learn within a few dozen PPO steps (checked on 2 cores):
# a warm start of 24 steps leaves ~60% format errors, PPO at lr 1e-3 removes most of them.
TOY_WARM_STEPS = 24
TOY_PPO = {
    "rolloutBatchSize": 16, "samplesPerPrompt": 4, "trainBatchSize": 32, "microBatchSize": 16,
    "actorLearningRate": 1e-3, "criticLearningRate": 1e-3, "generateMaxLength": 32, "promptMaxLength": 64,
    "checkpointEverySteps": 4, "zeroStage": 2,
    "actor": {"replicas": 1, "cpus": 0.25, "gpus": 0}, "critic": {"replicas": 1, "cpus": 0.25, "gpus": 0},
    "reference": {"replicas": 1, "cpus": 0.25, "gpus": 0},
}


def toy_job(model: str, storage_uri: str, name: str = "toy", n: int = 64, data_seed: int = 1, epochs: int = 6,
            ppo: dict | None = None, rollout: dict | None = None) -> dict:
    """A LIMRJob (as a dict) training the toy model on synthetic arithmetic on a local CPU Ray cluster."""
    return {
        "apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": name},
        "spec": {
            "model": {"name": model, "dtype": "float32"},
            "dataset": {"uri": f"synthetic://arithmetic?n={n}&seed={data_seed}"},
            "storage": {"uri": storage_uri},
            "ppo": {**TOY_PPO, **(ppo or {})},
            "rollout": {"backend": "vllm", "engines": 1, "cpusPerEngine": 0.5, "sampling": {"temperature": 1.0},
                        **(rollout or {})},
            "reward": {"workers": 1},
            "baseline": {"epochs": epochs},
            "selection": {"enabled": False}, "retrain": {"enabled": False}, "evaluation": {"enabled": False},
        },
    }
