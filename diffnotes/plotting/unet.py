"""Figures for the chapter "A compact U-Net": the network's diagram, drawn from a shape table recorded by a forward
pass (:func:`diffnotes.nets.architecture.shape_table`), and the sinusoidal time embedding as a heat map."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

from diffnotes.nets.architecture import BlockShape
from diffnotes.plotting.common import new_figure

#: Box colours by the row's kind (see :class:`diffnotes.nets.architecture.BlockShape`).
KIND_COLOURS: dict[str, str] = {
    "stem": "#b8dcb8",
    "head": "#b8dcb8",
    "res": "#bcd4ee",
    "res+attn": "#f6c48f",
    "res+attn+cross": "#ef8f8f",
    "down": "#d9d9d9",
    "up": "#d9d9d9",
}
KIND_LABELS: dict[str, str] = {
    "stem": "3x3 conv (stem, head)",
    "res": "residual block",
    "res+attn": "residual block + self-attention",
    "res+attn+cross": "residual block + self- and cross-attention",
    "down": "down / up-sampling",
}
BOX_W, BOX_H, STEP = 0.84, 0.42, 1.1  # box size and the distance between boxes, in data units


def _times(shape: Sequence[int]) -> str:
    return "\u00d7".join(map(str, shape))


def _level(row: BlockShape, size: int) -> int:
    return round(math.log2(size / row.out_shape[1]))


def _path_arrow(points: Sequence[tuple[float, float]], colour: str, style: str = "-") -> FancyArrowPatch:
    codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
    return FancyArrowPatch(
        path=Path(points, codes), arrowstyle="-|>", mutation_scale=8, color=colour, linewidth=0.9, linestyle=style
    )


def draw_unet(rows: Sequence[BlockShape], width: float | None = None, title: str | None = None) -> Figure:
    """The U-Net as a U: one box per row of the shape table, placed left to right in the order of the forward pass
    and top to bottom by resolution; the box shows ``C_in -> C_out``, its colour the kind of block; dashed brackets
    are the skip connections (from the encoder output found in each decoder block's input).

    Args:
        rows: the shape table, :func:`diffnotes.nets.architecture.shape_table`.
        width: figure width in inches; by default half an inch per block, so that labels stay readable (the height
            follows from the number of levels).
        title: optional title.
    """
    if not rows:
        raise ValueError("rows must hold at least one BlockShape")
    size = rows[0].in_shape[1]
    levels = 1 + max(_level(row, size) for row in rows)
    fig, ax = new_figure(width=width or 1.4 + 0.5 * len(rows), height=1.0 + 0.9 * levels)
    position = {row.name: (STEP * i, -float(_level(row, size))) for i, row in enumerate(rows)}
    for row in rows:
        x, y = position[row.name]
        box = FancyBboxPatch(
            (x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=KIND_COLOURS[row.kind], edgecolor="0.3", linewidth=0.7,
        )
        ax.add_patch(box)
        label = f"{row.in_shape[0]}\u2192{row.out_shape[0]}"
        ax.text(x, y, label, ha="center", va="center", fontsize=7 if len(label) <= 6 else 6)
        ax.text(x, y - BOX_H / 2 - 0.05, row.name, ha="center", va="top", fontsize=5.5, color="0.35")
    for before, after in zip(rows, rows[1:]):  # the main path
        (x0, y0), (x1, y1) = position[before.name], position[after.name]
        sign = (y1 > y0) - (y1 < y0)  # up, level, down: leave by the right edge, enter by the left one
        start, end = (x0 + BOX_W / 2, y0 + sign * BOX_H / 4), (x1 - BOX_W / 2, y1 - sign * BOX_H / 4)
        ax.add_patch(_path_arrow([start, end], "0.2"))
    spans = sorted((row for row in rows if row.skip_from), key=lambda r: position[r.name][0] - position[r.skip_from][0])
    height_used: dict[float, int] = {}
    for row in spans:  # skip connections, innermost first, so that brackets nest without crossing
        (x0, y), (x1, _) = position[row.skip_from], position[row.name]
        rank = height_used.get(y, 0)
        height_used[y] = rank + 1
        top = y + BOX_H / 2 + 0.12 + 0.14 * rank
        points = [(x0 + 0.2, y + BOX_H / 2), (x0 + 0.2, top), (x1 - 0.2, top), (x1 - 0.2, y + BOX_H / 2)]
        ax.add_patch(_path_arrow(points, "tab:purple", "--"))
    first, last = rows[0], rows[-1]
    ax.text(-0.55, 0, f"$x_t$\n{_times(first.in_shape)}", ha="right", va="center", fontsize=7)
    output = r"$\epsilon_\theta$" + f"\n{_times(last.out_shape)}"
    right = STEP * (len(rows) - 1)
    ax.text(right + 0.55, 0, output, ha="left", va="center", fontsize=7)
    ax.set_xlim(-1.6, right + 1.6)
    ax.set_ylim(-levels + 0.55, BOX_H / 2 + 0.2 + 0.14 * max(height_used.values(), default=0))
    ax.set_yticks([-level for level in range(levels)], [_times((size >> level,) * 2) for level in range(levels)])
    ax.set_xticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    kinds = [kind for kind in KIND_LABELS if kind in {row.kind for row in rows}]
    handles = [Patch(facecolor=KIND_COLOURS[k], edgecolor="0.3", label=KIND_LABELS[k]) for k in kinds]
    handles.append(Patch(facecolor="white", edgecolor="tab:purple", linestyle="--", label="skip connection"))
    fig.legend(handles=handles, loc="outside lower center", fontsize=7, ncol=3)
    if title:
        ax.set_title(title)
    return fig


def _smooth_rows(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each column of (N, dim) filtered along N by a Gaussian of standard deviation ``sigma`` rows."""
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=values.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    columns = F.pad(values.T[:, None, :], (radius, radius), mode="reflect")  # (dim, 1, N + 2 radius)
    return F.conv1d(columns, (kernel / kernel.sum())[None, None])[:, 0].T  # (N, dim)


def plot_timestep_embedding(emb: torch.Tensor, t: torch.Tensor, zoom: int = 50, sigma: float = 3.0) -> Figure:
    """Heat maps of sinusoidal embeddings, :func:`diffnotes.nets.embeddings.timestep_embedding`, one row per timestep.

    Left, every timestep. A screen shows a few hundred rows, so this panel is first smoothed along t by a Gaussian
    of ``sigma`` steps (without it the columns that oscillate within a few steps would alias into false patterns):
    those columns fade to zero there. Right, the first ``zoom`` timesteps, unsmoothed.

    Args:
        emb: (N, dim) embeddings, sines in the first half of the columns and cosines in the second.
        t: (N,) the consecutive timesteps they embed (the vertical axis).
        zoom: how many of the first rows the right panel shows.
        sigma: the smoothing of the left panel, in timesteps.
    """
    if emb.dim() != 2 or t.shape != emb.shape[:1]:
        raise ValueError(f"emb must be (N, dim) and t (N,), got {tuple(emb.shape)} and {tuple(t.shape)}")
    if not 1 <= zoom <= len(t) or not 0 < 3 * sigma < len(t) - 1:
        raise ValueError(f"zoom must lie in 1..{len(t)} and sigma in (0, {(len(t) - 1) / 3}), got {zoom}, {sigma}")
    dim, values = emb.shape[1], emb.detach().double().cpu()
    panels = ((_smooth_rows(values, sigma), len(t), f"smoothed over {sigma:g} steps"), (values[:zoom], zoom, ""))
    fig, axes = new_figure(ncols=2, width=8.0, height=3.4)
    for ax, (image_values, n, note) in zip(axes, panels):
        extent = (-0.5, dim - 0.5, float(t[n - 1]) + 0.5, float(t[0]) - 0.5)
        image = ax.imshow(
            image_values.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, extent=extent, interpolation="nearest"
        )
        ax.axvline(dim / 2 - 0.5, color="black", linewidth=0.8)
        ax.set_xlabel(f"index i (sines 0..{dim // 2 - 1} | cosines {dim // 2}..{dim - 1})")
        ax.set_ylabel("timestep t")
        ax.set_title(f"t = {int(t[0])}..{int(t[n - 1])}" + (f" ({note})" if note else ""))
        ax.grid(False)
    fig.colorbar(image, ax=axes, shrink=0.85)
    return fig
