"""Figures of the chapter "DDIM": timestep spacings, trajectories, inversion, interpolation and the quality table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from diffnotes.evaluation.table import QualityCell
from diffnotes.plotting.common import image_rows, new_figure
from diffnotes.schedules import Schedule

ETA_COLOURS = {0.0: "tab:blue", 0.2: "tab:green", 0.5: "tab:orange", 1.0: "tab:red"}


def _steps_axis(ax: Axes, steps: Sequence[int]) -> None:
    """A logarithmic x axis labelled with the numbers of steps themselves."""
    ax.set_xscale("log")
    ax.set_xticks(list(steps), [str(S) for S in steps])
    ax.xaxis.set_minor_locator(NullLocator())


def _plain_log_y(ax: Axes) -> None:
    """A logarithmic y axis with plain numbers at 1, 2 and 5 times the powers of ten, and unlabelled minor ticks."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter("")


def plot_spacings(schedule: Schedule, subsequences: Mapping[str, torch.Tensor]) -> Figure:
    """Each spacing's timesteps as ticks on its own row, over the curve sqrt(alpha_bar_t) (the signal left at t)."""
    fig, ax = new_figure(width=7.0, height=0.45 * len(subsequences) + 1.4)
    t = torch.arange(schedule.T + 1)
    twin = ax.twinx()
    twin.plot(t, schedule.alpha_bar.sqrt(), color="0.6", lw=1.0)
    twin.set_ylabel(r"$\sqrt{\bar\alpha_t}$", color="0.45")
    twin.set_ylim(0, 1.05)
    twin.grid(False)
    for row, (name, tau) in enumerate(subsequences.items()):
        ax.scatter(tau, torch.full((len(tau),), float(row)), marker="|", s=120, color="tab:blue", linewidths=1.6)
    ax.set_yticks(range(len(subsequences)), list(subsequences))
    ax.set_ylim(len(subsequences) - 0.4, -0.6)
    ax.set_xlim(-10, schedule.T + 10)
    ax.set_xlabel("timestep $t$ (the book's index)")
    return fig


def plot_trajectories(x0_hats: Mapping[str, Sequence[tuple[int, torch.Tensor]]], index: int = 0) -> Figure:
    """One row per sampler: the prediction x0_hat of image ``index`` before every step, labelled with its t."""
    rows = {name: torch.stack([x0_hat[index] for _, x0_hat in seen]) for name, seen in x0_hats.items()}
    first = next(iter(x0_hats.values()))
    return image_rows(rows, [f"$t={t}$" for t, _ in first])


def plot_same_noise(samples: Mapping[int, torch.Tensor], n_images: int = 8) -> Figure:
    """One row per number of steps S: the deterministic sampler's images from the same noises x_T."""
    return image_rows({f"$S={S}$": x[:n_images] for S, x in samples.items()})


def plot_convergence(errors: Mapping[int, float], label: str, ylabel: str, paper: Mapping[int, float] | None = None,
                     slope: float = -1.0) -> Figure:
    """An error against the number of steps S on log-log axes, with a guide line of the given slope."""
    fig, ax = new_figure(width=4.8, height=3.0)
    steps = torch.tensor(list(errors), dtype=torch.float64)
    values = torch.tensor(list(errors.values()), dtype=torch.float64)
    ax.plot(steps, values, "o-", color="tab:blue", label=label)
    guide = values[0] * (steps / steps[0]) ** slope
    ax.plot(steps, guide, ":", color="black", lw=1.0, label=f"slope ${slope:g}$")
    if paper is not None:
        ax.plot(list(paper), list(paper.values()), "s--", color="tab:red", label="Song et al., CIFAR-10")
    _plain_log_y(ax)
    _steps_axis(ax, sorted(set(errors) | set(paper or {})))
    ax.set(xlabel="number of steps $S$", ylabel=ylabel)
    ax.legend()
    return fig


def plot_inversion(x0: torch.Tensor, x_T: torch.Tensor, reconstructions: Mapping[int, torch.Tensor],  # noqa: N803
                   n_images: int = 6) -> Figure:
    """Rows: the digits, their encoded noises x_T (shown from -3 to 3) and the reconstructions for each S."""
    rows = {"digit $x_0$": x0, "encoded $x_T$": x_T / 3.0} | {f"back, $S={S}$": x for S, x in reconstructions.items()}
    return image_rows({name: x[:n_images] for name, x in rows.items()})


def plot_interpolation(frames: Mapping[str, torch.Tensor], weights: torch.Tensor) -> Figure:
    """One row of images per interpolation (e.g. spherical, linear), one column per weight w from 0 to 1."""
    return image_rows(dict(frames), [f"$w={float(w):.2g}$" for w in weights], width=0.78)


def plot_quality_table(
    cells: Sequence[QualityCell],
    floor: float | None = None,
    floor_label: str = "exact samples",
    floor_range: tuple[float, float] | None = None,
) -> Figure:
    """Left: the Frechet distance against S, one line per eta, the yardstick ``floor`` and, shaded, the range
    ``floor_range`` over which the yardstick varies by chance; right: the wall-clock time per image against S."""
    fig, (left, right) = new_figure(ncols=2, width=7.5, height=3.0)
    for eta in sorted({c.eta for c in cells}):
        row = [c for c in cells if c.eta == eta]
        colour = ETA_COLOURS.get(eta)
        left.plot([c.steps for c in row], [c.report.frechet_distance for c in row], "o-", color=colour,
                  label=rf"$\eta={eta:g}$")
        right.plot([c.steps for c in row], [1e3 * c.seconds_per_image for c in row], "o-", color=colour,
                   label=rf"$\eta={eta:g}$")
    if floor is not None:
        left.axhline(floor, color="black", ls=":", lw=1.0, label=floor_label)
    if floor_range is not None:
        left.axhspan(*floor_range, color="0.88", zorder=0, label=f"{floor_label}, range of draws")
    steps = sorted({c.steps for c in cells})
    _steps_axis(left, steps)
    left.set(xlabel="number of steps $S$", ylabel="Frechet distance (lower is better)", ylim=(0, None))
    _plain_log_y(right)
    _steps_axis(right, steps)
    right.set(xlabel="number of steps $S$", ylabel="milliseconds per image")
    left.legend()
    right.legend()
    return fig
