"""The training loss: the variational bound term by term, and bits per dimension (chapter "The training loss").

The bound of chapter 9 splits into three kinds of terms (Ho et al. 2020, eq. 5; book eq. ``ch11-eq-terms``)::

    L = L_T + sum_{t=2}^T L_{t-1} + L_0
    L_T     = KL(q(x_T | x_0) || N(0, I))                                          (the prior; no parameters)
    L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)),  t = 2..T  (a KL between two Gaussians)
    L_0     = -E_q log p_theta(x_0 | x_1)                                          (the decoder)

With eps_theta, L_{t-1} = const + lambda_t E||eps - eps_theta||^2 (book eq. ``ch11-eq-weight``): lambda_t is the weight
that L_simple drops. A table ``var`` of sigma_t^2 is a (T + 1,) tensor indexed by t = 1..T (entry 0 unused).

For data N(m, s2) and 1-D Gaussian mixtures the optimal predictor is known and every term has a closed form
(:func:`~diffnotes.evaluation.exact_bound.gaussian_bound_terms`, :func:`~diffnotes.evaluation.exact_bound.mixture_bound_terms`); :func:`estimate_bound` estimates the bound of any model by
Monte Carlo, with Ho et al.'s discretised decoder for data on 256 levels, and :func:`bits_per_dim` converts it.
Values are nats per data point, or per dimension for the closed forms, unless a name says bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from diffnotes.checks import one_of, positive_int, positive_variance
from diffnotes.gaussians import gaussian_kl
from diffnotes.nets import NoisePredictor
from diffnotes.posterior import mu_theta, posterior_mean_var, posterior_variance
from diffnotes.runtime import by_profile
from diffnotes.samplers.ddpm import SIGMAS
from diffnotes.schedules import Schedule, from_alpha_bar, prior_kl

#: The decoders p_theta(x_0 | x_1) of :func:`decoder_term`: a Gaussian density, or Ho et al.'s 256 bins.
DECODERS: tuple[str, ...] = ("gaussian", "discretised")
#: Half the width of one of the 256 bins of data in [-1, 1].
HALF_BIN = 1.0 / 255.0
F64 = torch.float64


@dataclass(frozen=True)
class BoundConfig:
    """The chapter's sizes: Monte Carlo draws, the T compared, the grid of the mixture, and the digit bound's images
    and strata of t."""

    n_mc: int = 20_000
    T_values: tuple[int, ...] = (10, 100, 1000, 4000)
    n_grid: int = 401
    n_images: int = 8
    n_timesteps: int = 24

    @classmethod
    def for_profile(cls, profile: str | None = None) -> BoundConfig:
        """Quick: seconds on a laptop CPU. Full: 20 times the draws, 500 digits at every t."""
        full = cls(n_mc=400_000, n_grid=2001, n_images=500, n_timesteps=999)
        return by_profile(quick=cls(), full=full, profile=profile)


def linear_in_time(T: int, beta_min: float = 0.1, beta_max: float = 20.0) -> Schedule:  # noqa: N803
    """Ho et al.'s linear schedule as one curve in time, cut into T steps (book eq. ``ch11-eq-linear-in-time``).

    alpha_bar_t = exp(-beta_min u - (beta_max - beta_min) u^2 / 2) at u = t / T, the variance-preserving process
    of Song et al. (2021); at T = 1000 its betas are within 10% of 1e-4 ... 0.02. Unlike
    :func:`diffnotes.schedules.linear`, a change of T refines one process instead of changing it.
    """
    positive_int("T", T)
    u = torch.arange(1, T + 1, dtype=F64) / T
    alpha_bar = torch.exp(-beta_min * u - 0.5 * (beta_max - beta_min) * u**2)
    return replace(from_alpha_bar(alpha_bar), name="linear-in-time")


def reverse_variance(schedule: Schedule, sigma: str = "beta") -> torch.Tensor:
    """(T + 1,) sigma_t^2 for t = 1..T: beta_t (``"beta"``) or beta-tilde_t (``"posterior"``); entry 0 is nan.

    beta-tilde_1 = 0 would leave the decoder p_theta(x_0 | x_1) no width, so ``"posterior"`` takes beta-tilde_2 at
    t = 1, as Ho et al.'s code does (so it needs T >= 2).
    """
    one_of("sigma", sigma, SIGMAS, "a choice of sigma_t")
    if sigma == "posterior" and schedule.T < 2:
        raise ValueError(f'sigma="posterior" needs T >= 2 (it uses beta-tilde_2 at t = 1), got T={schedule.T}')
    var = schedule.beta.clone()
    if sigma == "posterior":
        var[1:] = posterior_variance(schedule, torch.arange(1, schedule.T + 1))
        var[1] = var[2]
    var[0] = math.nan
    return var


def check_var_table(schedule: Schedule, var: torch.Tensor) -> torch.Tensor:
    if var.shape != (schedule.T + 1,):
        raise ValueError(f"var must be a (T + 1,) = ({schedule.T + 1},) table of sigma_t^2, got {tuple(var.shape)}")
    positive_variance("var", var[1:])
    return var.to(F64)


def vlb_weight(schedule: Schedule, var: torch.Tensor) -> torch.Tensor:
    """(T + 1,) lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) (book eq. ``ch11-eq-weight``); [0] nan."""
    return schedule.beta**2 / (2 * check_var_table(schedule, var) * schedule.alpha * (1 - schedule.alpha_bar))


def terms_from_mse(schedule: Schedule, var: torch.Tensor, mse: torch.Tensor, second_moment: float) -> torch.Tensor:
    """(T + 1,) the expected terms per dimension, entry k = L_k (L_0, ..., L_T) (book eq. ``ch11-eq-mse-terms``).

    ``mse`` (T + 1,) is E(eps - eps_theta)^2 per dimension at each t, ``second_moment`` is E[x_0^2]. With
    r_t = beta-tilde_t / sigma_t^2: L_{t-1} = 1/2 (r_t - 1 - log r_t) + lambda_t mse_t, L_0 = 1/2 log(2 pi sigma_1^2)
    + lambda_1 mse_1 and L_T = 1/2 (alpha_bar_T E[x_0^2] - alpha_bar_T - log(1 - alpha_bar_T)).
    """
    var = check_var_table(schedule, var)
    if mse.shape != var.shape:
        raise ValueError(f"mse must be a (T + 1,) = ({schedule.T + 1},) table, got {tuple(mse.shape)}")
    weighted, t = vlb_weight(schedule, var) * mse, torch.arange(2, schedule.T + 1)
    ab_T = float(schedule.alpha_bar[-1])  # noqa: N806
    terms = torch.empty(schedule.T + 1, dtype=F64)
    terms[t - 1] = gaussian_kl(0.0, posterior_variance(schedule, t), 0.0, var[t]) + weighted[t]
    terms[0] = 0.5 * math.log(2 * math.pi * float(var[1])) + weighted[1]
    terms[schedule.T] = 0.5 * (ab_T * second_moment - ab_T - math.log1p(-ab_T))
    return terms


def _check_batch(x0: torch.Tensor, eps: torch.Tensor | None = None) -> None:
    if x0.dim() < 2 or x0.shape[0] < 1:
        raise ValueError(f"x0 must be a batch (B, ...) with B >= 1 and a data dimension, got {tuple(x0.shape)}")
    if eps is not None and eps.shape != x0.shape:
        raise ValueError(f"eps must have the shape of x0, {tuple(x0.shape)}; got {tuple(eps.shape)}")


def _model_mean(
    model: NoisePredictor, schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """mu_theta(x_t, t) in float64 on the CPU, with the model run on the device and in the dtype of ``like``."""
    eps_theta = model(x_t.to(like), t.to(like.device))
    if eps_theta.shape != x_t.shape:
        raise ValueError(f"the model returned shape {tuple(eps_theta.shape)}; it must return x_t's, {tuple(x_t.shape)}")
    return mu_theta(schedule, x_t, t, eps_theta.detach().cpu().double())


def prior_term(schedule: Schedule, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) summed over dimensions: (B, ...) -> (B,) nats (book eq. ``ch11-eq-terms``)."""
    _check_batch(x0)
    return prior_kl(schedule, x0.detach().cpu().double()) * x0[0].numel()


