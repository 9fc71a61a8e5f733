"""Training a DDPM: Algorithm 1 as one readable loop, with EMA weights and safe checkpoints (chapter "Training").

Nothing a reader trains is lost:

- checkpoints are written atomically (to a temporary file in the same folder, flushed, then renamed over the old
  one), so an interruption mid-write leaves the previous checkpoint intact;
- they hold everything the loop needs to continue (model, EMA, optimiser, step, random-generator states, loss
  history), so ``train(..., checkpoint=path)`` resumes where it stopped, and on a CPU a resumed run reproduces the
  uninterrupted one exactly;
- they are loaded with ``torch.load(weights_only=True)`` (no code runs from the file), and a corrupted or mismatched
  file gets a clear error instead of a half-loaded model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from diffnotes.files import write_atomically
from diffnotes.objective import simple_loss
from diffnotes.runtime import by_profile
from diffnotes.schedules import Schedule

CHECKPOINT_FORMAT = "diffnotes-checkpoint-v1"


@dataclass(frozen=True)
class TrainConfig:
    """The training run's settings, with the DDPM paper's choices where they apply (Adam, lr 2e-4, clip 1.0).

    Attributes:
        steps: optimiser steps in all.
        batch_size: images per step.
        lr: peak learning rate of AdamW, reached after ``warmup_steps`` of linear warm-up.
        warmup_steps: linear warm-up length.
        ema_decay: decay of the exponential moving average of the weights (the EMA model samples better).
        grad_clip: maximum gradient norm.
        mixed_precision: bfloat16 autocast on CUDA (ignored on other devices).
        checkpoint_every: steps between checkpoints (when a checkpoint path is given).
        log_every: steps between entries of the loss history.
        seed: seeds the data order, the timesteps and the noise.
    """

    steps: int = 10_000
    batch_size: int = 128
    lr: float = 2e-4
    warmup_steps: int = 500
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    mixed_precision: bool = True
    checkpoint_every: int = 1_000
    log_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    @classmethod
    def for_profile(cls, profile: str | None = None, **overrides: object) -> TrainConfig:
        """A short CPU run in the quick profile; a real run (about 4.7M images) in the full profile."""
        sizes = by_profile(
            quick=dict(steps=40, batch_size=4, lr=1e-3, warmup_steps=10, log_every=5, checkpoint_every=20, ema_decay=0.9),
            full=dict(steps=18_000, batch_size=256, warmup_steps=500, log_every=50, checkpoint_every=1_000),
            profile=profile,
        )
        return cls(**{**sizes, **overrides})


@dataclass
class TrainState:
    """What a run carries from step to step, and what a checkpoint stores."""

    model: nn.Module
    ema: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    history: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "loss": []})


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter (buffers are copied)."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def ema_decay_at(config: TrainConfig, step: int) -> float:
    """The EMA decay at ``step``: min(ema_decay, (1 + step) / (10 + step)).

    The warm-up keeps the average from holding on to the untrained initial weights: with a fixed decay of 0.999,
    a quarter of the average would still be the initial network after 1,400 steps, and an average of an untrained
    and a trained network is no network at all (its samples diverge).
    """
    return min(config.ema_decay, (1 + step) / (10 + step))


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to ``config.lr``, then constant (as in Ho et al.)."""
    return config.lr * min(1.0, (step + 1) / config.warmup_steps)


def new_state(model: nn.Module, config: TrainConfig) -> TrainState:
    """A fresh run: an EMA copy of the model, AdamW, and a CPU generator seeded with ``config.seed``."""
    return TrainState(
        model=model,
        ema=copy.deepcopy(model).requires_grad_(False),
        optimizer=torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0),
        generator=torch.Generator().manual_seed(config.seed),
    )


def train_step(state: TrainState, images: torch.Tensor, schedule: Schedule, config: TrainConfig, device: torch.device) -> float:
    """One step of Algorithm 1 on a random batch; returns the batch's loss."""
    g = state.generator  # all randomness is drawn on the CPU from this generator, so a resumed run repeats exactly
    index = torch.randint(0, images.shape[0], (config.batch_size,), generator=g)
    x0 = images[index].to(device, non_blocking=True)
    t = torch.randint(1, schedule.T + 1, (config.batch_size,), generator=g).to(device)
    eps = torch.randn(x0.shape, generator=g).to(device)
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(config, state.step)
    autocast = config.mixed_precision and device.type == "cuda"
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
        loss = simple_loss(state.model, schedule, x0, t, eps)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip)
    state.optimizer.step()
    ema_update(state.ema, state.model, ema_decay_at(config, state.step))
    state.step += 1
    return float(loss.detach())


