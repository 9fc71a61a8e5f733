"""Looking inside a U-Net (chapter "A compact U-Net"): the tensor's shape at every block, parameters per part,
receptive field, the cost of attention, and the map onto diffusers' ``UNet2DModel``.

Everything here reads a :class:`diffnotes.nets.unet.UNet` from the outside: :func:`shape_table` runs one forward pass
with hooks on the blocks and records what went in and what came out, so the book's table and diagram are drawn from
the model itself and cannot drift from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from diffnotes.nets.unet import Block, UNet, UNetConfig

#: The part of the network each top-level module belongs to, in the order of the forward pass.
PARTS: dict[str, str] = {
    "time_mlp": "embedding",
    "label_emb": "embedding",
    "stem": "encoder",
    "down": "encoder",
    "downsample": "encoder",
    "mid": "middle",
    "up": "decoder",
    "upsample": "decoder",
    "head": "head",
}


@dataclass(frozen=True)
class BlockShape:
    """One row of the shape table: a block of the U-Net and the tensors it saw in one forward pass.

    Attributes:
        name: the module's path in the model, e.g. ``"down.1.0"`` (level 1, block 0) or ``"upsample.0"``.
        part: ``"encoder"``, ``"middle"``, ``"decoder"`` or ``"head"`` (see :data:`PARTS`).
        kind: ``"stem"``, ``"res"``, ``"res+attn"``, ``"res+attn+cross"``, ``"down"``, ``"up"`` or ``"head"``.
        in_shape: (C, H, W) of the block's input, without the batch (a decoder block's input includes its skip).
        out_shape: (C, H, W) of its output.
        params: the block's parameter count.
        skip_from: for a decoder block, the name of the encoder row whose output is concatenated to its input.
        receptive_field: side of the input window one output position sees through the convolutions
            (book eq. ``ch6-eq-rf``); None in the decoder, where paths of different depths merge.
    """

    name: str
    part: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: int
    skip_from: str | None
    receptive_field: int | None


def _kind(name: str, module: nn.Module) -> str:
    if isinstance(module, Block):
        attn, cross = module.self_attn is not None, module.cross_attn is not None
        return "res" + ("+attn" if attn else "") + ("+cross" if cross else "")
    return {"stem": "stem", "downsample": "down", "upsample": "up", "head": "head"}[name.split(".")[0]]


def _rows_to_watch(model: UNet) -> dict[nn.Module, str]:
    """The stem, every Block, every real down/upsampler and the head, by their names in the model."""
    watched = {}
    for name, module in model.named_modules():
        top, depth = name.split(".")[0], name.count(".")
        sampler = top in ("downsample", "upsample") and depth == 1 and not isinstance(module, nn.Identity)
        if isinstance(module, Block) or sampler or name in ("stem", "head"):
            watched[module] = name
    return watched


def _find_skip(x: torch.Tensor, kept: dict[str, torch.Tensor]) -> str | None:
    """The encoder output that forms the last channels of a decoder block's input ``x`` (found by value)."""
    for name, output in reversed(kept.items()):
        c = output.shape[1]
        if x.shape[1] > c and x.shape[2:] == output.shape[2:] and torch.equal(x[:, -c:], output):
            del kept[name]
            return name
    return None


def receptive_field(convs: Sequence[tuple[int, int]]) -> int:
    """Receptive field of a chain of convolutions, book eq. ``ch6-eq-rf``: ``1 + sum_i (k_i - 1) prod_{j<i} s_j``.

    Args:
        convs: (kernel size, stride) of each convolution, in the order the signal goes through them.
    """
    field, jump = 1, 1
    for kernel, stride in convs:
        if kernel < 1 or stride < 1:
            raise ValueError(f"convs must hold positive (kernel, stride) pairs, got {(kernel, stride)}")
        field += (kernel - 1) * jump
        jump *= stride
    return field


def _convs(module: nn.Module) -> list[tuple[int, int]]:
    """The (kernel, stride) of a block's convolutions on its main path (1x1 skip convolutions add nothing)."""
    return [(m.kernel_size[0], m.stride[0]) for m in module.modules() if isinstance(m, nn.Conv2d)]


