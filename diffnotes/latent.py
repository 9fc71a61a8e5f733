"""Latent diffusion's two halves (chapter "Latent diffusion"; Rombach et al., 2022): training the autoencoder, then
preparing its latents for the diffusion model that the digit chapters trained on pixels.

1. The autoencoder (:class:`diffnotes.nets.autoencoder.Autoencoder`) is trained by :func:`fit_autoencoder` on the
   loss of :func:`autoencoder_loss`: the L1 reconstruction error plus ``kl_weight`` (1e-6, as in Rombach et al.)
   times the KL of q(z | x) from N(0, I). The KL term only keeps the latents from drifting to arbitrary scales; it is
   far too weak to make them a standard normal (Stable Diffusion's have a standard deviation of about 1 / 0.18215 =
   5.5), which is why step 2 rescales them.
2. :func:`encode_dataset` encodes the data once (the posterior means), and :func:`scale_factor` measures 1 / std of
   those latents, the number Stable Diffusion's 0.18215 is (measured on a first batch of its latents). The diffusion
   model trains on ``scale * z``, latents of unit variance, and :func:`decode_latents` undoes both.
3. The latent noise predictor is the book's U-Net (:data:`LATENT_UNET`), trained by the same loop
   (:func:`diffnotes.training.train`) and sampled by the same samplers, which take examples of any shape.

The module sits with the training loop: it reuses its state, learning-rate warm-up, EMA and checkpoints
(:mod:`diffnotes.checkpoints`), so an autoencoder run resumes exactly as a diffusion run does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from diffnotes.checkpoints import load_checkpoint, note_machine, save_checkpoint
from diffnotes.checks import one_of, positive_int, positive_ints
from diffnotes.files import load_checked
from diffnotes.nets.autoencoder import Autoencoder, AutoencoderConfig, check_shape, load_autoencoder_state
from diffnotes.nets.unet import UNet, UNetConfig
from diffnotes.runtime import MEMORY_FORMATS, PRECISIONS, autocast, autocast_dtype, progress_bar
from diffnotes.training import TrainState, ema_decay_at, ema_update, learning_rate, new_state

#: The latent U-Net for 7x7x4 latents, with two levels (7x7, padded to 8x8, and 4x4) of 64 channels each and attention
#: at 4x4 and in the middle. It has about as many parameters as the pixel model, 1.13 M against the 1.11 M of
#: :data:`diffnotes.pretrained.DIGITS_UNET`, and about a sixth of its FLOPs per training step
#: (``benchmarks/latent_cost.py``): a 28x28 image has 16 times as many positions as a 7x7 latent.
LATENT_UNET = UNetConfig(in_channels=4, widths=(64, 64), attention=(False, True))


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    """The autoencoder's training run (AdamW with linear warm-up and EMA weights, as :func:`diffnotes.training.train`).

    Attributes:
        steps: optimiser steps in all.
        batch_size: images per step.
        lr: peak learning rate of AdamW, reached after ``warmup_steps``.
        warmup_steps: linear warm-up length.
        kl_weight: the weight of the KL term, 1e-6 as in Rombach et al.'s KL autoencoders.
        ema_decay: decay of the EMA of the weights (capped early, :func:`diffnotes.training.ema_decay_at`).
        grad_clip: maximum gradient norm.
        mixed_precision: ``"auto"``, ``"bf16"`` or ``"fp32"``, as in :class:`diffnotes.training.TrainConfig`.
        checkpoint_every: steps between checkpoints (when a checkpoint path is given).
        log_every: steps between entries of the loss history.
        seed: seeds the batches and the posterior samples.
        lr_decay_steps, memory_format: as in :class:`diffnotes.training.TrainConfig` (no decay; the layout ``auto``).
    """

    steps: int = 6_000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    kl_weight: float = 1e-6
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    mixed_precision: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    lr_decay_steps: int = 0
    memory_format: str = "auto"

    def __post_init__(self) -> None:
        one_of("mixed_precision", self.mixed_precision, PRECISIONS, "a precision")
        one_of("memory_format", self.memory_format, MEMORY_FORMATS, "a memory format")
        if not 0 <= self.lr_decay_steps <= self.steps:
            raise ValueError(f"lr_decay_steps must lie in 0..steps={self.steps}, got {self.lr_decay_steps}")
        positive_ints(**{name: getattr(self, name) for name in ("steps", "batch_size", "warmup_steps",
                                                                "checkpoint_every", "log_every")})
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")


def autoencoder_loss(
    model: Autoencoder, x: torch.Tensor, kl_weight: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, reconstruction, KL) of a batch x (B, 1, 28, 28), each a mean over the batch of a sum over the image::

        loss = sum_pixels |x - D(z)| + kl_weight KL(q(z | x) || N(0, I)),   z ~ q(z | x) drawn with generator

    This is LDM's ``LPIPSWithDiscriminator`` loss without its perceptual and adversarial terms (no downloaded
    network), and with its learned log-variance fixed at 0, where it starts.
    """
    x_hat, posterior = model(x, generator)
    reconstruction = (x - x_hat).abs().flatten(1).sum(1).mean()
    kl = posterior.kl().mean()
    return reconstruction + kl_weight * kl, reconstruction, kl


