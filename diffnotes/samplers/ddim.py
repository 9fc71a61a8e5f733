"""DDIM: sampling in a fraction of the steps (chapter "DDIM"; Song, Meng and Ermon, 2021).

One DDIM step from t down to t_prev < t (book eqs. ``ch12-eq-x0-hat``, ``ch12-eq-update``, ``ch12-eq-sigma``)::

    x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t)
    x_prev = sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev - sigma^2) eps_theta + sigma z
    sigma  = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)

eta = 1 with t_prev = t - 1 is the DDPM step with sigma_t^2 = beta-tilde_t; eta = 0 is deterministic.

Time index: the book's t = 1..T with alpha_bar_0 = 1. A sampler visits a subsequence tau_1 < ... < tau_S = T
(:func:`~diffnotes.samplers.timesteps.subsequence`) and steps tau_S -> tau_{S-1} -> ... -> tau_1 -> 0; the last step lands on alpha_bar_0 = 1,
as diffusers' ``set_alpha_to_one=True`` does. Names against diffusers' ``DDIMScheduler.step``:

    book               diffnotes      diffusers
    t                  t              timestep + 1
    t_prev             t_prev         prev_timestep + 1  (= t - T // S, or 0 below it: the "quirk")
    x0_hat             x0_hat         pred_original_sample
    eps_theta          eps_theta      model_output, pred_epsilon
    sigma              sigma          std_dev_t
    z                  z              variance_noise
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffnotes.nets import NoisePredictor
from diffnotes.posterior import predict_x0
from diffnotes.runtime import by_profile
from diffnotes.samplers.ddpm import Callback
from diffnotes.samplers.timesteps import check_timesteps, previous_timesteps, subsequence
from diffnotes.schedules import Schedule


@dataclass(frozen=True)
class DDIMConfig:
    """Chapter 12's sizes, from :meth:`for_profile`.

    The quality table has columns ``steps_list`` and rows ``etas``, ``n_samples`` images per cell drawn
    ``batch_size`` at a time. Unless ``use_shipped_model`` and the trained digit model ships, the model is
    :func:`~diffnotes.nets.exact.ideal_predictor` of ``memory_size`` digits with ``kernel_scale``. Inversion encodes ``n_inversion``
    digits with each of ``inversion_steps``; the ODE section compares ``n_flow`` samples for each of ``flow_steps``
    with ``flow_reference_steps``; the interpolation has ``n_frames`` frames sampled with ``interpolation_steps``.
    """

    steps_list: tuple[int, ...] = (10, 20, 50, 100, 1000)
    etas: tuple[float, ...] = (0.0, 0.2, 0.5, 1.0)
    n_samples: int = 1000
    batch_size: int = 500
    memory_size: int = 2500
    kernel_scale: float = 0.1
    use_shipped_model: bool = True
    inversion_steps: tuple[int, ...] = (10, 20, 50, 100, 200, 500, 1000)
    n_inversion: int = 100
    flow_steps: tuple[int, ...] = (5, 10, 20, 50, 100, 200, 500)
    flow_reference_steps: int = 1000
    n_flow: int = 100
    n_frames: int = 11
    interpolation_steps: int = 50

    @classmethod
    def for_profile(cls, profile: str | None = None) -> DDIMConfig:
        """The whole of Song et al.'s table in the full profile; a reduced one (seconds on a CPU) in the quick one."""
        quick = cls(steps_list=(5, 10, 20), etas=(0.0, 1.0), n_samples=200, batch_size=200, memory_size=500,
                    use_shipped_model=False, inversion_steps=(10, 20, 50, 100), n_inversion=8,
                    flow_steps=(5, 10, 20, 50), flow_reference_steps=200, n_flow=32, n_frames=9)
        return by_profile(quick=quick, full=cls(), profile=profile)


def check_eta(eta: float) -> None:
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM's posterior variance), got {eta!r}")


def _check_pair(T: int, t: int, t_prev: int) -> None:  # noqa: N803
    if not 0 <= t_prev < t <= T:
        raise ValueError(f"the step must go from t in 1..T={T} down to t_prev in 0..t-1, got t={t}, t_prev={t_prev}")


