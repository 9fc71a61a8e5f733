"""The training loss in closed form, where the optimal predictor is known (chapter "The training loss").

For data N(m, s2) and 1-D Gaussian mixtures, the optimal noise predictor is known (:mod:`diffnotes.nets.exact`) and
every term of the bound of :mod:`diffnotes.evaluation.bound` has a closed form or a one-dimensional integral:
:func:`gaussian_bound_terms`, :func:`mixture_bound_terms`. Their sum is compared with the data's entropy
(:func:`gaussian_entropy`, :func:`mixture_entropy`), the lowest value any model can reach. Values are nats per
dimension.
"""

from __future__ import annotations

import math

import torch

from diffnotes.checks import positive_variance
from diffnotes.evaluation.bound import F64, check_var_table, terms_from_mse
from diffnotes.evaluation.likelihood import LinearReverse, reverse_marginal
from diffnotes.mixtures import GaussianMixture, integration_grid
from diffnotes.nets.exact import mixture_eps_and_density
from diffnotes.schedules import Schedule


def gaussian_bound_terms(
    schedule: Schedule, m: float, s2: float, var: torch.Tensor, g: torch.Tensor, h: torch.Tensor
) -> torch.Tensor:
    """(T + 1,) the exact L_0, ..., L_T per dimension for data N(m, s2) and eps_theta = g_t x_t + h_t.

    The error is Gaussian, mse_t = (1 - g_t sqrt(1 - alpha_bar_t))^2 + g_t^2 alpha_bar_t s2 + (g_t sqrt(alpha_bar_t) m
    + h_t)^2 (book eq. ``ch11-eq-gauss-mse``), and :func:`~diffnotes.evaluation.bound.terms_from_mse` does the rest.
    """
    s2 = float(positive_variance("s2", s2))
    if g.shape != (schedule.T + 1,) or h.shape != g.shape:
        shapes = f"{tuple(g.shape)}, {tuple(h.shape)}"
        raise ValueError(f"g and h must be (T + 1,) = ({schedule.T + 1},) tables, got {shapes}")
    ab = schedule.alpha_bar
    mse = (1 - g * (1 - ab).sqrt()) ** 2 + g**2 * ab * s2 + (g * ab.sqrt() * m + h) ** 2
    return terms_from_mse(schedule, var, mse, m**2 + s2)


def gaussian_reverse(schedule: Schedule, var: torch.Tensor, g: torch.Tensor, h: torch.Tensor) -> LinearReverse:
    """The model p_theta(x_{t-1} | x_t) = N(a_t x_t + b_t, sigma_t^2) that mu_theta makes of eps_theta = g_t x_t + h_t.

    a_t = (1 - k_t g_t) / sqrt(alpha_t), b_t = -k_t h_t / sqrt(alpha_t), k_t = beta_t / sqrt(1 - alpha_bar_t) (book eq.
    ``ch11-eq-linear-model``).
    """
    var = check_var_table(schedule, var)
    k = schedule.beta / (1 - schedule.alpha_bar).clamp(min=1e-300).sqrt()
    a, b = (1 - k * g) / schedule.alpha.sqrt(), -k * h / schedule.alpha.sqrt()
    a[0], b[0] = 0.0, 0.0
    return LinearReverse(a, b, torch.cat([torch.ones(1, dtype=F64), var[1:]]))


def gaussian_model_nll(reverse: LinearReverse, m: float, s2: float) -> float:
    """E_{x_0 ~ N(m, s2)}[-log p_theta(x_0)] for p_theta(x_0) = N(M, P) (book eq. ``ch11-eq-model-nll``).

    M and P come from :func:`diffnotes.evaluation.likelihood.reverse_marginal`.
    """
    s2 = float(positive_variance("s2", s2))
    mean, var = reverse_marginal(reverse)
    return 0.5 * math.log(2 * math.pi * var) + ((m - mean) ** 2 + s2) / (2 * var)


def gaussian_entropy(s2: float) -> float:
    """The differential entropy of N(m, s2), 1/2 log(2 pi e s2) nats: no model has a lower expected NLL."""
    return 0.5 * math.log(2 * math.pi * math.e * float(positive_variance("s2", s2)))


def mixture_bound_terms(mixture: GaussianMixture, schedule: Schedule, var: torch.Tensor, n_grid: int) -> torch.Tensor:
    """(T + 1,) L_0, ..., L_T for a 1-D mixture and its optimal predictor, from mse_t = 1 - E_q(x_t)[E[eps | x_t]^2].

    The expectation over q(x_t) is a Riemann sum over ``n_grid`` points of [-L, L], L = max(8, abs(mu_k) + 12 s_k).
    """
    if mixture.dim != 1:
        raise ValueError(f"mixture must be 1-D, got dimension {mixture.dim}")
    reach = max(8.0, float((mixture.means[:, 0].abs() + 12 * mixture.covs[:, 0, 0].sqrt()).max()))
    x = torch.linspace(-reach, reach, n_grid, dtype=F64).reshape(1, -1, 1)  # (1, G, 1)
    mse = torch.zeros(schedule.T + 1, dtype=F64)
    for chunk in torch.arange(1, schedule.T + 1).split(256):
        eps_opt, density = mixture_eps_and_density(mixture, schedule.alpha_bar[chunk].reshape(-1, 1, 1), x)  # (C, G)
        mse[chunk] = 1 - (density * eps_opt**2).sum(1) * (2 * reach / (n_grid - 1))
    return terms_from_mse(schedule, var, mse, float(mixture.cov[0, 0] + mixture.mean[0] ** 2))


def mixture_entropy(mixture: GaussianMixture, n_grid: int) -> float:
    """-int q log q for a 1-D or 2-D mixture, on the grid of :func:`diffnotes.mixtures.integration_grid` (nats)."""
    points, cell = integration_grid(mixture, n_grid)
    log_q = mixture.log_prob(points)
    return float(-(log_q.exp() * log_q).sum() * cell)
