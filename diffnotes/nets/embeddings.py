"""Embeddings of what conditions a network: the timestep (chapter "A compact U-Net").

The sinusoidal embedding of t (Vaswani et al. 2017; Ho et al. 2020) feeds both the toy MLP of chapter 5 and the
U-Net of chapter 6; class labels and text tokens enter the U-Net through its own layers (:mod:`diffnotes.nets.unet`).
"""

from __future__ import annotations

import math

import torch


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of timesteps (Vaswani et al.; Ho et al.), book eq. ``ch6-eq-time``: (B,) -> (B, dim).

    With half = dim / 2 and frequencies ``omega_i = max_period**(-i / half)`` for i = 0..half-1, the embedding is
    ``[sin(t omega_0), ..., sin(t omega_{half-1}), cos(t omega_0), ..., cos(t omega_{half-1})]``.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
