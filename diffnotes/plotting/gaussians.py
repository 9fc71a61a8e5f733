"""Figures for the chapter "Sums of Gaussians"."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from diffnotes.plotting.common import new_figure

Densities = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def plot_densities_of_sums(
    grid: torch.Tensor, cases: Sequence[Densities], titles: Sequence[str], xlim: tuple[float, float] = (-6.0, 6.0)
) -> Figure:
    """One panel per case (p_X, p_Y, p_Z by convolution, p_Z in closed form), all on the same (n,) ``grid``."""
    fig, axes = new_figure(ncols=len(cases), width=3.4 * len(cases), height=3.0, squeeze=False, sharey=True)
    inside = (grid >= xlim[0]) & (grid <= xlim[1])
    every = max(1, int(inside.sum()) // 40)  # about 40 markers per panel, so the line under them stays visible
    for ax, (p_x, p_y, p_z, p_z_exact), title in zip(axes[0], cases, titles):
        g = grid[inside]
        ax.plot(g, p_x[inside], color="tab:blue", label="$p_X$")
        ax.plot(g, p_y[inside], color="tab:orange", label="$p_Y$")
        ax.plot(g, p_z_exact[inside], color="black", label="$p_Z$, closed form")
        ax.plot(g[::every], p_z[inside][::every], "o", ms=3.5, mfc="none", color="tab:red", label="$p_X * p_Y$, FFT")
        ax.set_title(title)
        ax.set_xlabel("$x$, $y$ or $z$")
        ax.set_xlim(*xlim)
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(loc="upper left")
    return fig


def plot_mixture_vs_sum(
    mixture_samples: torch.Tensor,
    sum_samples: torch.Tensor,
    grid: torch.Tensor,
    mixture_density: torch.Tensor,
    sum_density: torch.Tensor,
    bins: int = 80,
    xlim: tuple[float, float] = (-5.0, 6.0),
) -> Figure:
    """Histograms of (n,) samples of a mixture and of a weighted sum of variables, each under its exact (m,) density."""
    fig, axes = new_figure(ncols=2, width=7.0, height=3.0, sharex=True, sharey=True)
    edges = torch.linspace(xlim[0], xlim[1], bins + 1)
    panels = (
        (mixture_samples, mixture_density, "tab:blue", "mixture: $w p_1 + (1-w) p_2$"),
        (sum_samples, sum_density, "tab:green", "variable: $w X_1 + (1-w) X_2$"),
    )
    for ax, (samples, density, color, title) in zip(axes, panels):
        ax.hist(samples.numpy(), bins=edges.numpy(), density=True, color=color, alpha=0.5, label="samples")
        ax.plot(grid, density, color="black", label="exact density")
        ax.set_title(title)
        ax.set_xlabel("value")
        ax.set_xlim(*xlim)
    axes[0].set_ylabel("density")
    axes[0].legend(loc="upper left")
    return fig


def _ellipse(ax: Axes, mu: torch.Tensor, cov: torch.Tensor, radius: float = 2.0) -> None:
    mu, cov = torch.as_tensor(mu, dtype=torch.float64), torch.as_tensor(cov, dtype=torch.float64)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    root = eigenvectors * eigenvalues.clamp(min=0).sqrt()  # (2, 2), root @ root.T == cov
    angle = torch.linspace(0, 2 * torch.pi, 200, dtype=torch.float64)
    circle = torch.stack([angle.cos(), angle.sin()])  # (2, 200)
    points = mu.unsqueeze(1) + radius * root @ circle  # (2, 200)
    ax.plot(points[0], points[1], color="black", lw=1.5, label=f"{radius:g}-sigma ellipse, closed form")


def plot_vector_sum(
    samples: Sequence[torch.Tensor], means: Sequence[torch.Tensor], covs: Sequence[torch.Tensor], n_points: int = 1500
) -> Figure:
    """Scatter the first ``n_points`` of each (n, 2) sample of X, Y and Z = X + Y, with its closed-form 2-sigma ellipse.

    ``means`` are the three (2,) means and ``covs`` the three (2, 2) covariances of the closed form.
    """
    fig, axes = new_figure(ncols=3, width=8.4, height=3.0, sharex=True, sharey=True)
    titles = ("$\\mathbf{x}$", "$\\mathbf{y}$", "$\\mathbf{z} = \\mathbf{x} + \\mathbf{y}$")
    colors = ("tab:blue", "tab:orange", "tab:red")
    for ax, points, mu, cov, title, color in zip(axes, samples, means, covs, titles, colors):
        ax.scatter(points[:n_points, 0], points[:n_points, 1], s=2, alpha=0.3, color=color)
        _ellipse(ax, mu, cov)
        ax.set_title(title)
        ax.set_xlabel("first coordinate")
        ax.set_aspect("equal", adjustable="box")
    axes[0].set_ylabel("second coordinate")
    axes[0].legend(loc="lower left", fontsize=8)
    return fig