def diffusion_term(
    model: NoisePredictor, schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, var: torch.Tensor
) -> torch.Tensor:
    """One draw of L_{t-1}: KL(q(x_{t-1} | x_t, x_0) || N(mu_theta(x_t, t), sigma_t^2 I)) at x_t = q_sample(x0, t, eps).

    Args:
        x0, eps: (B, ...) clean data, and the standard normal noise that makes x_t.
        t: (B,) int64 timesteps in 2..T.
        var: (T + 1,) the table of sigma_t^2.

    Returns:
        (B,) nats, summed over dimensions; its mean over eps is L_{t-1} (book eq. ``ch11-eq-kl-term``).
    """
    _check_batch(x0, eps)
    var, t = check_var_table(schedule, var), torch.as_tensor(t)
    if t.shape != x0.shape[:1] or t.is_floating_point() or int(t.min()) < 2 or int(t.max()) > schedule.T:
        raise ValueError(f"t must be a (B,) = ({x0.shape[0]},) integer tensor in 2..T={schedule.T}; got shape "
                         f"{tuple(t.shape)}, values {int(t.min())}..{int(t.max())}")
    x, t = x0.detach().cpu().double(), t.cpu()
    ab = schedule.at(schedule.alpha_bar, t, x.dim())
    x_t = ab.sqrt() * x + (1 - ab).sqrt() * eps.detach().cpu().double()
    mean, post_var = posterior_mean_var(schedule, x, x_t, t)
    model_mean = _model_mean(model, schedule, x_t, t, like=x0)
    return gaussian_kl(mean, post_var, model_mean, schedule.at(var, t, x.dim())).flatten(1).sum(1)


