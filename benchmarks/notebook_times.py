"""Wall-clock time of every chapter notebook in the quick profile, executed one after another.

    python benchmarks/notebook_times.py --out benchmarks/results/notebooks-cpu.json
    python benchmarks/notebook_times.py book/ch07_training.ipynb --threads 2

Each notebook runs in a fresh kernel (as nbval and the book build run it) with ``DIFFNOTES_PROFILE=quick`` and
``--threads`` threads (default 1, as under ``make test``, where two notebooks run at once on two cores). The time
includes the kernel's start and the imports. This is a benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from diffnotes.perfnotes import new_record, write_record

BOOK = Path(__file__).resolve().parent.parent / "book"


def run(path: Path) -> float:
    """Execute the notebook at ``path`` in a fresh kernel; returns the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook under book/")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each kernel")
    parser.add_argument("--out", default=None, help="also write the numbers as a record")
    args = parser.parse_args()
    os.environ.update(DIFFNOTES_PROFILE="quick", OMP_NUM_THREADS=str(args.threads))  # the kernels inherit them
    seconds = {}
    for path in args.notebooks or sorted(BOOK.glob("*.ipynb")):
        seconds[path.name] = round(run(path), 1)
        print(f"{path.name:36s} {seconds[path.name]:6.1f} s", flush=True)
    print(f"{'total':36s} {sum(seconds.values()):6.1f} s")
    if args.out:
        record = new_record("notebook_times", {"threads": args.threads, "profile": "quick", "seconds": seconds})
        print("wrote", write_record(args.out, record))


if __name__ == "__main__":
    main()
