"""Time to quality of a digit-model training run on the CPU: the quality of its checkpoints, step by step.

    python -m diffnotes.train_digits --checkpoint runs/digits.pt --checkpoint-every 500 ... &   # the run
    python benchmarks/quality_curve.py runs/snap-*.pt --started 1796509445 --n 200 \\
        --out benchmarks/results/quality_curve-bf16-b128.json

Each file is a copy of the run's checkpoint taken as it was written (the run overwrites one file; copy it aside
each time it changes, e.g. with a loop over ``stat -c %Y``). The script measures each checkpoint's EMA weights by the
shipped model's protocol (:func:`diffnotes.pretrained.measure_quality`: DDIM with eta = 1, 50 steps, against the
5,000 training digits) with ``--n`` samples, and records the step, the training wall-clock up to that checkpoint (the
file's modification time minus ``--started``, the run's start in seconds since the epoch) and the report. A curve
with n = 200 locates the bar to a few hundred steps (the confident fraction has a standard error of about 2 % there);
the step that ships is then measured with the full 1,000 samples at export. With ``--autoencoder`` the checkpoints are
of a latent model (``python -m diffnotes.train_latent``), measured by the same protocol on decoded samples
(:func:`diffnotes.train_latent.measure_latent_quality`). This is a benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from diffnotes.checkpoints import read_checkpoint
from diffnotes.evaluation.quality import meets_bar
from diffnotes.nets.unet import UNet, UNetConfig
from diffnotes.perfnotes import new_record, write_record
from diffnotes.pretrained import QUALITY_PROTOCOL, measure_quality
from diffnotes.train_latent import autoencoder_from_record, encoded_digits, measure_latent_quality


def measure(path: Path, started: float, n: int, steps: int, latent: tuple | None = None) -> dict:
    """The quality of the EMA weights in the checkpoint ``path`` and when the run wrote it; ``latent`` is (autoencoder,
    scale factor) for a latent model."""
    payload = read_checkpoint(path)
    model = UNet(UNetConfig(**payload["model_config"]))
    model.load_state_dict(payload["ema"])
    start = time.perf_counter()
    if latent is None:
        report = measure_quality(model.eval(), n=n, steps=steps)
    else:
        report = measure_latent_quality(model.eval(), *latent, n=n, steps=steps)
    return {"checkpoint": path.name, "step": payload["step"], "training_seconds": round(path.stat().st_mtime - started),
            "images_seen": payload["step"] * payload["train_config"]["batch_size"], "report": asdict(report),
            "meets_bar": meets_bar(report), "seconds_to_measure": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="copies of the run's checkpoint, in any order")
    parser.add_argument("--started", type=float, required=True, help="the run's start, seconds since the epoch")
    parser.add_argument("--n", type=int, default=200, help="samples per checkpoint")
    parser.add_argument("--steps", type=int, default=QUALITY_PROTOCOL["steps"], help="DDIM steps")
    parser.add_argument("--recipe", default="", help="the run's command, for the record")
    parser.add_argument("--variant", default=None,
                        help="the name of a variant of a shipped model's recipe (an ablation); none for the shipped run")
    parser.add_argument("--autoencoder", type=Path, default=None, help="exported autoencoder of a latent model's run")
    parser.add_argument("--out", default=None, help="also write the curve as a record")
    args = parser.parse_args(argv)
    latent = None
    if args.autoencoder is not None:
        autoencoder, _ = autoencoder_from_record(args.autoencoder)
        latent = (autoencoder, encoded_digits(autoencoder)[1])
    points = []
    for path in sorted(args.checkpoints, key=lambda p: p.stat().st_mtime):
        point = measure(path, args.started, args.n, args.steps, latent)
        r = point["report"]
        print(f"step {point['step']:6d}  {point['training_seconds']:6d} s  confident {r['confident_fraction']:.3f}  "
              f"FD {r['frechet_distance']:.2f}  classes {min(r['class_fractions']):.3f}-{max(r['class_fractions']):.3f}"
              f"  bar {point['meets_bar']}", flush=True)
        points.append(point)
    first = next((p for p in points if p["meets_bar"]), None)
    latest = max(args.checkpoints, key=lambda p: p.stat().st_mtime)  # the run's settings as it ended
    results = {"recipe": args.recipe, "variant": args.variant, "latent": args.autoencoder is not None, "train_config": read_checkpoint(latest)["train_config"],
               "protocol": {**QUALITY_PROTOCOL, "n": args.n, "steps": args.steps}, "threads": torch.get_num_threads(),
               "points": points, "first_at_bar": first and {k: first[k] for k in ("step", "training_seconds")}}
    record = new_record("quality_curve", results)
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
