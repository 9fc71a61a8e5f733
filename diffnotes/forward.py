"""The forward (diffusion) process q (chapter "The forward process and the diffusion kernel").

One step (the lecture's transition), for t = 1..T::

    x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t,        q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)

t steps at once (the diffusion kernel; the lecture's slide writes the standard deviation where the
covariance belongs, see the errata)::

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)

Randomness enters as the argument ``eps`` so that tests and notebooks can fix it.
"""

from __future__ import annotations

import torch

from diffnotes.schedules import Schedule


def _check_same_shape(x: torch.Tensor, eps: torch.Tensor, x_name: str) -> None:
    if x.shape != eps.shape:
        raise ValueError(f"eps must have the shape of {x_name}, {tuple(x.shape)}; got {tuple(eps.shape)}")


def q_step(schedule: Schedule, x_prev: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """One forward step x_{t-1} -> x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps (book eq. ``forward-step``).

    Args:
        schedule: the noise schedule.
        x_prev: (B, ...) the batch x_{t-1}.
        t: an int in 1..T, or a (B,) tensor of them.
        eps: (B, ...) standard normal noise, the shape of ``x_prev``.

    Returns:
        (B, ...) the batch x_t.
    """
    _check_same_shape(x_prev, eps, "x_prev")
    if int(torch.as_tensor(t).min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T} for a forward step, got {t!r}")
    alpha = schedule.at(schedule.alpha, t, x_prev.dim()).to(x_prev)
    beta = schedule.at(schedule.beta, t, x_prev.dim()).to(x_prev)
    return alpha.sqrt() * x_prev + beta.sqrt() * eps


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """Sample the diffusion kernel: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (book eq. ``kernel``).

    Args:
        schedule: the noise schedule.
        x0: (B, ...) clean data.
        t: an int in 0..T, or a (B,) tensor of them (t = 0 returns ``x0``).
        eps: (B, ...) standard normal noise, the shape of ``x0``: the compound noise eps-bar_t.

    Returns:
        (B, ...) the batch x_t.
    """
    _check_same_shape(x0, eps, "x0")
    alpha_bar = schedule.at(schedule.alpha_bar, t, x0.dim()).to(x0)
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * eps


def q_mean_var(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the kernel q(x_t | x_0): (sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t), broadcast over ``x0``."""
    alpha_bar = schedule.at(schedule.alpha_bar, t, x0.dim()).to(x0)
    return alpha_bar.sqrt() * x0, (1.0 - alpha_bar).expand_as(x0)
