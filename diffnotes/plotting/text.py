"""Figures of the chapters "Text guidance" and "Ways to use it": the guidance sweep, cross-attention maps, and
img2img's trade-off between faithfulness and realism."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from diffnotes.plotting.common import new_figure, show_image


def plot_guidance_sweep(records: Sequence[Mapping], chance: float = 1 / 3) -> Figure:
    """Two panels against the guidance scale w (log axis). Left: the share of samples read as the requested digit
    (and read so with confidence), and the share of attributes obeyed (chance dashed). Right: diversity, the
    within-class spread relative to real digits (left axis) and the FD against real digits (right axis)."""
    fig, (left, right) = new_figure(ncols=2, width=8.4, height=3.1)
    w = [r["guidance_scale"] for r in records]
    left.plot(w, [100 * r["read"] for r in records], "o-", label="read as the digit asked for")
    left.plot(w, [100 * r["confident"] for r in records], "s--", label="... with confidence > 0.9")
    left.plot(w, [100 * r["attribute_mean"] for r in records], "^-", label="attribute obeyed")
    left.axhline(100 * chance, color="grey", ls=":", lw=1, label="attribute by chance")
    left.set_ylabel("share of samples (%)")
    left.set_ylim(0, 102)
    left.legend(fontsize=7, loc="lower right")
    right.plot(w, [r["spread"] for r in records], "o-", color="tab:green", label="within-class spread")
    right.axhline(1.0, color="tab:green", ls=":", lw=1)
    right.set_ylabel("spread (real digits = 1)", color="tab:green")
    twin = right.twinx()
    twin.plot(w, [r["fd"] for r in records], "s-", color="tab:red", label="FD to real digits")
    twin.set_ylabel("Frechet distance", color="tab:red")
    twin.grid(False)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(w, [f"{x:g}" for x in w])
        ax.minorticks_off()
        ax.set_xlabel("guidance scale w")
    return fig


def plot_attention_maps(image: torch.Tensor, maps: torch.Tensor, tokens: Sequence[str]) -> Figure:
    """The decoded digit (1, 28, 28) and, for each token, where the image attends to it: ``maps`` (H, W, L), one
    distribution over the L tokens per latent position, shown upsampled over the digit (brighter = more attention)."""
    fig, axes = new_figure(ncols=len(tokens) + 1, width=1.15 * (len(tokens) + 1), height=1.5)
    show_image(axes[0], image)
    axes[0].set_title("sample", fontsize=8)
    size = image.shape[-1]
    top = float(maps[..., : len(tokens)].max())
    for ax, (i, token) in zip(axes[1:], enumerate(tokens)):
        heat = F.interpolate(maps[None, None, ..., i], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        ax.imshow(((image[0] + 1) / 2).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.imshow(heat.numpy(), cmap="magma", alpha=0.65, vmin=0, vmax=top)
        ax.set_title(token, fontsize=8)
        ax.set_axis_off()
    return fig


def plot_strength_tradeoff(series: Mapping[str, Sequence[Mapping]]) -> Figure:
    """img2img over the strength: the distance to the input drawing (faithfulness, left) and the share read with
    confidence as the digit prompted (right), one line per series of prompts."""
    fig, (left, right) = new_figure(ncols=2, width=8.0, height=2.9)
    for name, records in series.items():
        s = [r["strength"] for r in records]
        left.plot(s, [r["rms_distance"] for r in records], "o-", label=name)
        right.plot(s, [100 * r["confident"] for r in records], "o-", label=name)
    left.set_ylabel("RMS distance to the drawing")
    right.set_ylabel("read as the prompt, confident (%)")
    right.set_ylim(0, 102)
    for ax in (left, right):
        ax.set_xlabel("strength")
        ax.legend(fontsize=7)
    return fig
