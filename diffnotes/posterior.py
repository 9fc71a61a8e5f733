"""The reverse process in theory: the latent-variable bound and the posterior (chapters 9 and 10).

Chapter 9 (book eqs. ``ch9-eq-joint``, ``ch9-eq-bound``): p_theta(x_{0:T}) = p(x_T) prod_t p_theta(x_{t-1} | x_t),
and -log p_theta(x_0) <= E_q[-log p_theta(x_{0:T}) + log q(x_{1:T} | x_0)]. For scalar data and linear-Gaussian
reverse steps (:class:`LinearReverse`) p_theta(x_0) is Gaussian, so the bound can be compared with the exact NLL.

Chapter 10, the posterior of the forward process, t = 1..T (book eqs. ``ch10-eq-post-mean``, ``ch10-eq-post-var``)::

    q(x_{t-1} | x_t, x_0) = N(mu-tilde_t, beta-tilde_t I)
    mu-tilde_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
                 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
    beta-tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t

and four equivalent things a network may predict from x_t (book eqs. ``ch10-eq-x0``, ``ch10-eq-score``,
``ch10-eq-v``): eps; x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t); the score
grad log q(x_t) ~ -eps / sqrt(1 - alpha_bar_t); v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0.
:func:`convert` turns any one into any other. Every function takes t in 1..T (book convention; diffusers: t - 1).
beta-tilde_t, x0_hat and mu_theta come from :mod:`diffnotes.sampling` (``posterior_variance``, ``predict_x0``,
``mu_theta``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from diffnotes.forward import log_normal, log_q_joint, q_step
from diffnotes.runtime import by_profile
from diffnotes.sampling import eps_from_x0, mu_theta, posterior_variance, predict_x0
from diffnotes.schedules import Schedule, check_timestep

#: The quantities a network can predict from x_t; :func:`convert` maps each to each.
PARAMETRISATIONS: tuple[str, ...] = ("eps", "x0", "score", "v")


@dataclass(frozen=True)
class PosteriorConfig:
    """Sample sizes of chapters 9 and 10: Monte Carlo draws (``n_mc``) and paths for the bound (``n_paths``)."""

    n_mc: int = 200_000
    n_paths: int = 20_000

    @classmethod
    def for_profile(cls, profile: str | None = None) -> PosteriorConfig:
        """The quick profile runs in seconds on a laptop CPU; the full profile draws 20 times more samples."""
        return by_profile(quick=cls(), full=cls(n_mc=4_000_000, n_paths=400_000), profile=profile)


def _check_t(schedule: Schedule, t: torch.Tensor | int, x_t: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` as int64 after checking that it lies in 1..T and, if a (B,) tensor, matches the batch of ``x_t``."""
    t = check_timestep(t, schedule.T)
    if t.numel() and int(t.min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T}, got a minimum of {int(t.min())}")
    if t.dim() > 1 or (x_t is not None and t.dim() == 1 and (x_t.dim() == 0 or t.shape[0] != x_t.shape[0])):
        raise ValueError(f"t must be an int or a (B,) tensor with B = x_t.shape[0]; got shape {tuple(t.shape)}")
    return t


def _check_same_shape(name: str, value: torch.Tensor, x_t: torch.Tensor) -> None:
    if value.shape != x_t.shape:
        raise ValueError(f"{name} must have the shape of x_t, {tuple(x_t.shape)}; got {tuple(value.shape)}")


def _check_grid(grid: torch.Tensor) -> torch.Tensor:
    """The spacing of a uniform 1-D grid, after checking that it is one."""
    spacing = grid.diff() if grid.dim() == 1 and grid.numel() >= 2 else None
    if spacing is None or not torch.allclose(spacing, spacing[0].expand_as(spacing)):
        raise ValueError("grid must be a 1-D tensor of at least 2 uniformly spaced values")
    return spacing[0]