def autoencoder_step(
    state: TrainState, images: torch.Tensor, config: AutoencoderTrainConfig, device: torch.device
) -> tuple[float, float, float]:
    """One optimiser step on a random batch of ``images``; returns its (loss, reconstruction, KL)."""
    g = state.generator  # every random draw comes from this CPU generator, so that a resumed run repeats exactly
    index = torch.randint(0, images.shape[0], (config.batch_size,), generator=g)
    seed = int(torch.randint(0, 2**62, (1,), generator=g))  # the posterior samples' generator, on the device
    x = images[index].to(device)
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(config, state.step)
    with autocast(device, autocast_dtype(config.mixed_precision, device)):
        loss, reconstruction, kl = autoencoder_loss(state.model, x, config.kl_weight,
                                                    torch.Generator(device).manual_seed(seed))
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip)
    state.optimizer.step()
    ema_update(state.ema, state.model, ema_decay_at(config, state.step))
    state.step += 1
    return float(loss.detach()), float(reconstruction.detach()), float(kl.detach())


def fit_autoencoder(
    model: Autoencoder,
    images: torch.Tensor,
    config: AutoencoderTrainConfig,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    progress: bool = True,
) -> TrainState:
    """Train ``model`` on ``images`` (N, 1, 28, 28) in [-1, 1] for ``config.steps`` steps; resume from ``checkpoint``
    if it exists (its config must match) and write it every ``config.checkpoint_every`` steps and at the end.

    Returns the final state: ``state.ema`` is the autoencoder to use; ``state.history`` holds the mean loss,
    reconstruction and KL of every ``config.log_every`` steps.

    Raises:
        ValueError: naming ``images``, if they are not (N, 1, 28, 28) for the model's config; the errors of
            :func:`diffnotes.checkpoints.load_checkpoint` for a checkpoint of another model or config.
    """
    check_shape("images", images, model.config.image_shape, "images")
    device = torch.device(device)
    state = new_state(model.to(device), config)
    state.history = {"step": [], "loss": [], "reconstruction": [], "kl": []}
    if checkpoint is not None and Path(checkpoint).exists():
        load_checkpoint(checkpoint, state, config)
    note_machine(state, config.steps, device_type=device.type)
    model.train()
    bar = progress_bar(config.steps, state.step, progress, desc="autoencoder", unit="step")
    running: list[tuple[float, float, float]] = []
    while state.step < config.steps:
        running.append(autoencoder_step(state, images, config, device))
        bar.update(1)
        if state.step % config.log_every == 0:
            state.history["step"].append(state.step)
            for key, values in zip(("loss", "reconstruction", "kl"), zip(*running)):
                state.history[key].append(sum(values) / len(values))
            bar.set_postfix(loss=f"{state.history['loss'][-1]:.2f}")
            running = []
        if checkpoint is not None and (state.step % config.checkpoint_every == 0 or state.step == config.steps):
            save_checkpoint(checkpoint, state, config)
    bar.close()
    state.ema.eval()
    return state


