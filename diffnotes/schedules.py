"""Noise schedules: the betas, and everything derived from them (chapter "Noise schedules").

Time-index convention (the lecture's, used throughout the book): t = 1, ..., T. A :class:`Schedule`
stores T + 1 entries so that ``s.alpha_bar[t]`` *is* the lecture's alpha_bar_t, with the padding entry
t = 0 meaning "no noise yet": ``beta[0] = 0``, ``alpha[0] = 1``, ``alpha_bar[0] = 1``.
diffusers counts 0..T-1: its ``alphas_cumprod[i]`` is our ``alpha_bar[i + 1]``.

The four schedules are written exactly as the lecture writes them, for t = 1..T:

- linear     beta_t = beta_1 + (t-1)/(T-1) (beta_T - beta_1)
- quadratic  beta_t = [sqrt(beta_1) + (t-1)/(T-1) (sqrt(beta_T) - sqrt(beta_1))]^2
- sigmoid    beta_t = beta_1 + (beta_T - beta_1) / (1 + exp(kappa (1 - 2 (t-1)/(T-1))))
- cosine     alpha_bar_t = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2), beta_t = 1 - alpha_bar_t/alpha_bar_{t-1},
             with beta_t clipped to at most ``max_beta`` (0.999) as in Nichol and Dhariwal.

Schedules are computed in float64; :meth:`Schedule.to` moves them to a model's dtype and device.
:func:`prior_kl` and :func:`nearest_mean_label` measure how much of the data survives at t = T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from diffnotes.checks import positive_int
from diffnotes.gaussians import gaussian_kl
from diffnotes.runtime import by_profile

#: The schedule names that :func:`make_schedule` accepts.
SCHEDULES: tuple[str, ...] = ("linear", "quadratic", "sigmoid", "cosine")

# Defaults: T and the beta range of Ho et al. (2020); the cosine offset s and clip of Nichol and Dhariwal
# (2021); kappa = 6 makes the lecture's sigmoid equal diffusers' ``sigmoid`` (sigmoid(linspace(-6, 6, T))).
DEFAULT_T = 1000
DEFAULT_BETA_1 = 1e-4
DEFAULT_BETA_T = 0.02
DEFAULT_COSINE_S = 0.008
DEFAULT_MAX_BETA = 0.999
DEFAULT_SIGMOID_KAPPA = 6.0
#: The lecture's example ends the linear schedule at beta_T = 1e-2 (Ho et al. and diffusers use 0.02).
LECTURE_BETA_T = 1e-2
#: (beta_1, beta_T) of Stable Diffusion's quadratic ("scaled_linear") schedule (Rombach et al., 2022).
STABLE_DIFFUSION_BETAS = (0.00085, 0.012)
#: The name diffusers' ``DDPMScheduler(beta_schedule=...)`` gives each of the book's schedules.
DIFFUSERS_NAMES: dict[str, str] = dict(linear="linear", quadratic="scaled_linear", sigmoid="sigmoid",
                                       cosine="squaredcos_cap_v2")


@dataclass(frozen=True)
class SchedulesConfig:
    """Chapter 3's sizes: the T of the alpha_bar_T table, the t of the image grid, the held-out test digits."""

    T_values: tuple[int, ...] = (10, 50, 100, 250, 1000, 4000)
    grid_t: tuple[int, ...] = (0, 100, 250, 400, 550, 700, 850, 1000)
    n_test: int = 2500

    @classmethod
    def for_profile(cls, profile: str | None = None) -> SchedulesConfig:
        """The quick profile tests 1,000 digits, the full profile 2,500 (the other 2,500 give the class means)."""
        return cls(n_test=by_profile(quick=1000, full=2500, profile=profile))