def _alpha_bar(schedule: Schedule, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t for t in 1..T, shaped to broadcast over the batch ``x`` (B, ...)."""
    return schedule.at(schedule.alpha_bar, _check_t(schedule, t, x), x.dim()).to(x)


def _broadcast(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A 0-d or (B,) tensor reshaped to (B, 1, ..., 1) to multiply the batch ``x`` (B, ...)."""
    return values.reshape(values.shape + (1,) * (x.dim() - values.dim())).to(x)


# --- chapter 10: the posterior ----------------------------------------------------------------------------------


def posterior_mean_coefficients(schedule: Schedule, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights of x_0 and of x_t in mu-tilde_t (book eq. ``ch10-eq-post-mean``), each of the shape of ``t``.

    coef_x0 = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t);
    coef_x_t = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).
    """
    t = _check_t(schedule, t)
    ab, ab_prev = schedule.alpha_bar[t], schedule.alpha_bar[t - 1]
    return ab_prev.sqrt() * schedule.beta[t] / (1.0 - ab), schedule.alpha[t].sqrt() * (1.0 - ab_prev) / (1.0 - ab)


def posterior_mean_var(
    schedule: Schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean mu-tilde_t and variance beta-tilde_t of q(x_{t-1} | x_t, x_0) (``ch10-eq-post-mean``, ``ch10-eq-post-var``).

    Args:
        x0, x_t: (B, ...) the clean and the noisy data.
        t: an int in 1..T, or a (B,) tensor of them. At t = 1 the posterior is the point x_0 (variance 0).

    Returns:
        the mean (B, ...), and the variance shaped (B, 1, ..., 1) (0-d for an int ``t``), which broadcasts.
    """
    _check_same_shape("x0", x0, x_t)
    t = _check_t(schedule, t, x_t)
    coef_x0, coef_x_t = posterior_mean_coefficients(schedule, t)
    mean = _broadcast(coef_x0, x_t) * x0 + _broadcast(coef_x_t, x_t) * x_t
    return mean, _broadcast(posterior_variance(schedule, t), x_t)


def posterior_mean_from_eps(
    schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor
) -> torch.Tensor:
    """mu-tilde_t = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) (book eq. ``ch10-eq-post-mean-eps``).

    The mean of :func:`posterior_mean_var` with x_0 written through the noise eps of x_t; with eps_theta in place
    of eps it is Algorithm 2's mean, :func:`diffnotes.sampling.mu_theta`. Shapes: (B, ...).
    """
    _check_same_shape("eps", eps, x_t)
    return mu_theta(schedule, x_t, _check_t(schedule, t, x_t), eps)


# --- the four parametrisations ----------------------------------------------------------------------------------


def score_from_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """score = -eps / sqrt(1 - alpha_bar_t) (book eq. ``ch10-eq-score``); with E[eps | x_t] it is grad log q(x_t)."""
    _check_same_shape("eps", eps, x_t)
    return -eps / (1.0 - _alpha_bar(schedule, t, x_t)).sqrt()


def eps_from_score(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, score: torch.Tensor) -> torch.Tensor:
    """eps = -sqrt(1 - alpha_bar_t) score, the inverse of :func:`score_from_eps`."""
    _check_same_shape("score", score, x_t)
    return -(1.0 - _alpha_bar(schedule, t, x_t)).sqrt() * score


def tweedie_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, score: torch.Tensor) -> torch.Tensor:
    """Tweedie's formula, E[x_0 | x_t] = (x_t + (1 - alpha_bar_t) score) / sqrt(alpha_bar_t) (``ch10-eq-tweedie``).

    ``score`` is grad log q(x_t) of the marginal; shapes (B, ...).
    """
    _check_same_shape("score", score, x_t)
    ab = _alpha_bar(schedule, t, x_t)
    return (x_t + (1.0 - ab) * score) / ab.sqrt()


