"""Figures of chapters 9 and 10: the bound against the exact NLL, Bayes' rule on a grid, the posterior weights along
t, and Tweedie's formula against Monte Carlo."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from diffnotes.forward import log_q_kernel, log_q_step
from diffnotes.plotting.common import new_figure
from diffnotes.posterior import posterior_mean_coefficients, posterior_mean_var, posterior_variance
from diffnotes.posterior_grid import posterior_on_grid
from diffnotes.schedules import Schedule


def plot_bound_vs_nll(
    scales: Sequence[float], nll: Sequence[float], bound: Sequence[float], bound_se: Sequence[float]
) -> Figure:
    """The Monte Carlo bound (a band of 2 standard errors) and the exact NLL against the scale c of the reverse means.

    Chapter 9's figure: every argument holds one number per scale c.
    """
    fig, ax = new_figure(width=5.5, height=3.0)
    low = [b - 2 * se for b, se in zip(bound, bound_se, strict=True)]
    high = [b + 2 * se for b, se in zip(bound, bound_se, strict=True)]
    ax.fill_between(scales, low, high, color="C1", alpha=0.3, linewidth=0)
    ax.plot(scales, bound, "o-", color="C1", markersize=3, label="bound (Monte Carlo, $\\pm 2$ s.e.)")
    ax.plot(scales, nll, color="black", label="exact $-\\log p_\\theta(x_0)$")
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("scale $c$ of the reverse means ($c = 1$: $p_\\theta$ equals $q$)")
    ax.set_ylabel("nats, averaged over $x_0$")
    ax.legend()
    return fig


def plot_bayes_on_grid(schedule: Schedule, x0: float, x_t: float, t: int, grid: torch.Tensor) -> Figure:
    """Bayes' rule for q(x_{t-1} | x_t, x_0) on a uniform ``grid`` (G,) of x_{t-1}, scalar data, t in 2..T.

    Draws the prior q(x_{t-1} | x_0), the likelihood q(x_t | x_{t-1}) as a function of x_{t-1} (normalised), their
    normalised product (:func:`~diffnotes.posterior_grid.posterior_on_grid`) and the closed-form posterior Gaussian.
    """
    column = grid.reshape(-1, 1)
    prior = torch.exp(log_q_kernel(schedule, column, torch.full_like(column, x0), t - 1))
    likelihood = torch.exp(log_q_step(schedule, torch.full_like(column, x_t), column, t))
    likelihood = likelihood / (likelihood.sum() * (grid[1] - grid[0]))
    as_batch = lambda value: torch.tensor([value], dtype=grid.dtype)  # noqa: E731
    mean, var = posterior_mean_var(schedule, as_batch(x0), as_batch(x_t), t)
    exact = torch.exp(-0.5 * (grid - mean) ** 2 / var) / torch.sqrt(2 * torch.pi * var)
    fig, ax = new_figure(width=5.5, height=3.0)
    ax.plot(grid, prior, color="C0", label="prior $q(x_{t-1} \\mid x_0)$")
    ax.plot(grid, likelihood, color="C2", label="likelihood $q(x_t \\mid x_{t-1})$, normalised")
    ax.plot(grid, posterior_on_grid(schedule, x0, x_t, t, grid), color="C1", linewidth=4, alpha=0.5,
            label="their product, normalised (grid)")
    closed_form = "$\\mathcal{N}(\\tilde\\mu_t, \\tilde\\beta_t)$ (closed form)"
    ax.plot(grid, exact, color="black", linestyle="--", label=closed_form)
    ax.set_xlabel(f"$x_{{t-1}}$ (t = {t}, $x_0$ = {x0:g}, $x_t$ = {x_t:g})")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_posterior_weights(named: dict[str, Schedule]) -> Figure:
    """For each schedule: the weights of x_0 and of x_t in mu-tilde_t, and beta-tilde_t / beta_t, against t."""
    fig, axes = new_figure(ncols=2, width=8.0, height=3.0)
    for index, (name, schedule) in enumerate(named.items()):
        t = torch.arange(1, schedule.T + 1)
        coef_x0, coef_x_t = posterior_mean_coefficients(schedule, t)
        axes[0].plot(t, coef_x_t, color=f"C{index}", label=f"{name}: weight of $x_t$")
        axes[0].plot(t, coef_x0, color=f"C{index}", linestyle="--", label=f"{name}: weight of $x_0$")
        axes[1].plot(t, posterior_variance(schedule, t) / schedule.beta[t], color=f"C{index}", label=name)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("$t$")
    axes[0].set_title("the weights in $\\tilde\\mu_t$")
    axes[0].legend(fontsize=8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("$t$")
    axes[1].set_title("$\\tilde\\beta_t / \\beta_t$")
    axes[1].legend(fontsize=8)
    return fig


def plot_tweedie(
    x_t: torch.Tensor, tweedie: torch.Tensor, centres: torch.Tensor, means: torch.Tensor, se: torch.Tensor, t: int
) -> Figure:
    """Tweedie's E[x_0 | x_t] (a curve over ``x_t``) against Monte Carlo means of x_0 in bins of x_t (``centres``)."""
    fig, ax = new_figure(width=5.5, height=3.0)
    formula = "Tweedie: $(x_t + (1-\\bar\\alpha_t)\\nabla\\log q(x_t))/\\sqrt{\\bar\\alpha_t}$"
    ax.plot(x_t, tweedie, color="black", label=formula)
    ax.errorbar(centres, means, yerr=2 * se, fmt="o", color="C1", markersize=3,
                label="Monte Carlo mean of $x_0$ per bin ($\\pm 2$ s.e.)")
    ax.set_xlabel(f"$x_t$ (t = {t})")
    ax.set_ylabel("$\\mathbb{E}[x_0 \\mid x_t]$")
    ax.legend(fontsize=8)
    return fig