@dataclass(frozen=True)
class Schedule:
    """A noise schedule with T + 1 entries per tensor, indexed by the lecture's t = 0..T.

    Attributes:
        name: which schedule built it (``"linear"``, ..., or ``"custom"``).
        beta: (T + 1,) the per-step noise variances; ``beta[0] = 0``.
        alpha: (T + 1,) ``1 - beta``.
        alpha_bar: (T + 1,) the cumulative products, ``alpha_bar[t] = prod_{s<=t} alpha[s]``; ``alpha_bar[0] = 1``.
    """

    name: str
    beta: torch.Tensor
    alpha: torch.Tensor
    alpha_bar: torch.Tensor

    @property
    def T(self) -> int:  # noqa: N802 (the lecture's symbol)
        """The number of diffusion steps."""
        return self.beta.shape[0] - 1

    @property
    def snr(self) -> torch.Tensor:
        """(T + 1,) the signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) (book eq. ``ch3-eq-snr``); inf at 0."""
        return self.alpha_bar / (1.0 - self.alpha_bar)

    @property
    def log_snr(self) -> torch.Tensor:
        """(T + 1,) the natural log of :attr:`snr`, log alpha_bar_t - log(1 - alpha_bar_t); +inf at t = 0."""
        return torch.log(self.alpha_bar) - torch.log1p(-self.alpha_bar)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Schedule:
        """Return a copy with every tensor moved to ``device`` and/or cast to ``dtype``."""
        return Schedule(self.name, *(x.to(device=device, dtype=dtype) for x in (self.beta, self.alpha, self.alpha_bar)))

    def at(self, values: torch.Tensor, t: torch.Tensor | int, ndim: int) -> torch.Tensor:
        """Pick ``values[t]`` for a batch of timesteps and shape it to broadcast over a batch.

        Args:
            values: (T + 1,) one of this schedule's tensors.
            t: an int, or a (B,) integer tensor of timesteps in 0..T.
            ndim: the number of dimensions of the batch it will multiply, e.g. 4 for (B, C, H, W).

        Returns:
            shape (B, 1, ..., 1) with ``ndim`` dimensions (or a 0-d tensor for an int ``t``).
        """
        t = check_timestep(t, self.T)
        picked = values.to(t.device)[t]
        return picked.reshape(picked.shape + (1,) * (ndim - picked.dim())) if picked.dim() else picked


def check_timestep(t: torch.Tensor | int, T: int) -> torch.Tensor:  # noqa: N803
    """Return ``t`` as an int64 tensor, after checking that every entry lies in 0..T.

    Raises:
        ValueError: naming ``t`` and the allowed range, if an entry is outside it or not an integer.
    """
    t_tensor = torch.as_tensor(t)
    if t_tensor.is_floating_point() or t_tensor.is_complex() or t_tensor.dtype == torch.bool:
        raise ValueError(f"t must hold integers in 0..T={T}, got dtype {t_tensor.dtype}")
    if t_tensor.numel() and (int(t_tensor.min()) < 0 or int(t_tensor.max()) > T):
        raise ValueError(f"t must lie in 0..T={T}, got values from {int(t_tensor.min())} to {int(t_tensor.max())}")
    return t_tensor.long()


def _check_beta_range(beta_1: float, beta_T: float) -> None:  # noqa: N803
    for name, value in (("beta_1", beta_1), ("beta_T", beta_T)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in the open interval (0, 1), got {value!r}")


def _ramp(T: int) -> torch.Tensor:  # noqa: N803
    """(T,) the lecture's (t - 1)/(T - 1) for t = 1..T (all zeros when T = 1)."""
    t = torch.arange(1, T + 1, dtype=torch.float64)
    return (t - 1) / (T - 1) if T > 1 else torch.zeros(1, dtype=torch.float64)


def from_betas(beta: torch.Tensor, name: str = "custom") -> Schedule:
    """Build a :class:`Schedule` from the T betas beta_1..beta_T (the ``(T,)`` tensor, without the padding).

    alpha_t = 1 - beta_t and alpha_bar_t = alpha_1 ... alpha_t (book eq. ``ch3-eq-alpha-bar``).

    Raises:
        ValueError: if ``beta`` is not a non-empty 1-D tensor with every entry in (0, 1).
    """
    beta = torch.as_tensor(beta, dtype=torch.float64)
    if beta.dim() != 1 or beta.numel() == 0:
        raise ValueError(f"beta must be a non-empty 1-D tensor of beta_1..beta_T, got shape {tuple(beta.shape)}")
    if not bool(((beta > 0) & (beta < 1)).all()):
        low, high = float(beta.min()), float(beta.max())
        raise ValueError(f"beta must lie in the open interval (0, 1) for every t; got min {low:.3g}, max {high:.3g}")
    beta = torch.cat([torch.zeros(1, dtype=torch.float64), beta])
    alpha = 1.0 - beta
    return Schedule(name=name, beta=beta, alpha=alpha, alpha_bar=torch.cumprod(alpha, dim=0))


def from_alpha_bar(alpha_bar: torch.Tensor, name: str = "custom", max_beta: float = 1.0) -> Schedule:
    """Build a :class:`Schedule` from alpha_bar_1..alpha_bar_T via beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}.

    ``alpha_bar`` must be strictly decreasing and in (0, 1]; betas above ``max_beta`` are clipped to it
    (after which the stored alpha_bar is recomputed from the clipped betas).

    Raises:
        ValueError: if ``alpha_bar`` is not strictly decreasing, or leaves (0, 1].
    """
    alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64)
    if alpha_bar.dim() != 1 or alpha_bar.numel() == 0:
        raise ValueError(f"alpha_bar must be a non-empty 1-D tensor, got shape {tuple(alpha_bar.shape)}")
    if not bool(((alpha_bar > 0) & (alpha_bar <= 1)).all()):
        raise ValueError("alpha_bar must lie in (0, 1] for every t")
    padded = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar])
    if not bool((padded[1:] < padded[:-1]).all()):
        raise ValueError("alpha_bar must be strictly decreasing in t (starting below alpha_bar_0 = 1)")
    beta = (1.0 - padded[1:] / padded[:-1]).clamp(max=max_beta)
    return from_betas(beta, name=name)


