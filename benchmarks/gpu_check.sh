#!/usr/bin/env bash
# The GPU measurements of the performance notes, on one CUDA GPU, in about 10 minutes; every record goes to
# benchmarks/results/ with the GPU's name in the file name and in the record ("machine"):
#   1. training throughput, ours against diffusers' UNet2DModel, bf16, batch 2048: eager, then torch.compile;
#   2. the full profile (batch 256, bf16, lr 2e-4, 500 warm-up steps) from scratch until the quality bar,
#      measured every 1,000 steps by the shipped model's protocol: the time to the bar;
#   3. sampling throughput, 50 DDIM steps, ours against diffusers' DDIMScheduler, fp32 and bf16.
# Usage: benchmarks/gpu_check.sh   (PYTHON=path/to/python to use another interpreter than .venv's)
# Each step has a time limit; a step that runs over it writes no record, and the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
GPU=$("$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name())") || exit 1
TAG=$(printf '%s' "$GPU" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//')
R=benchmarks/results
echo "GPU: $GPU -> $R/*-$TAG*.json"
run() { local limit=$1; shift; echo "+ $*"; timeout "$limit" "$PY" "$@" || echo "!! failed or over ${limit} s: $*"; }
run 100 benchmarks/train_throughput.py --device cuda --batch 2048 --bf16 --steps 50 --rounds 4 --out "$R/train_throughput-$TAG-bf16-eager.json"
run 200 benchmarks/train_throughput.py --device cuda --batch 2048 --bf16 --compile --steps 50 --rounds 4 --out "$R/train_throughput-$TAG-bf16-compiled.json"
run 240 benchmarks/train_throughput.py --device cuda --batch 256 --bf16 --steps 5 --rounds 2 --time-to-bar --eval-every 1000 --max-steps 18000 --out "$R/time_to_bar-$TAG.json"
run 60 benchmarks/sample_throughput.py --device cuda --batch 1000 --rounds 3 --precision fp32 bf16 --out "$R/sample_throughput-$TAG.json"
ls -l "$R"/*"$TAG"*.json
