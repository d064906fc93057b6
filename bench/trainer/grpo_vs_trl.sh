#!/usr/bin/env bash
# Our GRPO step against TRL's GRPOTrainer on the same CPU workload, run alternately:
#   bench/trainer/grpo_vs_trl.sh [REPEATS]     (default 3)
# TRL lives in its own venv (.cache/bench-venvs/trl), never in the project's dependencies: the venv
# sees the project venv's packages (the same torch, transformers and limr) through a .pth file, and
# pip adds trl 1.16.0 and what only it needs (accelerate, datasets, pandas). Raw results: bench/trainer/results/grpo_vs_trl-<side>-<n>.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-3}
project=.venv
trlvenv=.cache/bench-venvs/trl
if [ ! -x "$trlvenv/bin/python" ] || ! "$trlvenv/bin/python" -c "import trl" 2>/dev/null; then
  python3.11 -m venv "$trlvenv"
  site=$("$project/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  own=$("$trlvenv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "import site; site.addsitedir('$site')" > "$own/limr-project.pth"  # its .pth files too (editable limr)
  "$trlvenv/bin/python" -m pip install -q "trl==1.16.0"
fi
"$trlvenv/bin/python" -c "import trl, transformers, torch; print('trl', trl.__version__, '| transformers', transformers.__version__, '| torch', torch.__version__)"
mkdir -p bench/trainer/results
export TOKENIZERS_PARALLELISM=false
for i in $(seq 1 "$repeats"); do
  "$project/bin/python" bench/trainer/bench_grpo_vs_trl.py --side ours --out "bench/trainer/results/grpo_vs_trl-ours-$i.json"
  "$trlvenv/bin/python" bench/trainer/bench_grpo_vs_trl.py --side trl --out "bench/trainer/results/grpo_vs_trl-trl-$i.json"
done
