"""The posterior of the forward process and the four parametrisations (chapter "The posterior").

For t = 1..T (book eqs. ``ch10-eq-post-mean``, ``ch10-eq-post-var``)::

    q(x_{t-1} | x_t, x_0) = N(mu-tilde_t, beta-tilde_t I)
    mu-tilde_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
                 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
    beta-tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t

A noise predictor's output eps_theta determines x0_hat (:func:`predict_x0`) and, through it, the mean of the reverse
step (:func:`mu_theta`, Algorithm 2's line 4). Four equivalent things a network may predict from x_t (book eqs.
``ch10-eq-x0``, ``ch10-eq-score``, ``ch10-eq-v``): eps; x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t);
the score grad log q(x_t) ~ -eps / sqrt(1 - alpha_bar_t); v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0.
:func:`convert` turns any one into any other. Every function takes t in 1..T (book convention; diffusers: t - 1).

This module comes right after the forward process in the package's order: the samplers, the loss terms and the
exact predictors all build on these formulas, and it imports nothing but the schedule. Brute-force checks of the
formulas (Bayes' rule on a grid) are in :mod:`diffnotes.posterior_grid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffnotes.checks import one_of, same_shape
from diffnotes.runtime import by_profile
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


def check_t(schedule: Schedule, t: torch.Tensor | int, x_t: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` as int64 after checking that it lies in 1..T and, if a (B,) tensor, matches the batch of ``x_t``."""
    t = check_timestep(t, schedule.T)
    if t.numel() and int(t.min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T}, got a minimum of {int(t.min())}")
    if t.dim() > 1 or (x_t is not None and t.dim() == 1 and (x_t.dim() == 0 or t.shape[0] != x_t.shape[0])):
        raise ValueError(f"t must be an int or a (B,) tensor with B = x_t.shape[0]; got shape {tuple(t.shape)}")
    return t


def _alpha_bar(schedule: Schedule, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t for t in 1..T, shaped to broadcast over the batch ``x`` (B, ...)."""
    return schedule.at(schedule.alpha_bar, check_t(schedule, t, x), x.dim()).to(x)


def _broadcast(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A 0-d or (B,) tensor reshaped to (B, 1, ..., 1) to multiply the batch ``x`` (B, ...)."""
    return values.reshape(values.shape + (1,) * (x.dim() - values.dim())).to(x)


def posterior_mean_coefficients(schedule: Schedule, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights of x_0 and of x_t in mu-tilde_t (book eq. ``ch10-eq-post-mean``), each of the shape of ``t``.

    coef_x0 = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t);
    coef_x_t = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).
    """
    t = check_t(schedule, t)
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
    same_shape("x0", x0, "x_t", x_t)
    t = check_t(schedule, t, x_t)
    coef_x0, coef_x_t = posterior_mean_coefficients(schedule, t)
    mean = _broadcast(coef_x0, x_t) * x0 + _broadcast(coef_x_t, x_t) * x_t
    return mean, _broadcast(posterior_variance(schedule, t), x_t)


def posterior_variance(schedule: Schedule, t: torch.Tensor | int) -> torch.Tensor:
    """beta-tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t for t in 1..T (zero at t = 1)."""
    t = check_timestep(t, schedule.T)
    if int(t.min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T} for the posterior variance, got {int(t.min())}")
    ab, beta = schedule.alpha_bar, schedule.beta
    return (1.0 - ab[t - 1]) / (1.0 - ab[t]) * beta[t]


def predict_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, eps_theta: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t): the kernel solved for x_0."""
    ab = schedule.at(schedule.alpha_bar, t, x_t.dim()).to(x_t)
    return (x_t - (1.0 - ab).sqrt() * eps_theta) / ab.sqrt()


