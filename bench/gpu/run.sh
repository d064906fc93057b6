#!/usr/bin/env bash
# The GPU benchmark, one command: a few PPO (gae) and GRPO steps of a random-init Qwen2.5-1.5B with
# real vLLM, DeepSpeed ZeRO-3 on CUDA and the weight sync, stage by stage; no download. Meant for a
# GPU machine with the trainer's stack (the trainer image, or a venv built with
# `scripts/docker-install-trainer.sh gpu VENV`): set PYTHON to its interpreter. Results land in
# bench/gpu/results.json and results.md; copy the Markdown into bench/gpu/RESULTS.md with the date.
# Budget: under 8 minutes on one H200 (model build ~1 min, two estimators x 3 steps).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
"$python" - <<'PY'
import importlib.util, sys
missing = [m for m in ("torch", "vllm", "deepspeed", "ray", "transformers", "limr_trainer") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"bench/gpu/run.sh: this Python lacks {missing}: use the trainer image or set PYTHON to a venv "
             "built with scripts/docker-install-trainer.sh gpu")
import torch
if not torch.cuda.is_available():
    sys.exit("bench/gpu/run.sh: torch sees no CUDA device")
PY
export PYTHONPATH="$PWD/api:$PWD/trainer${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
exec timeout 900 "$python" bench/gpu/bench_gpu.py "$@"
