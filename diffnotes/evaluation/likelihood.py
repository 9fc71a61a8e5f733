"""The reverse process as a latent-variable model, with exact likelihoods (chapter "The reverse process as a
latent-variable model").

Book eqs. ``ch9-eq-joint``, ``ch9-eq-bound``: p_theta(x_{0:T}) = p(x_T) prod_t p_theta(x_{t-1} | x_t), and
-log p_theta(x_0) <= E_q[-log p_theta(x_{0:T}) + log q(x_{1:T} | x_0)]. For scalar data and linear-Gaussian
reverse steps (:class:`LinearReverse`) p_theta(x_0) is Gaussian, so the bound (:func:`bound_samples`) can be
compared with the exact negative log-likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from diffnotes.checks import positive_variance
from diffnotes.forward import log_q_joint, q_step
from diffnotes.posterior_grid import grid_spacing
from diffnotes.schedules import Schedule


@dataclass(frozen=True)
class LinearReverse:
    """A 1-D reverse chain p(x_T) = N(0, 1), p_theta(x_{t-1} | x_t) = N(a_t x_t + b_t, var_t) (``ch9-eq-linear``).

    ``a``, ``b``, ``var`` are (T + 1,) float64 tensors indexed by t = 1..T (entry 0 unused, as in a Schedule).
    """

    a: torch.Tensor
    b: torch.Tensor
    var: torch.Tensor

    def __post_init__(self) -> None:
        shapes = [tuple(v.shape) for v in (self.a, self.b, self.var)]
        if len(set(shapes)) != 1 or len(shapes[0]) != 1 or shapes[0][0] < 2:
            raise ValueError(f"a, b and var must be (T + 1,) tensors with T >= 1, got shapes {shapes}")
        positive_variance("var", self.var[1:])

    @property
    def T(self) -> int:  # noqa: N802 (the lecture's symbol)
        """The number of reverse steps."""
        return self.a.shape[0] - 1


def true_reverse_gaussian(schedule: Schedule, m: float = 0.0, s2: float = 1.0) -> LinearReverse:
    """The exact reverse steps q(x_{t-1} | x_t) of the forward process for data N(m, s2) (``ch9-eq-true-reverse``).

    (x_{t-1}, x_t) is jointly Gaussian with variances v_{t-1}, v_t and covariance sqrt(alpha_t) v_{t-1}, where
    v_t = alpha_bar_t s2 + 1 - alpha_bar_t; condition on x_t. For m = 0, s2 = 1: a_t = sqrt(alpha_t), var_t = beta_t.
    """
    s2 = float(positive_variance("s2", s2))
    ab, alpha = schedule.alpha_bar.double(), schedule.alpha.double()
    mean, v = ab.sqrt() * m, ab * s2 + 1.0 - ab  # (T + 1,) the moments of each x_t under q
    a, b, var = torch.zeros_like(ab), torch.zeros_like(ab), torch.ones_like(ab)
    a[1:] = alpha[1:].sqrt() * v[:-1] / v[1:]
    b[1:] = mean[:-1] - a[1:] * mean[1:]
    var[1:] = v[:-1] - alpha[1:] * v[:-1] ** 2 / v[1:]
    return LinearReverse(a, b, var)


def reverse_marginal(reverse: LinearReverse) -> tuple[float, float]:
    """Mean and variance of p_theta(x_0), pushing N(0, 1) down the chain (book eq. ``ch9-eq-exact``)."""
    mean, var = 0.0, 1.0
    for t in range(reverse.T, 0, -1):
        a, b, v = float(reverse.a[t]), float(reverse.b[t]), float(reverse.var[t])
        mean, var = a * mean + b, a**2 * var + v
    return mean, var


def log_p_x0(reverse: LinearReverse, x0: torch.Tensor) -> torch.Tensor:
    """The exact log p_theta(x_0) = log N(x_0; mean, var) of :func:`reverse_marginal`, for ``x0`` (N,); returns (N,)."""
    mean, var = reverse_marginal(reverse)
    return -0.5 * ((x0.double() - mean) ** 2 / var + math.log(2 * math.pi * var))


def log_p_x0_numerical(reverse: LinearReverse, x0: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """log p_theta(x_0) = log int p_theta(x_{0:T}) dx_{1:T} (book eq. ``ch9-eq-marginal``), one latent at a time.

    The density of x_T is tabulated on a uniform ``grid`` (G,), pushed through each step by a Riemann sum over x_t,
    and finally evaluated at ``x0`` (N,); returns (N,). Accurate when the grid is fine against sqrt(var_t) and
    covers the mass; it costs T G^2 operations.
    """
    spacing = grid_spacing(grid)
    density = torch.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)  # (G,) p(x_T)
    for t in range(reverse.T, 0, -1):
        targets = grid if t > 1 else x0.reshape(-1).to(grid)  # the values of x_{t-1}
        mean = reverse.a[t] * grid + reverse.b[t]  # (G,) the step's mean for each x_t on the grid
        step = torch.exp(-0.5 * (targets[:, None] - mean[None, :]) ** 2 / reverse.var[t])
        density = step @ density * spacing / math.sqrt(2 * math.pi * float(reverse.var[t]))
    return torch.log(density)


def log_p_joint(reverse: LinearReverse, x0: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """log p_theta(x_{0:T}) = log p(x_T) + sum_t log p_theta(x_{t-1} | x_t) (book eq. ``ch9-eq-joint``).

    ``x0`` is (B,) and ``xs`` (T, B) holds x_1..x_T; returns (B,).
    """
    if x0.dim() != 1 or xs.shape != (reverse.T,) + tuple(x0.shape):
        shapes = f"{tuple(x0.shape)}, {tuple(xs.shape)}"
        raise ValueError(f"x0 must be (B,) and xs (T, B) with T = {reverse.T}; got {shapes}")
    path = torch.cat([x0.unsqueeze(0), xs])  # (T + 1, B): x_0..x_T
    a, b, var = (v[1:, None] for v in (reverse.a, reverse.b, reverse.var))  # (T, 1) for t = 1..T
    steps = -0.5 * ((path[:-1] - a * path[1:] - b) ** 2 / var + torch.log(2 * math.pi * var))
    return steps.sum(dim=0) - 0.5 * (path[-1] ** 2 + math.log(2 * math.pi))


def bound_samples(
    schedule: Schedule, reverse: LinearReverse, x0: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """One Monte Carlo term of the bound per entry of ``x0`` (B,): -log p_theta(x_{0:T}) + log q(x_{1:T} | x_0).

    Each path x_{1:T} ~ q(. | x_0) is drawn by running the forward chain; the mean of the (B,) result estimates the
    bound of book eq. ``ch9-eq-bound``, which is >= -log p_theta(x_0), with equality iff p_theta(x_{1:T} | x_0) = q.
    """
    if reverse.T != schedule.T or x0.dim() != 1:
        raise ValueError(
            f"reverse.T must equal schedule.T={schedule.T} and x0 be (B,); got T={reverse.T}, x0 {tuple(x0.shape)}"
        )
    x0 = x0.double()
    xs, x = [], x0
    for t in range(1, schedule.T + 1):
        x = q_step(schedule, x, t, torch.randn(x.shape, generator=generator, dtype=torch.float64))
        xs.append(x)
    path = torch.stack(xs)  # (T, B): x_1..x_T
    return log_q_joint(schedule, x0, path) - log_p_joint(reverse, x0, path)
