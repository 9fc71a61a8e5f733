"""The training objective of the noise predictor: Algorithm 1 of Ho et al. (chapter "The noise predictor").

The network contract used throughout the book: ``eps_theta = model(x_t, t, cond)`` with ``x_t`` of shape
(B, ...), ``t`` a (B,) int64 tensor of the lecture's timesteps in 1..T, and ``cond`` optional (None, class
labels or embedding tokens); the output has the shape of ``x_t``.

Algorithm 1, one step::

    x_0 ~ q(x_0);  t ~ Uniform({1, ..., T});  eps ~ N(0, I)
    gradient step on  || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2
"""

from __future__ import annotations

import torch
from torch import nn

from diffnotes.checks import positive_ints
from diffnotes.forward import q_sample
from diffnotes.nets import NoisePredictor
from diffnotes.schedules import Schedule


def sample_timesteps(batch: int, T: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:  # noqa: N803
    """Draw ``batch`` timesteps uniformly from {1, ..., T} (Algorithm 1, line 3): a (batch,) int64 tensor."""
    positive_ints(batch=batch, T=T)
    return torch.randint(1, T + 1, (batch,), generator=generator).to(device)


def simple_loss(
    model: NoisePredictor,
    schedule: Schedule,
    x0: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    cond: torch.Tensor | None = None,
    snr_gamma: float = 0.0,
) -> torch.Tensor:
    """L_simple for one batch: the mean of || eps - eps_theta(x_t, t) ||^2 over the batch (Algorithm 1, line 5).

    The squared norm is averaged over every element (per pixel), the usual normalisation; it differs from the
    per-image sum by the constant factor dim(x_0) and has the same minimiser.

    Args:
        model: the noise predictor.
        schedule: the noise schedule (on the device of ``x0``).
        x0: (B, ...) clean data.
        t: (B,) int64 timesteps in 1..T.
        eps: (B, ...) standard normal noise, the shape of ``x0``.
        cond: optional conditioning passed to the model.
        snr_gamma: with gamma > 0, Min-SNR-gamma weighting (Hang et al. 2023): example i's squared error is weighted
            by min(SNR(t_i), gamma) / SNR(t_i), which caps the weight of the nearly clean timesteps (whose SNR is
            large and whose noise is easy to see) at the weight of SNR = gamma; 0 is L_simple itself.

    Returns:
        a scalar tensor.
    """
    if t.dim() != 1 or t.shape[0] != x0.shape[0]:
        raise ValueError(f"t must have shape (B,) = ({x0.shape[0]},), got {tuple(t.shape)}")
    if int(t.min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T} for training, got a minimum of {int(t.min())}")
    x_t = q_sample(schedule, x0, t, eps)
    eps_theta = model(x_t, t, cond)
    if eps_theta.shape != eps.shape:
        raise ValueError(f"the model returned shape {tuple(eps_theta.shape)}; it must return the shape of x_t, {tuple(eps.shape)}")
    if snr_gamma < 0:
        raise ValueError(f"snr_gamma must be 0 (L_simple) or positive (Min-SNR-gamma), got {snr_gamma}")
    if snr_gamma == 0:
        return torch.mean((eps - eps_theta) ** 2)
    snr = schedule.snr[t]
    weight = torch.clamp(snr, max=snr_gamma) / snr
    per_example = ((eps - eps_theta) ** 2).flatten(1).mean(dim=1)
    return torch.mean(weight.to(per_example.dtype) * per_example)


@torch.no_grad()
def loss_at(model: nn.Module, schedule: Schedule, x0: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
    """Per-point squared errors ||eps - eps_theta(x_t, t)||^2 / D at one timestep t: x0, eps (B, D) -> (B,).

    Their mean is L_simple restricted to t; returning them all lets a caller attach a standard error.
    """
    t_batch = torch.full((x0.shape[0],), t, dtype=torch.int64)
    x_t = q_sample(schedule, x0, t_batch, eps)
    return ((eps - model(x_t, t_batch)) ** 2).mean(dim=1)


def check_conditions(examples: torch.Tensor, conditions: torch.Tensor | None, null_condition: torch.Tensor | None,
                     cond_dropout: float) -> None:
    """ValueError unless ``conditions`` hold one condition per example, ``null_condition`` has the shape of one, and
    both are given when ``cond_dropout`` > 0 (the training loop's check, :func:`diffnotes.training.train`)."""
    if conditions is not None and conditions.shape[0] != examples.shape[0]:
        raise ValueError(f"conditions must hold one condition per example, ({examples.shape[0]}, ...); "
                         f"got shape {tuple(conditions.shape)}")
    if cond_dropout > 0 and (conditions is None or null_condition is None):
        raise ValueError("cond_dropout > 0 needs conditions and a null_condition to replace them with")
    null = null_condition
    if null is not None and conditions is not None and tuple(null.shape) not in ((), tuple(conditions.shape[1:])):
        raise ValueError(f"null_condition must have the shape of one condition, {tuple(conditions.shape[1:])}; "
                         f"got {tuple(null.shape)}")


def drop_conditions(cond: torch.Tensor, null: torch.Tensor | None, p: float, g: torch.Generator) -> torch.Tensor:
    """``cond`` with each row replaced by ``null`` with probability ``p``, drawn from ``g`` (no draw when p = 0):
    classifier-free guidance's training, where the network also learns the unconditional prediction."""
    if p == 0.0:
        return cond
    dropped = torch.rand(cond.shape[0], generator=g) < p
    return torch.where(dropped.reshape(-1, *([1] * (cond.dim() - 1))), null.to(cond).expand_as(cond), cond)
