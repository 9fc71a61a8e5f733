"""Sums of Gaussian random variables, densities of sums, and the KL divergence (chapter "Sums of Gaussians").

The identity behind the forward process's closed form: for independent X ~ N(mu_x, Sigma_x), Y ~ N(mu_y, Sigma_y)
and scalars a, b::

    a X + b Y ~ N(a mu_x + b mu_y, a^2 Sigma_x + b^2 Sigma_y)

The density of Z = X + Y, for any independent X and Y, is the convolution p_Z(z) = int p_X(x) p_Y(z - x) dx;
:func:`density_of_sum` computes it on a grid. A mixture sum_k w_k N(mu_k, var_k) is a weighted sum of *densities*,
not the density of a weighted sum of variables: compare :class:`diffnotes.mixtures.GaussianMixture` (the one mixture
class of the book) with :func:`gaussian_sum`. The KL divergence between Gaussians (:func:`gaussian_kl`,
:func:`gaussian_kl_to_standard_normal`) is the one formula that the prior term of chapter 3 and the loss terms of
chapter 11 use.

Scalars and grids are float64 tensors; a variance ``var`` is sigma^2 (never sigma), a covariance ``cov`` is a
(d, d) matrix. Randomness enters as a ``generator`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy import signal

from diffnotes.checks import positive_int, same_shape
from diffnotes.runtime import by_profile

# What the functions accept for a number, vector or matrix (a tensor, a float or nested lists of floats).
TensorLike = torch.Tensor | float | Sequence[float] | Sequence[Sequence[float]]


@dataclass(frozen=True)
class GaussiansConfig:
    """Sizes for the chapter's checks and figures.

    Attributes:
        n_samples: Monte Carlo draws per check.
        grid_points: points on the density grid (odd, so that the grid is symmetric about 0).
        half_width: the grid spans [-half_width, half_width].
        bins: histogram bins per figure panel.
    """

    n_samples: int
    grid_points: int
    half_width: float
    bins: int

    @classmethod
    def for_profile(cls, profile: str | None = None) -> GaussiansConfig:
        """Quick: a second or two on a laptop CPU. Full: 20 times the samples on a grid 4 times finer."""
        return cls(
            n_samples=by_profile(quick=200_000, full=4_000_000, profile=profile),
            grid_points=by_profile(quick=2001, full=8001, profile=profile),
            half_width=12.0,
            bins=by_profile(quick=80, full=160, profile=profile),
        )


def _as_float64(name: str, value: TensorLike) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return tensor


def _check_var(name: str, var: TensorLike) -> torch.Tensor:
    var = _as_float64(name, var)
    if bool((var < 0).any()):
        raise ValueError(f"{name} is a variance and must be >= 0, got minimum {float(var.min()):.4g}")
    return var


def _check_cov(name: str, cov: TensorLike, d: int) -> torch.Tensor:
    cov = _as_float64(name, cov)
    if cov.shape != (d, d):
        raise ValueError(f"{name} must be a ({d}, {d}) covariance matrix, got shape {tuple(cov.shape)}")
    scale = max(1.0, float(cov.abs().max()))
    if not torch.allclose(cov, cov.T, atol=1e-12 * scale, rtol=0.0):
        raise ValueError(f"{name} must be symmetric positive semi-definite; it is not symmetric")
    smallest = float(torch.linalg.eigvalsh(cov).min())
    if smallest < -1e-10 * scale:
        raise ValueError(f"{name} must be symmetric positive semi-definite; its smallest eigenvalue is {smallest:.4g}")
    return cov


def gaussian_sum(
    mu_x: TensorLike, var_x: TensorLike, mu_y: TensorLike, var_y: TensorLike, a: TensorLike = 1.0, b: TensorLike = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of a X + b Y for independent X ~ N(mu_x, var_x), Y ~ N(mu_y, var_y) (book eq. ``ch1-eq-sum``).

    Returns (a mu_x + b mu_y, a^2 var_x + b^2 var_y). Tensors of any one shape are taken entry by entry
    (independent coordinates); with a = b = 1 this is the lecture's N(mu_X + mu_Y, sigma_X^2 + sigma_Y^2).

    Raises:
        ValueError: if a variance is negative, or the four arguments do not share one shape.
    """
    mu_x, mu_y = _as_float64("mu_x", mu_x), _as_float64("mu_y", mu_y)
    var_x, var_y = _check_var("var_x", var_x), _check_var("var_y", var_y)
    for name, value in (("var_x", var_x), ("mu_y", mu_y), ("var_y", var_y)):
        same_shape(name, value, "mu_x", mu_x)
    return a * mu_x + b * mu_y, a**2 * var_x + b**2 * var_y