def train(
    model: nn.Module,
    images: torch.Tensor,
    schedule: Schedule,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    callback: Callable[[TrainState], None] | None = None,
    progress: bool = True,
) -> TrainState:
    """Train ``model`` on ``images`` (N, C, H, W) with Algorithm 1 for ``config.steps`` steps.

    If ``checkpoint`` names an existing file, the run resumes from it (its config must match); a checkpoint is
    written there every ``config.checkpoint_every`` steps and at the end. ``callback(state)`` runs every
    ``config.log_every`` steps (to draw samples or a loss curve). Returns the final state; ``state.ema`` is the
    model to sample with.
    """
    device = torch.device(device)
    model.to(device)
    schedule = schedule.to(device=device, dtype=torch.float32)
    state = new_state(model, config)
    if checkpoint is not None and Path(checkpoint).exists():
        load_checkpoint(checkpoint, state, config)
    model.train()
    bar = _progress(config.steps, state.step, progress)
    running = []
    while state.step < config.steps:
        running.append(train_step(state, images, schedule, config, device))
        bar.update(1)
        if state.step % config.log_every == 0:
            state.history["step"].append(state.step)
            state.history["loss"].append(sum(running) / len(running))
            bar.set_postfix(loss=f"{state.history['loss'][-1]:.4f}")
            running = []
            if callback is not None:
                callback(state)
        if checkpoint is not None and (state.step % config.checkpoint_every == 0 or state.step == config.steps):
            save_checkpoint(checkpoint, state, config)
    bar.close()
    state.ema.eval()
    return state


class _NoProgress:
    def update(self, n: int) -> None: ...

    def set_postfix(self, **kwargs: object) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, initial: int, enabled: bool):  # noqa: ANN202 - a tqdm bar or a silent stand-in
    """A plain-text tqdm bar (it reads the same in a terminal, a notebook and the rendered book), or nothing."""
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm  # the text bar: tqdm.auto would want ipywidgets in a notebook

    # At most about 20 refreshes: in a rendered notebook every refresh becomes a line of its own.
    return tqdm(total=total, initial=initial, desc="training", unit="step", mininterval=1.0, miniters=max(1, total // 20))


def save_checkpoint(path: str | Path, state: TrainState, config: TrainConfig) -> None:
    """Write a checkpoint atomically (:func:`diffnotes.files.write_atomically`): all of it, or nothing."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": _model_config(state.model),
        "train_config": asdict(config),
        "step": state.step,
        "model": state.model.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": state.history,
    }
    write_atomically(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file safely (``weights_only=True``) and check that it is a diffnotes checkpoint.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is corrupted, truncated, or not a diffnotes checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several kinds for a damaged file
        # torch's unpickling message runs to many lines and suggests weights_only=False: keep the line that says
        # what was refused (torch's "WeightsUnpickler error: ..."), else the first line.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        refused = [line.split("WeightsUnpickler error:", 1)[1].strip() for line in lines if "WeightsUnpickler error:" in line]
        reason = refused[0] if refused else lines[0]
        raise ValueError(f"checkpoint {path} is corrupted or not a PyTorch file ({type(error).__name__}: {reason})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a diffnotes checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return payload


def load_checkpoint(path: str | Path, state: TrainState, config: TrainConfig) -> None:
    """Restore ``state`` from a checkpoint written by :func:`save_checkpoint` for the same model and config.

    Raises:
        ValueError: if the checkpoint is damaged, or was written for another model shape or training config
            (the message names the fields that differ).
    """
    payload = read_checkpoint(path)
    model_config = _model_config(state.model)
    if payload["model_config"] != model_config:
        raise ValueError(f"checkpoint {path} is for a model with config {payload['model_config']}, not {model_config}")
    ours = asdict(config)
    differ = sorted(k for k in ours if k != "steps" and payload["train_config"].get(k) != ours[k])
    if differ:
        theirs = ", ".join(f"{k}={payload['train_config'].get(k)!r}" for k in differ)
        raise ValueError(
            f"checkpoint {path} was trained with other settings ({theirs}); resume with the same config,"
            " or start a new checkpoint file"
        )
    state.model.load_state_dict(payload["model"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    state.step = int(payload["step"])
    state.history = {k: list(v) for k, v in payload["history"].items()}


def _model_config(model: nn.Module) -> dict:
    config = getattr(model, "config", None)
    return asdict(config) if config is not None and hasattr(config, "__dataclass_fields__") else {"class": type(model).__name__}

