"""Sampling throughput: images per second of 50 DDIM steps, the book's sampler against diffusers' DDIMScheduler
driving the same network, in one interleaved run on one device.

    python benchmarks/sample_throughput.py --precision fp32 bf16 --out benchmarks/results/sample_throughput-cpu.json

Both samplers run the digit U-Net (:data:`diffnotes.pretrained.DIGITS_UNET`, the cost does not depend on its
weights) with the linear schedule of T = 1000 and eta = 0 from the same noise: the book's
:func:`diffnotes.samplers.ddim.ddim_sample` (t in 1..T) and diffusers' ``DDIMScheduler`` (its t = our t - 1). Each
precision runs under :func:`diffnotes.runtime.autocast`. The runs take turns (A B, B A, ...); the record keeps every
round and the median. A benchmark: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from diffnotes.nets.unet import UNet
from diffnotes.perfnotes import new_record, write_record
from diffnotes.pretrained import DIGITS_UNET, digits_schedule
from diffnotes.runtime import autocast, autocast_dtype, get_device
from diffnotes.samplers.ddim import ddim_sample


def diffusers_ddim(model: torch.nn.Module, x_T: torch.Tensor, steps: int) -> torch.Tensor:  # noqa: N803
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                              clip_sample=False, set_alpha_to_one=True)
    scheduler.set_timesteps(steps)
    x = x_T
    for t in scheduler.timesteps:
        eps = model(x, torch.full((x.shape[0],), int(t) + 1, dtype=torch.int64, device=x.device))
        x = scheduler.step(eps, t, x, eta=0.0).prev_sample
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "auto"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = get_device(args.device)
    torch.manual_seed(0)
    model = UNet(DIGITS_UNET).to(device).eval()
    schedule = digits_schedule().to(device=device, dtype=torch.float32)
    x_T = torch.randn(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    samplers = {"diffnotes ddim_sample": lambda: ddim_sample(model, schedule, x_T, args.steps),
                "diffusers DDIMScheduler": lambda: diffusers_ddim(model, x_T, args.steps)}
    runs = [(name, p) for p in args.precision for name in samplers]
    rates: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    with torch.no_grad():
        for r in range(-1, args.rounds):  # round -1 warms up
            for name, p in runs if r % 2 == 0 else list(reversed(runs)):
                with autocast(device, autocast_dtype(p, device)):
                    start = time.perf_counter()
                    samplers[name]()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - start
                if r >= 0:
                    rates[(name, p)].append(args.batch / seconds)
                    print(f"round {r + 1}: {name:24s} {p} {rates[(name, p)][-1]:8.1f} img/s", flush=True)
    results = {"batch": args.batch, "ddim_steps": args.steps, "eta": 0.0, "rounds": args.rounds, "runs": []}
    for (name, p), per_round in rates.items():
        results["runs"].append({"sampler": name, "precision": p, "images_per_second": round(statistics.median(per_round), 2),
                                "rounds": [round(x, 2) for x in per_round]})
        print(f"{name:24s} {p}: median {statistics.median(per_round):8.2f} img/s")
    record = new_record("sample_throughput", results)
    print(json.dumps(record))
    if args.out:
        print("wrote", write_record(args.out, record))


if __name__ == "__main__":
    main()
