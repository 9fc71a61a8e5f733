"""Figures for the chapter "Sampling (Algorithm 2)": the two choices of sigma_t^2, the variance along a reverse
chain, the denoising trajectory (x_t and the predicted x_0 over time) and the class histogram of samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from diffnotes.plotting.common import new_figure, show_image
from diffnotes.posterior import posterior_variance
from diffnotes.schedules import Schedule


def plot_sigma_choices(schedule: Schedule) -> Figure:
    """Two panels against t: beta_t and the posterior variance beta-tilde_t (log scale), and their ratio
    beta-tilde_t / beta_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (log t axis)."""
    t = torch.arange(1, schedule.T + 1)
    beta = schedule.beta[1:].double()
    tilde = posterior_variance(schedule, t).double()
    fig, (ax_var, ax_ratio) = new_figure(ncols=2, width=8.0, height=2.9)
    ax_var.plot(t, beta, label=r"$\sigma_t^2 = \beta_t$")
    ax_var.plot(t[1:], tilde[1:], label=r"$\sigma_t^2 = \tilde\beta_t$", linestyle="--")
    ax_var.set_yscale("log")
    ax_var.set_xlabel("$t$")
    ax_var.set_title("the two variances (log scale)")
    ax_var.legend(loc="lower right")
    ax_ratio.plot(t, tilde / beta, color="tab:green")
    ax_ratio.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax_ratio.set_xscale("log")
    ax_ratio.set_ylim(0, 1.05)
    ax_ratio.set_xlabel("$t$ (log scale)")
    ax_ratio.set_title(r"their ratio $\tilde\beta_t / \beta_t$")
    return fig


def plot_reverse_variance(
    exact: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    sampled: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
    reference: float = 1.0,
    markers: int = 25,
) -> Figure:
    """The variance of x_t along reverse chains, against t running from T down to 0: exact curves, and optionally the
    variance of sampled chains as markers of the same colour; the forward process's variance ``reference`` (1 for
    data with unit variance) is a dotted line.

    Args:
        exact: ``{label: (ts, var)}``: the timesteps and the exact variance of x_t at each.
        sampled: ``{label: (ts, var)}`` for some of the same labels: the variance of sampled x_t.
        reference: the variance every x_t has under the forward process.
        markers: about how many markers to draw per sampled chain.
    """
    if not exact:
        raise ValueError("exact must hold at least one {label: (ts, var)} entry")
    unknown = set(sampled or {}) - set(exact)
    if unknown:
        raise ValueError(f"every label of sampled needs an exact curve; missing: {sorted(unknown)}")
    fig, ax = new_figure(width=6.0, height=3.0)
    colours = {}
    for label, (ts, var) in exact.items():
        ts, var = _as_curve(label, ts, var)
        colours[label] = ax.plot(ts, var, label=label)[0].get_color()
    for label, (ts, var) in (sampled or {}).items():
        ts, var = _as_curve(label, ts, var)
        every = max(1, len(ts) // markers)
        ax.plot(ts[::every], var[::every], "o", markersize=3, color=colours[label], alpha=0.7)
    if sampled:
        ax.plot([], [], "o", markersize=3, color="grey", label="sampled chains")
    ax.axhline(reference, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(max(max(ts) for ts, _ in exact.values()), 0)
    ax.set_xlabel("$t$ (the reverse chain runs from left to right)")
    ax.set_ylabel(r"$\mathrm{Var}(x_t)$")
    ax.legend(loc="best", fontsize=8)
    return fig


def _as_curve(label: str, ts: Sequence[int], var: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    ts, var = np.asarray(list(ts), dtype=float), np.asarray(list(var), dtype=float)
    if ts.shape != var.shape or ts.ndim != 1:
        raise ValueError(f"{label!r}: ts and var must be 1-D and of the same length, got {ts.shape} and {var.shape}")
    return ts, var


def _nearest(available: Sequence[int], wanted: int) -> int:
    return min(available, key=lambda t: (abs(t - wanted), t))


def plot_trajectory(
    path: Mapping[int, tuple[torch.Tensor, torch.Tensor]],
    times: Sequence[int],
    images: Sequence[int] = (0, 1),
    final: torch.Tensor | None = None,
) -> Figure:
    """The denoising trajectory: for each chosen image, a row of x_t and a row of the predicted x0_hat at ``times``.

    Args:
        path: ``{t: (x_t, x0_hat)}`` as recorded by a sampler's callback, each (B, C, H, W).
        times: the timesteps to show; each is replaced by the nearest recorded one (strided chains record fewer).
        images: which images of the batch to show.
        final: optionally the samples x_0 (B, C, H, W), drawn as a last column.
    """
    if not path or not times or not images:
        raise ValueError("path, times and images must all be non-empty")
    shown = list(dict.fromkeys(_nearest(list(path), t) for t in times))
    cols = len(shown) + (final is not None)
    rows = 2 * len(images)
    fig, axes = new_figure(ncols=cols, nrows=rows, width=0.95 * cols + 0.9, height=1.0 * rows + 0.35, squeeze=False)
    for r, i in enumerate(images):
        for c, t in enumerate(shown):
            x_t, x0_hat = path[t]
            show_image(axes[2 * r][c], x_t[i])
            show_image(axes[2 * r + 1][c], x0_hat[i])
            if r == 0:
                axes[0][c].set_title(f"$t = {t}$")
        for row, name in ((2 * r, "$x_t$"), (2 * r + 1, r"$\hat{x}_0$")):
            axes[row][0].set_axis_on()
            axes[row][0].set_xticks([])
            axes[row][0].set_yticks([])
            axes[row][0].grid(False)
            axes[row][0].set_ylabel(name, rotation=0, ha="right", va="center")
        if final is not None:
            show_image(axes[2 * r][-1], final[i])
            axes[2 * r + 1][-1].set_visible(False)
            if r == 0:
                axes[0][-1].set_title("sample $x_0$")
    return fig


def plot_class_histogram(
    fractions: Mapping[str, Sequence[float]], band: tuple[float, float] | None = None, expected: float = 0.1
) -> Figure:
    """Bars of the share of samples the classifier assigns to each digit 0..9, one colour per set of samples.

    Args:
        fractions: ``{label: class_fractions}``, each ten shares summing to 1 (e.g. ``QualityReport.class_fractions``).
        band: optionally the accepted range of each share, shaded (e.g. ``diffnotes.evaluation.quality.CLASS_FRACTION_RANGE``).
        expected: the share of each digit in balanced data, drawn as a dotted line.
    """
    if not fractions:
        raise ValueError("fractions must hold at least one {label: class_fractions} entry")
    k = len(next(iter(fractions.values())))
    if any(len(f) != k for f in fractions.values()):
        raise ValueError("every entry of fractions must have the same number of classes")
    fig, ax = new_figure(width=6.0, height=2.8)
    width = 0.8 / len(fractions)
    for index, (label, f) in enumerate(fractions.items()):
        ax.bar(np.arange(k) + (index - (len(fractions) - 1) / 2) * width, list(f), width=width, label=label)
    if band is not None:
        ax.axhspan(*band, color="tab:green", alpha=0.12, label="accepted range")
    ax.axhline(expected, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(k))
    ax.set_xlabel("digit (the classifier's most probable class)")
    ax.set_ylabel("share of the samples")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(fractions) + (band is not None), fontsize=8)
    return fig
