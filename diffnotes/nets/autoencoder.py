"""A small KL-regularised autoencoder for latent diffusion (chapter "Latent diffusion"; Rombach et al., 2022).

The encoder E maps a digit x (B, 1, 28, 28) to a diagonal Gaussian q(z | x) = N(mean, exp(logvar)) over a latent of
shape (B, c, h, w); the decoder D maps a latent back to an image. The pieces follow the KL autoencoder of the latent
diffusion code (``AutoencoderKL``), scaled down to digits:

- residual blocks GroupNorm, SiLU, 3x3 convolution, twice, without a time embedding;
- downsampling by strided 3x3 convolution (each halves the side: 28 -> 14 -> 7 -> 4), upsampling by nearest-neighbour
  doubling and a convolution;
- the encoder's last convolution gives 2c channels, the mean and the log-variance (LDM's ``double_z``); the log-variance
  is clamped to [-30, 20] as in LDM's ``DiagonalGaussianDistribution``;
- no attention (LDM's has one attention block in the middle, at 64x64; at 7x7 the convolutions already see it all).

An image whose side is not a multiple of 2**downsamples (28 for three of them) is padded with the background value -1
on the bottom and right, and the decoder's output is cropped back. :data:`LATENT_SIZES` names the latent sizes of the
chapter's rate-distortion figure. The loss and the training loop are in :mod:`diffnotes.latent`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffnotes.checks import positive_int


@dataclass(frozen=True)
class AutoencoderConfig:
    """The autoencoder's shape. Defaults: 28x28x1 digits to 7x7x4 latents (two downsamplings, f = 4), 0.40 M parameters.

    The widths double as the side halves, as in Stable Diffusion's autoencoder (128, 256, 512, 512), from 16 channels
    at 28x28: a training step then costs about a quarter of one of the pixel U-Net's (0.29 against 1.13 GFLOP per
    image), so that its run of :class:`diffnotes.latent.AutoencoderTrainConfig` (6,000 steps of 64 digits) should take
    about a quarter of an hour on two CPU cores (an estimate from the FLOPs; the provenance records the measured time).

    Attributes:
        latent_channels: c, the channels of the latent (4, as in Stable Diffusion's autoencoder).
        widths: channels at each resolution level; level i works at side image_size / 2**i, so there are
            ``len(widths) - 1`` downsamplings.
        res_blocks: residual blocks per level.
        groups: GroupNorm groups (must divide every width).
        image_size: the side of the square input images.
        image_channels: channels of the input images.
    """

    latent_channels: int = 4
    widths: tuple[int, ...] = (16, 32, 64)
    res_blocks: int = 1
    groups: int = 8
    image_size: int = 28
    image_channels: int = 1

    def __post_init__(self) -> None:
        for name in ("latent_channels", "res_blocks", "groups", "image_size", "image_channels"):
            positive_int(name, getattr(self, name))
        if not self.widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be a non-empty tuple of positive integers, got {self.widths!r}")
        if any(w % self.groups for w in self.widths):
            raise ValueError(f"groups={self.groups} must divide every width in {self.widths}")

    @property
    def downsamples(self) -> int:
        """The number of halvings of the side, ``len(widths) - 1``; the downsampling factor is f = 2**downsamples."""
        return len(self.widths) - 1

    @property
    def padded_size(self) -> int:
        """The side the encoder works at, ``image_size`` rounded up to a multiple of 2**downsamples."""
        f = 2**self.downsamples
        return f * math.ceil(self.image_size / f)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input image."""
        return (self.image_channels, self.image_size, self.image_size)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """The shape (c, h, w) of one latent, (4, 7, 7) for the defaults."""
        side = self.padded_size // 2**self.downsamples
        return (self.latent_channels, side, side)


#: The latent sizes of the chapter's rate-distortion figure, from 2x to 12x fewer numbers than the 784 pixels.
#: 14x14x2 keeps 392 numbers (f = 2), 7x7x4 keeps 196 (f = 4, the default and the latent diffusion model's), 7x7x2
#: keeps 98 and 4x4x4 keeps 64 (f = 8, the image padded to 32x32). The ladder changes the side (f = 2, 4, 8) and, at
#: one side, the channels (7x7x4 and 7x7x2), so that the figure separates the two ways to compress; Rombach et al.
#: compare f = 1 to 32 and find f = 4 to 16 the best trade-off for their images.
LATENT_SIZES: dict[str, AutoencoderConfig] = {
    "14x14x2": AutoencoderConfig(latent_channels=2, widths=(16, 32)),
    "7x7x4": AutoencoderConfig(),
    "7x7x2": AutoencoderConfig(latent_channels=2),
    "4x4x4": AutoencoderConfig(widths=(16, 32, 64, 64)),
}


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice plus a skip path (LDM's ``ResnetBlock`` without a time embedding):
    (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class DiagonalGaussian:
    """q(z | x) = N(mean, diag(exp(logvar))), the encoder's output: ``mean`` and ``logvar`` (B, c, h, w).

    The log-variance is clamped to [-30, 20] (LDM's ``DiagonalGaussianDistribution``): exp(-30) is far below any
    latent's spread, and the clamp keeps exp() finite early in training.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mean = mean
        self.logvar = logvar.clamp(-30.0, 20.0)

    @property
    def std(self) -> torch.Tensor:
        """exp(logvar / 2), (B, c, h, w)."""
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + std * eps with eps ~ N(0, I) drawn from ``generator`` (on the device of the mean)."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def kl(self) -> torch.Tensor:
        """KL(q(z | x) || N(0, I)) per image, summed over the latent: (B,).

        In closed form, 1/2 sum_j (mean_j^2 + var_j - 1 - logvar_j): chapter 11's Gaussian KL
        (:func:`diffnotes.gaussians.gaussian_kl`) against N(0, 1), summed over the c h w coordinates.
        """
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).flatten(1).sum(1)


class Autoencoder(nn.Module):
    """The KL autoencoder: ``encode(x)`` -> :class:`DiagonalGaussian`, ``decode(z)`` -> image, ``model(x)`` -> (the
    reconstruction of a posterior sample, the posterior).

    Images are (B, image_channels, image_size, image_size) in [-1, 1]; latents are (B, ``*latent_shape``). The
    decoder's output is not clipped (as in LDM); clip it to [-1, 1] to show or score it.
    """

    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()) -> None:
        super().__init__()
        self.config = config
        widths, groups, c = config.widths, config.groups, config.latent_channels
        encoder: list[nn.Module] = [nn.Conv2d(config.image_channels, widths[0], 3, padding=1)]
        for level, width in enumerate(widths):
            for i in range(config.res_blocks):
                encoder.append(ResBlock(widths[max(level - 1, 0)] if i == 0 else width, width, groups))
            if level < config.downsamples:
                encoder.append(nn.Conv2d(width, width, 3, stride=2, padding=1))  # (B, C, H/2, W/2), 7 -> 4
        encoder += [ResBlock(widths[-1], widths[-1], groups), nn.GroupNorm(groups, widths[-1]), nn.SiLU(),
                    nn.Conv2d(widths[-1], 2 * c, 3, padding=1)]  # mean and logvar
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [nn.Conv2d(c, widths[-1], 3, padding=1), ResBlock(widths[-1], widths[-1], groups)]
        for level in reversed(range(len(widths))):
            for i in range(config.res_blocks):
                decoder.append(ResBlock(widths[min(level + 1, len(widths) - 1)] if i == 0 else widths[level],
                                        widths[level], groups))
            if level > 0:
                decoder += [nn.Upsample(scale_factor=2, mode="nearest"),
                            nn.Conv2d(widths[level], widths[level], 3, padding=1)]  # (B, C, 2H, 2W)
        decoder += [nn.GroupNorm(groups, widths[0]), nn.SiLU(),
                    nn.Conv2d(widths[0], config.image_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z | x): images (B, image_channels, image_size, image_size) -> a Gaussian over (B, ``*latent_shape``).

        Raises:
            ValueError: naming ``x`` and the expected shape, for images of another size or channel count.
        """
        config = self.config
        check_shape("x", x, config.image_shape, "images")
        pad = config.padded_size - config.image_size
        h = self.encoder(F.pad(x, (0, pad, 0, pad), value=-1.0))  # (B, 2c, h, w)
        mean, logvar = h.chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """D(z): latents (B, ``*latent_shape``) -> images (B, image_channels, image_size, image_size), unclipped.

        Raises:
            ValueError: naming ``z`` and the expected shape, for latents of another shape.
        """
        check_shape("z", z, self.config.latent_shape, "latents")
        size = self.config.image_size
        return self.decoder(z)[..., :size, :size]

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        """(D(z) for one z ~ q(z | x), q(z | x)): what the training loss needs."""
        posterior = self.encode(x)
        return self.decode(posterior.sample(generator)), posterior


def check_shape(name: str, value: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    """ValueError unless ``value`` is a float tensor (B, ``*expected``) with B >= 1; the message names the argument."""
    wanted = f"{what} of shape (B, {', '.join(str(s) for s in expected)})"
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of {wanted}, got {type(value).__name__}")
    if value.dim() != len(expected) + 1 or tuple(value.shape[1:]) != tuple(expected) or value.shape[0] < 1:
        raise ValueError(f"{name} must be {wanted}, got shape {tuple(value.shape)}")


def load_autoencoder_state(model: Autoencoder, state: dict, source: str) -> Autoencoder:
    """Load ``state`` (float16 or float32) into ``model``; return it in eval mode.

    Raises:
        ValueError: naming ``source`` and the model's config, if the weights are those of another network (other
            latent size, widths or a different model altogether).
    """
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as error:
        first = " ".join(str(error).strip().splitlines()[0:2])
        raise ValueError(f"weights {source} do not fit an Autoencoder with {model.config}: {first}") from error
    return model.eval()
