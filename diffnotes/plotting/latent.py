"""Figures of the chapter "Latent diffusion": reconstructions, the rate-distortion trade-off, what the scale factor
does to the signal-to-noise ratio, and samples decoded from latents."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.figure import Figure

from diffnotes.plotting.common import image_rows, new_figure
from diffnotes.schedules import Schedule


def plot_reconstructions(originals: torch.Tensor, reconstructions: Mapping[str, torch.Tensor]) -> Figure:
    """Held-out digits (B, 1, H, W) in [-1, 1] in the first row, and below them their reconstructions by each
    autoencoder of ``reconstructions`` ({name: (B, 1, H, W)})."""
    return image_rows({"digit": originals, **reconstructions}, width=0.62)


def plot_rate_distortion(points: Mapping[str, Mapping[str, float]]) -> Figure:
    """Two panels against the numbers a latent keeps (log axis): the reconstruction's mean squared error, and the share
    of reconstructions the classifier reads correctly and confidently (the originals' share as a dashed line).

    Args:
        points: ``{latent size: {"numbers": values per latent, "mse": ..., "read": share, "read_originals": share}}``.
    """
    fig, (left, right) = new_figure(ncols=2, width=8.0, height=3.0)
    ordered = sorted(points.items(), key=lambda item: item[1]["numbers"])
    numbers = [p["numbers"] for _, p in ordered]
    left.plot(numbers, [p["mse"] for _, p in ordered], "o-", color="tab:blue")
    right.plot(numbers, [100 * p["read"] for _, p in ordered], "o-", color="tab:blue")
    right.axhline(100 * ordered[0][1]["read_originals"], color="grey", ls="--", lw=1, label="the original digits")
    for name, p in ordered:
        left.annotate(name, (p["numbers"], p["mse"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        right.annotate(name, (p["numbers"], 100 * p["read"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks([784, *numbers], ["784\n(pixels)", *map(str, numbers)])
        ax.minorticks_off()
        ax.set_xlabel("numbers per latent")
    left.axvline(784, color="grey", lw=0.8)
    right.axvline(784, color="grey", lw=0.8)
    left.set(ylabel="mean squared error", title="distortion", ylim=(0, None))
    right.set(ylabel="read correctly, confidence > 0.9 (%)", title="what the classifier still reads")
    lowest = min(100 * p["read"] for _, p in ordered)
    right.set_ylim(min(80.0, lowest - 5.0), 100.5)  # a share out of 100 %, not a zoom on its noise
    right.legend(loc="lower right", fontsize=8)
    return fig


def plot_snr_shift(schedule: Schedule, stds: Mapping[str, float]) -> Figure:
    """log SNR_t = log(s^2 alpha_bar_t / (1 - alpha_bar_t)) of data with standard deviation s, one curve per entry of
    ``stds`` ({label: s}), with the step where each crosses SNR = 1 marked."""
    fig, ax = new_figure(width=6.4, height=3.0)
    t = torch.arange(1, schedule.T + 1)
    for i, (label, s) in enumerate(stds.items()):
        log_snr = (schedule.snr[1:] * s**2).log()
        line = ax.plot(t, log_snr, label=label)[0]
        crossing = int(t[(log_snr < 0).nonzero()[0]]) if (log_snr < 0).any() else None
        if crossing is not None:  # labels alternately above and below the axis, so that close crossings stay legible
            ax.plot([crossing], [0], "o", color=line.get_color())
            ax.annotate(f"t = {crossing}", (crossing, 0), textcoords="offset points", xytext=(5, 6 if i % 2 else -14),
                        fontsize=8, color=line.get_color())
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="$t$", ylabel=r"$\log \mathrm{SNR}_t$ of the data")
    ax.legend(fontsize=8)
    return fig


def plot_time_to_quality(curves: Mapping[str, list[Mapping]], level: float | None = None) -> Figure:
    """The share of confident samples against training time, one line per run of ``curves`` ({label: the points of
    its ``quality_curve`` record}), with a dotted line at the share ``level`` (a fraction) where one is given."""
    fig, ax = new_figure(width=6.4, height=3.0)
    for label, curve in curves.items():
        points = sorted(curve, key=lambda p: p["training_seconds"])
        hours = [p["training_seconds"] / 3600 for p in points]
        ax.plot(hours, [100 * p["report"]["confident_fraction"] for p in points], "o-", ms=4, label=label)
    if level is not None:
        ax.axhline(100 * level, color="grey", ls=":", lw=1)
    ax.set(xlabel="hours of training on the CPU", ylabel="confident samples (%)", xlim=(0, None))
    ax.legend(fontsize=8, loc="lower right")
    return fig