def shape_table(
    model: UNet, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
) -> list[BlockShape]:
    """Run ``model(x_t, t, cond)`` once with forward hooks and return one :class:`BlockShape` per block, in call order.

    The skip connections are observed, not assumed: each decoder block's input is searched for an encoder block's
    output among its last channels.

    Args:
        model: the U-Net to inspect (left unchanged; the pass runs without gradients).
        x_t: an input batch (B, C, H, W).
        t: (B,) timesteps in 1..T.
        cond: the model's conditioning, if it has any (labels or tokens).
    """
    watched, calls, kept = _rows_to_watch(model), [], {}

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        name, x = watched[module], args[0]
        part = PARTS[name.split(".")[0]]
        skip_from = _find_skip(x, kept) if part == "decoder" and isinstance(module, Block) else None
        if part == "encoder":
            kept[name] = output
        calls.append((name, part, module, tuple(x.shape[1:]), tuple(output.shape[1:]), skip_from))

    handles = [module.register_forward_hook(record) for module in watched]
    try:
        with torch.no_grad():
            model(x_t, t, cond)
    finally:
        for handle in handles:
            handle.remove()

    rows, convs = [], []
    for name, part, module, in_shape, out_shape, skip_from in calls:
        field = None
        if part in ("encoder", "middle"):
            convs += _convs(module)
            field = receptive_field(convs)
        params = sum(p.numel() for p in module.parameters())
        rows.append(BlockShape(name, part, _kind(name, module), in_shape, out_shape, params, skip_from, field))
    return rows


def parameter_counts(model: UNet) -> dict[str, int]:
    """Trainable parameters per part: embedding, encoder (with the stem), middle, decoder, head.

    The parts sum to :func:`diffnotes.nets.unet.count_parameters`.
    """
    counts = dict.fromkeys(dict.fromkeys(PARTS.values()), 0)
    for name, parameter in model.named_parameters():
        top = name.split(".")[0]
        if top not in PARTS:
            raise ValueError(f"model has a module {top!r} that is not one of the parts {list(PARTS)}")
        if parameter.requires_grad:
            counts[PARTS[top]] += parameter.numel()
    return counts


def attention_macs(n_queries: int, n_keys: int, channels: int) -> int:
    """Multiply-adds of attention's two matrix products, book eq. ``ch6-eq-attn-cost``: ``2 n_q n_k C``.

    ``Q K^T`` is (n_q x C) times (C x n_k); the weights times ``V`` is (n_q x n_k) times (n_k x C). The number of
    heads does not change the count: each of h heads works on C/h channels.
    """
    if min(n_queries, n_keys, channels) < 1:
        raise ValueError(f"n_queries, n_keys and channels must be positive, got {n_queries}, {n_keys}, {channels}")
    return 2 * n_queries * n_keys * channels


def conv_macs(height: int, width: int, c_in: int, c_out: int, kernel: int = 3) -> int:
    """Multiply-adds of one convolution that keeps the resolution: ``H W c_in c_out k^2``."""
    if min(height, width, c_in, c_out, kernel) < 1:
        raise ValueError(f"height, width, c_in, c_out and kernel must be positive, got {height, width, c_in, c_out}")
    return height * width * c_in * c_out * kernel**2


def diffusers_kwargs(config: UNetConfig) -> dict[str, object]:
    """The arguments of diffusers' ``UNet2DModel`` that build the same network as ``UNet(config)``.

    diffusers gives every attention layer heads of one size (``attention_head_dim``), the book gives every layer
    ``config.heads`` heads: the two agree when all attending levels have the same width. The time embedding is
    ours with ``flip_sin_to_cos=False, freq_shift=0`` (sines first, frequencies ``10000**(-i/half)``).

    Raises:
        ValueError: for a token-conditioned config (``UNet2DModel`` has no cross-attention), or attending levels
            of different widths.
    """
    if config.context_dim is not None:
        raise ValueError("config.context_dim must be None: UNet2DModel has no cross-attention")
    attending = {w for w, a in zip(config.widths, config.attention) if a} | {config.widths[-1]}
    if len(attending) != 1:
        raise ValueError(f"config's attending levels must share one width for UNet2DModel, got {sorted(attending)}")
    return dict(
        in_channels=config.in_channels,
        out_channels=config.in_channels,
        block_out_channels=config.widths,
        layers_per_block=config.res_blocks,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in config.attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention)),
        norm_num_groups=config.groups,
        attention_head_dim=attending.pop() // config.heads,
        dropout=config.dropout,
        flip_sin_to_cos=False,
        freq_shift=0,
        num_class_embeds=None if config.num_classes is None else config.num_classes + 1,
    )


