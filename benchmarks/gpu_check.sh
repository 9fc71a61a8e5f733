#!/usr/bin/env bash
# The GPU measurements of the performance notes, on one CUDA GPU, in under 10 minutes; every record goes to
# benchmarks/results/ with the GPU's name in the file name and in the record ("machine"):
#   1. training throughput, ours against diffusers' UNet2DModel, bf16, batch 2048: eager, then torch.compile;
#   2. the full profile (batch 256, bf16, lr 2e-4, 500 warm-up steps) from scratch until the quality bar,
#      measured every 1,000 steps by the shipped model's protocol: the time to the bar (or, if 200 s are not
#      enough, every measurement until then);
#   3. sampling throughput, 50 DDIM steps, ours against diffusers' DDIMScheduler, fp32 and bf16.
# Usage: benchmarks/gpu_check.sh [--dry-run]
#   The interpreter is .venv's where there is one, else python3 (PYTHON=... names another). A GPU machine's python3
#   may lack diffusers and mlxtend: benchmarks/gpu_wheels.sh fetches their wheels into .whl/ beforehand, and this
#   script installs whatever .whl/ holds into a temporary folder before it measures.
#   --dry-run runs every step on the CPU at the smallest sizes, its records into a temporary folder: a check of the
#   script and the interpreter before a GPU's minutes are spent on them.
# Each step has a time limit; a step that runs over it writes no record, and the script goes on. Where $OUT names a
# folder (a lent machine's device tool brings back what is written there), the records are copied to it (the tool
# returns the output's tail as well):
#   benchmarks/gpu_wheels.sh here, then on the lent machine: benchmarks/gpu_check.sh, carrying .whl, in one call.
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${PYTHON:-}" ]]; then PY=$PYTHON; elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if compgen -G ".whl/*.whl" > /dev/null; then
    SITE=$(mktemp -d)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl || exit 1
    export PYTHONPATH=$PYTHONPATH:$SITE
fi
"$PY" -c "import diffusers, mlxtend" || { echo "diffusers and mlxtend are needed: run benchmarks/gpu_wheels.sh here"; exit 1; }
if [[ "${1:-}" == "--dry-run" ]]; then
    DEVICE=cpu TAG=dry-run R=$(mktemp -d) BIG=8 SMALL=4 STEPS=1 BAR="--eval-every 1 --max-steps 3 --quality-n 8 --max-seconds 1" SAMPLES=2
else
    GPU=$("$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name())") || exit 1
    DEVICE=cuda TAG=$(printf '%s' "$GPU" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//') R=benchmarks/results
    BIG=2048 SMALL=256 STEPS=50 BAR="--eval-every 1000 --max-steps 18000 --max-seconds 200" SAMPLES=1000
fi
echo "$("$PY" -c 'from diffnotes.perfnotes import machine; print(machine())') -> $R/*-$TAG*.json"
run() { local limit=$1; shift; echo "+ $*"; timeout "$limit" "$PY" "$@" || echo "!! failed or over ${limit} s: $*"; }
run 90 benchmarks/train_throughput.py --device $DEVICE --batch $BIG --bf16 --steps $STEPS --rounds 4 --out "$R/train_throughput-$TAG-bf16-eager.json"
run 170 benchmarks/train_throughput.py --device $DEVICE --batch $BIG --bf16 --compile --steps $STEPS --rounds 4 --out "$R/train_throughput-$TAG-bf16-compiled.json"
run 240 benchmarks/train_throughput.py --device $DEVICE --batch $SMALL --bf16 --steps 5 --rounds 2 --time-to-bar $BAR --out "$R/time_to_bar-$TAG.json"
run 50 benchmarks/sample_throughput.py --device $DEVICE --batch $SAMPLES --rounds 3 --precision fp32 bf16 --out "$R/sample_throughput-$TAG.json"
ls -l "$R"/*"$TAG"*.json
if [[ -n "${OUT:-}" ]]; then cp "$R"/*"$TAG"*.json "$OUT"/ && echo "copied the records to $OUT"; fi