@torch.no_grad()
def encode_dataset(model: Autoencoder, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The posterior means E(x) of ``images`` (N, 1, 28, 28), in batches on the model's device: (N, ``*latent_shape``)
    float32 on the CPU.

    The diffusion model's data are encoded once, so one posterior sample per image would be frozen into the data set
    as the mean is, and would only add noise; with the KL weight of 1e-6 the posterior's standard deviation is
    anyway small against the latents' spread (the ratio is in the latent model's provenance). LDM, which encodes each
    batch afresh, draws a sample.
    """
    positive_int("batch_size", batch_size)
    check_shape("images", images, model.config.image_shape, "images")
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model.encode(b.to(device)).mean.float().cpu() for b in images.split(batch_size)])


def scale_factor(latents: torch.Tensor) -> float:
    """1 / std of all the entries of ``latents`` (N, ...): the factor that gives the diffusion model data of unit
    variance, as Stable Diffusion's 0.18215 does for its autoencoder's latents (Rombach et al., section 4.3.2).

    Raises:
        ValueError: naming ``latents``, unless they hold at least two finite values with a positive spread.
    """
    if not isinstance(latents, torch.Tensor) or latents.numel() < 2 or not bool(torch.isfinite(latents).all()):
        got = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"latents must be a tensor of at least two finite values, got {got}")
    std = float(latents.double().std())
    if not std > 0:
        raise ValueError("latents must vary: their standard deviation is 0, so no factor makes it 1")
    return 1.0 / std


def decode_latents(model: Autoencoder, z: torch.Tensor, scale: float) -> torch.Tensor:
    """Images D(z / scale) clipped to [-1, 1], from latents ``z`` (B, ``*latent_shape``) of the diffusion model's
    scaled space; on the model's device, without gradients."""
    if not scale > 0:
        raise ValueError(f"scale must be positive (the factor of diffnotes.latent.scale_factor), got {scale!r}")
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.eval().decode(z.to(device) / scale).clamp(-1.0, 1.0)


def load_autoencoder(path: str | Path, sha256: str | None, config: AutoencoderConfig | None = None) -> Autoencoder:
    """An autoencoder of ``config`` (default 7x7x4, :class:`diffnotes.nets.autoencoder.AutoencoderConfig`) with the
    weights at ``path`` (float16 or float32), after their SHA-256 matches ``sha256`` (skipped for None), loaded by
    :func:`diffnotes.files.load_checked`; eval mode, float32, on the CPU.

    Raises:
        FileNotFoundError: if the file is missing (the message says how to train it).
        ValueError: if the file does not match its hash, or its weights do not fit ``config`` (the message names both).
    """
    state = load_checked(path, sha256, "train them: python -m diffnotes.train_autoencoder")
    return load_autoencoder_state(Autoencoder(config or AutoencoderConfig()), state, str(path))


def load_latent_model(path: str | Path, expected_sha256: str | None, config: UNetConfig = LATENT_UNET) -> UNet:
    """The latent U-Net of ``config`` with the weights at ``path`` (float16 or float32, as exported), after their
    SHA-256 matches ``expected_sha256`` (skipped for None); eval mode, float32, on the CPU.

    Raises:
        FileNotFoundError: if the file is missing (the message says how to train it).
        ValueError: if the file does not match its hash, or its weights do not fit ``config`` (the message names both).
    """
    state = load_checked(path, expected_sha256, "train them: python -m diffnotes.train_latent")
    model = UNet(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as error:
        first = " ".join(str(error).strip().splitlines()[:2])
        raise ValueError(f"weights {path} do not fit a UNet with {config}: {first}") from error
    return model.eval()