def eps_from_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, x0_hat: torch.Tensor) -> torch.Tensor:
    """eps_hat = (x_t - sqrt(alpha_bar_t) x0_hat) / sqrt(1 - alpha_bar_t) (book eqs. ``ch5-eq-eps-from-x0``,
    ``ch10-eq-x0``): the kernel solved for the noise, the inverse of :func:`predict_x0`. x_t, x0_hat: (B, ...)."""
    if x0_hat.shape != x_t.shape:
        raise ValueError(f"x0_hat must have the shape of x_t, {tuple(x_t.shape)}; got {tuple(x0_hat.shape)}")
    ab = schedule.at(schedule.alpha_bar, t, x_t.dim()).to(x_t)
    return (x_t - ab.sqrt() * x0_hat) / (1.0 - ab).sqrt()


def mu_theta(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, eps_theta: torch.Tensor) -> torch.Tensor:
    """mu_theta(x_t, t) = 1/sqrt(alpha_t) (x_t - (1 - alpha_t)/sqrt(1 - alpha_bar_t) eps_theta) (Algorithm 2, line 4)."""
    alpha = schedule.at(schedule.alpha, t, x_t.dim()).to(x_t)
    ab = schedule.at(schedule.alpha_bar, t, x_t.dim()).to(x_t)
    return (x_t - (1.0 - alpha) / (1.0 - ab).sqrt() * eps_theta) / alpha.sqrt()


def posterior_mean_from_eps(
    schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor
) -> torch.Tensor:
    """mu-tilde_t = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) (book eq. ``ch10-eq-post-mean-eps``).

    The mean of :func:`posterior_mean_var` with x_0 written through the noise eps of x_t; with eps_theta in place
    of eps it is Algorithm 2's mean, :func:`diffnotes.posterior.mu_theta`. Shapes: (B, ...).
    """
    same_shape("eps", eps, "x_t", x_t)
    return mu_theta(schedule, x_t, check_t(schedule, t, x_t), eps)


def score_from_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """score = -eps / sqrt(1 - alpha_bar_t) (book eq. ``ch10-eq-score``); with E[eps | x_t] it is grad log q(x_t)."""
    same_shape("eps", eps, "x_t", x_t)
    return -eps / (1.0 - _alpha_bar(schedule, t, x_t)).sqrt()


def eps_from_score(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, score: torch.Tensor) -> torch.Tensor:
    """eps = -sqrt(1 - alpha_bar_t) score, the inverse of :func:`score_from_eps`."""
    same_shape("score", score, "x_t", x_t)
    return -(1.0 - _alpha_bar(schedule, t, x_t)).sqrt() * score


def tweedie_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, score: torch.Tensor) -> torch.Tensor:
    """Tweedie's formula, E[x_0 | x_t] = (x_t + (1 - alpha_bar_t) score) / sqrt(alpha_bar_t) (``ch10-eq-tweedie``).

    ``score`` is grad log q(x_t) of the marginal; shapes (B, ...).
    """
    same_shape("score", score, "x_t", x_t)
    ab = _alpha_bar(schedule, t, x_t)
    return (x_t + (1.0 - ab) * score) / ab.sqrt()


def velocity(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (book eq. ``ch10-eq-v``; diffusers' ``get_velocity``)."""
    same_shape("eps", eps, "x0", x0)
    ab = _alpha_bar(schedule, t, x0)
    return ab.sqrt() * eps - (1.0 - ab).sqrt() * x0


def eps_from_v(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
    """eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t (book eq. ``ch10-eq-v-inverse``)."""
    same_shape("v", v, "x_t", x_t)
    ab = _alpha_bar(schedule, t, x_t)
    return ab.sqrt() * v + (1.0 - ab).sqrt() * x_t


def convert(
    schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor | int, value: torch.Tensor, source: str, target: str
) -> torch.Tensor:
    """Turn a prediction of ``source`` into the equivalent ``target``, both in :data:`PARAMETRISATIONS`, via eps.

    ``x_t`` and ``value`` are (B, ...); ``t`` is an int in 1..T or a (B,) tensor.
    """
    for name, choice in (("source", source), ("target", target)):
        one_of(name, choice, PARAMETRISATIONS, "a parametrisation")
    same_shape("value", value, "x_t", x_t)
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
    x0 = predict_x0(schedule, x_t, check_t(schedule, t, x_t), eps)
    return x0 if target == "x0" else velocity(schedule, x0, t, eps)
