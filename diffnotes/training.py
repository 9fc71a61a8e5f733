"""Training a DDPM: Algorithm 1 as one readable loop, with EMA weights (chapter "Training").

:func:`train` runs :func:`train_step` on a tensor of examples (images, latents or 2-D points), with an optional
condition per example (class labels or token embeddings) that reaches the model as ``cond``; checkpoints are in
:mod:`diffnotes.checkpoints`. :func:`train_toy` is chapter 5's run of the same loop on 2-D toy data.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from diffnotes.checkpoints import load_checkpoint, note_machine, save_checkpoint
from diffnotes.checks import one_of, positive_ints
from diffnotes.nets.mlp import MLP, MLPConfig
from diffnotes.objective import check_conditions, drop_conditions, simple_loss
from diffnotes.runtime import (MEMORY_FORMATS, PRECISIONS, autocast, autocast_dtype, by_profile, memory_format,
                               progress_bar)
from diffnotes.schedules import Schedule, make_schedule
from diffnotes.toy import moons


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
        mixed_precision: ``"auto"`` (bfloat16 autocast where the device has bfloat16 matrix units, a recent CUDA GPU
            or an AMX CPU; float32 elsewhere, :func:`diffnotes.runtime.native_bf16`), ``"bf16"`` or ``"fp32"``. The
            booleans of older checkpoints read as ``True`` -> ``"auto"``, ``False`` -> ``"fp32"``.
        checkpoint_every: steps between checkpoints (when a checkpoint path is given).
        log_every: steps between entries of the loss history.
        seed: seeds the data order, the timesteps and the noise.
        cond_dropout: the share of examples whose condition is replaced by the null condition (for guidance).
        snr_gamma: 0 trains on L_simple, gamma > 0 with Min-SNR-gamma (:func:`diffnotes.objective.simple_loss`).
        lr_decay_steps: the last this many of ``steps`` take the learning rate linearly down to 0 (0: constant).
        memory_format: the network's layout, ``"auto"`` (channels-last for float32 on a CPU, where it is faster),
            ``"channels_last"`` or ``"contiguous"`` (:func:`diffnotes.runtime.memory_format`); it changes only rounding.
    """

    steps: int = 10_000
    batch_size: int = 128
    lr: float = 2e-4
    warmup_steps: int = 500
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    mixed_precision: str = "auto"
    checkpoint_every: int = 1_000
    log_every: int = 50
    seed: int = 0
    cond_dropout: float = 0.0
    snr_gamma: float = 0.0
    lr_decay_steps: int = 0
    memory_format: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.mixed_precision, bool):  # before the precisions had names: True meant bf16 where native
            object.__setattr__(self, "mixed_precision", "auto" if self.mixed_precision else "fp32")
        one_of("mixed_precision", self.mixed_precision, PRECISIONS, "a precision")
        one_of("memory_format", self.memory_format, MEMORY_FORMATS, "a memory format")
        positive_ints(**{name: getattr(self, name) for name in ("steps", "batch_size", "checkpoint_every", "log_every")})
        allowed = {"ema_decay": (0.0 <= self.ema_decay < 1.0, "[0, 1)"),
                   "cond_dropout": (0.0 <= self.cond_dropout < 1.0, "[0, 1)"),
                   "lr_decay_steps": (0 <= self.lr_decay_steps <= self.steps, f"0..steps={self.steps}"),
                   "snr_gamma": (self.snr_gamma >= 0, "[0, inf) (0: L_simple)"), "lr": (self.lr > 0, "(0, inf)")}
        for name, (ok, where) in allowed.items():
            if not ok:
                raise ValueError(f"{name} must lie in {where}, got {getattr(self, name)}")

    @classmethod
    def for_profile(cls, profile: str | None = None, **overrides: object) -> TrainConfig:
        """A short float32 run in the quick profile (its numbers are the same on every CPU); a real run (about 4.7M
        images, in bfloat16 where native) in the full profile."""
        sizes = by_profile(
            quick=dict(steps=40, batch_size=4, lr=1e-3, warmup_steps=10, log_every=5, checkpoint_every=20, ema_decay=0.9,
                       mixed_precision="fp32"),
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
    machines: list[str] = field(default_factory=list)  # those that trained the run (checkpoints.note_machine)


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter (buffers are copied)."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def ema_decay_at(config: TrainConfig, step: int) -> float:
    """The EMA decay at ``step``: min(ema_decay, (1 + step) / (10 + step)). The warm-up keeps the average from
    holding on to the untrained initial weights (with a fixed 0.999, a quarter of the average would still be the
    initial network after 1,400 steps: an average of an untrained and a trained network is no network at all)."""
    return min(config.ema_decay, (1 + step) / (10 + step))


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to ``config.lr``, then constant (Ho et al.), then down to 0 over ``lr_decay_steps`` if set."""
    decay = config.lr_decay_steps
    return config.lr * min(1.0, (step + 1) / config.warmup_steps, (config.steps - step) / decay if decay else 1.0)


def new_state(model: nn.Module, config: TrainConfig) -> TrainState:
    """A fresh run (an EMA copy of the model, AdamW, a CPU generator seeded with ``config.seed``), the model put in the
    run's memory format in place."""
    model.to(memory_format=memory_format(config.memory_format, config.mixed_precision, next(model.parameters()).device))
    return TrainState(
        model=model,
        ema=copy.deepcopy(model).requires_grad_(False),
        optimizer=torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0),
        generator=torch.Generator().manual_seed(config.seed),
    )


