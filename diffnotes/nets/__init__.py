"""Networks that predict the noise: the contract every sampler and loss relies on, and the models that meet it.

The package reads in the book's order, and each stage imports only from the stages before it::

    schedules -> forward -> posterior -> nets -> training -> samplers -> evaluation -> plotting

``nets`` comes after the posterior formulas (the exact predictors use them) and before training and the samplers
(which only call a model). Its modules: :mod:`~diffnotes.nets.embeddings` (the timestep embedding),
:mod:`~diffnotes.nets.mlp` (chapter 5's toy network), :mod:`~diffnotes.nets.unet` (chapter 6's U-Net),
:mod:`~diffnotes.nets.architecture` (looking inside a U-Net), :mod:`~diffnotes.nets.exact` (predictors known in
closed form), :mod:`~diffnotes.nets.guidance` (classifier-free guidance as a wrapper around any predictor) and
:mod:`~diffnotes.nets.autoencoder` (latent diffusion's autoencoder, the one network here that predicts no noise)
and :mod:`~diffnotes.nets.text` (the tokenizer, text encoder and text-conditioned U-Net of Stable Diffusion at digit
scale).

The contract: ``eps_theta = model(x_t, t, cond)`` with ``x_t`` of shape (B, ...), ``t`` a (B,) int64 tensor of the
lecture's timesteps in 1..T, and ``cond`` optional (None, class labels or embedding tokens); the output has the
shape of ``x_t``.
"""

from __future__ import annotations

from typing import Protocol

import torch


class NoisePredictor(Protocol):
    """Anything called as ``model(x_t, t, cond)`` that returns a tensor the shape of ``x_t``."""

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor: ...
