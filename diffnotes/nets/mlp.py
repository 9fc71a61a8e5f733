"""A small MLP noise predictor for 2-D toy data (chapter "The noise predictor").

The network eps_theta(x_t, t) predicts the compound noise of x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
It follows the book's contract ``eps_theta = model(x_t, t, cond=None)`` (:class:`diffnotes.nets.NoisePredictor`) and
is trained by :func:`diffnotes.training.train_toy`, with the loop that also trains the digit U-Net.
Points are (B, D) tensors; timesteps are (B,) int64 tensors in 1..T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from diffnotes.checks import positive_int
from diffnotes.nets.embeddings import timestep_embedding


@dataclass(frozen=True)
class MLPConfig:
    """The MLP's shape.

    Attributes:
        dim: D, the dimension of a data point (and of the output).
        T: the number of diffusion steps; the model accepts t in 1..T.
        hidden: width of every hidden layer.
        layers: number of hidden layers (each Linear then SiLU).
        emb_dim: width of the sinusoidal embedding of t; 0 gives a model blind to t (an exercise).
    """

    dim: int = 2
    T: int = 100
    hidden: int = 128
    layers: int = 3
    emb_dim: int = 32

    def __post_init__(self) -> None:
        for name in ("dim", "T", "hidden", "layers"):
            positive_int(name, getattr(self, name))
        if self.emb_dim < 0 or self.emb_dim % 2:
            raise ValueError(f"emb_dim must be an even number >= 0, got {self.emb_dim}")


class MLP(nn.Module):
    """eps_theta(x_t, t) (book eq. ``ch5-eq-mlp``): [x_t, embedding(t)] -> (Linear, SiLU) x layers -> Linear.

    The last layer starts at zero, so the untrained model is the zero predictor, whose loss is E||eps||^2 / D = 1.
    """

    def __init__(self, config: MLPConfig = MLPConfig()) -> None:
        super().__init__()
        self.config = config
        widths = [config.dim + config.emb_dim] + [config.hidden] * config.layers
        self.body = nn.Sequential(*(m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.SiLU())))
        self.out = nn.Linear(config.hidden, config.dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, D) and t (B,) integers in 1..T -> eps_theta (B, D). ``cond`` must be None (unconditional).

        Raises:
            ValueError: naming ``x_t``, ``t`` or ``cond`` when a shape, a dtype or a value is not allowed.
        """
        d, T = self.config.dim, self.config.T  # noqa: N806
        if x_t.dim() != 2 or x_t.shape[1] != d:
            raise ValueError(f"x_t must have shape (B, {d}), got {tuple(x_t.shape)}")
        if t.shape != x_t.shape[:1] or t.is_floating_point() or t.dtype == torch.bool:
            got = f"{t.dtype} {tuple(t.shape)}"
            raise ValueError(f"t must be an integer tensor of shape (B,) = ({x_t.shape[0]},), got {got}")
        if t.numel() and (int(t.min()) < 1 or int(t.max()) > T):
            raise ValueError(f"t must lie in 1..T={T}, got values from {int(t.min())} to {int(t.max())}")
        if cond is not None:
            raise ValueError("cond must be None: this MLP is unconditional")
        width = self.config.emb_dim
        emb = timestep_embedding(t, width).to(x_t) if width else x_t.new_zeros(x_t.shape[0], 0)  # (B, emb_dim)
        return self.out(self.body(torch.cat([x_t, emb], dim=1)))  # (B, D)
