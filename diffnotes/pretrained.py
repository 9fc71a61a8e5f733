"""The book's pretrained digit model: a compact U-Net trained by ``python -m diffnotes.train_digits``.

The weights ship inside the package (``diffnotes/weights/ddpm_digits.pt``, the EMA weights in float16) with their
provenance beside them (``ddpm_digits.json``: command, config, seed, machine, duration, quality). They are loaded
only after their SHA-256 hash matches the one recorded here, and with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffnotes import schedules
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation.quality import QualityReport
from diffnotes.evaluation.table import quality_table
from diffnotes.files import load_checked
from diffnotes.nets.unet import UNet, UNetConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DIGITS_WEIGHTS = WEIGHTS_DIR / "ddpm_digits.pt"
DIGITS_PROVENANCE = WEIGHTS_DIR / "ddpm_digits.json"
#: SHA-256 of the shipped digit-model weights; a file that does not match is refused.
DIGITS_SHA256 = "2f4e6cc66de338f1d02501629d381d4719dd7decdefe28007e49412e2871bd77"

#: The digit model's architecture and schedule (Ho et al.'s linear schedule, T = 1000).
DIGITS_UNET = UNetConfig()
DIGITS_T = 1000

#: How the shipped model's quality is measured in its provenance and in the tests. ``n`` samples are drawn by the
#: DDIM sampler with ``eta`` in ``steps`` steps (eta = 1 is ancestral sampling with the posterior variance on a
#: subsequence of the timesteps) from noise seeded with ``seed``, and scored against the 5,000 training digits. The bar
#: (:func:`diffnotes.evaluation.quality.meets_bar`) is set on 1,000 samples.
QUALITY_PROTOCOL = {"n": 1000, "steps": 50, "eta": 1.0, "seed": 0}


def digits_schedule() -> schedules.Schedule:
    """The schedule the digit model was trained with."""
    return schedules.linear(T=DIGITS_T)


def load_weights(path: Path, expected_sha256: str) -> dict:
    """The digit model's state dict, hash-checked and loaded safely by :func:`diffnotes.files.load_checked`."""
    return load_checked(path, expected_sha256, "train them: python -m diffnotes.train_digits")


def digits_model_available() -> bool:
    """Whether this copy of the package ships the pretrained digit model (a recorded hash and its file)."""
    return bool(DIGITS_SHA256) and DIGITS_WEIGHTS.exists()


def load_digit_model(device: torch.device | str = "cpu") -> UNet:
    """The pretrained digit U-Net (EMA weights, float32, eval mode) on ``device``.

    Raises:
        FileNotFoundError: if this copy of the package does not ship the weights (see :func:`digits_model_available`).
        ValueError: if the weights file does not match its recorded hash.
    """
    if not DIGITS_SHA256:
        raise FileNotFoundError(
            "this version of diffnotes does not ship the pretrained digit model yet; train it with"
            " python -m diffnotes.train_digits --checkpoint runs/digits.pt (see the chapter on training)"
        )
    model = UNet(DIGITS_UNET)
    state = load_weights(DIGITS_WEIGHTS, DIGITS_SHA256)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()


def digits_provenance() -> dict:
    """How the shipped digit model was made: command, config, seed, machine, duration and measured quality."""
    return json.loads(DIGITS_PROVENANCE.read_text())


def measure_quality(
    model: torch.nn.Module,
    n: int = QUALITY_PROTOCOL["n"],
    steps: int = QUALITY_PROTOCOL["steps"],
    eta: float = QUALITY_PROTOCOL["eta"],
    seed: int = QUALITY_PROTOCOL["seed"],
    device: torch.device | str = "cpu",
) -> QualityReport:
    """Sample ``n`` digits from ``model`` with DDIM (``steps``, ``eta``) from noise seeded with ``seed`` and measure
    them against the 5,000 training digits with :func:`diffnotes.evaluation.quality.evaluate` (the protocol of
    :data:`QUALITY_PROTOCOL`). Bad arguments get the errors of :func:`diffnotes.evaluation.table.quality_table`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 samples, got {n!r}")
    images, _ = load_mnist_5k()
    generator = torch.Generator().manual_seed(seed)
    (cell,) = quality_table(model, digits_schedule(), [steps], [eta], n, images, generator, device=device)
    return cell.report