#: How the book's parameter names become diffusers' ``UNet2DModel`` names (regex, replacement), applied in order.
DIFFUSERS_NAMES: tuple[tuple[str, str], ...] = (
    (r"^time_mlp\.0\.", "time_embedding.linear_1."),
    (r"^time_mlp\.2\.", "time_embedding.linear_2."),
    (r"^label_emb\.", "class_embedding."),
    (r"^stem\.", "conv_in."),
    (r"^head\.0\.", "conv_norm_out."),
    (r"^head\.2\.", "conv_out."),
    (r"^downsample\.(\d+)\.", r"down_blocks.\1.downsamplers.0.conv."),
    (r"^upsample\.(\d+)\.1\.", r"up_blocks.\1.upsamplers.0.conv."),
    (r"^down\.(\d+)\.(\d+)\.res\.", r"down_blocks.\1.resnets.\2."),
    (r"^down\.(\d+)\.(\d+)\.self_attn\.", r"down_blocks.\1.attentions.\2."),
    (r"^up\.(\d+)\.(\d+)\.res\.", r"up_blocks.\1.resnets.\2."),
    (r"^up\.(\d+)\.(\d+)\.self_attn\.", r"up_blocks.\1.attentions.\2."),
    (r"^mid\.(\d+)\.res\.", r"mid_block.resnets.\1."),
    (r"^mid\.0\.self_attn\.", "mid_block.attentions.0."),
    (r"resnets\.(\d+)\.emb\.", r"resnets.\1.time_emb_proj."),
    (r"resnets\.(\d+)\.skip\.", r"resnets.\1.conv_shortcut."),
    (r"attentions\.(\d+)\.norm\.", r"attentions.\1.group_norm."),
    (r"attentions\.(\d+)\.q\.", r"attentions.\1.to_q."),
    (r"attentions\.(\d+)\.out\.", r"attentions.\1.to_out.0."),
)


def diffusers_state_dict(model: UNet) -> dict[str, torch.Tensor]:
    """The model's weights under diffusers' ``UNet2DModel`` names, for ``UNet2DModel(**diffusers_kwargs(config))``.

    Our fused key-value projection ``kv`` (its first C outputs are the keys) becomes ``to_k`` and ``to_v``.
    """
    diffusers_kwargs(model.config)  # raises for a config UNet2DModel cannot express
    renamed = {}
    for name, tensor in model.state_dict().items():
        for pattern, replacement in DIFFUSERS_NAMES:
            name = re.sub(pattern, replacement, name)
        if ".kv." in name:
            key, value = tensor.chunk(2, dim=0)
            renamed[name.replace(".kv.", ".to_k.")] = key
            renamed[name.replace(".kv.", ".to_v.")] = value
        else:
            renamed[name] = tensor
    return renamed


def parameters_by_name(model: nn.Module, fragments: Sequence[str]) -> dict[str, int]:
    """Parameters grouped by the first of ``fragments`` that is a component of their dotted name, the rest under
    ``"other"``. Works for any module: ``("res", "self_attn")`` for ours, ``("resnets", "attn1", "ff")`` for diffusers'.
    """
    counts = dict.fromkeys([*fragments, "other"], 0)
    for name, parameter in model.named_parameters():
        parts = name.split(".")
        counts[next((f for f in fragments if f in parts), "other")] += parameter.numel()
    return counts
