"""Figures for the chapter "Noise schedules": the curves of beta, alpha_bar and log-SNR, and a digit noised
under each schedule."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from diffnotes.forward import q_sample
from diffnotes.plotting.common import new_figure, show_image
from diffnotes.schedules import Schedule


def _labels(schedules: Sequence[Schedule], labels: Sequence[str] | None) -> list[str]:
    if labels is not None and len(labels) != len(schedules):
        raise ValueError(f"labels must give one name per schedule ({len(schedules)}), got {len(labels)}")
    return list(labels) if labels is not None else [s.name for s in schedules]


def plot_schedule_curves(schedules: Sequence[Schedule], labels: Sequence[str] | None = None) -> Figure:
    """Three panels against t/T: beta_t (log scale), alpha_bar_t, and log-SNR(t) = log(alpha_bar_t/(1 - alpha_bar_t)).

    Args:
        schedules: the schedules to compare (any T each: the x-axis is t/T).
        labels: one legend entry per schedule (default: each schedule's name).
    """
    names = _labels(schedules, labels)
    fig, axes = new_figure(ncols=3, width=9.6, height=3.0)
    for schedule, name in zip(schedules, names):
        t = torch.arange(schedule.T + 1, dtype=torch.float64)
        x = (t / schedule.T).numpy()
        axes[0].plot(x[1:], schedule.beta[1:].numpy(), label=name)
        axes[1].plot(x, schedule.alpha_bar.numpy(), label=name)
        axes[2].plot(x[1:], schedule.log_snr[1:].numpy(), label=name)
    axes[0].set_yscale("log")
    axes[0].set_title(r"$\beta_t$ (log scale)")
    axes[1].set_title(r"$\bar\alpha_t$")
    axes[2].set_title(r"log-SNR$(t) = \log\,\bar\alpha_t/(1-\bar\alpha_t)$")
    axes[2].axhline(0.0, color="black", linewidth=0.6)
    for ax in axes:
        ax.set_xlabel("$t/T$")
        ax.set_xlim(0, 1)
    axes[0].legend(loc="lower right")
    return fig


def plot_noised_grid(
    x0: torch.Tensor,
    schedules: Sequence[Schedule],
    t_values: Sequence[int],
    eps: torch.Tensor,
    labels: Sequence[str] | None = None,
) -> Figure:
    """One image noised by the diffusion kernel, :func:`diffnotes.forward.q_sample`: rows are schedules, columns are t.

    Every cell uses the same noise ``eps``, so the cells differ only by their coefficients sqrt(alpha_bar_t)
    (printed under each cell) and sqrt(1 - alpha_bar_t).

    Args:
        x0: (1, C, H, W) one clean image in [-1, 1].
        schedules: the schedules, one row each (all must have T >= max(t_values)).
        t_values: the timesteps, one column each.
        eps: (1, C, H, W) standard normal noise.
        labels: one row label per schedule (default: each schedule's name).
    """
    names = _labels(schedules, labels)
    if x0.dim() != 4 or x0.shape[0] != 1:
        raise ValueError(f"x0 must have shape (1, C, H, W), got {tuple(x0.shape)}")
    n_rows, n_cols = len(schedules), len(t_values)
    width, height = 1.0 * n_cols + 0.6, 1.15 * n_rows + 0.3
    fig, axes = new_figure(ncols=n_cols, nrows=n_rows, width=width, height=height, squeeze=False)
    for row, (schedule, name) in enumerate(zip(schedules, names)):
        for col, t in enumerate(t_values):
            ax = axes[row][col]
            show_image(ax, q_sample(schedule, x0, t, eps)[0])
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_xlabel(rf"$\sqrt{{\bar\alpha}}$={schedule.alpha_bar[t].sqrt().item():.2f}", fontsize=7, labelpad=1)
            if row == 0:
                ax.set_title(f"t = {t}")
            if col == 0:
                ax.set_ylabel(name)
    return fig