def train_step(
    state: TrainState,
    images: torch.Tensor,
    schedule: Schedule,
    config: TrainConfig,
    device: torch.device,
    conditions: torch.Tensor | None = None,
    null_condition: torch.Tensor | None = None,
    shard: tuple[int, int] = (0, 1),
) -> float:
    """One step of Algorithm 1 on a random batch; returns the batch's loss.

    ``conditions`` (N, ...) holds one condition per example (a class label, or a sequence of token embeddings) and
    reaches the model as ``cond``; with ``config.cond_dropout`` > 0, that share of the batch gets ``null_condition``
    instead (classifier-free guidance's training, Ho and Salimans 2022). Under DDP (:mod:`diffnotes.distributed`)
    ``shard`` is (rank, world size): every process draws the whole batch and trains on its own part of it.
    """
    g = state.generator  # all randomness is drawn on the CPU from this generator, so a resumed run repeats exactly
    index = torch.randint(0, images.shape[0], (config.batch_size,), generator=g)
    t = torch.randint(1, schedule.T + 1, (config.batch_size,), generator=g)
    eps = torch.randn((config.batch_size, *images.shape[1:]), generator=g)
    cond = None if conditions is None else drop_conditions(conditions[index], null_condition, config.cond_dropout, g)
    mine = _part(config.batch_size, *shard)  # the whole batch, or this process's part of it
    x0, t, eps = images[index[mine]].to(device, non_blocking=True), t[mine].to(device), eps[mine].to(device)
    cond = None if cond is None else cond[mine].to(device)
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(config, state.step)
    with autocast(device, autocast_dtype(config.mixed_precision, device)):  # bf16 where native ("auto")
        loss = simple_loss(state.model, schedule, x0, t, eps, cond, config.snr_gamma)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(state.model.parameters(), config.grad_clip)
    state.optimizer.step()
    ema_update(state.ema, state.model, ema_decay_at(config, state.step))
    state.step += 1
    return float(loss.detach())


