"""Ancestral sampling of the reverse process: Algorithm 2 of Ho et al. (chapter "Sampling").

Algorithm 2::

    x_T ~ N(0, I)
    for t = T, ..., 1:
        z ~ N(0, I) if t > 1, else z = 0
        x_{t-1} = 1/sqrt(alpha_t) (x_t - (1 - alpha_t)/sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) + sigma_t z
    return x_0

Two choices of sigma_t, both from the DDPM paper: ``"beta"`` (sigma_t^2 = beta_t) and ``"posterior"``
(sigma_t^2 = beta-tilde_t = (1 - alpha_bar_{t-1})/(1 - alpha_bar_t) beta_t, the variance of q(x_{t-1} | x_t, x_0)).

The lecture's slides draw z at every step; the paper sets z = 0 at t = 1 so that the last step returns the mean.
The lecture's two sampling slides also print sqrt(1 - alpha_t) where sqrt(1 - alpha_bar_t) belongs (see the errata).

Every sampler in the book has the contract ``sampler(model, schedule, x_T, ..., callback=None)``; the callback
receives ``(t, x_t, x0_hat)`` before each step, which is what a trajectory figure needs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffnotes.objective import NoisePredictor
from diffnotes.schedules import Schedule, check_timestep, from_alpha_bar

#: The choices of the reverse-step noise sigma_t^2, either beta_t or the posterior variance beta-tilde_t.
SIGMAS: tuple[str, ...] = ("beta", "posterior")

Callback = Callable[[int, torch.Tensor, torch.Tensor], None]


def posterior_variance(schedule: Schedule, t: torch.Tensor | int) -> torch.Tensor:
    """beta-tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t for t in 1..T (zero at t = 1)."""
    t = check_timestep(t, schedule.T)
    if int(t.min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T} for the posterior variance, got {int(t.min())}")
    ab, beta = schedule.alpha_bar, schedule.beta
    return (1.0 - ab[t - 1]) / (1.0 - ab[t]) * beta[t]


def sigma_t(schedule: Schedule, t: torch.Tensor | int, sigma: str = "beta") -> torch.Tensor:
    """The reverse step's noise scale: sqrt(beta_t) for ``"beta"``, sqrt(beta-tilde_t) for ``"posterior"``."""
    if sigma not in SIGMAS:
        raise ValueError(f"sigma={sigma!r} is not a choice of sigma_t; valid choices are: {', '.join(SIGMAS)}")
    t = check_timestep(t, schedule.T)
    variance = schedule.beta[t] if sigma == "beta" else posterior_variance(schedule, t)
    return variance.sqrt()


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


def ddpm_step(
    schedule: Schedule, x_t: torch.Tensor, t: int, eps_theta: torch.Tensor, z: torch.Tensor, sigma: str = "beta"
) -> torch.Tensor:
    """One reverse step x_t -> x_{t-1} = mu_theta + sigma_t z, with z ignored (set to 0) at t = 1."""
    if not 1 <= t <= schedule.T:
        raise ValueError(f"t must lie in 1..T={schedule.T}, got {t}")
    scale = sigma_t(schedule, t, sigma).to(x_t) if t > 1 else torch.zeros((), dtype=x_t.dtype, device=x_t.device)
    return mu_theta(schedule, x_t, t, eps_theta) + scale * z


