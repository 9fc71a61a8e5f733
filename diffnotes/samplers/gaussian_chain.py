"""Algorithm 2 on Gaussian data, where every variance is known (chapter "Sampling").

With data N(0, I) and the exact predictor (:func:`diffnotes.nets.exact.gaussian_data_predictor`), the variance of
the sampler's chain obeys a recursion (:func:`variance_recursion`) that the chain itself must reproduce
(:func:`chain_variances`). The lecture slides' version of the step (:func:`as_on_slide`) breaks it, which is how
chapter 8 shows the slides' typo matters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffnotes.checks import one_of
from diffnotes.nets import NoisePredictor
from diffnotes.samplers.ddpm import SIGMAS, ddpm_sample, sigma_t
from diffnotes.schedules import Schedule


def variance_recursion(
    schedule: Schedule, sigma: str = "beta", coefficient: Callable[[int], float] | None = None
) -> dict[int, float]:
    """Var(x_t) of Algorithm 2's chain on Gaussian data with the exact predictor, from Var(x_T) = 1 (book eq.
    ch8-eq-var-recursion): Var(x_{t-1}) = c_t^2 Var(x_t) + sigma_t^2 for t >= 2, and c_1^2 Var(x_1) at the last step.

    The coefficient c_t of x_t is sqrt(alpha_t) unless ``coefficient(t)`` gives another (the lecture slide's step
    has its own, chapter 8). Returns ``{t: Var(x_t)}`` for t = T, ..., 0.
    """
    one_of("sigma", sigma, SIGMAS, "a choice of sigma_t")
    variance, v = {schedule.T: 1.0}, 1.0
    for t in range(schedule.T, 0, -1):
        c = float(schedule.alpha[t].sqrt()) if coefficient is None else float(coefficient(t))
        v = c * c * v + (float(sigma_t(schedule, t, sigma)) ** 2 if t > 1 else 0.0)
        variance[t - 1] = v
    return variance


def chain_variances(
    model: NoisePredictor,
    schedule: Schedule,
    x_T: torch.Tensor,  # noqa: N803
    sigma: str = "beta",
    generator: torch.Generator | None = None,
) -> dict[int, float]:
    """The variance of every element of the chains of :func:`~diffnotes.samplers.ddpm.ddpm_sample` started from ``x_T`` (B, ...), at
    t = T, ..., 1 (through the callback) and of the output x_0: ``{t: Var(x_t)}``, to compare with
    :func:`variance_recursion`."""
    variance: dict[int, float] = {}
    out = ddpm_sample(model, schedule, x_T, generator=generator, sigma=sigma,
                      callback=lambda t, x_t, x0_hat: variance.__setitem__(t, float(x_t.var())))
    variance[0] = float(out.var())
    return variance


def as_on_slide(model: NoisePredictor, schedule: Schedule) -> NoisePredictor:
    """``model`` wrapped so that Algorithm 2 takes the lecture slides' step: WRONG on purpose (see the errata).

    The slides print sqrt(1 - alpha_t) where sqrt(1 - alpha_bar_t) belongs, so that their line 4 reads
    x_{t-1} = (x_t - sqrt(beta_t) eps_theta) / sqrt(alpha_t) + sigma_t z. That is Algorithm 2 fed a noise estimate
    inflated by sqrt((1 - alpha_bar_t) / beta_t), which is what the wrapper returns.
    """

    def inflated(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        alpha_bar, beta = schedule.at(schedule.alpha_bar, t, x_t.dim()), schedule.at(schedule.beta, t, x_t.dim())
        return ((1 - alpha_bar) / beta).sqrt().to(x_t) * model(x_t, t, cond)

    return inflated


def slide_coefficient_on_gaussian_data(schedule: Schedule, t: int) -> float:
    """The coefficient c_t of x_t in the slides' step (:func:`as_on_slide`) with the exact predictor on Gaussian data,
    (1 - sqrt(beta_t (1 - alpha_bar_t))) / sqrt(alpha_t), for :func:`variance_recursion`."""
    if not 1 <= t <= schedule.T:
        raise ValueError(f"t must lie in 1..T={schedule.T}, got {t}")
    return float((1 - (schedule.beta[t] * (1 - schedule.alpha_bar[t])).sqrt()) / schedule.alpha[t].sqrt())
