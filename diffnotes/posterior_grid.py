"""The posterior by brute force: Bayes' rule on a grid and regressions on samples (chapter "The posterior").

These functions compute, without the closed forms of :mod:`diffnotes.posterior`, what those forms predict:
q(x_{t-1} | x_t, x_0) normalised numerically on a grid, the moments of a density on a grid, the least-squares fit
of a linear-Gaussian relation, E[x_0 | x_t] and the score for Gaussian data, and binned conditional means of
samples. Chapter 10 uses them as the independent reference for every formula it states.
"""

from __future__ import annotations

import math

import torch

from diffnotes.checks import positive_variance
from diffnotes.forward import log_normal
from diffnotes.posterior import check_t
from diffnotes.schedules import Schedule


def grid_spacing(grid: torch.Tensor) -> torch.Tensor:
    """The spacing of a uniform 1-D grid, after checking that it is one."""
    spacing = grid.diff() if grid.dim() == 1 and grid.numel() >= 2 else None
    if spacing is None or not torch.allclose(spacing, spacing[0].expand_as(spacing)):
        raise ValueError("grid must be a 1-D tensor of at least 2 uniformly spaced values")
    return spacing[0]


def posterior_on_grid(schedule: Schedule, x0: float, x_t: float, t: int, grid: torch.Tensor) -> torch.Tensor:
    """q(x_{t-1} | x_t, x_0) by brute-force Bayes (book eq. ``ch10-eq-bayes``) on a uniform ``grid`` (G,) of x_{t-1}.

    The numerator q(x_t | x_{t-1}) q(x_{t-1} | x_0) is evaluated at every grid point and normalised numerically, so
    the denominator q(x_t | x_0) is never used. Scalar data, t in 2..T (at t = 1 the posterior is a point mass).
    Returns (G,) density values.
    """
    if int(check_t(schedule, t)) < 2:
        raise ValueError(f"t must lie in 2..T={schedule.T} for a density on a grid, got {t}")
    spacing = grid_spacing(grid)
    x_prev = grid.reshape(-1, 1)  # (G, 1): a batch of G scalars
    alpha, beta, ab_prev = (v.to(grid) for v in (schedule.alpha[t], schedule.beta[t], schedule.alpha_bar[t - 1]))
    log_likelihood = log_normal(torch.full_like(x_prev, x_t), alpha.sqrt() * x_prev, beta)
    log_prior = log_normal(x_prev, ab_prev.sqrt() * x0, 1.0 - ab_prev)
    return torch.softmax(log_likelihood + log_prior, dim=0) / spacing


def grid_mean_var(grid: torch.Tensor, density: torch.Tensor) -> tuple[float, float]:
    """Mean and variance of a density tabulated on a uniform grid (G,), by Riemann sums."""
    if grid.shape != density.shape or grid.dim() != 1:
        raise ValueError(f"density must have the shape of grid, {tuple(grid.shape)}; got {tuple(density.shape)}")
    w = density / density.sum()
    mean = float((w * grid).sum())
    return mean, float((w * (grid - mean) ** 2).sum())


def fit_linear_gaussian(y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares regression y ~ A x + c of samples y (N, d) on x (N, d).

    Returns A (d, d), c (d,) and the residual covariance (d, d). For jointly Gaussian samples this estimates the
    conditional law N(A x + c, Sigma) of y given x, e.g. of x_{t-1} given x_t (book eq. ``ch10-eq-post-mean``).
    """
    if y.dim() != 2 or y.shape != x.shape or x.shape[0] <= x.shape[1] + 1:
        raise ValueError(f"y and x must both be (N, d) with N > d + 1; got {tuple(y.shape)} and {tuple(x.shape)}")
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)  # (N, d + 1)
    solution = torch.linalg.lstsq(design, y).solution  # (d + 1, d)
    residual = y - design @ solution
    cov = residual.T @ residual / (x.shape[0] - x.shape[1] - 1)
    return solution[:-1].T, solution[-1], cov


def gaussian_data_score(schedule: Schedule, x_t: torch.Tensor, t: int, m: float, s2: float) -> torch.Tensor:
    """The exact score of q(x_t) = N(sqrt(alpha_bar_t) m, alpha_bar_t s2 + 1 - alpha_bar_t) for data N(m, s2)."""
    s2 = float(positive_variance("s2", s2))
    ab = float(schedule.alpha_bar[check_t(schedule, t)])
    return -(x_t - math.sqrt(ab) * m) / (ab * s2 + 1.0 - ab)


def gaussian_data_x0_mean(schedule: Schedule, x_t: torch.Tensor, t: int, m: float, s2: float) -> torch.Tensor:
    """The exact E[x_0 | x_t] for data N(m, s2) (book eq. ``ch10-eq-tweedie-gauss``), with no score in it:

    m + sqrt(alpha_bar_t) s2 / (alpha_bar_t s2 + 1 - alpha_bar_t) (x_t - sqrt(alpha_bar_t) m), the conditional mean
    of a jointly Gaussian pair.
    """
    s2 = float(positive_variance("s2", s2))
    ab = float(schedule.alpha_bar[check_t(schedule, t)])
    return m + math.sqrt(ab) * s2 / (ab * s2 + 1.0 - ab) * (x_t - math.sqrt(ab) * m)


def binned_means(
    x: torch.Tensor, y: torch.Tensor, edges: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Monte Carlo E[y | x] by binning samples x, y (N,) with bin edges (K + 1,).

    Returns the (K,) bin centres, the mean of y in each bin and its standard error (NaN with fewer than 2 samples).
    """
    if x.shape != y.shape or x.dim() != 1 or edges.dim() != 1 or edges.numel() < 2:
        shapes = f"{tuple(x.shape)}, {tuple(y.shape)}, {tuple(edges.shape)}"
        raise ValueError(f"x, y must be (N,) and edges (K + 1,) with K >= 1; got {shapes}")
    k = edges.numel() - 1
    index = torch.bucketize(x, edges) - 1  # bin i holds edges[i] < x <= edges[i + 1]
    keep = (index >= 0) & (index < k)
    index, y = index[keep], y[keep].double()
    count = torch.bincount(index, minlength=k).double()
    mean = torch.bincount(index, weights=y, minlength=k) / count
    variance = (torch.bincount(index, weights=y**2, minlength=k) / count - mean**2).clamp(min=0) * count / (count - 1)
    se = (variance / count).sqrt().where(count >= 2, torch.tensor(float("nan"), dtype=torch.float64))
    return 0.5 * (edges[1:] + edges[:-1]), mean, se
