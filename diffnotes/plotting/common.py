"""Shared figure style and image grids for every chapter's plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from diffnotes.data import to_unit_range

BOOK_STYLE: dict[str, object] = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "axes.titlesize": 10,
    "legend.frameon": False,
}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 3.2, **kwargs: object) -> tuple[Figure, object]:
    """A figure in the book's style, ``width`` x ``height`` inches for the whole grid of axes.

    The style is applied to matplotlib's settings for the session (not inside an ``rc_context``, whose exit would
    also switch interactive mode back off and hide every later figure in a notebook), so titles and legends added
    after this call follow it too.
    """
    plt.rcParams.update(BOOK_STYLE)
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kwargs)


def image_grid(images: torch.Tensor, nrow: int, pad: int = 1) -> torch.Tensor:
    """Tile a batch (B, C, H, W) in [-1, 1] into one (H', W', C) array in [0, 1], ``nrow`` images per row."""
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, w = images.shape
    n_rows = -(-b // nrow)
    canvas = torch.ones(c, n_rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for index, image in enumerate(to_unit_range(images.detach().float().cpu())):
        row, col = divmod(index, nrow)
        top, left = pad + row * (h + pad), pad + col * (w + pad)
        canvas[:, top : top + h, left : left + w] = image
    return canvas.permute(1, 2, 0)


def show_images(
    images: torch.Tensor, titles: Sequence[str] | None = None, width: float = 6.4, height: float | None = None
) -> Figure:
    """Show each image of a batch (B, C, H, W) in [-1, 1] side by side, with optional titles."""
    b = images.shape[0]
    fig, axes = new_figure(ncols=b, width=width, height=height or width / b + 0.4, squeeze=False)
    for index, ax in enumerate(axes[0]):
        show_image(ax, images[index])
        if titles is not None:
            ax.set_title(titles[index])
    return fig


def show_image(ax: Axes, image: torch.Tensor) -> None:
    """Draw one image (C, H, W) in [-1, 1] on ``ax``, grey for one channel, without axes."""
    pixels = to_unit_range(image.detach().float().cpu()).permute(1, 2, 0)
    ax.imshow((pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()


def image_rows(rows: Mapping[str, torch.Tensor], columns: Sequence[str] | None = None, width: float = 0.7) -> Figure:
    """One axes per row (labelled with its key), each showing its batch (B, C, H, W) in [-1, 1] side by side; optional column labels."""
    n = max(len(x) for x in rows.values())
    fig, axes = new_figure(nrows=len(rows), width=width * n + 1.3, height=0.74 * len(rows) + 0.25, squeeze=False)
    for ax, (name, x) in zip(axes[:, 0], rows.items()):
        ax.imshow(image_grid(x.clamp(-1, 1), nrow=n).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_yticks([])
        ax.set_xticks([])
        ax.grid(False)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        for spine in ax.spines.values():
            spine.set_visible(False)
    if columns is not None:
        top = axes[0, 0]
        top.set_xticks([1 + 29 * i + 14 for i in range(len(columns))], columns, fontsize=8)
        top.xaxis.tick_top()
        top.tick_params(length=0)
    return fig