def gaussian_vector_sum(
    mu_x: TensorLike, cov_x: TensorLike, mu_y: TensorLike, cov_y: TensorLike, a: TensorLike = 1.0, b: TensorLike = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and covariance (d, d) of a X + b Y for independent Gaussian vectors (book eq. ``ch1-eq-scaled-sum``).

    X ~ N(mu_x, cov_x) and Y ~ N(mu_y, cov_y) give a X + b Y ~ N(a mu_x + b mu_y, a^2 cov_x + b^2 cov_y).

    Raises:
        ValueError: if ``mu_x`` is not 1-D, ``mu_y`` differs in shape, or a covariance is not a symmetric
            positive semi-definite (d, d) matrix.
    """
    mu_x, mu_y = _as_float64("mu_x", mu_x), _as_float64("mu_y", mu_y)
    if mu_x.dim() != 1:
        raise ValueError(f"mu_x must be a 1-D mean vector (d,), got shape {tuple(mu_x.shape)}")
    same_shape("mu_y", mu_y, "mu_x", mu_x)
    d = mu_x.shape[0]
    cov_x, cov_y = _check_cov("cov_x", cov_x, d), _check_cov("cov_y", cov_y, d)
    return a * mu_x + b * mu_y, a**2 * cov_x + b**2 * cov_y


def sample_gaussian(mu: TensorLike, cov: TensorLike, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n samples (n, d) of N(mu, cov) as mu + L eps with L L^T = cov (eigen-decomposition, so cov may be singular).

    Raises:
        ValueError: if ``mu`` is not 1-D or ``cov`` is not a symmetric positive semi-definite (d, d) matrix.
    """
    positive_int("n", n, " (a number of samples)")
    mu = _as_float64("mu", mu)
    if mu.dim() != 1:
        raise ValueError(f"mu must be a 1-D mean vector (d,), got shape {tuple(mu.shape)}")
    cov = _check_cov("cov", cov, mu.shape[0])
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    root = eigenvectors * eigenvalues.clamp(min=0).sqrt()  # (d, d), root @ root.T == cov
    eps = torch.randn(n, mu.shape[0], generator=generator, dtype=torch.float64)  # (n, d)
    return mu + eps @ root.T


def sample_cov_se(cov: TensorLike, n: int) -> torch.Tensor:
    """Standard errors (d, d) of the sample covariance of n Gaussian draws: sqrt((C_ii C_jj + C_ij^2) / n).

    For d = 1 this is the standard error of a sample variance, var * sqrt(2 / n).
    """
    positive_int("n", n, " (a number of samples)")
    cov = _as_float64("cov", cov)
    diag = torch.diagonal(cov)
    return ((torch.outer(diag, diag) + cov**2) / n).sqrt()


def normal_pdf(x: torch.Tensor, mu: TensorLike, var: TensorLike) -> torch.Tensor:
    """The density N(x; mu, var) of a scalar Gaussian at every entry of ``x`` (var > 0; var is sigma^2).

    Raises:
        ValueError: if ``var`` is not positive.
    """
    var = _as_float64("var", var)
    if bool((var <= 0).any()):
        raise ValueError(f"var must be > 0 for a density, got {var.tolist()}")
    x, mu = torch.as_tensor(x, dtype=torch.float64), _as_float64("mu", mu)
    return torch.exp(-((x - mu) ** 2) / (2 * var)) / torch.sqrt(2 * math.pi * var)


def density_of_sum(p_x: torch.Tensor, p_y: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The density of Z = X + Y on ``grid``: p_Z(z) = int p_X(x) p_Y(z - x) dx (book eq. ``ch1-eq-riemann``).

    The integral becomes a Riemann sum, dz * sum_i p_X(x_i) p_Y(z - x_i), computed by FFT
    (``scipy.signal.fftconvolve``). Mass of p_Z beyond the grid is lost, so the grid must be wide enough.

    Args:
        p_x: (n,) the density of X on ``grid``.
        p_y: (n,) the density of Y on ``grid``.
        grid: (n,) equally spaced points symmetric about 0, n odd, so that z = x + y lands on the same grid.

    Returns:
        (n,) the density of Z on ``grid``.

    Raises:
        ValueError: if ``grid`` is not odd-length, equally spaced and symmetric, or a density's shape differs.
    """
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.dim() != 1 or grid.numel() < 3 or grid.numel() % 2 == 0:
        raise ValueError(f"grid must be 1-D with an odd number (>= 3) of points, got shape {tuple(grid.shape)}")
    steps = grid.diff()
    dz = float(steps.mean())
    if dz <= 0 or float((steps - dz).abs().max()) > 1e-9 * dz or float((grid + grid.flip(0)).abs().max()) > 1e-9 * dz:
        raise ValueError("grid must be increasing, equally spaced and symmetric about 0 (e.g. linspace(-L, L, odd n))")
    p_x, p_y = torch.as_tensor(p_x, dtype=torch.float64), torch.as_tensor(p_y, dtype=torch.float64)
    same_shape("p_x", p_x, "grid", grid)
    same_shape("p_y", p_y, "grid", grid)
    p_z = signal.fftconvolve(p_x.numpy(), p_y.numpy(), mode="same") * dz  # "same": centred, so index j is grid[j]
    return torch.from_numpy(p_z).clamp(min=0.0)  # FFT round-off can leave tiny negatives in the tails


def gaussian_kl(mean1: torch.Tensor, var1: torch.Tensor, mean2: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per coordinate (book eq. ``ch11-eq-kl``); sum it for a diagonal Gaussian.

    1/2 (r - 1 - log r + (mean1 - mean2)^2 / var2) with r = var1 / var2; the arguments broadcast to one shape.

    Raises:
        ValueError: naming the argument, if a variance is not > 0 or the shapes do not broadcast.
    """
    tensors = [torch.as_tensor(v) for v in (mean1, var1, mean2, var2)]
    for name, var in (("var1", tensors[1]), ("var2", tensors[3])):
        if not bool((var > 0).all()):
            raise ValueError(f"{name} is a variance and must be > 0; got minimum {float(var.min()):.4g}")
    try:
        mean1, var1, mean2, var2 = torch.broadcast_tensors(*tensors)
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(v.shape)}" for n, v in zip(("mean1", "var1", "mean2", "var2"), tensors))
        raise ValueError(f"mean1, var1, mean2 and var2 must broadcast to one shape; got {shapes}") from None
    r_minus_1 = (var1 - var2) / var2  # r - 1 - log r = x - log1p(x), x = r - 1: no cancellation near r = 1
    return 0.5 * (r_minus_1 - torch.log1p(r_minus_1) + (mean1 - mean2) ** 2 / var2)


def gaussian_kl_to_standard_normal(mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """KL(N(m, S) || N(0, I)) = (tr S + m^T m - D - log det S) / 2, batched: mean (..., D), cov (..., D, D) -> (...)."""
    d = mean.shape[-1]
    trace = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)
    return 0.5 * (trace + mean.pow(2).sum(-1) - d - torch.logdet(cov))
