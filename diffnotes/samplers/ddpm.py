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

from diffnotes.checks import one_of
from diffnotes.nets import NoisePredictor
from diffnotes.posterior import mu_theta, posterior_variance, predict_x0
from diffnotes.samplers.timesteps import check_timesteps, subsequence
from diffnotes.schedules import Schedule, check_timestep, from_alpha_bar

#: The choices of the reverse-step noise sigma_t^2, either beta_t or the posterior variance beta-tilde_t.
SIGMAS: tuple[str, ...] = ("beta", "posterior")
Callback = Callable[[int, torch.Tensor, torch.Tensor], None]


def sigma_t(schedule: Schedule, t: torch.Tensor | int, sigma: str = "beta") -> torch.Tensor:
    """The reverse step's noise scale: sqrt(beta_t) for ``"beta"``, sqrt(beta-tilde_t) for ``"posterior"``."""
    one_of("sigma", sigma, SIGMAS, "a choice of sigma_t")
    t = check_timestep(t, schedule.T)
    variance = schedule.beta[t] if sigma == "beta" else posterior_variance(schedule, t)
    return variance.sqrt()


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
    timesteps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run Algorithm 2 from ``x_T`` down to x_0 with T evaluations of the model, or along ``timesteps``.

    Args:
        model: the noise predictor, called as ``model(x_t, t, cond)``.
        schedule: the noise schedule the model was trained with.
        x_T: (B, ...) the starting noise, on the device to sample on.
        generator: for the noise z of each step; it must live on the device of ``x_T``.
        sigma: ``"beta"`` or ``"posterior"`` (see :data:`SIGMAS`).
        cond: optional conditioning passed to the model.
        callback: called as ``callback(t, x_t, x0_hat)`` before each step.
        timesteps: optionally an increasing subsequence tau_1 < ... < tau_S of 1..T to step along (the strided
            chain of :func:`strided_sample`); ``x_T`` is then the chain's state at tau_S, which may be below T
            (a chain that starts from a partly noised image, as img2img does).

    Returns:
        (B, ...) the samples x_0.
    """
    one_of("sigma", sigma, SIGMAS, "a choice of sigma_t")
    if timesteps is not None:
        return _along(model, schedule, x_T, check_timesteps(timesteps, schedule.T), generator, sigma, cond, callback)
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
    return ddpm_sample(model, schedule, x_T, generator, sigma, cond, callback, subsequence(schedule.T, steps, "endpoints"))


def _along(
    model: NoisePredictor,
    schedule: Schedule,
    x_start: torch.Tensor,
    taus: torch.Tensor,
    generator: torch.Generator | None,
    sigma: str,
    cond: torch.Tensor | None,
    callback: Callback | None,
) -> torch.Tensor:
    """Algorithm 2 on the chain of the subsequence ``taus`` (alpha_bar'_i = alpha_bar_{tau_i}), from ``x_start``."""
    taus = taus.to(x_start.device)
    sub = from_alpha_bar(schedule.alpha_bar.cpu()[taus.cpu()], name=f"{schedule.name}-strided").to(schedule.beta.device, schedule.beta.dtype)

    def on_original_time(x_t: torch.Tensor, i: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return model(x_t, taus[i - 1], c)

    inner = None if callback is None else (lambda i, x_t, x0_hat: callback(int(taus[i - 1]), x_t, x0_hat))
    return ddpm_sample(on_original_time, sub, x_start, generator=generator, sigma=sigma, cond=cond, callback=inner)
