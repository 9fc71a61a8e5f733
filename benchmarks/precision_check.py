"""bfloat16 against float32 on the digits: the same loss curve, and how much faster, in one interleaved run.

    python benchmarks/precision_check.py --steps 300 --batch 64 --out benchmarks/results/precision_check-cpu.json

Trains the book's digit U-Net on the 5,000 digits (:func:`diffnotes.data.load_mnist_5k`) three times side by side:
float32 and bfloat16 autocast from the same seed (the same initial weights, batches, timesteps and noise), and float32
from another seed, whose distance from the first shows how far two equally good runs differ. The runs take turns in
blocks of ``--log-every`` steps (A B C, C B A, ...), each block timed; the record keeps each run's loss per block and
its images per second (median and range over the blocks). A benchmark: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from diffnotes.data import load_mnist_5k
from diffnotes.nets.unet import UNet
from diffnotes.perfnotes import new_record, write_record
from diffnotes.pretrained import DIGITS_UNET, digits_schedule
from diffnotes.runtime import get_device
from diffnotes.training import TrainConfig, new_state, train_step

RUNS = {"fp32, seed 0": ("fp32", 0), "bf16, seed 0": ("bf16", 0), "fp32, seed 1": ("fp32", 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = get_device(args.device)
    images, _ = load_mnist_5k()
    schedule = digits_schedule().to(device=device, dtype=torch.float32)
    states, configs = {}, {}
    for name, (precision, seed) in RUNS.items():
        configs[name] = TrainConfig(steps=args.steps, batch_size=args.batch, lr=4e-4, warmup_steps=100,
                                    mixed_precision=precision, seed=seed)
        torch.manual_seed(seed)
        states[name] = new_state(UNet(DIGITS_UNET).to(device), configs[name])
    losses = {name: [] for name in RUNS}
    rates = {name: [] for name in RUNS}
    for block in range(args.steps // args.log_every):
        for name in list(RUNS) if block % 2 == 0 else reversed(list(RUNS)):
            start = time.perf_counter()
            block_losses = [train_step(states[name], images, schedule, configs[name], device)
                            for _ in range(args.log_every)]
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[name].append(args.batch * args.log_every / (time.perf_counter() - start))
            losses[name].append(round(statistics.fmean(block_losses), 5))
        print(f"step {(block + 1) * args.log_every}: " + "  ".join(f"{n}: {losses[n][-1]:.4f}" for n in RUNS), flush=True)
    results = {"steps": args.steps, "batch": args.batch, "log_every": args.log_every, "runs": {}}
    for name in RUNS:
        results["runs"][name] = {"loss": losses[name], "images_per_second": round(statistics.median(rates[name]), 1),
                                 "range": [round(min(rates[name]), 1), round(max(rates[name]), 1)]}
    a, b, c = (losses[name] for name in RUNS)
    results["mean_abs_difference"] = {"bf16 - fp32, same seed": round(statistics.fmean(abs(x - y) for x, y in zip(b, a)), 5),
                                      "fp32, seed 1 - seed 0": round(statistics.fmean(abs(x - y) for x, y in zip(c, a)), 5)}
    record = new_record("precision_check", results)
    print(json.dumps(record))
    if args.out:
        print("wrote", write_record(args.out, record))


if __name__ == "__main__":
    main()