def velocity(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (book eq. ``ch10-eq-v``; diffusers' ``get_velocity``)."""
    _check_same_shape("eps", eps, x0)
    ab = _alpha_bar(schedule, t, x0)
    return ab.sqrt() * eps - (1.0 - ab).sqrt() * x0


def eps_from_v(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
    """eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t (book eq. ``ch10-eq-v-inverse``)."""
    _check_same_shape("v", v, x_t)
    ab = _alpha_bar(schedule, t, x_t)
    return ab.sqrt() * v + (1.0 - ab).sqrt() * x_t


def x0_from_v(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
    """x_0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v (book eq. ``ch10-eq-v-inverse``)."""
    _check_same_shape("v", v, x_t)
    ab = _alpha_bar(schedule, t, x_t)
    return ab.sqrt() * x_t - (1.0 - ab).sqrt() * v


def convert(
    schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, value: torch.Tensor, source: str, target: str
) -> torch.Tensor:
    """Turn a prediction of ``source`` into the equivalent ``target``, both in :data:`PARAMETRISATIONS`, via eps.

    ``x_t`` and ``value`` are (B, ...); ``t`` is an int in 1..T or a (B,) tensor.
    """
    for name, choice in (("source", source), ("target", target)):
        if choice not in PARAMETRISATIONS:
            valid = ", ".join(PARAMETRISATIONS)
            raise ValueError(f"{name}={choice!r} is not a parametrisation; valid ones are: {valid}")
    _check_same_shape("value", value, x_t)
    if source == "eps":
        eps = value
    elif source == "x0":
        eps = eps_from_x0(schedule, x_t, t, value)
    elif source == "score":
        eps = eps_from_score(schedule, x_t, t, value)
    else:
        eps = eps_from_v(schedule, x_t, t, value)
    if target == "eps":
        return eps
    if target == "score":
        return score_from_eps(schedule, x_t, t, eps)
    x0 = predict_x0(schedule, x_t, _check_t(schedule, t, x_t), eps)
    return x0 if target == "x0" else velocity(schedule, x0, t, eps)


# --- chapter 10: the checks -------------------------------------------------------------------------------------


def _check_positive(name: str, value: torch.Tensor | float) -> torch.Tensor:
    value = torch.as_tensor(value, dtype=torch.float64)
    if not bool((value > 0).all()) or not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} is a variance and must be finite and > 0, got {value.tolist()!r}")
    return value


def posterior_on_grid(schedule: Schedule, x0: float, x_t: float, t: int, grid: torch.Tensor) -> torch.Tensor:
    """q(x_{t-1} | x_t, x_0) by brute-force Bayes (book eq. ``ch10-eq-bayes``) on a uniform ``grid`` (G,) of x_{t-1}.

    The numerator q(x_t | x_{t-1}) q(x_{t-1} | x_0) is evaluated at every grid point and normalised numerically, so
    the denominator q(x_t | x_0) is never used. Scalar data, t in 2..T (at t = 1 the posterior is a point mass).
    Returns (G,) density values.
    """
    if int(_check_t(schedule, t)) < 2:
        raise ValueError(f"t must lie in 2..T={schedule.T} for a density on a grid, got {t}")
    spacing = _check_grid(grid)
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
    s2 = float(_check_positive("s2", s2))
    ab = float(schedule.alpha_bar[_check_t(schedule, t)])
    return -(x_t - math.sqrt(ab) * m) / (ab * s2 + 1.0 - ab)


def gaussian_data_x0_mean(schedule: Schedule, x_t: torch.Tensor, t: int, m: float, s2: float) -> torch.Tensor:
    """The exact E[x_0 | x_t] for data N(m, s2) (book eq. ``ch10-eq-tweedie-gauss``), with no score in it:

    m + sqrt(alpha_bar_t) s2 / (alpha_bar_t s2 + 1 - alpha_bar_t) (x_t - sqrt(alpha_bar_t) m), the conditional mean
    of a jointly Gaussian pair.
    """
    s2 = float(_check_positive("s2", s2))
    ab = float(schedule.alpha_bar[_check_t(schedule, t)])
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


# --- chapter 9: a latent-variable model small enough to integrate -----------------------------------------------


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
        _check_positive("var", self.var[1:])

    @property
    def T(self) -> int:  # noqa: N802 (the lecture's symbol)
        """The number of reverse steps."""
        return self.a.shape[0] - 1


def true_reverse_gaussian(schedule: Schedule, m: float = 0.0, s2: float = 1.0) -> LinearReverse:
    """The exact reverse steps q(x_{t-1} | x_t) of the forward process for data N(m, s2) (``ch9-eq-true-reverse``).

    (x_{t-1}, x_t) is jointly Gaussian with variances v_{t-1}, v_t and covariance sqrt(alpha_t) v_{t-1}, where
    v_t = alpha_bar_t s2 + 1 - alpha_bar_t; condition on x_t. For m = 0, s2 = 1: a_t = sqrt(alpha_t), var_t = beta_t.
    """
    s2 = float(_check_positive("s2", s2))
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
    spacing = _check_grid(grid)
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
