"""Figures of the chapter "The training loss": the weights that L_simple drops, the bound term by term, its gap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure

from diffnotes.evaluation.bound import Bound, reverse_variance, vlb_weight
from diffnotes.plotting.common import new_figure
from diffnotes.schedules import Schedule

#: Line style of each choice of sigma_t^2 (beta_t, beta-tilde_t, the true omega_t), the same in every figure.
SIGMA_STYLES = {"beta": "-", "posterior": "--", "true": ":"}
#: Legend label of each choice of sigma_t^2.
SIGMA_LABELS = {
    "beta": r"$\sigma_t^2 = \beta_t$",
    "posterior": r"$\sigma_t^2 = \tilde\beta_t$",
    "true": r"$\sigma_t^2 = \omega_t$ (true)",
}


def plot_vlb_weights(schedules: Mapping[str, Schedule]) -> Figure:
    """lambda_t against t (log-log) for each schedule and both choices of sigma_t^2, with L_simple's weight 1."""
    fig, ax = new_figure(width=6.0, height=3.3)
    for (name, schedule), color in zip(schedules.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        t = torch.arange(1, schedule.T + 1)
        for sigma in ("beta", "posterior"):
            lam = vlb_weight(schedule, reverse_variance(schedule, sigma))[1:]
            ax.loglog(t, lam, color=color, ls=SIGMA_STYLES[sigma], lw=1.3, label=f"{name}, {SIGMA_LABELS[sigma]}")
    ax.axhline(1.0, color="black", lw=1.0, ls="-.", label=r"$L_{\mathrm{simple}}$: weight 1")
    ax.set(xlabel="$t$", ylabel=r"weight of $\mathbb{E}\|\epsilon - \epsilon_\theta\|^2$")
    ax.legend(fontsize=8, ncols=2, loc="upper center")
    return fig


def plot_bound_terms(terms: Mapping[str, torch.Tensor], title: str = "") -> Figure:
    """Left: the terms L_{t-1} (t = 2..T) of each (T + 1,) table of :func:`diffnotes.evaluation.bound.terms_from_mse`, log-log.
    Right: each table's excess over the one labelled ``"true"`` (the best variances), term by term.

    The labels are keys of :data:`SIGMA_LABELS`: ``"beta"``, ``"posterior"`` and ``"true"``.
    """
    fig, axes = new_figure(ncols=2, width=8.4, height=3.2)
    for label, values in terms.items():
        t = torch.arange(2, values.shape[0])
        style = {"ls": SIGMA_STYLES[label], "lw": 1.4, "label": SIGMA_LABELS[label]}
        axes[0].loglog(t, values[1:-1], **style)
        if label != "true":
            axes[1].loglog(t, values[1:-1] - terms["true"][1:-1], **style)
    axes[0].set(xlabel="$t$", ylabel=r"$L_{t-1}$ (nats per dimension)", title=title)
    axes[1].set(xlabel="$t$", ylabel=r"$L_{t-1}(\sigma^2) - L_{t-1}(\omega)$", title="the cost of a wrong variance")
    axes[0].legend()
    axes[1].legend()
    return fig


def plot_gaps(T_values: Sequence[int], gaps: Mapping[tuple[str, str], Sequence[float]]) -> Figure:  # noqa: N803
    """The gap (bound minus exact NLL) against T, log-log: one curve per (schedule name, sigma), and a 1/T guide."""
    fig, ax = new_figure(width=5.6, height=3.2)
    colors = {}
    for (name, sigma), values in gaps.items():
        color = colors.setdefault(name, f"C{len(colors)}")
        label = f"{name}, {SIGMA_LABELS[sigma]}"
        ax.loglog(T_values, values, marker="o", ms=4, lw=1.2, color=color, ls=SIGMA_STYLES[sigma], label=label)
    top = max(values[0] for values in gaps.values())
    guide = [top * T_values[0] / T for T in T_values]
    ax.loglog(T_values, guide, color="grey", lw=0.8, ls="-.", label="$\\propto 1/T$")
    ax.set(xlabel="$T$", ylabel="bound $-$ NLL (nats per dimension)")
    ax.legend(fontsize=8)
    return fig


def plot_digit_terms(bounds: Mapping[str, Bound]) -> Figure:
    """Each model's terms L_{t-1} in bits per dimension against t (log-log), one point per stratum of a
    :class:`diffnotes.evaluation.bound.Bound`: the mean term over the images, at their mean t."""
    fig, ax = new_figure(width=5.6, height=3.2)
    for label, bound in bounds.items():
        ax.loglog(bound.t.double().mean(0), bound.terms.mean(0), marker="o", ms=3, lw=1.2, label=label)
    ax.set(xlabel="$t$", ylabel=r"$L_{t-1}$ (bits per dimension)")
    ax.legend()
    return fig
