"""Which timesteps a sampler visits (chapters "Sampling" and "DDIM").

A sampler of S steps visits a subsequence tau_1 < ... < tau_S of 1..T and steps tau_S -> ... -> tau_1 -> 0.
:func:`subsequence` is the one rule for choosing it, with the paper's spacings and diffusers'; :func:`previous_timesteps`
pairs each step with the one after it.
"""

from __future__ import annotations

import numpy as np
import torch

from diffnotes.checks import one_of

#: The timestep spacings, the DDIM paper's ("linear", "quadratic"), diffusers' ("leading", "trailing", "linspace"),
#: and the strided sampler's of chapter 8 ("endpoints", evenly spread from 1 to T with both ends kept).
SPACINGS: tuple[str, ...] = ("linear", "quadratic", "leading", "trailing", "linspace", "endpoints")


def subsequence(T: int, S: int, spacing: str = "linear") -> torch.Tensor:  # noqa: N803
    """The S timesteps tau_1 < ... < tau_S that a sampler visits, in the book's index 1..T: a (S,) int64 tensor.

    Book eq. ``ch12-eq-spacings``. The paper's spacings (its appendix D.2), both ending at tau_S = T:

    - ``"linear"``: tau_i = floor(i T / S);
    - ``"quadratic"``: tau_i = max(floor(T (i / S)^2), i), the max keeping the first steps distinct when S^2 > T.

    diffusers' ``timestep_spacing`` (with ``steps_offset=0``), shifted by one from its 0..T-1 to the book's t:

    - ``"leading"``: tau_i = (i - 1) (T // S) + 1, so sampling starts below T when S does not divide it;
    - ``"trailing"``: round(T - k T / S) for k = S-1, ..., 0 (round half to even, as numpy), ending at T;
    - ``"linspace"``: round(linspace(0, T - 1, S)) + 1.

    Chapter 8's strided sampler (Nichol and Dhariwal, 2021), which keeps t = 1 and t = T:

    - ``"endpoints"``: round(linspace(1, T, S)) (round half to even); it differs from ``"linspace"`` only where
      linspace lands on a half, e.g. T = 1000, S = 3 gives (1, 500, 1000) against (1, 501, 1000).

    Raises:
        ValueError: if S is not an integer in 1..T, or for an unknown spacing (the message lists the valid ones).
    """
    if isinstance(S, bool) or not isinstance(S, (int, np.integer)) or not 1 <= S <= T:
        raise ValueError(f"S (the number of sampling steps) must be an integer in 1..T={T}, got {S!r}")
    one_of("spacing", spacing, SPACINGS, "a timestep spacing")
    if spacing == "endpoints":
        return torch.linspace(1, T, S, dtype=torch.float64).round().long()
    i = np.arange(1, S + 1, dtype=np.int64)
    if spacing == "linear":
        tau = i * T // S
    elif spacing == "quadratic":
        tau = np.maximum(i * i * T // (S * S), i)
    elif spacing == "leading":  # diffusers: (arange(S) * (T // S))[::-1]
        tau = (i - 1) * (T // S) + 1
    elif spacing == "trailing":  # diffusers: round(arange(T, 0, -T / S)) - 1
        tau = np.round(np.arange(T, 0, -T / S))[::-1].astype(np.int64)
    else:  # diffusers: round(linspace(0, T - 1, S))[::-1]
        tau = np.linspace(0, T - 1, S).round().astype(np.int64) + 1
    return torch.from_numpy(np.ascontiguousarray(tau))


def previous_timesteps(tau: torch.Tensor) -> torch.Tensor:
    """The step after each tau_i when sampling: tau_{i-1}, with tau_0 = 0 (where alpha_bar_0 = 1); (S,) int64."""
    return torch.cat([torch.zeros(1, dtype=tau.dtype), tau[:-1]])


def diffusers_previous_timestep(t: int, T: int, S: int) -> int:  # noqa: N803
    """Where diffusers' DDIM step from the book's t lands: max(t - T // S, 0), whatever the spacing.

    For ``"leading"`` and ``"trailing"`` with S dividing T this is the previous entry of the subsequence; for
    ``"linspace"`` it is not (e.g. T = 1000, S = 10: from t = 1000 to 900, although the next listed step is 889).
    """
    return max(t - T // S, 0)


def check_timesteps(timesteps: torch.Tensor | list[int], T: int) -> torch.Tensor:  # noqa: N803
    """``timesteps`` as a (S,) int64 tensor, after checking that it increases strictly within 1..T.

    A sampler given such a sequence starts at its last entry tau_S, which need not be T: a chain started from a
    partly noised image x_t at t = tau_S is what img2img and SDEdit run.
    """
    tau = torch.as_tensor(timesteps).cpu()
    if tau.dim() != 1 or tau.numel() == 0 or tau.is_floating_point():
        raise ValueError(f"timesteps must be a non-empty 1-D sequence of integers, got {timesteps!r}")
    tau = tau.long()
    if int(tau.min()) < 1 or int(tau.max()) > T or bool((tau.diff() <= 0).any()):
        raise ValueError(f"timesteps must increase strictly within 1..T={T}, got {tau.tolist()}")
    return tau


def starting_at(tau: torch.Tensor, t: int) -> torch.Tensor:
    """The part of the subsequence ``tau`` at or below ``t``: the steps left to a chain that starts at x_t."""
    kept = tau[tau <= t]
    if kept.numel() == 0:
        raise ValueError(f"t={t} lies below every timestep of the sequence (the first is {int(tau[0])})")
    return kept