def ddim_sigma(schedule: Schedule, t: int, t_prev: int, eta: float) -> torch.Tensor:
    """sigma = eta sqrt((1 - alpha_bar_prev)/(1 - alpha_bar_t)) sqrt(1 - alpha_bar_t/alpha_bar_prev) (book eq.
    ``ch12-eq-sigma``), a 0-d tensor; with eta = 1 and t_prev = t - 1 it is sqrt(beta-tilde_t)."""
    check_eta(eta)
    _check_pair(schedule.T, t, t_prev)
    ab, ab_prev = schedule.alpha_bar[t], schedule.alpha_bar[t_prev]
    return eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)).sqrt()


def ddim_step(
    schedule: Schedule,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    eps_theta: torch.Tensor,
    eta: float = 0.0,
    z: torch.Tensor | None = None,
    clip_x0: bool = False,
) -> torch.Tensor:
    """One DDIM step x_t -> x_prev (book eq. ``ch12-eq-update``), for a batch (B, ...) at one pair t > t_prev >= 0.

    ``z`` (the shape of ``x_t``) is required when sigma > 0. ``clip_x0`` clamps x0_hat to [-1, 1] and keeps
    eps_theta as it is, as diffusers' ``clip_sample=True`` does (with ``use_clipped_model_output=False``).
    """
    sigma = ddim_sigma(schedule, t, t_prev, eta).to(x_t)
    ab_prev = schedule.alpha_bar[t_prev].to(x_t)
    x0_hat = predict_x0(schedule, x_t, t, eps_theta)
    if clip_x0:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
    x_prev = ab_prev.sqrt() * x0_hat + (1.0 - ab_prev - sigma**2).clamp(min=0.0).sqrt() * eps_theta
    if float(sigma) > 0.0:
        if z is None or z.shape != x_t.shape:
            got = None if z is None else tuple(z.shape)
            raise ValueError(f"z must be noise of shape {tuple(x_t.shape)} when sigma > 0 (eta={eta}), got {got}")
        x_prev = x_prev + sigma * z
    return x_prev


