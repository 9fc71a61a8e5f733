"""Toy data, and ancestral samples of q(x_t) (chapters "Ancestral sampling of the noisy marginals" and "The noise predictor").

q(x_t) = int q(x_t | x_0) q(x_0) dx_0 is sampled by drawing x_0 ~ q(x_0), then x_t ~ q(x_t | x_0)
(:func:`ancestral_sample`). For a Gaussian mixture q(x_0), q(x_t) is a Gaussian mixture in closed form
(:meth:`~diffnotes.mixtures.GaussianMixture.diffuse`): component N(mu_k, Sigma_k) becomes
N(sqrt(alpha_bar_t) mu_k, alpha_bar_t Sigma_k + (1 - alpha_bar_t) I), with the same weight.

Chapter 5's data, the two moons (:func:`moons`), has its mean and covariance in closed form (:func:`moons_moments`).
Points are float64 tensors of shape (n, D); randomness enters as a ``generator`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffnotes.checks import positive_int
from diffnotes.forward import q_sample
from diffnotes.mixtures import alpha_bar_at
from diffnotes.runtime import by_profile
from diffnotes.schedules import Schedule


@dataclass(frozen=True)
class ToyConfig:
    """Sizes for the chapter's checks and figures.

    Attributes:
        n_samples: ancestral samples per timestep for the 1-D and 2-D checks.
        n_grid_1d: quadrature points for integrals over a 1-D density.
        n_grid_2d: quadrature points per axis for integrals over a 2-D density.
        digit_repeats: noise draws per digit image for the per-pixel statistics.
    """

    n_samples: int
    n_grid_1d: int
    n_grid_2d: int
    digit_repeats: int

    @classmethod
    def for_profile(cls, profile: str | None = None) -> ToyConfig:
        """The quick profile runs in seconds on a laptop CPU; the full one draws 50 times more samples."""
        return cls(
            n_samples=by_profile(quick=20_000, full=1_000_000, profile=profile),
            n_grid_1d=by_profile(quick=4001, full=20001, profile=profile),
            n_grid_2d=by_profile(quick=151, full=801, profile=profile),
            digit_repeats=by_profile(quick=2, full=100, profile=profile),
        )


def ancestral_sample(
    schedule: Schedule, data_sampler: Callable[[int, torch.Generator | None], torch.Tensor], t: torch.Tensor | int,
    n: int, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw x_0 ~ q(x_0), then x_t ~ q(x_t | x_0); x_t alone is a draw of q(x_t) (book eq. ``ch4-eq-ancestral``).

    Args:
        schedule: the noise schedule.
        data_sampler: ``data_sampler(n, generator)`` returns n draws (n, ...) of q(x_0).
        t: an int in 0..T, or an (n,) tensor of them (one timestep per draw, as in training).
        n: the number of draws.
        generator: the source of randomness for both steps.

    Returns:
        The tuple (x0, eps, x_t) of (n, ...) tensors, the data, the compound noise and sqrt(alpha_bar_t) x0 +
        sqrt(1 - alpha_bar_t) eps.
    """
    positive_int("n", n)
    x0 = data_sampler(n, generator)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    return x0, eps, q_sample(schedule, x0, t, eps)


def marginal_mean_var(schedule: Schedule, t: int, mean0: torch.Tensor, var0: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-coordinate mean and variance of q(x_t) from those of the data (book eq. ``ch4-eq-pixel-moments``).

    sqrt(alpha_bar_t) mean0 and alpha_bar_t var0 + 1 - alpha_bar_t, for tensors ``mean0``, ``var0`` of any shape.
    """
    alpha_bar = alpha_bar_at(schedule, t)
    return alpha_bar.sqrt() * mean0, alpha_bar * var0 + (1 - alpha_bar)


def diffused_pixel_stats(
    schedule: Schedule, x0: torch.Tensor, t: int, repeats: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel mean and variance of ancestral samples x_t, each image of x0 (N, C, H, W) noised ``repeats`` times.

    The data set is q(x_0) (each image equally likely); the statistics run over all N * repeats draws and
    are accumulated in float64. Returns the mean and the (1/n) variance, each (C, H, W).
    """
    positive_int("repeats", repeats)
    total = torch.zeros(x0.shape[1:], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for _ in range(repeats):
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        x_t = q_sample(schedule, x0, t, eps).to(torch.float64)
        total, total_sq = total + x_t.sum(0), total_sq + x_t.pow(2).sum(0)
    n = x0.shape[0] * repeats
    mean = total / n
    return mean, total_sq / n - mean.pow(2)


def two_moons(n: int, generator: torch.Generator | None = None, noise: float = 0.05) -> torch.Tensor:
    """(n, 2) points on two interleaved half circles of radius 1 (as scikit-learn's ``make_moons``), plus noise.

    Upper moon: (cos a, sin a); lower moon: (1 - cos a, 0.5 - sin a), a uniform in [0, pi]; each point
    picks a moon with probability 1/2 and gets N(0, noise^2 I) added.
    """
    jitter = _noise(n, generator, noise)
    a = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    lower = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
    x = torch.where(lower, 1 - torch.cos(a), torch.cos(a))
    y = torch.where(lower, 0.5 - torch.sin(a), torch.sin(a))
    return torch.stack([x, y], dim=1) + jitter


def _noise(n: int, generator: torch.Generator | None, noise: float) -> torch.Tensor:
    """(n, 2) draws of N(0, noise^2 I), after checking ``n`` and ``noise``."""
    positive_int("n", n)
    if not noise >= 0:
        raise ValueError(f"noise must be a standard deviation >= 0, got {noise!r}")
    return noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)


#: The standard deviation of the jitter added to the two moons.
MOONS_NOISE = 0.05


def moons_moments() -> tuple[torch.Tensor, torch.Tensor]:
    """The exact mean (2,) and covariance (2, 2) of :func:`diffnotes.toy.two_moons` (book eq. ``ch5-eq-moons``).

    With a uniform on [0, pi]: E cos a = 0, E sin a = 2/pi, E cos^2 a = E sin^2 a = 1/2, E cos a sin a = 0, so the
    mean is (1/2, 1/4) and the covariance [[3/4, 1/8 - 1/pi], [1/8 - 1/pi, 9/16 - 1/pi]] + noise^2 I.
    """
    mean = torch.tensor([0.5, 0.25], dtype=torch.float64)
    c = 0.125 - 1 / math.pi
    cov = torch.tensor([[0.75, c], [c, 0.5625 - 1 / math.pi]], dtype=torch.float64) + MOONS_NOISE**2 * torch.eye(2)
    return mean, cov


def moons(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2) float32 draws of the chapter's data: :func:`diffnotes.toy.two_moons`, shifted to mean zero."""
    return (two_moons(n, generator, noise=MOONS_NOISE) - moons_moments()[0]).float()