@torch.no_grad()
def ddpm_sample(
    model: NoisePredictor,
    schedule: Schedule,
    x_T: torch.Tensor,  # noqa: N803
    generator: torch.Generator | None = None,
    sigma: str = "beta",
    cond: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Run Algorithm 2 from ``x_T`` down to x_0 with T evaluations of the model.

    Args:
        model: the noise predictor, called as ``model(x_t, t, cond)``.
        schedule: the noise schedule the model was trained with.
        x_T: (B, ...) the starting noise, on the device to sample on.
        generator: for the noise z of each step; it must live on the device of ``x_T``.
        sigma: ``"beta"`` or ``"posterior"`` (see :data:`SIGMAS`).
        cond: optional conditioning passed to the model.
        callback: called as ``callback(t, x_t, x0_hat)`` before each step.

    Returns:
        (B, ...) the samples x_0.
    """
    if sigma not in SIGMAS:
        raise ValueError(f"sigma={sigma!r} is not a choice of sigma_t; valid choices are: {', '.join(SIGMAS)}")
    x_t = x_T
    batch = x_T.shape[0]
    for t in range(schedule.T, 0, -1):
        t_batch = torch.full((batch,), t, dtype=torch.int64, device=x_t.device)
        eps_theta = model(x_t, t_batch, cond)
        if callback is not None:
            callback(t, x_t, predict_x0(schedule, x_t, t, eps_theta))
        z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype) if t > 1 else torch.zeros_like(x_t)
        x_t = ddpm_step(schedule, x_t, t, eps_theta, z, sigma)
    return x_t


def strided_timesteps(T: int, steps: int) -> torch.Tensor:  # noqa: N803
    """``steps`` timesteps evenly spread over 1..T, increasing, always ending at T: a (steps,) int64 tensor."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must lie in 1..T={T}, got {steps}")
    return torch.linspace(1, T, steps, dtype=torch.float64).round().long()


@torch.no_grad()
def strided_sample(
    model: NoisePredictor,
    schedule: Schedule,
    x_T: torch.Tensor,  # noqa: N803
    steps: int,
    generator: torch.Generator | None = None,
    sigma: str = "beta",
    cond: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Algorithm 2 on a subsequence tau_1 < ... < tau_S = T of the timesteps: S model evaluations instead of T.

    The subsequence defines its own Markov chain with alpha_bar'_i = alpha_bar_{tau_i}, so that
    beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}} (Nichol and Dhariwal, 2021, section 4); the model is
    called with the original timesteps tau_i. With ``steps = T`` this is :func:`ddpm_sample` exactly. The callback
    receives the original timestep.
    """
    taus = strided_timesteps(schedule.T, steps).to(x_T.device)
    sub = from_alpha_bar(schedule.alpha_bar.cpu()[taus.cpu()], name=f"{schedule.name}-strided").to(schedule.beta.device, schedule.beta.dtype)

    def on_original_time(x_t: torch.Tensor, i: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return model(x_t, taus[i - 1], c)

    inner = None if callback is None else (lambda i, x_t, x0_hat: callback(int(taus[i - 1]), x_t, x0_hat))
    return ddpm_sample(on_original_time, sub, x_T, generator=generator, sigma=sigma, cond=cond, callback=inner)


def gaussian_data_predictor(schedule: Schedule) -> NoisePredictor:
    """The exact noise predictor for data x_0 ~ N(0, I), E[eps | x_t] = sqrt(1 - alpha_bar_t) x_t (book prop.
    ch8-prop-gaussian), as a model ``(x_t, t, cond=None) -> eps`` for (B, ...) ``x_t`` and (B,) ``t``."""

    def predictor(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return (1 - schedule.at(schedule.alpha_bar, t, x_t.dim())).sqrt().to(x_t) * x_t

    return predictor


def variance_recursion(
    schedule: Schedule, sigma: str = "beta", coefficient: Callable[[int], float] | None = None
) -> dict[int, float]:
    """Var(x_t) of Algorithm 2's chain on Gaussian data with the exact predictor, from Var(x_T) = 1 (book eq.
    ch8-eq-var-recursion): Var(x_{t-1}) = c_t^2 Var(x_t) + sigma_t^2 for t >= 2, and c_1^2 Var(x_1) at the last step.

    The coefficient c_t of x_t is sqrt(alpha_t) unless ``coefficient(t)`` gives another (the lecture slide's step
    has its own, chapter 8). Returns ``{t: Var(x_t)}`` for t = T, ..., 0.
    """
    if sigma not in SIGMAS:
        raise ValueError(f"sigma={sigma!r} is not a choice of sigma_t; valid choices are: {', '.join(SIGMAS)}")
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
    """The variance of every element of the chains of :func:`ddpm_sample` started from ``x_T`` (B, ...), at
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