@torch.no_grad()
def ddim_sample(
    model: NoisePredictor,
    schedule: Schedule,
    x_T: torch.Tensor,  # noqa: N803
    steps: int | None,
    eta: float = 0.0,
    spacing: str = "linear",
    generator: torch.Generator | None = None,
    cond: torch.Tensor | None = None,
    callback: Callback | None = None,
    clip_x0: bool = False,
    timesteps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample with ``steps`` model evaluations: DDIM steps tau_S -> ... -> tau_1 -> 0 from ``x_T`` (B, ...).

    The contract of :func:`diffnotes.samplers.ddpm.ddpm_sample`: ``callback(t, x_t, x0_hat)`` before each step, the
    noise z drawn from ``generator`` (on the device of ``x_T``) only where sigma > 0, i.e. eta > 0 and t_prev > 0.
    With ``steps = T``, ``spacing="linear"`` and ``eta = 1`` it draws the same noise as ``ddpm_sample`` with
    ``sigma="posterior"`` and returns the same samples. ``timesteps``, an increasing subsequence of 1..T, replaces
    ``steps`` and ``spacing``; ``x_T`` is then the state at its last entry, which may lie below T (img2img, SDEdit).
    Returns x_0, (B, ...).
    """
    check_eta(eta)
    if timesteps is None and steps is None:
        raise ValueError("give steps (the subsequence is then chosen by spacing) or timesteps")
    tau = check_timesteps(timesteps, schedule.T) if timesteps is not None else subsequence(schedule.T, steps, spacing)
    x_t = x_T
    for t, t_prev in zip(reversed(tau.tolist()), reversed(previous_timesteps(tau).tolist())):
        t_batch = torch.full((x_t.shape[0],), t, dtype=torch.int64, device=x_t.device)
        eps_theta = model(x_t, t_batch, cond)
        if callback is not None:
            x0_hat = predict_x0(schedule, x_t, t, eps_theta)
            callback(t, x_t, x0_hat.clamp(-1.0, 1.0) if clip_x0 else x0_hat)
        z = None
        if eta > 0 and t_prev > 0:
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        x_t = ddim_step(schedule, x_t, t, t_prev, eps_theta, eta, z, clip_x0)
    return x_t


def ddim_invert_step(
    schedule: Schedule, x_prev: torch.Tensor, t_prev: int, t: int, eps_theta: torch.Tensor
) -> torch.Tensor:
    """The deterministic step run upwards, x_prev -> x_t (book eq. ``ch12-eq-invert``), for (B, ...), t > t_prev >= 0:
    x_t = sqrt(alpha_bar_t) x0_hat(x_prev, t_prev) + sqrt(1 - alpha_bar_t) eps_theta."""
    _check_pair(schedule.T, t, t_prev)
    ab = schedule.alpha_bar[t].to(x_prev)
    return ab.sqrt() * predict_x0(schedule, x_prev, t_prev, eps_theta) + (1.0 - ab).sqrt() * eps_theta


@torch.no_grad()
def ddim_invert(
    model: NoisePredictor,
    schedule: Schedule,
    x0: torch.Tensor,
    steps: int,
    spacing: str = "linear",
    cond: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Encode clean data x0 (B, ...) into noise x_T by the deterministic sampler run backwards: 0 -> tau_1 -> ... -> T.

    Each upward step tau_{i-1} -> tau_i evaluates the model at tau_i, the time the sampler will evaluate it at, on the
    point it has, x_{tau_{i-1}} (the one it wants, x_{tau_i}, is not known yet): diffusers' ``DDIMInverseScheduler``
    does the same. ``callback(t_prev, x_prev, x0_hat)`` is called before each step. Returns x_T, (B, ...).
    """
    tau = subsequence(schedule.T, steps, spacing)
    x = x0
    for t_prev, t in zip(previous_timesteps(tau).tolist(), tau.tolist()):
        eps_theta = model(x, torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device), cond)
        if callback is not None:
            callback(t_prev, x, predict_x0(schedule, x, t_prev, eps_theta))
        x = ddim_invert_step(schedule, x, t_prev, t, eps_theta)
    return x


def slerp(z0: torch.Tensor, z1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of two noises (book eq. ``ch12-eq-slerp``), one frame per weight w in ``weights`` (K,):
    sin((1 - w) theta)/sin(theta) z0 + sin(w theta)/sin(theta) z1, theta the angle between z0 and z1.

    Returns (K, ...), the frames stacked along a new first dimension.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    cos = torch.dot(z0.flatten(), z1.flatten()) / (z0.norm() * z1.norm())
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(theta.sin()) < 1e-6:
        raise ValueError("z0 and z1 point in (nearly) the same or opposite directions; slerp needs an angle")
    w = weights.to(z0).reshape(-1, *([1] * z0.dim()))
    return (torch.sin((1.0 - w) * theta) * z0 + torch.sin(w * theta) * z1) / theta.sin()


def reconstruction_mse(x0: torch.Tensor, x0_back: torch.Tensor) -> float:
    """The per-pixel mean squared error of a reconstruction, (B, ...) against (B, ...) in [-1, 1], computed with the
    pixels scaled to [0, 1] (a quarter of the error in [-1, 1]), as Song et al. (2021) report it in their Table 2."""
    return float((((x0.double() - x0_back.double()) / 2.0) ** 2).mean())


def flow_coordinates(schedule: Schedule, x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The probability-flow coordinates of x_t (book eq. ``ch12-eq-flow``): sigma_bar_t = sqrt((1 - alpha_bar_t) /
    alpha_bar_t) = SNR(t)^(-1/2) (a 0-d tensor) and x_bar = x_t / sqrt(alpha_bar_t) (the shape of x_t)."""
    ab = schedule.alpha_bar[t].to(x_t)
    return ((1.0 - ab) / ab).sqrt(), x_t / ab.sqrt()
