"""Figures for the chapter "Training a DDPM on handwritten digits": the warm-ups and the EMA's memory, the loss
curve, and grids of samples (drawn as the model trains, or from a finished model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch
from matplotlib.figure import Figure

from diffnotes.checks import positive_int
from diffnotes.plotting.common import image_grid, new_figure
from diffnotes.training import TrainConfig, ema_decay_at, learning_rate


def plot_warmup_and_ema(config: TrainConfig, decays: Sequence[float] | None = None, steps: int | None = None) -> Figure:
    """Three panels: the learning rate over the first ``steps`` steps (default: three warm-up lengths); one minus the
    EMA decay d_k = min(d, (1 + k)/(10 + k)) that the loop uses at step k (log-log); and, for a fixed decay d, the
    share 1 - d^k of the average that the last k steps make up.

    Args:
        config: the run whose warm-up is drawn; its ``ema_decay`` is drawn in the other panels.
        decays: further EMA decays d to compare (e.g. the full profile's); duplicates are dropped.
        steps: how many steps the left panel spans.
    """
    steps = steps or 3 * config.warmup_steps
    positive_int("steps", steps)
    fig, (ax_lr, ax_decay, ax_ema) = new_figure(ncols=3, width=10.0, height=2.8)
    k = np.arange(1, steps + 1)
    ax_lr.plot(k, [learning_rate(config, int(i) - 1) for i in k], color="tab:blue")
    ax_lr.axvline(config.warmup_steps, color="grey", linestyle=":", linewidth=1)
    ax_lr.set_xlabel("optimiser step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_ylim(0, 1.1 * config.lr)
    ax_lr.set_title(f"linear warm-up over {config.warmup_steps} steps")

    ages = np.unique(np.round(np.logspace(0, 4.3, 300)))
    for d in sorted(set([config.ema_decay, *(decays or [])])):
        at_step = [ema_decay_at(replace(config, ema_decay=d), int(a) - 1) for a in ages]
        ax_decay.plot(ages, 1 - np.asarray(at_step))
        ax_ema.plot(ages, 1 - d**ages, label=f"$d = {d}$\n(about {1 / (1 - d):,.0f} steps)")
    ax_ema.set_xscale("log")
    ax_ema.set_ylim(0, 1.02)
    ax_decay.set_xscale("log")
    ax_decay.set_yscale("log")
    ax_decay.set_xlabel("optimiser step $k$")
    ax_decay.set_ylabel("$1 - d_k$ (log scale)")
    ax_decay.set_title(r"the decay warms up: $d_k = \min(d, \frac{1+k}{10+k})$")
    ax_ema.set_xlabel("the last $k$ steps")
    ax_ema.set_ylabel("their share, $1 - d^k$")
    ax_ema.set_title("what the EMA remembers")
    ax_ema.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, labelspacing=1.0)
    return fig


def plot_loss_curve(
    history: Mapping[str, Sequence[float]],
    label: str = "this run",
    reference: Mapping[str, Sequence[float]] | None = None,
    reference_label: str = "reference run",
) -> Figure:
    """The training loss L_simple (averaged over each logging interval) against the step, log-log.

    Args:
        history: ``{"step": [...], "loss": [...]}``, as in ``TrainState.history`` (:mod:`diffnotes.training`).
        label: the legend entry of ``history``.
        reference: optionally a second history drawn beside it (e.g. the shipped model's).
        reference_label: its legend entry.
    """
    runs = [(history, label, "tab:blue")] + ([(reference, reference_label, "tab:orange")] if reference else [])
    for run, name, _ in runs:
        if not run.get("step") or len(run["step"]) != len(run.get("loss", [])):
            raise ValueError(f"the history of {name!r} needs equally long, non-empty 'step' and 'loss' lists")
    fig, ax = new_figure(width=6.0, height=3.0)
    for run, name, colour in runs:
        ax.plot(run["step"], run["loss"], marker="." if len(run["step"]) < 30 else None, color=colour, label=name)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.text(0.98, 1.0, "the zero predictor", transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=8,
            color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(r"$L_\mathrm{simple}$ (per pixel)")
    ax.legend(loc="lower left")
    return fig


def plot_snapshots(snapshots: Mapping[int, torch.Tensor], width: float = 6.4) -> Figure:
    """Samples drawn from the same starting noise at several training steps: one row per step, labelled.

    Args:
        snapshots: ``{step: images}`` with images (B, C, H, W) in [-1, 1], every entry the same B.
        width: figure width in inches.
    """
    if not snapshots:
        raise ValueError("snapshots must hold at least one {step: images} entry")
    sizes = {tuple(images.shape) for images in snapshots.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) != 4:
        raise ValueError(f"every snapshot must be a (B, C, H, W) batch of the same shape, got {sorted(sizes)}")
    b = next(iter(sizes))[0]
    row_height = width / b * 1.05
    fig, axes = new_figure(nrows=len(snapshots), width=width, height=row_height * len(snapshots) + 0.2, squeeze=False)
    for ax, (step, images) in zip(axes[:, 0], sorted(snapshots.items())):
        grid = image_grid(images, nrow=b)
        ax.imshow(grid.squeeze(-1).numpy() if grid.shape[-1] == 1 else grid.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_ylabel(f"step {step}", rotation=0, ha="right", va="center")
    return fig


def plot_sample_grids(grids: Mapping[str, torch.Tensor], nrow: int = 8, width: float | None = None) -> Figure:
    """One titled grid of images per entry, side by side (e.g. samples with two settings from the same noise).

    Args:
        grids: ``{title: images}`` with images (B, C, H, W) in [-1, 1].
        nrow: images per row of each grid.
        width: figure width in inches (default: 4 inches per grid).
    """
    if not grids:
        raise ValueError("grids must hold at least one {title: images} entry")
    positive_int("nrow", nrow)
    n = len(grids)
    rows = max(-(-images.shape[0] // nrow) for images in grids.values())
    width = width or 4.0 * n
    fig, axes = new_figure(ncols=n, width=width, height=(width / n) * rows / nrow + 0.45, squeeze=False)
    for ax, (title, images) in zip(axes[0], grids.items()):
        grid = image_grid(images, nrow=nrow)
        ax.imshow(grid.squeeze(-1).numpy() if grid.shape[-1] == 1 else grid.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(title)
    return fig
