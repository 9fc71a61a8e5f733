"""Figures of the chapter "The noise predictor": the loss, the learned denoising field and sampled trajectories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib import colormaps, colors
from matplotlib.figure import Figure
from torch import nn

from diffnotes.plotting.common import BOOK_STYLE, new_figure
from diffnotes.posterior import predict_x0
from diffnotes.schedules import Schedule

#: Every 2-D panel spans [-XLIM, XLIM] x [-YLIM, YLIM], which holds the centred two moons with room to spare.
XLIM, YLIM = 2.2, 1.6
DATA_STYLE = dict(s=2, color="0.6", alpha=0.5, linewidths=0)


def _moon_axes(ax: object, title: str) -> None:
    ax.set(xlim=(-XLIM, XLIM), ylim=(-YLIM, YLIM), aspect="equal", title=title)
    ax.set_xticks([-2, -1, 0, 1, 2])
    ax.set_yticks([-1, 0, 1])


def plot_losses(history: Mapping[str, Sequence[float]], per_t: Mapping[str, torch.Tensor], ts: torch.Tensor) -> Figure:
    """Left: the training loss against the step; right: the loss at each t of every predictor in ``per_t``.

    Args:
        history: ``{"step": [...], "loss": [...]}`` from :func:`diffnotes.training.train`.
        per_t: predictor name -> (len(ts),) mean squared error per dimension at each t.
        ts: the timesteps of ``per_t``.
    """
    fig, (left, right) = new_figure(ncols=2, width=7.5, height=3.0)
    left.plot(history["step"], history["loss"], color="tab:blue", lw=1.2, label="MLP (training batches)")
    left.axhline(1.0, color="black", lw=0.9, ls=":", label="zero predictor")
    left.set(xlabel="training step", ylabel="$L_\\mathrm{simple}$ per dimension", ylim=(0, 1.1))
    left.legend(loc="center right")
    styles = {"zero predictor": dict(color="black", ls=":"), "best affine": dict(color="tab:orange", ls="--")}
    for name, values in per_t.items():
        right.plot(ts, values, lw=1.2, label=name, **styles.get(name, {}))
    right.set(xlabel="$t$", ylabel="loss at $t$", ylim=(0, 1.1))
    right.legend(loc="center right")
    return fig


@torch.no_grad()
def plot_denoising_field(
    model: nn.Module, schedule: Schedule, ts: Sequence[int], data: torch.Tensor, n_grid: int = 17
) -> Figure:
    """One panel per t (two per row): at each point x_t of a grid, an arrow towards the model's x0_hat, over the data.

    The arrows show the direction of ``x0_hat - x_t`` at a common length; their colour is the distance from x_t to
    x0_hat, on one colour scale for every panel.
    """
    ncols = min(2, len(ts))
    nrows = -(-len(ts) // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=7.0, height=2.5 * nrows + 0.2, squeeze=False)
    for ax in axes.flat[len(ts):]:
        ax.set_visible(False)
    gx, gy = torch.meshgrid(torch.linspace(-XLIM, XLIM, n_grid), torch.linspace(-YLIM, YLIM, n_grid), indexing="xy")
    x_t = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (n_grid^2, 2)
    arrows = {}
    for t in ts:
        t_batch = torch.full((x_t.shape[0],), t, dtype=torch.int64)
        arrows[t] = predict_x0(schedule, x_t, t, model(x_t, t_batch)) - x_t  # (n_grid^2, 2)
    norm = colors.Normalize(0.0, max(float(a.norm(dim=1).max()) for a in arrows.values()))
    for ax, t in zip(axes.flat, ts):
        length = arrows[t].norm(dim=1, keepdim=True)
        unit = arrows[t] / length.clamp(min=1e-12)
        ax.scatter(data[:, 0], data[:, 1], **DATA_STYLE)
        quiver = ax.quiver(x_t[:, 0], x_t[:, 1], unit[:, 0], unit[:, 1], length[:, 0], cmap="viridis", norm=norm,
                           angles="xy", scale_units="xy", scale=1 / (0.7 * 2 * YLIM / (n_grid - 1)), width=0.005)
        _moon_axes(ax, f"$t = {t}$,  $\\bar\\alpha_t = {float(schedule.alpha_bar[t]):.2f}$")
    label = "$|\\hat{\\mathbf{x}}_0 - \\mathbf{x}_t|$"
    fig.colorbar(quiver, ax=axes.ravel()[: len(ts)].tolist(), shrink=0.8, label=label)
    return fig


def plot_reverse_chain(
    path: Mapping[int, torch.Tensor], data: torch.Tensor, ts: Sequence[int], n_lines: int = 8
) -> Figure:
    """Top row: the samples x_t at each t of ``ts``; bottom: ``n_lines`` whole trajectories, then the final samples.

    Args:
        path: t -> (B, 2) the states of the reverse chain, for t = T, ..., 0 (t = 0 is the output).
        data: (n, 2) fresh data, drawn in grey under every panel.
        ts: the timesteps of the top row, decreasing.
        n_lines: how many trajectories the bottom-left panel draws.
    """
    top = [f"t{t}" for t in ts]
    half = len(ts) // 2
    layout = [top, ["lines"] * half + ["samples"] * (len(ts) - half)]
    with plt.rc_context(BOOK_STYLE):
        fig = plt.figure(figsize=(7.5, 4.4), layout="constrained")
        axes = fig.subplot_mosaic(layout, height_ratios=[1, 1.6])
    for t in ts:
        ax = axes[f"t{t}"]
        ax.scatter(data[:, 0], data[:, 1], **DATA_STYLE)
        ax.scatter(path[t][:, 0], path[t][:, 1], s=2, color="tab:blue", alpha=0.5, linewidths=0)
        _moon_axes(ax, f"$\\mathbf{{x}}_{{{t}}}$")
    lines = torch.stack([path[t][:n_lines] for t in sorted(path, reverse=True)]).numpy()  # (T + 1, n_lines, 2)
    ax = axes["lines"]
    ax.scatter(data[:, 0], data[:, 1], **DATA_STYLE)
    for k in range(lines.shape[1]):
        ax.plot(lines[:, k, 0], lines[:, k, 1], lw=0.6, alpha=0.7, color=_colour(k, lines.shape[1]))
    ax.scatter(lines[0, :, 0], lines[0, :, 1], s=8, marker="o", facecolors="none", edgecolors="black", lw=0.5)
    ax.scatter(lines[-1, :, 0], lines[-1, :, 1], s=10, color="black", zorder=3)
    ax.set(xlim=(-2 * XLIM, 2 * XLIM), ylim=(-1.5 * YLIM, 1.5 * YLIM), aspect="equal")
    ax.set_title(f"{n_lines} trajectories: $\\circ$ start $\\mathbf{{x}}_T$, $\\bullet$ end $\\mathbf{{x}}_0$")
    ax = axes["samples"]
    ax.scatter(data[:, 0], data[:, 1], **DATA_STYLE, label="fresh data")
    samples = path[0]
    label = "samples $\\mathbf{x}_0$"
    ax.scatter(samples[:, 0], samples[:, 1], s=2, color="tab:blue", alpha=0.6, linewidths=0, label=label)
    _moon_axes(ax, "samples against the data")
    ax.legend(loc="lower left", markerscale=4)
    return fig


def _colour(k: int, n: int) -> tuple[float, ...]:
    return colormaps["plasma"](0.85 * k / max(1, n - 1))
