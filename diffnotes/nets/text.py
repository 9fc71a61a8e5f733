"""The text side of Stable Diffusion at digit scale (chapter "Text guidance"): a word-level tokenizer, a small
transformer text encoder tau_theta, and the U-Net that reads its tokens through cross-attention, trained together.

Stable Diffusion v1 tokenizes a prompt into 77 CLIP tokens and encodes them with a frozen CLIP text transformer
(width 768); the U-Net attends to all 77 outputs, padding included. Here, as in the LDM paper's own text-to-image
model (which trains its tau_theta jointly with the U-Net), the encoder is learned with the noise predictor:

- :class:`~diffnotes.nets.text.Tokenizer`: words of the caption grammar (:data:`diffnotes.captions.VOCABULARY`), a start
  token that every sequence begins with, padding to ``max_length``; the empty prompt is the start token alone (the null
  condition of classifier-free guidance);
- :class:`~diffnotes.nets.text.TextEncoder`: token and position embeddings and a pre-norm
  :class:`torch.nn.TransformerEncoder` whose self-attention ignores the padding; it returns one vector per position,
  (B, L, width), tau(y);
- :class:`~diffnotes.nets.text.TextUNet`: ``model(x_t, t, ids)`` = ``unet(x_t, t, encoder(ids))``, a noise predictor
  whose condition is the token ids, so that :func:`diffnotes.training.train` (with ``conditions=`` ids and
  ``null_condition=`` the empty prompt's ids) trains both, and :func:`diffnotes.nets.guidance.guided` guides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from diffnotes.captions import NUMBER_WORDS, VOCABULARY
from diffnotes.checks import positive_int
from diffnotes.nets.unet import UNet, UNetConfig

#: The special tokens, padding (id 0) and the start of every sequence (id 1).
PAD, START = "<pad>", "<start>"
#: Numerals that the tokenizer reads as their number words ("7" is "seven").
NUMERALS: dict[str, str] = {str(i): word for i, word in enumerate(NUMBER_WORDS)}


class Tokenizer:
    """Word-level tokenizer: ``tokenizer(["a thick seven", ""])`` -> int64 ids (2, ``max_length``).

    A prompt is lower-cased; commas and full stops are dropped; numerals become number words; the words are looked up
    in ``vocabulary`` and follow the start token, and padding fills the rest.

    - Empty prompt (or only spaces): the start token alone, the unconditional ("null") caption.
    - A word outside the vocabulary: ValueError naming it and listing the vocabulary (there is no <unk> token: a
      word the model never saw in training would carry no meaning).
    - More than ``max_length - 1`` words: ValueError giving the limit (no silent truncation, unlike CLIP's).
    - A prompt that is not a string: TypeError.
    """

    def __init__(self, vocabulary: tuple[str, ...] = VOCABULARY, max_length: int = 12) -> None:
        positive_int("max_length", max_length)
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 (the start token and one word), got {max_length}")
        self.tokens = (PAD, START, *vocabulary)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.max_length = max_length

    @property
    def vocab_size(self) -> int:
        """The number of tokens, the special ones included."""
        return len(self.tokens)

    def words(self, prompt: str) -> list[str]:
        """The words of ``prompt`` after normalisation (lower case, no commas or full stops, numerals as words)."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        return [NUMERALS.get(w, w) for w in re.sub(r"[,.]", " ", prompt.lower()).split()]

    def encode(self, prompt: str) -> list[int]:
        """The ids of one prompt, unpadded: the start token, then one id per word."""
        words = self.words(prompt)
        unknown = [w for w in words if w not in self.ids or w in (PAD, START)]
        if unknown:
            raise ValueError(f"prompt {prompt!r} has words outside the vocabulary: {', '.join(unknown)}; "
                             f"the vocabulary is: {', '.join(self.tokens[2:])}")
        if len(words) > self.max_length - 1:
            raise ValueError(f"prompt {prompt!r} has {len(words)} words; at most max_length - 1 = "
                             f"{self.max_length - 1} fit")
        return [self.ids[START]] + [self.ids[w] for w in words]

    def __call__(self, prompts: str | list[str]) -> torch.Tensor:
        """Padded ids (B, ``max_length``), int64, for one prompt or a list of them."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        ids = torch.zeros(len(prompts), self.max_length, dtype=torch.int64)
        for row, prompt in enumerate(prompts):
            encoded = self.encode(prompt)
            ids[row, : len(encoded)] = torch.tensor(encoded)
        return ids

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """The words of one row of ids, joined by spaces, without the special tokens."""
        return " ".join(self.tokens[i] for i in torch.as_tensor(ids).tolist() if i > 1)

    def null(self) -> torch.Tensor:
        """The ids of the empty prompt, (1, ``max_length``): the condition dropped to in training."""
        return self("")


@dataclass(frozen=True)
class TextEncoderConfig:
    """The text encoder's size: a transformer of ``layers`` pre-norm blocks of ``width`` with ``heads`` heads and a
    feed-forward layer of 4 ``width``, reading up to ``max_length`` tokens of a vocabulary of ``vocab_size``."""

    vocab_size: int = len(VOCABULARY) + 2
    max_length: int = 12
    width: int = 64
    layers: int = 2
    heads: int = 4

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_length", "width", "layers", "heads"):
            positive_int(name, getattr(self, name))
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be a multiple of heads={self.heads}")


class TextEncoder(nn.Module):
    """tau_theta: ids (B, L) -> tokens (B, L, width); padding (id 0) is masked out of the self-attention, and its
    outputs are kept (the U-Net attends to every position, as Stable Diffusion's does to CLIP's 77)."""

    def __init__(self, config: TextEncoderConfig = TextEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.width)
        self.position = nn.Parameter(torch.randn(config.max_length, config.width) * 0.02)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids with L <= max_length, each row starting with a non-padding token -> (B, L, width)."""
        config = self.config
        if ids.dim() != 2 or ids.is_floating_point() or ids.shape[1] > config.max_length:
            raise ValueError(f"ids must be (B, L) integers with L <= {config.max_length}, got {tuple(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= config.vocab_size):
            raise ValueError(f"ids must lie in 0..{config.vocab_size - 1}")
        h = self.token(ids) + self.position[: ids.shape[1]]
        return self.norm(self.transformer(h, src_key_padding_mask=ids == 0))


@dataclass(frozen=True)
class TextUNetConfig:
    """A text encoder and a U-Net whose ``context_dim`` is the encoder's width."""

    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(in_channels=4, widths=(64, 64),
                                                                attention=(False, True), context_dim=64))

    def __post_init__(self) -> None:
        if self.unet.context_dim != self.encoder.width:
            raise ValueError(f"unet.context_dim ({self.unet.context_dim}) must equal encoder.width "
                             f"({self.encoder.width})")


def text_unet_config(d: dict) -> TextUNetConfig:
    """The :class:`~diffnotes.nets.text.TextUNetConfig` of a checkpoint or provenance record (``asdict``, lists for
    tuples)."""
    unet = {k: tuple(v) if isinstance(v, list) else v for k, v in d["unet"].items()}
    return TextUNetConfig(TextEncoderConfig(**d["encoder"]), UNetConfig(**unet))


class TextUNet(nn.Module):
    """The text-conditioned noise predictor ``model(x_t, t, ids)``: the U-Net with cross-attention to tau(ids)."""

    def __init__(self, config: TextUNetConfig = TextUNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = TextEncoder(config.encoder)
        self.unet = UNet(config.unet)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """eps_theta(x_t, t, tau(ids)); ``cond`` (B, L) token ids, required (the empty prompt's ids for none)."""
        if cond is None:
            raise ValueError("cond (token ids) is required; for no condition pass the empty prompt's ids, "
                             "Tokenizer().null()")
        return self.unet(x_t, t, self.encoder(cond))


@torch.no_grad()
def cross_attention_maps(model: TextUNet, x_t: torch.Tensor, t: torch.Tensor, ids: torch.Tensor) -> list[torch.Tensor]:
    """Where each image position looks: the cross-attention probabilities softmax(q k^T / sqrt(d)) of every
    cross-attention layer in one call of ``model(x_t, t, ids)``, averaged over heads, each (B, H, W, L): for each
    position of that layer's (H, W) grid, a distribution over the L tokens (padding included, as the U-Net sees them)."""
    maps: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple) -> None:
        x, context = args
        b, c, h, w = x.shape
        q = module.q(module.norm(x).flatten(2).transpose(1, 2)).view(b, h * w, module.heads, -1).transpose(1, 2)
        k = module.kv(context)[..., :c].view(b, context.shape[1], module.heads, -1).transpose(1, 2)
        p = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(dim=-1)  # (B, heads, HW, L)
        maps.append(p.mean(dim=1).view(b, h, w, -1))

    layers = [block.cross_attn for block in model.unet.modules() if getattr(block, "cross_attn", None) is not None]
    handles = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        model(x_t, t, ids)
    finally:
        for handle in handles:
            handle.remove()
    return maps
