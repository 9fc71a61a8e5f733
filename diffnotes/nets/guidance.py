"""Classifier-free guidance as a wrapper around a predictor (Ho and Salimans, 2022; chapter "Text guidance").

A model trained with its condition sometimes dropped (:func:`diffnotes.training.train` with ``cond_dropout``) predicts
both eps(x_t, t, y) and eps(x_t, t, null). Guidance extrapolates from the unconditional prediction towards the
conditional one::

    eps_hat = eps(x_t, t, null) + w (eps(x_t, t, y) - eps(x_t, t, null))

w = 1 is the conditional model, w = 0 the unconditional one, w > 1 follows the condition more closely at the cost of
diversity. A negative prompt is a null condition other than the empty one. Since :func:`guided` returns an ordinary
:class:`~diffnotes.nets.NoisePredictor`, every sampler runs it unchanged.
"""

from __future__ import annotations

import math

import torch

from diffnotes.nets import NoisePredictor


def guided(model: NoisePredictor, null_cond: torch.Tensor, scale: float) -> NoisePredictor:
    """The guided predictor ``(x_t, t, cond) -> eps_null + scale (eps_cond - eps_null)``.

    Args:
        model: a conditional noise predictor, ``model(x_t, t, cond)``.
        null_cond: the "no condition" (or a negative prompt's): a condition for one example, with a leading batch
            dimension of 1 (e.g. ``tensor([num_classes])`` for labels, (1, L, D) for tokens), or one per example.
        scale: the guidance scale w, a finite number.

    The two predictions are made in one batched call of ``model``, as diffusers' pipelines do.

    Raises:
        ValueError: if ``scale`` is not a finite number, or at call time if ``cond`` is None.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"scale (the guidance scale w) must be a finite number, got {scale!r}")

    def predictor(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            raise ValueError("cond is required: guidance needs the condition to steer towards")
        batch = x_t.shape[0]
        null = null_cond.to(cond.device, cond.dtype)
        null = null.expand(batch, *null.shape[1:]) if null.shape[0] == 1 else null
        if null.shape != cond.shape:
            raise ValueError(f"null_cond must have the shape of one condition of cond, {tuple(cond.shape[1:])}; "
                             f"got {tuple(null_cond.shape)}")
        eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, null]))
        eps_cond, eps_null = eps.chunk(2)
        return eps_null + scale * (eps_cond - eps_null)

    return predictor