def discretised_log_likelihood(x0: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log P(x_0) per coordinate for data on 256 levels in [-1, 1] (Ho et al.; book eq. ``ch11-eq-discretised``).

    P is the mass that N(mean, var) puts on the bin [x_0 - 1/255, x_0 + 1/255]; the two edge bins reach to -inf and
    +inf, so the 256 masses sum to 1. Computed with log Phi on the side of the bin away from the mean.
    """
    var = positive_variance("var", var).to(mean)
    level = (x0 + 1) * 127.5
    if bool(((level < -1e-3) | (level > 255 + 1e-3) | ((level - level.round()).abs() > 1e-3)).any()):
        raise ValueError("x0 must lie on the 256 levels k / 127.5 - 1 (k = 0..255) of [-1, 1]")
    sd = var.sqrt()
    lo = torch.where(x0 < -1 + HALF_BIN, -math.inf, (x0 - HALF_BIN - mean) / sd)
    hi = torch.where(x0 > 1 - HALF_BIN, math.inf, (x0 + HALF_BIN - mean) / sd)
    right = lo + hi > 0  # the bin lies right of the mean: Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi)
    a, b = torch.where(right, -hi, lo), torch.where(right, -lo, hi)
    log_b = torch.special.log_ndtr(b)
    return log_b + torch.log(-torch.expm1(torch.special.log_ndtr(a) - log_b))


def decoder_term(
    model: NoisePredictor, schedule: Schedule, x0: torch.Tensor, eps: torch.Tensor, var: torch.Tensor,
    decoder: str = "discretised",
) -> torch.Tensor:
    """One draw of L_0 = -log p_theta(x_0 | x_1), p_theta = N(mu_theta(x_1, 1), sigma_1^2 I) or its 256 bins: (B,)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder={decoder!r} is not a decoder; valid decoders are: {', '.join(DECODERS)}")
    _check_batch(x0, eps)
    var, x, ab_1 = check_var_table(schedule, var), x0.detach().cpu().double(), schedule.alpha_bar[1]
    x_1 = ab_1.sqrt() * x + (1 - ab_1).sqrt() * eps.detach().cpu().double()
    mean = _model_mean(model, schedule, x_1, torch.ones(x.shape[0], dtype=torch.int64), like=x0)
    if decoder == "gaussian":
        return 0.5 * ((x - mean) ** 2 / var[1] + torch.log(2 * math.pi * var[1])).flatten(1).sum(1)
    return -discretised_log_likelihood(x, mean, var[1]).flatten(1).sum(1)


@dataclass(frozen=True)
class Bound:
    """A Monte Carlo estimate of the bound for each of B data points, term by term.

    ``prior`` (B,) is L_T; ``decoder`` (B,) one draw of L_0; ``terms`` (B, K) one draw of L_{t-1} at each timestep of
    ``t`` (B, K), one t per stratum, the strata holding ``weights`` (K,) timesteps each.
    """

    prior: torch.Tensor
    decoder: torch.Tensor
    terms: torch.Tensor
    t: torch.Tensor
    weights: torch.Tensor

    @property
    def diffusion(self) -> torch.Tensor:
        """(B,) the stratified estimate of sum_{t=2}^T L_{t-1} (book eq. ``ch11-eq-stratified``)."""
        return (self.terms * self.weights).sum(dim=1)

    @property
    def total(self) -> torch.Tensor:
        """(B,) L_T + sum_t L_{t-1} + L_0."""
        return self.prior + self.diffusion + self.decoder

    def scaled(self, factor: float) -> Bound:
        """The same estimate in other units, e.g. ``factor = 1 / (D ln 2)`` for bits per dimension."""
        return replace(self, prior=self.prior * factor, decoder=self.decoder * factor, terms=self.terms * factor)


def strata(T: int, n_timesteps: int) -> torch.Tensor:  # noqa: N803
    """(K + 1,) edges cutting 2..T into K = ``n_timesteps`` runs, near-geometric so the early, heavy t stand alone."""
    if isinstance(n_timesteps, bool) or not isinstance(n_timesteps, int) or not 1 <= n_timesteps <= max(T - 1, 1):
        raise ValueError(f"n_timesteps must be an integer in 1..T-1={T - 1}, got {n_timesteps!r}")
    geometric = 2.0 * ((T + 1) / 2.0) ** (torch.arange(n_timesteps + 1, dtype=F64) / n_timesteps)
    edges = [2]
    for k in range(1, n_timesteps + 1):  # at least one t per stratum, and room left for the ones after it
        edges.append(min(max(edges[-1] + 1, round(float(geometric[k]))), T + 1 - (n_timesteps - k)))
    return torch.tensor(edges)


@torch.no_grad()
def estimate_bound(
    model: NoisePredictor,
    schedule: Schedule,
    x0: torch.Tensor,
    generator: torch.Generator,
    sigma: str = "beta",
    decoder: str = "discretised",
    n_timesteps: int | None = None,
) -> Bound:
    """Estimate the bound for each data point of ``x0`` (B, ...) in nats: L_T exactly, L_0 and each L_{t-1} by one draw.

    The timesteps 2..T are cut into ``n_timesteps`` strata (:func:`strata`); each data point draws one t uniformly in
    each stratum, whose term counts as many times as the stratum has timesteps: an unbiased estimate. The default,
    T - 1 strata, visits every t once. The model runs on the device of ``x0``; the noise comes from ``generator``.
    """
    _check_batch(x0)
    var, b = reverse_variance(schedule, sigma), x0.shape[0]
    k_strata = schedule.T - 1 if n_timesteps is None else n_timesteps
    edges = strata(schedule.T, k_strata) if schedule.T > 1 else torch.tensor([2])
    weights = edges.diff().double()  # (K,) timesteps per stratum, summing to T - 1
    terms, ts = torch.zeros(b, len(weights), dtype=F64), torch.zeros(b, len(weights), dtype=torch.int64)
    for k in range(len(weights)):
        ts[:, k] = edges[k] + (torch.rand(b, generator=generator, dtype=F64) * weights[k]).long()
        eps = torch.randn(x0.shape, generator=generator, dtype=F64)
        terms[:, k] = diffusion_term(model, schedule, x0, ts[:, k], eps, var)
    eps = torch.randn(x0.shape, generator=generator, dtype=F64)
    l0 = decoder_term(model, schedule, x0, eps, var, decoder)
    return Bound(prior=prior_term(schedule, x0), decoder=l0, terms=terms, t=ts, weights=weights)


def bits_per_dim(
    model: NoisePredictor, schedule: Schedule, x0: torch.Tensor, generator: torch.Generator, sigma: str = "beta",
    n_timesteps: int | None = None,
) -> Bound:
    """:func:`estimate_bound` with the discretised decoder, in bits per dimension: nats / (D ln 2) (``ch11-eq-bpd``)."""
    bound = estimate_bound(model, schedule, x0, generator, sigma, "discretised", n_timesteps)
    return bound.scaled(1.0 / (x0[0].numel() * math.log(2.0)))