def linear(T: int = DEFAULT_T, beta_1: float = DEFAULT_BETA_1, beta_T: float = DEFAULT_BETA_T) -> Schedule:  # noqa: N803
    """The linear schedule: beta_t = beta_1 + (t-1)/(T-1) (beta_T - beta_1) (book eq. ``ch3-eq-linear``).

    The defaults are Ho et al.'s (2020): T = 1000, beta from 1e-4 to 0.02; the lecture's example ends at
    :data:`LECTURE_BETA_T` = 1e-2. diffusers: ``beta_schedule="linear"``.

    Raises:
        ValueError: if T is not a positive integer or a beta lies outside (0, 1).
    """
    positive_int("T", T)
    _check_beta_range(beta_1, beta_T)
    return from_betas(beta_1 + _ramp(T) * (beta_T - beta_1), name="linear")


def quadratic(T: int = DEFAULT_T, beta_1: float = DEFAULT_BETA_1, beta_T: float = DEFAULT_BETA_T) -> Schedule:  # noqa: N803
    """The quadratic schedule: beta_t = [sqrt(beta_1) + (t-1)/(T-1) (sqrt(beta_T) - sqrt(beta_1))]^2.

    Book eq. ``ch3-eq-quadratic``: linear in sqrt(beta). Stable Diffusion uses it with
    :data:`STABLE_DIFFUSION_BETAS`; diffusers calls it ``"scaled_linear"``.

    Raises:
        ValueError: if T is not a positive integer or a beta lies outside (0, 1).
    """
    positive_int("T", T)
    _check_beta_range(beta_1, beta_T)
    root = math.sqrt(beta_1) + _ramp(T) * (math.sqrt(beta_T) - math.sqrt(beta_1))
    return from_betas(root**2, name="quadratic")


def sigmoid(
    T: int = DEFAULT_T,  # noqa: N803
    beta_1: float = DEFAULT_BETA_1,
    beta_T: float = DEFAULT_BETA_T,  # noqa: N803
    kappa: float = DEFAULT_SIGMOID_KAPPA,
) -> Schedule:
    """The sigmoid schedule: beta_t = beta_1 + (beta_T - beta_1) / (1 + exp(kappa (1 - 2 (t-1)/(T-1)))).

    Book eq. ``ch3-eq-sigmoid`` (GeoDiff, Xu et al., 2022). ``kappa`` is the temperature: larger values make
    the rise from beta_1 to beta_T steeper. The endpoints are not exactly beta_1 and beta_T: at t = 1 the
    weight is 1/(1 + e^kappa), not 0. With kappa = 6 this is diffusers' ``"sigmoid"``, which fixes kappa.

    Raises:
        ValueError: if T is not a positive integer, a beta lies outside (0, 1), or kappa <= 0.
    """
    positive_int("T", T)
    _check_beta_range(beta_1, beta_T)
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa!r}")
    weight = torch.sigmoid(-kappa * (1.0 - 2.0 * _ramp(T)))  # = 1 / (1 + exp(kappa (1 - 2 ramp)))
    return from_betas(beta_1 + (beta_T - beta_1) * weight, name="sigmoid")


