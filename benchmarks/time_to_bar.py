"""Time to quality of the digit model's new CPU training recipe against the old one, side by side on one machine.

    python benchmarks/time_to_bar.py --curve benchmarks/results/quality_curve-bf16-b128.json \\
        --out benchmarks/results/time_to_bar-cpu.json

Time to quality = optimiser steps needed x seconds per step. The seconds per step of both recipes are measured here,
in one run, taking turns (``--rounds``, the order reversed every round) on the real digits with the digit model's
U-Net, so that both numbers come from the same machine in the same state. The steps come from the runs themselves:
the new recipe's from its quality curve (``benchmarks/quality_curve.py``: the first checkpoint that meets the bar, and
the first that reaches the old model's quality), the old recipe's from the provenance of the weights it produced
(8,400 steps, 83.9 % confident, the bar not met; ``git show 2f5bd7d:diffnotes/weights/ddpm_digits.json``). Since the
old recipe never met the bar, its time to the bar is only bounded below by its time to 8,400 steps. This is a
benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from diffnotes.data import load_mnist_5k
from diffnotes.nets.unet import UNet
from diffnotes.perfnotes import first_point, new_record, take_turns, write_record
from diffnotes.pretrained import DIGITS_UNET, digits_schedule
from diffnotes.training import TrainConfig, new_state, train_step

#: The two recipes: the old one trained the weights shipped until December 2026, the new one those shipped since.
RECIPES = {
    "old": TrainConfig(batch_size=64, lr=4e-4, warmup_steps=300, ema_decay=0.999, mixed_precision="fp32"),
    "new": TrainConfig(batch_size=128, lr=8e-4, warmup_steps=300, ema_decay=0.999, mixed_precision="bf16",
                       snr_gamma=5.0, steps=10_000, lr_decay_steps=3000),
}
#: What the old recipe reached (its provenance): steps trained and the confident fraction of its 1,000 samples.
OLD_RUN = {"steps": 8400, "confident_fraction": 0.839, "meets_bar": False}


def seconds_per_step(rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds per training step of each recipe in each round (after two untimed steps), the recipes taking turns."""
    images, _ = load_mnist_5k()
    schedule = digits_schedule().to(dtype=torch.float32)
    states = {}
    for name, config in RECIPES.items():
        torch.manual_seed(0)
        states[name] = new_state(UNet(DIGITS_UNET), config)
        for _ in range(2):
            train_step(states[name], images, schedule, config, torch.device("cpu"))

    def one_round(name: str) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            train_step(states[name], images, schedule, RECIPES[name], torch.device("cpu"))
        return (time.perf_counter() - start) / steps

    return take_turns(RECIPES, one_round, rounds, "s per step")


def first_step(points: list[dict], reached) -> int | None:
    """The step of the first point of a quality curve for which ``reached(point)`` holds."""
    point = first_point(points, reached)
    return None if point is None else point["step"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curve", required=True, help="the new recipe's quality_curve record")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per recipe and round")
    parser.add_argument("--bar-step", type=int, default=None,
                        help="the step whose full 1,000-sample measurement (at export) met the bar, where the curve's "
                             "200-sample points are too few to judge the class shares")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    curve = json.loads(Path(args.curve).read_text())["results"]
    points = curve["points"]
    times = seconds_per_step(args.rounds, args.steps)
    per_step = {name: statistics.median(values) for name, values in times.items()}
    new_at_bar = args.bar_step or first_step(points, lambda p: p["meets_bar"])
    new_at_old = first_step(points, lambda p: p["report"]["confident_fraction"] >= OLD_RUN["confident_fraction"])
    old_seconds = OLD_RUN["steps"] * per_step["old"]
    results = {
        "recipes": {name: asdict(config) for name, config in RECIPES.items()},
        "threads": torch.get_num_threads(), "seconds_per_step": {k: round(v, 4) for k, v in per_step.items()},
        "rounds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "images_per_second": {k: round(RECIPES[k].batch_size / v, 1) for k, v in per_step.items()},
        "old_run": OLD_RUN, "old_seconds_to_its_quality": round(old_seconds),
        "new_steps_to_old_quality": new_at_old, "new_steps_to_bar": new_at_bar,
        "new_seconds_to_old_quality": new_at_old and round(new_at_old * per_step["new"]),
        "new_seconds_to_bar": new_at_bar and round(new_at_bar * per_step["new"]),
        "curve_protocol": curve["protocol"],
        "bar_step_from": "a 1,000-sample measurement" if args.bar_step else "the curve",
    }
    if new_at_old:
        results["speed_up_to_old_quality"] = round(old_seconds / (new_at_old * per_step["new"]), 2)
    if new_at_bar:  # the old recipe's time to its lower quality over the new one's to the bar (it never met the bar)
        results["old_time_to_its_quality_over_new_time_to_bar"] = round(old_seconds / (new_at_bar * per_step["new"]), 2)
    print(json.dumps(results, indent=1))
    record = new_record("time_to_bar", results)
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
