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
from diffnotes.evaluation.table import common_noise, quality_table
from diffnotes.files import load_checked
from diffnotes.latent import load_autoencoder, load_latent_model
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.unet import UNet, UNetConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DIGITS_WEIGHTS = WEIGHTS_DIR / "ddpm_digits.pt"
DIGITS_PROVENANCE = WEIGHTS_DIR / "ddpm_digits.json"
#: SHA-256 of the shipped digit-model weights; a file that does not match is refused.
DIGITS_SHA256 = "8ff269663e837e851f5bc5df645282bec9dd22e43de5a7461ecdaff8100e8a36"

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


def load_digit_model(device: torch.device | str = "cpu") -> UNet:
    """The pretrained digit U-Net (EMA weights, float32, eval mode) on ``device``.

    Raises:
        FileNotFoundError: if the weights file is missing (the message says how to train it).
        ValueError: if the weights file does not match its recorded hash.
    """
    model = UNet(DIGITS_UNET)
    state = load_weights(DIGITS_WEIGHTS, DIGITS_SHA256)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()


def digits_provenance() -> dict:
    """How the shipped digit model was made: command, config, seed, machine, duration and measured quality."""
    return json.loads(DIGITS_PROVENANCE.read_text())


# The latent diffusion model of the chapter "Latent diffusion" is two networks, each with its provenance beside it
# and loaded only after its SHA-256 matches. The autoencoder (7x7x4 latents) comes from python -m
# diffnotes.train_autoencoder, the latent U-Net from python -m diffnotes.train_latent.
LDM_AUTOENCODER_WEIGHTS = WEIGHTS_DIR / "ldm_autoencoder.pt"
LDM_AUTOENCODER_SHA256 = "282a91d9cfe216240b3e60d54827c3730a89a54ce81d744460e3a7b36a88e489"
LDM_DIGITS_WEIGHTS = WEIGHTS_DIR / "ldm_digits.pt"
LDM_DIGITS_SHA256 = "d83bde08604c213bc45c1c6ac648a13369e6b17cc876ea476dc409aa7e237d11"


def load_ldm_autoencoder(device: torch.device | str = "cpu") -> Autoencoder:
    """The shipped autoencoder of chapter "Latent diffusion" (float32, eval mode) on ``device``."""
    return load_autoencoder(LDM_AUTOENCODER_WEIGHTS, LDM_AUTOENCODER_SHA256).to(device)


def load_ldm_model(device: torch.device | str = "cpu") -> UNet:
    """The shipped latent U-Net (:data:`diffnotes.latent.LATENT_UNET`, EMA weights, float32, eval mode) on ``device``."""
    return load_latent_model(LDM_DIGITS_WEIGHTS, LDM_DIGITS_SHA256).to(device)


def ldm_provenance() -> dict:
    """How the two shipped latent-diffusion networks were made: ``{"autoencoder": ..., "model": ...}``, each the
    provenance record beside its weights (command, configs, seed, machine, duration, measured quality)."""
    return {name: json.loads(path.with_suffix(".json").read_text())
            for name, path in (("autoencoder", LDM_AUTOENCODER_WEIGHTS), ("model", LDM_DIGITS_WEIGHTS))}


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



#: A small run of the shipped model that the default tests repeat in seconds (the 1,000-sample protocol takes
#: minutes): ``n`` samples in ``steps`` DDIM steps with ``eta``, from noise seeded with ``seed``.
GOLDEN_PROTOCOL = {"n": 64, "steps": 10, "eta": 1.0, "seed": 0}

#: How far a repeat of the golden run may stray from its record. Float32 sums taken in another order (another CPU,
#: another number of threads) move a few pixels of an image across a rounding boundary of the uint8 quantisation,
#: by one level each, and the scores in their last digits: perturbing every weight of the shipped model by a relative
#: 1e-6 (ten float32 roundings) changed 6 of the 64 image sums by 1, 1e-5 changed none by more than 3. A relative
#: 1e-4 changed image sums by up to 18, and a change of the sampler or the classifier moves far more.
GOLDEN_TOLERANCE = {
    "image_sum_levels": 4,  # each image's sum of pixels, in quantisation levels; its sum of squares 511 x as much
    "samples": 1,  # confident_fraction and each class fraction may differ by this many samples (of n)
    "mean_confidence": 1e-4,  # absolute
    "frechet_distance": 1e-3,  # relative
    "nn_distance": 1e-2,  # absolute, nn_distance_min and nn_distance_median (pixels in [-1, 1])
}


