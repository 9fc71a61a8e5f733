"""Figures of the chapter "Ancestral sampling of the noisy marginals": samples of q(x_t) against its exact density."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib import colors, lines
from matplotlib.figure import Figure

from diffnotes.mixtures import GaussianMixture, standard_normal
from diffnotes.plotting.common import new_figure
from diffnotes.schedules import Schedule

#: Every 1-D panel spans [-LIMIT, LIMIT]; every 2-D panel spans that square.
LIMIT = 3.5


def _panels(count: int, ncols: int, width: float, row_height: float) -> tuple[Figure, np.ndarray]:
    nrows = -(-count // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=width, height=row_height * nrows, squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_marginals_1d(
    samples: Mapping[int, torch.Tensor], exact: Mapping[int, GaussianMixture], bins: int = 80, ncols: int = 3
) -> Figure:
    """One panel per t: a histogram of the samples (n, 1) of q(x_t), its exact density, and N(0, 1) dashed."""
    fig, axes = _panels(len(samples), ncols, width=7.5, row_height=2.3)
    grid = torch.linspace(-LIMIT, LIMIT, 600, dtype=torch.float64)[:, None]
    normal = standard_normal(1).log_prob(grid).exp()
    for ax, (t, x_t) in zip(axes, samples.items()):
        hist_style = {"bins": bins, "range": (-LIMIT, LIMIT), "density": True, "alpha": 0.55}
        ax.hist(x_t[:, 0].numpy(), **hist_style, label="ancestral samples")
        ax.plot(grid[:, 0], exact[t].log_prob(grid).exp(), color="black", lw=1.4, label="exact $q(x_t)$")
        ax.plot(grid[:, 0], normal, color="tab:red", lw=1.0, ls="--", label="$\\mathcal{N}(0, 1)$")
        ax.set_title(f"$t = {t}$")
        ax.set_xlabel("$x_t$")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig


def plot_marginals_2d(
    samples: Mapping[int, torch.Tensor], exact: Mapping[int, GaussianMixture], max_points: int = 2000, ncols: int = 3
) -> Figure:
    """One panel per t: samples (n, 2) of q(x_t) as dots, contours of the exact density, and the circle of radius 2."""
    fig, axes = _panels(len(samples), ncols, width=7.5, row_height=2.6)
    axis = torch.linspace(-LIMIT, LIMIT, 200, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (200 * 200, 2)
    angle = np.linspace(0, 2 * np.pi, 200)
    for ax, (t, x_t) in zip(axes, samples.items()):
        ax.scatter(x_t[:max_points, 0], x_t[:max_points, 1], s=2, alpha=0.35, color="tab:blue", linewidths=0)
        density = exact[t].log_prob(points).exp().reshape(gx.shape)
        levels = (density.max() * torch.tensor([0.02, 0.1, 0.3, 0.6])).tolist()
        ax.contour(gx, gy, density, levels=levels, colors="black", linewidths=0.8)
        ax.plot(2 * np.cos(angle), 2 * np.sin(angle), color="tab:red", lw=0.9, ls="--")
        ax.set(xlim=(-LIMIT, LIMIT), ylim=(-LIMIT, LIMIT), aspect="equal", title=f"$t = {t}$")
    handles = [
        lines.Line2D([], [], ls="", marker="o", ms=3, color="tab:blue", label="ancestral samples"),
        lines.Line2D([], [], color="black", lw=0.8, label="contours of the exact $q(\\mathbf{x}_t)$"),
        lines.Line2D([], [], color="tab:red", lw=0.9, ls="--", label="circle of radius 2"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


def plot_density_path(
    mixture: GaussianMixture, schedule: Schedule, t: torch.Tensor, x_t: torch.Tensor, max_points: int = 1500
) -> Figure:
    """The exact density q(x_t) of a 1-D mixture over (t, x) as an image, with ancestral pairs (t, x_t) as dots.

    Args:
        mixture: the 1-D data distribution q(x_0).
        schedule: the noise schedule.
        t: (n,) the timesteps of the pairs.
        x_t: (n, 1) their samples.
        max_points: at most this many pairs are drawn.
    """
    steps = list(range(0, schedule.T + 1, max(1, schedule.T // 100)))
    grid = torch.linspace(-LIMIT, LIMIT, 400, dtype=torch.float64)[:, None]
    image = torch.stack([mixture.diffuse(schedule, s).log_prob(grid).exp() for s in steps], dim=1)  # (400, steps)
    fig, ax = new_figure(width=7.0, height=3.0)
    shown = ax.imshow(
        image, origin="lower", aspect="auto", cmap="magma", norm=colors.PowerNorm(0.5),
        extent=(steps[0], steps[-1], -LIMIT, LIMIT),
    )
    ax.scatter(t[:max_points], x_t[:max_points, 0], s=1.5, color="white", alpha=0.6, linewidths=0)
    ax.set(xlabel="$t$", ylabel="$x_t$", xlim=(0, schedule.T), ylim=(-LIMIT, LIMIT))
    ax.grid(False)
    fig.colorbar(shown, ax=ax, label="$q(x_t)$ (square-root scale)")
    return fig


def plot_kl(t: torch.Tensor, kl: Mapping[str, torch.Tensor]) -> Figure:
    """KL(q(x_t) || N(0, I)) against t on a log scale, one curve per labelled data distribution."""
    fig, ax = new_figure(width=5.5, height=3.0)
    for label, values in kl.items():
        ax.semilogy(t, values, label=label)
    ax.set(xlabel="$t$", ylabel="KL$(q(\\mathbf{x}_t)\\,\\|\\,\\mathcal{N}(\\mathbf{0}, \\mathbf{I}))$ (nats)")
    ax.legend()
    return fig


def plot_pixel_stats(means: Mapping[int, torch.Tensor], stds: Mapping[int, torch.Tensor]) -> Figure:
    """Per-pixel mean (top row, on [-1, 1]) and standard deviation (bottom row, on [0, 1.1]) maps, one column per t.

    ``means`` and ``stds`` map t to a (1, H, W) image; the colour scales are fixed so that the columns compare.
    """
    fig, axes = new_figure(ncols=len(means), nrows=2, width=7.5, height=3.3, squeeze=False)
    rows = (("mean", means, "RdBu_r", (-1.0, 1.0)), ("std", stds, "viridis", (0.0, 1.1)))
    for row, (name, maps, cmap, (lo, hi)) in enumerate(rows):
        for col, (t, image) in enumerate(maps.items()):
            ax = axes[row, col]
            shown = ax.imshow(image[0].numpy(), cmap=cmap, vmin=lo, vmax=hi)
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
            ax.spines[:].set_visible(False)
            if row == 0:
                ax.set_title(f"$t = {t}$")
        axes[row, 0].set_ylabel(f"per-pixel {name}")
        fig.colorbar(shown, ax=axes[row, :].tolist(), shrink=0.9)
    return fig
