"""A compact U-Net noise predictor (chapter "A compact U-Net").

``eps_theta = UNet(config)(x_t, t, cond=None)``: the output has the shape of ``x_t``; ``t`` holds the lecture's
timesteps in 1..T. The pieces, as in Ho et al. (2020) and the latent-diffusion U-Net of Rombach et al. (2022):

- a sinusoidal embedding of t, through a small MLP, added to every residual block;
- residual blocks: GroupNorm, SiLU, 3x3 convolution, twice, with a 1x1 convolution on the skip path when widths differ;
- self-attention (and, when the model is conditioned on tokens, cross-attention) at the low resolutions;
- downsampling by strided convolution, upsampling by nearest-neighbour doubling and a convolution;
- skip connections: each level's features are concatenated into the decoder at the same resolution.

Optional conditioning, for the Stable Diffusion chapters: a class label (an embedding added to the time embedding;
the extra index ``num_classes`` is the "no label" used by classifier-free guidance), or a sequence of embedding
tokens (B, L, context_dim) read through cross-attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffnotes.nets.embeddings import timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    """The U-Net's shape. Defaults: the book's digit model (28x28x1, widths 32/64/64, attention at 7x7).

    Attributes:
        in_channels: channels of x_t (and of the output).
        widths: channels at each resolution level; level i works at resolution H / 2**i.
        attention: for each level, whether its blocks attend (self-attention, plus cross-attention with tokens).
        res_blocks: residual blocks per level in the encoder (the decoder has one more, as in Ho et al.).
        groups: GroupNorm groups (must divide every width).
        heads: attention heads.
        dropout: dropout inside residual blocks.
        num_classes: if set, the model takes class labels in 0..num_classes (num_classes meaning "no label").
        context_dim: if set, the model takes embedding tokens of this width through cross-attention.
    """

    in_channels: int = 1
    widths: tuple[int, ...] = (32, 64, 64)
    attention: tuple[bool, ...] = (False, False, True)
    res_blocks: int = 1
    groups: int = 8
    heads: int = 4
    dropout: float = 0.0
    num_classes: int | None = None
    context_dim: int | None = None

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.attention) or not self.widths:
            raise ValueError(f"widths and attention need one entry per level, got {self.widths} and {self.attention}")
        if self.in_channels < 1 or self.res_blocks < 1 or min(self.widths) < 1:
            raise ValueError(f"in_channels, res_blocks and widths must be positive, got {self}")
        if self.groups < 1 or any(w % self.groups for w in self.widths):
            raise ValueError(f"groups={self.groups} must divide every width in {self.widths}")
        if self.widths[0] % 2:
            raise ValueError(f"widths[0]={self.widths[0]} is the sinusoidal embedding's size and must be even")
        attending = [w for w, a in zip(self.widths, self.attention) if a] + [self.widths[-1]]  # the middle attends
        if self.heads < 1 or any(w % self.heads for w in attending):
            raise ValueError(f"heads={self.heads} must divide the width of every attending level, {attending}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.num_classes is not None and self.context_dim is not None:
            raise ValueError("give num_classes or context_dim, not both")
        for name in ("num_classes", "context_dim"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer or None, got {getattr(self, name)}")


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time (and class) embedding added in between, plus a skip path.

    Book eq. ``ch6-eq-resblock``: (B, c_in, H, W) and an embedding (B, emb_dim) -> (B, c_out, H, W).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) and (B, emb_dim) -> (B, c_out, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head attention over the H*W positions: self-attention, or cross-attention to context tokens.

    Book eq. ``ch6-eq-attention``: queries from the image's tokens, keys and values from the image itself
    (self-attention) or from ``context`` (B, L, context_dim) (cross-attention); the result is added back to ``x``.
    """

    def __init__(self, channels: int, groups: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(context_dim or channels, 2 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W), and optional tokens (B, L, context_dim) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        source = tokens if context is None else context  # (B, L, C_ctx)
        q = self.q(tokens).view(b, h * w, self.heads, c // self.heads).transpose(1, 2)  # (B, nh, HW, hs)
        k, v = self.kv(source).view(b, source.shape[1], 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, HW, hs)
        y = self.out(y.transpose(1, 2).reshape(b, h * w, c))  # (B, HW, C)
        return x + y.transpose(1, 2).reshape(b, c, h, w)


class Block(nn.Module):
    """One residual block, followed at attending levels by self-attention (and cross-attention with tokens)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, config: UNetConfig, attend: bool) -> None:
        super().__init__()
        self.res = ResBlock(c_in, c_out, emb_dim, config.groups, config.dropout)
        self.self_attn = Attention(c_out, config.groups, config.heads) if attend else None
        use_cross = attend and config.context_dim is not None
        self.cross_attn = Attention(c_out, config.groups, config.heads, config.context_dim) if use_cross else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """(B, c_in, H, W), the embedding (B, emb_dim) and the tokens (or None) -> (B, c_out, H, W)."""
        x = self.res(x, emb)
        if self.self_attn is not None:
            x = self.self_attn(x)
        if self.cross_attn is not None:
            x = self.cross_attn(x, context)
        return x


class UNet(nn.Module):
    """The compact U-Net: ``model(x_t, t, cond=None)`` -> eps_theta, the shape of ``x_t`` (B, C, H, W).

    Any H and W work: an input whose sides are not divisible by 2**(levels - 1) is padded with zeros on the bottom
    and right to the next multiple, and the output cropped back (latents of 7x7, images of 28x28 with four levels).
    ``cond`` is a (B,) integer tensor of labels in 0..num_classes
    when the config has ``num_classes`` (None means "no label" for every image), a (B, L, context_dim) tensor of
    tokens when it has ``context_dim`` (required), and None otherwise.
    """

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        widths, emb_dim = config.widths, 4 * config.widths[0]
        self.time_mlp = nn.Sequential(nn.Linear(widths[0], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(config.num_classes + 1, emb_dim) if config.num_classes is not None else None
        self.stem = nn.Conv2d(config.in_channels, widths[0], 3, padding=1)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skip_widths, c = [widths[0]], widths[0]
        for level, (width, attend) in enumerate(zip(widths, config.attention)):
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks):
                blocks.append(Block(c, width, emb_dim, config, attend))
                c = width
                skip_widths.append(c)
            self.down.append(blocks)
            last = level == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
            if not last:
                skip_widths.append(c)

        self.mid = nn.ModuleList([Block(c, c, emb_dim, config, True), Block(c, c, emb_dim, config, False)])

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            blocks = nn.ModuleList()
            for _ in range(config.res_blocks + 1):
                blocks.append(Block(c + skip_widths.pop(), widths[level], emb_dim, config, config.attention[level]))
                c = widths[level]
            self.up.append(blocks)
            if level == 0:
                self.upsample.append(nn.Identity())
            else:
                doubling = nn.Upsample(scale_factor=2, mode="nearest")
                self.upsample.append(nn.Sequential(doubling, nn.Conv2d(c, c, 3, padding=1)))  # (B, C, 2H, 2W)
        out = nn.Conv2d(c, config.in_channels, 3, padding=1)
        self.head = nn.Sequential(nn.GroupNorm(config.groups, c), nn.SiLU(), out)
        nn.init.zeros_(self.head[-1].weight)  # start as the zero predictor: the loss begins at E||eps||^2 = 1
        nn.init.zeros_(self.head[-1].bias)

    def embed(self, t: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The embedding added to every block, and the context tokens for cross-attention (or None)."""
        config, batch = self.config, t.shape[0]
        emb = self.time_mlp(timestep_embedding(t, config.widths[0]))  # (B, 4 * widths[0])
        shape = None if cond is None else tuple(cond.shape)
        if config.num_classes is not None:
            labels = cond if cond is not None else torch.full_like(t, config.num_classes)
            bad_values = labels.is_floating_point() or labels.min() < 0 or labels.max() > config.num_classes
            if labels.shape != (batch,) or bad_values:
                raise ValueError(f"cond must be ({batch},) integer labels in 0..num_classes={config.num_classes}")
            emb = emb + self.label_emb(labels)
        context = None
        if config.context_dim is not None:
            if cond is None or cond.dim() != 3 or cond.shape[0] != batch or cond.shape[-1] != config.context_dim:
                raise ValueError(f"cond must be tokens of shape ({batch}, L, {config.context_dim}), got {shape}")
            context = cond
        elif config.num_classes is None and cond is not None:
            raise ValueError(f"cond must be None: this model has neither num_classes nor context_dim, got {shape}")
        return emb, context

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """eps_theta(x_t, t, cond): (B, C, H, W) -> (B, C, H, W); raises ValueError on inputs of the wrong shape."""
        levels = len(self.config.widths)
        if x_t.dim() != 4 or x_t.shape[1] != self.config.in_channels:
            raise ValueError(f"x_t must have shape (B, {self.config.in_channels}, H, W), got {tuple(x_t.shape)}")
        if t.shape != x_t.shape[:1]:
            raise ValueError(f"t must have shape (B,) = ({x_t.shape[0]},), got {tuple(t.shape)}")
        emb, context = self.embed(t, cond)
        height, width = x_t.shape[-2:]
        multiple = 2 ** (levels - 1)
        h = self.stem(F.pad(x_t, (0, -width % multiple, 0, -height % multiple)))  # (B, widths[0], H', W')
        skips = [h]
        for blocks, downsample in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb, context)
                skips.append(h)
            if not isinstance(downsample, nn.Identity):
                h = downsample(h)  # (B, C, H/2, W/2)
                skips.append(h)
        for block in self.mid:
            h = block(h, emb, context)
        for blocks, upsample in zip(self.up, self.upsample):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb, context)
            h = upsample(h)  # (B, C, 2H, 2W), except at the top level
        return self.head(h)[..., :height, :width]


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