def golden_samples(
    model: torch.nn.Module, n: int, steps: int, eta: float, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``n`` DDIM samples of ``model`` in one batch, drawn as :func:`diffnotes.evaluation.table.quality_table` draws them
    (:func:`diffnotes.evaluation.table.common_noise` from a generator seeded with ``seed``), clipped and quantised to
    uint8 (N, 28, 28).
    """
    from diffnotes.samplers.ddim import ddim_sample

    x_T, noise_seed = common_noise(n, (1, 28, 28), torch.Generator().manual_seed(seed))
    z_generator = torch.Generator(device).manual_seed(noise_seed)
    with torch.no_grad():
        x = ddim_sample(model, digits_schedule().to(device=device), x_T.to(device), steps, eta, "linear", z_generator)
    return ((x.cpu().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).squeeze(1)


def golden_run(model: torch.nn.Module, device: torch.device | str = "cpu", **protocol) -> dict:
    """The golden run of ``model`` by :data:`GOLDEN_PROTOCOL` (updated by ``protocol``), as the provenance file records
    it: a checksum of the quantised samples (each image's sum of pixels and sum of squared pixels, in levels 0-255)
    and their quality scores (:func:`diffnotes.evaluation.quality.evaluate` of the quantised samples against the 5,000 training
    digits). Compare two runs with :func:`golden_mismatches`."""
    from dataclasses import asdict

    from diffnotes.evaluation.quality import evaluate

    protocol = {**GOLDEN_PROTOCOL, **protocol}
    pixels = golden_samples(model, device=device, **protocol)
    report = evaluate(pixels.unsqueeze(1).float() / 127.5 - 1.0, load_mnist_5k()[0])
    levels = pixels.flatten(1).long()
    return {"protocol": protocol, "image_sums": levels.sum(1).tolist(),
            "image_sums_of_squares": (levels**2).sum(1).tolist(), "quality": asdict(report)}


def golden_mismatches(measured: dict, recorded: dict, tolerance: dict = GOLDEN_TOLERANCE) -> list[str]:
    """How ``measured`` (a :func:`golden_run`) departs from ``recorded`` beyond ``tolerance``; empty if it does not."""
    found = []
    if measured["protocol"] != recorded["protocol"]:
        return [f"protocol {measured['protocol']} differs from the recorded {recorded['protocol']}"]
    levels = tolerance["image_sum_levels"]
    for key, allowed in (("image_sums", levels), ("image_sums_of_squares", 511 * levels)):
        for i, (a, b) in enumerate(zip(measured[key], recorded[key], strict=True)):
            if abs(a - b) > allowed:
                found.append(f"{key}[{i}]: {a}, recorded {b} (tolerance {allowed})")
    got, want = measured["quality"], recorded["quality"]
    one = tolerance["samples"] / want["n"] + 1e-9  # a fraction of n that one sample moves

    def close(key: str, allowed: float, relative: bool = False) -> bool:
        return abs(got[key] - want[key]) <= allowed * (abs(want[key]) if relative else 1.0)

    checks = [
        ("n", got["n"] == want["n"]),
        ("nn_index_of_min", got["nn_index_of_min"] == want["nn_index_of_min"]),
        ("confident_fraction", close("confident_fraction", one)),
        ("class_fractions", all(abs(a - b) <= one for a, b in zip(got["class_fractions"], want["class_fractions"]))),
        ("mean_confidence", close("mean_confidence", tolerance["mean_confidence"])),
        ("frechet_distance", close("frechet_distance", tolerance["frechet_distance"], relative=True)),
        ("nn_distance_min", close("nn_distance_min", tolerance["nn_distance"])),
        ("nn_distance_median", close("nn_distance_median", tolerance["nn_distance"])),
    ]
    found += [f"{key}: {got[key]}, recorded {want[key]}" for key, ok in checks if not ok]
    return found
