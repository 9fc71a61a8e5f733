"""Figures of chapter 2, "The forward process and the diffusion kernel"."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from diffnotes.data import to_unit_range
from diffnotes.plotting.common import new_figure
from diffnotes.schedules import Schedule


def plot_coefficients(schedule: Schedule) -> Figure:
    """Left: the signal and noise coefficients sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) against t.

    Right, on a log scale: the variance beta_t added by step t, the variance 1 - alpha_bar_t of the compound
    noise after t steps, and the plain sum of the betas, which the compound noise stays below.
    """
    t = torch.arange(schedule.T + 1)
    alpha_bar = schedule.alpha_bar
    fig, (left, right) = new_figure(ncols=2, width=8.0, height=3.0)
    left.plot(t, alpha_bar.sqrt(), label=r"signal $\sqrt{\bar\alpha_t}$")
    left.plot(t, (1 - alpha_bar).sqrt(), label=r"noise $\sqrt{1-\bar\alpha_t}$")
    t_cross = int((alpha_bar < 0.5).nonzero()[0])
    left.axvline(t_cross, color="grey", linestyle=":", linewidth=1)
    left.annotate(f"equal at t = {t_cross}", (t_cross, 0.5**0.5), xytext=(t_cross + 25, 0.69), fontsize=9, va="top")
    title = f"{schedule.name} schedule, T = {schedule.T}"
    left.set(xlabel="step $t$", ylabel="coefficient", ylim=(0, 1.02), title=title)
    left.legend(loc="center right", bbox_to_anchor=(1.0, 0.42))
    steps = t[1:]
    right.plot(steps, schedule.beta[1:], label=r"per step: $\beta_t$")
    right.plot(steps, 1 - alpha_bar[1:], label=r"total: $1-\bar\alpha_t$")
    right.plot(steps, schedule.beta[1:].cumsum(0), linestyle="--", label=r"naive sum $\sum_{s\leq t}\beta_s$")
    right.set(xlabel="step $t$", ylabel="noise variance", yscale="log", title="per-step and compound noise")
    right.legend(loc="lower right")
    return fig


def plot_noising(rows: dict[str, torch.Tensor], ts: Sequence[int], width: float = 8.0) -> Figure:
    """One row of images per entry of ``rows`` (each (K, C, H, W) in [-1, 1]), one column per step in ``ts``."""
    names = list(rows)
    n_rows, n_cols = len(names), len(ts)
    fig, axes = new_figure(ncols=n_cols, nrows=n_rows, width=width, height=n_rows * width / n_cols + 0.3, squeeze=False)
    for row, name in enumerate(names):
        for col, t in enumerate(ts):
            ax = axes[row][col]
            pixels = to_unit_range(rows[name][col].detach().float().cpu()).permute(1, 2, 0)  # (H, W, C)
            ax.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            if row == 0:
                ax.set_title(f"t = {t}")
        axes[row][0].set_ylabel(name)
    return fig


def plot_kernel_check(
    chain: torch.Tensor, kernel: torch.Tensor, mean: float, var: float, t: int, width: float = 6.4
) -> Figure:
    """Histograms of scalar x_t, (n,) each, from the chain and from the kernel.

    Over them: the exact density N(mean, var), and the density that the lecture's slide gives, N(mean, sqrt(var)).
    """
    fig, ax = new_figure(width=width, height=3.0)
    bins = torch.linspace(mean - 5 * var**0.25, mean + 5 * var**0.25, 121)
    ax.hist(chain.cpu().numpy(), bins=bins.numpy(), density=True, alpha=0.5, label=f"chain: {t} steps")
    ax.hist(kernel.cpu().numpy(), bins=bins.numpy(), density=True, alpha=0.5, label="kernel: one jump")
    grid = torch.linspace(float(bins[0]), float(bins[-1]), 400)
    exact = r"$\mathcal{N}(\sqrt{\bar\alpha_t}x_0,\ 1-\bar\alpha_t)$"
    slide = r"slide: $\mathcal{N}(\sqrt{\bar\alpha_t}x_0,\ \sqrt{1-\bar\alpha_t})$"
    for variance, style, label in ((var, "-", exact), (var**0.5, "--", slide)):
        density = torch.exp(-((grid - mean) ** 2) / (2 * variance)) / math.sqrt(2 * math.pi * variance)
        ax.plot(grid, density, color="black", linestyle=style, label=label)
    ax.set(xlabel="$x_t$", ylabel="density", title=f"chain against kernel at $t = {t}$")
    ax.legend(loc="upper left", fontsize=8)
    return fig