def _part(batch_size: int, rank: int, world: int) -> slice:
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes, {world}")
    return slice(rank * batch_size // world, (rank + 1) * batch_size // world)


def train(
    model: nn.Module,
    images: torch.Tensor,
    schedule: Schedule,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    callback: Callable[[TrainState], None] | None = None,
    progress: bool = True,
    conditions: torch.Tensor | None = None,
    null_condition: torch.Tensor | None = None,
    shard: tuple[int, int] = (0, 1),
    wrap: Callable[[nn.Module], nn.Module] | None = None,
) -> TrainState:
    """Train ``model`` on ``images`` (N, C, H, W) with Algorithm 1 for ``config.steps`` steps.

    If ``checkpoint`` names an existing file, the run resumes from it (its config must match); a checkpoint is
    written there every ``config.checkpoint_every`` steps and at the end. ``callback(state)`` runs every
    ``config.log_every`` steps (to draw samples or a loss curve). Returns the final state; ``state.ema`` is the
    model to sample with.

    Examples may be images, latents or points of any shape (N, ...). ``conditions`` gives one condition per example
    (N,) labels or (N, L, D) tokens, passed to the model as ``cond``; see :func:`train_step` for ``null_condition``.
    :mod:`diffnotes.distributed` passes this process's ``shard`` (rank, world size) and ``wrap`` (DDP, applied after
    a resume); only rank 0 writes checkpoints and shows the bar; the history is rank 0's part of each batch.
    """
    check_conditions(images, conditions, null_condition, config.cond_dropout)
    device = torch.device(device)
    model.to(device)
    schedule = schedule.to(device=device, dtype=torch.float32)
    state = new_state(model, config)
    if checkpoint is not None and Path(checkpoint).exists():
        load_checkpoint(checkpoint, state, config)
    note_machine(state, config.steps, shard[1], device.type)
    state.model = model if wrap is None else wrap(model)
    model.train()
    bar = progress_bar(config.steps, state.step, progress and shard[0] == 0, desc="training", unit="step")
    running = []
    while state.step < config.steps:
        running.append(train_step(state, images, schedule, config, device, conditions, null_condition, shard))
        bar.update(1)
        if state.step % config.log_every == 0:
            state.history["step"].append(state.step)
            state.history["loss"].append(sum(running) / len(running))
            bar.set_postfix(loss=f"{state.history['loss'][-1]:.4f}")
            running = []
            if callback is not None:
                callback(state)
        due = state.step % config.checkpoint_every == 0 or state.step == config.steps
        if checkpoint is not None and due and shard[0] == 0:
            save_checkpoint(checkpoint, state, config)
    bar.close()
    state.model = model  # unwrapped
    state.ema.eval()
    return state


@dataclass(frozen=True)
class ToyTrainConfig:
    """The chapter's run: the cosine schedule with T steps, an MLP, ``n_data`` training points, the loop's settings.

    Attributes:
        T: diffusion steps (the cosine schedule of Nichol and Dhariwal).
        hidden: the MLP's width.
        n_data: size of the fixed training set of two-moons points.
        steps, batch_size, lr, ema_decay: the training loop's (see :class:`diffnotes.training.TrainConfig`).
        n_eval: points for evaluating the losses and for sampling.
        seed: seeds the training set, the initial weights and the loop.
    """

    T: int = 100
    hidden: int = 128
    n_data: int = 20_000
    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 3e-3
    ema_decay: float = 0.995
    n_eval: int = 10_000
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str | None = None) -> ToyTrainConfig:
        """Quick: seconds on a laptop CPU (a narrower MLP, 1,500 steps); full: a few minutes (10,000 steps)."""
        quick = cls(hidden=64, steps=1_500, batch_size=512, lr=5e-3, ema_decay=0.99, n_eval=2_000)
        return by_profile(quick=quick, full=cls(), profile=profile)

    def schedule(self) -> Schedule:
        """The cosine schedule with T steps."""
        return make_schedule("cosine", self.T)

    def model_config(self, **overrides: int) -> MLPConfig:
        """The MLP's shape for this run, with optional changes (e.g. ``emb_dim=0``)."""
        return replace(MLPConfig(T=self.T, hidden=self.hidden), **overrides)

    def loop_config(self) -> TrainConfig:
        """The settings of :func:`diffnotes.training.train`: a short warm-up, a constant lr, a log every 10 steps."""
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=100, ema_decay=self.ema_decay,
            mixed_precision="fp32", checkpoint_every=self.steps, log_every=10, seed=self.seed,
        )


def train_toy(config: ToyTrainConfig, model_config: MLPConfig | None = None) -> TrainState:
    """Train an :class:`~diffnotes.nets.mlp.MLP` on two moons with Algorithm 1 (:func:`diffnotes.training.train`), on the CPU.

    Returns the loop's state: ``state.ema`` is the model to use, ``state.history`` the loss curve.
    """
    model_config = model_config or config.model_config()
    if model_config.T != config.T:
        raise ValueError(f"model_config.T={model_config.T} must equal config.T={config.T}")
    data = moons(config.n_data, torch.Generator().manual_seed(config.seed))
    with torch.random.fork_rng(devices=[]):  # the initial weights depend on the seed alone, not on earlier draws
        torch.manual_seed(config.seed)
        model = MLP(model_config)
    return train(model, data, config.schedule(), config.loop_config(), device="cpu", progress=False)
