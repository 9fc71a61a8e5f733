"""Shared test settings and helpers (import them with ``from conftest import ...``)."""

import torch

from diffnotes.nets.unet import UNetConfig

# The tests run small tensors, for which one thread is fastest; it also keeps a test run from fighting other
# processes for the cores (two OpenMP thread pools on two busy cores slowed these tests fifteenfold).
torch.set_num_threads(1)

#: A U-Net small enough to train for a few steps in a test: two levels, attention at the lower one.
TINY_UNET = UNetConfig(widths=(8, 16), attention=(False, True), groups=4, heads=2)


def gen(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def randn(shape: tuple[int, ...], seed: int | torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normal draws of ``shape``, from a seed or a generator (float64 unless told)."""
    generator = seed if isinstance(seed, torch.Generator) else gen(seed)
    return torch.randn(shape, generator=generator, dtype=dtype)


class ScaledInput(torch.nn.Module):
    """diffusers' scheduler-test dummy model, eps(x_t, s) = x_t s / (s + 1), at s = t - offset: ``offset=1`` is
    diffusers' own timestep i = t - 1, ``offset=0`` the book's t."""

    def __init__(self, offset: int = 0) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        s = (t - self.offset).to(x_t).reshape(-1, *([1] * (x_t.dim() - 1)))
        return x_t * s / (s + 1)