def cosine(T: int = DEFAULT_T, s: float = DEFAULT_COSINE_S, max_beta: float = DEFAULT_MAX_BETA) -> Schedule:  # noqa: N803
    """The cosine schedule of Nichol and Dhariwal (2021): alpha_bar_t = f(t)/f(0), betas clipped at ``max_beta``.

    Book eq. ``ch3-eq-cosine``: f(t) = cos^2(((t/T + s)/(1 + s)) pi/2) and beta_t = 1 - alpha_bar_t/alpha_bar_{t-1}.
    Unclipped, beta_T = 1 - f(T)/f(T-1) = 1 (f(T) = 0), which would make alpha_T = 0; the clip (only of beta_T
    for the defaults) keeps alpha_bar_T > 0. diffusers: ``"squaredcos_cap_v2"``, with s and the clip fixed.

    Raises:
        ValueError: if T is not a positive integer, s < 0, or max_beta lies outside (0, 1).
    """
    positive_int("T", T)
    if not s >= 0:
        raise ValueError(f"s must be >= 0, got {s!r}")
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must lie in the open interval (0, 1), got {max_beta!r}")
    t = torch.arange(0, T + 1, dtype=torch.float64)
    f = torch.cos(((t / T + s) / (1 + s)) * math.pi / 2) ** 2
    # f(T) can round to a tiny value (or 0 with s = 0); the clip of beta_T keeps alpha_bar_T positive.
    beta = (1.0 - f[1:] / f[:-1]).clamp(max=max_beta)
    return from_betas(beta, name="cosine")


def make_schedule(name: str, T: int = DEFAULT_T, **kwargs: float) -> Schedule:  # noqa: N803
    """Build a schedule by name: one of :data:`SCHEDULES`, with that schedule's keyword arguments.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    builders = {"linear": linear, "quadratic": quadratic, "sigmoid": sigmoid, "cosine": cosine}
    if name not in builders:
        raise ValueError(f"name={name!r} is not a schedule; valid schedules are: {', '.join(SCHEDULES)}")
    return builders[name](T, **kwargs)


def prior_kl(schedule: Schedule, x0: torch.Tensor) -> torch.Tensor:
    """KL(q(x_T | x_0) || N(0, I)) per dimension, in nats (book eq. ``ch3-eq-prior-kl``).

    Per dimension, 1/2 (alpha_bar_T x0^2 - alpha_bar_T - log(1 - alpha_bar_T)): how far the end of the forward
    process is from the N(0, I) that sampling starts from. Ho et al.'s L_T is its sum over dimensions.
    ``x0`` is a (B, ...) batch of clean data; returns (B,), the KL divided by the dimension of one data point.
    """
    alpha_bar_T = schedule.alpha_bar[-1].to(x0)  # noqa: N806
    per_dim = gaussian_kl(alpha_bar_T.sqrt() * x0, 1 - alpha_bar_T, torch.zeros(()).to(x0), torch.ones(()).to(x0))
    return per_dim.flatten(1).mean(dim=1)


def nearest_mean_label(x_t: torch.Tensor, class_means: torch.Tensor, alpha_bar_t: float) -> torch.Tensor:
    """Guess each x_t's class: the k whose scaled mean sqrt(alpha_bar_t) mu_k lies nearest.

    It is the most likely k if q(x_t | k) = N(sqrt(alpha_bar_t) mu_k, (1 - alpha_bar_t) I) with equal priors;
    its accuracy measures how much of a digit survives the noise.

    Args:
        x_t: (B, ...) noisy data.
        class_means: (K, ...) the mean clean data point of each class.
        alpha_bar_t: the schedule's alpha_bar at the noise level of ``x_t``.

    Returns:
        (B,) int64 class indices in 0..K-1.
    """
    if x_t.shape[1:] != class_means.shape[1:]:
        raise ValueError(f"class_means must have shape (K, *{tuple(x_t.shape[1:])}), got {tuple(class_means.shape)}")
    centres = math.sqrt(float(alpha_bar_t)) * class_means.flatten(1).to(x_t)
    return torch.cdist(x_t.flatten(1), centres).argmin(dim=1)
