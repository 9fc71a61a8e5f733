"""Song et al.'s Table 1 for the book's shipped digit model: sample quality against DDIM steps S and eta.

    python benchmarks/ddim_table.py --n 300 --steps 10 20 50 100 --out benchmarks/results/ddim_table-cpu.json
    python benchmarks/ddim_table.py --n 1000 --steps 10 20 50 100 1000 --out benchmarks/results/ddim_table-gpu.json

Every cell samples the same ``n`` noises (seed ``--seed``) with :func:`diffnotes.ddim.quality_table` and measures them
with Part II's measure against the 5,000 training digits; the yardstick is the Frechet distance of ``n`` real digits
against the other 5,000 - n. Chapter 12 shows the newest record. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import torch

from diffnotes import ddim, pretrained, quality
from diffnotes.data import load_mnist_5k
from diffnotes.perfnotes import new_record, write_record
from diffnotes.runtime import get_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="samples per cell")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 1000])
    parser.add_argument("--etas", type=float, nargs="+", default=[0.0, 0.2, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="also write the table as a record")
    args = parser.parse_args()
    device = get_device(args.device)
    model = pretrained.load_digit_model(device)
    images, _ = load_mnist_5k()
    start = time.time()
    cells = ddim.quality_table(model, pretrained.digits_schedule(), args.steps, args.etas, args.n, images,
                               torch.Generator().manual_seed(args.seed), args.batch, device)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed + 1))
    floor = quality.evaluate(images[order[: args.n]], images[order[args.n :]]).frechet_distance
    for cell in cells:
        print(f"eta {cell.eta:.1f}  S {cell.steps:5d}  {1e3 * cell.seconds_per_image:8.1f} ms/image  {cell.report}")
    print(f"real digits: FD {floor:.2f}; {time.time() - start:.0f} s in all")
    results = {"n": args.n, "seed": args.seed, "batch": args.batch, "model_sha256": pretrained.DIGITS_SHA256,
               "real_digits_fd": floor, "seconds": round(time.time() - start, 1),
               "cells": [asdict(cell) for cell in cells]}
    if args.out:
        print("wrote", write_record(args.out, new_record("ddim_table", results)))


if __name__ == "__main__":
    main()
