"""Exact noise predictors: the networks that need no training (chapters 5, 8, 11 and 12).

Where the data distribution is known, the best noise predictor E[eps | x_t] has a closed form, and the book uses
it as the reference a trained network is measured against. Each function returns a model with the book's contract
``model(x_t, t, cond=None) -> eps`` (:class:`diffnotes.nets.NoisePredictor`), so every sampler and loss runs on it:

- Gaussian data N(0, I): :func:`gaussian_data_predictor` (chapter 8); N(m, s2): :func:`optimal_eps_gaussian`
  (chapter 11); any linear rule: :func:`linear_eps`;
- data with a given mean and covariance, the best *affine* predictor: :func:`affine_eps` (chapter 5);
- a Gaussian mixture: :func:`mixture_eps` (chapter 11);
- a finite set of training points, smoothed by a Gaussian kernel: :func:`ideal_predictor` (chapter 12).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from diffnotes.mixtures import GaussianMixture
from diffnotes.nets import NoisePredictor
from diffnotes.schedules import Schedule


def gaussian_data_predictor(schedule: Schedule) -> NoisePredictor:
    """The exact noise predictor for data x_0 ~ N(0, I), E[eps | x_t] = sqrt(1 - alpha_bar_t) x_t (book prop.
    ch8-prop-gaussian), as a model ``(x_t, t, cond=None) -> eps`` for (B, ...) ``x_t`` and (B,) ``t``."""

    def predictor(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return (1 - schedule.at(schedule.alpha_bar, t, x_t.dim())).sqrt().to(x_t) * x_t

    return predictor


def _covariance_of_x_t(alpha_bar_t: float, cov: torch.Tensor) -> torch.Tensor:
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must have shape (D, D), got {tuple(cov.shape)}")
    if not 0.0 <= float(alpha_bar_t) <= 1.0:
        raise ValueError(f"alpha_bar_t must lie in [0, 1], got {float(alpha_bar_t)}")
    return alpha_bar_t * cov + (1.0 - alpha_bar_t) * torch.eye(cov.shape[0], dtype=cov.dtype)  # S, (D, D)


def affine_eps(x_t: torch.Tensor, alpha_bar_t: float, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """The best affine predictor of eps from x_t, for data of mean m and covariance C (book eq. ``ch5-eq-affine``).

    eps_hat = sqrt(1 - a) S^{-1} (x_t - sqrt(a) m) with S = a C + (1 - a) I, the covariance of x_t, and a =
    alpha_bar_t. For Gaussian data it is E[eps | x_t], the best predictor of all. x_t: (B, D); mean: (D,); cov: (D, D).
    """
    a = float(alpha_bar_t)
    s = _covariance_of_x_t(a, cov)
    if mean.shape != (cov.shape[0],) or x_t.dim() != 2 or x_t.shape[1] != cov.shape[0]:
        got = f"{tuple(x_t.shape)} and {tuple(mean.shape)}"
        raise ValueError(f"x_t must be (B, D) and mean (D,) with D = {cov.shape[0]}, got {got}")
    centred = (x_t.to(cov) - math.sqrt(a) * mean.to(cov)).T  # (D, B)
    return (math.sqrt(1.0 - a) * torch.linalg.solve(s, centred).T).to(x_t)


def affine_eps_loss(alpha_bar_t: float, cov: torch.Tensor) -> float:
    """The loss per dimension of :func:`affine_eps`: tr(a C S^{-1}) / D (book eq. ``ch5-eq-affine-loss``).

    It depends on the data only through their covariance C (D, D). It is 1 at a = 1 (no noise in x_t, nothing to
    predict it from) and 0 at a = 0 (x_t is the noise).
    """
    a = float(alpha_bar_t)
    s = _covariance_of_x_t(a, cov)
    return float(torch.trace(a * torch.linalg.solve(s, cov))) / cov.shape[0]


def optimal_eps_gaussian(
    schedule: Schedule, m: torch.Tensor | float, s2: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[eps | x_t] = g_t x_t + h_t for data N(m, s2) in each coordinate (book eq. ``ch11-eq-optimal-eps``).

    g_t = sqrt(1 - alpha_bar_t) / v_t and h_t = -g_t sqrt(alpha_bar_t) m, with v_t = alpha_bar_t s2 + 1 - alpha_bar_t.
    ``m`` and ``s2`` (s2 >= 0) are numbers or tensors of one data point's shape; returns (g, h), each of shape
    ``(T + 1, *m.shape)``.
    """
    m, s2 = torch.as_tensor(m, dtype=torch.float64), torch.as_tensor(s2, dtype=torch.float64)
    if m.shape != s2.shape or not bool((s2 >= 0).all()):
        raise ValueError(f"s2 must be >= 0 and have the shape of m, {tuple(m.shape)}; got {tuple(s2.shape)}")
    ab = schedule.alpha_bar.reshape((-1,) + (1,) * m.dim())
    g = (1 - ab).sqrt() / (ab * s2 + 1 - ab)
    g[0] = 0.0  # t = 0 has no noise to predict
    return g, -g * ab.sqrt() * m


def linear_eps(g: torch.Tensor, h: torch.Tensor) -> Callable[..., torch.Tensor]:
    """The noise predictor eps_theta(x_t, t) = g[t] x_t + h[t], with g, h (T + 1,) or ``(T + 1, *x_t.shape[1:])``."""
    if g.shape != h.shape:
        raise ValueError(f"h must have the shape of g, {tuple(g.shape)}; got {tuple(h.shape)}")

    def model(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        coef, shift = g.to(x_t.device)[t], h.to(x_t.device)[t]  # (B,) or (B, ...)
        shape = coef.shape + (1,) * (x_t.dim() - coef.dim())
        return (coef.reshape(shape) * x_t + shift.reshape(shape)).to(x_t.dtype)

    return model


def mixture_eps_and_density(
    mixture: GaussianMixture, ab: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[eps | x_t = x] and q(x_t = x) for a 1-D mixture at alpha_bar ``ab``, points ``x`` broadcasting to (..., 1)."""
    mu, s2, log_w = mixture.means[:, 0], mixture.covs[:, 0, 0], mixture.weights.log()
    v = ab * s2 + 1 - ab  # (..., K) the variances of the diffused components
    log_joint = log_w - 0.5 * ((x - ab.sqrt() * mu) ** 2 / v + torch.log(2 * math.pi * v))  # log w_k N(x; ., v)
    post = torch.softmax(log_joint, dim=-1)  # P(k | x_t)
    return ((1 - ab).sqrt() * (x - ab.sqrt() * mu) / v * post).sum(-1), torch.logsumexp(log_joint, dim=-1).exp()


def mixture_eps(mixture: GaussianMixture, schedule: Schedule) -> Callable[..., torch.Tensor]:
    """The optimal predictor E[eps | x_t] for a 1-D mixture, for x_t of shape (B, 1) (book eq. ``ch11-eq-mixture-eps``).

    E[eps | x_t] = sum_k P(k | x_t) sqrt(1 - alpha_bar_t) (x_t - sqrt(alpha_bar_t) mu_k) / v_{k,t}, with
    v_{k,t} = alpha_bar_t s2_k + 1 - alpha_bar_t.
    """
    if mixture.dim != 1:
        raise ValueError(f"mixture must be 1-D, got dimension {mixture.dim}")

    def model(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        ab = schedule.alpha_bar[t.cpu()].reshape(-1, 1)  # (B, 1)
        return mixture_eps_and_density(mixture, ab, x_t.detach().cpu().double())[0].reshape(-1, 1).to(x_t)

    return model


def _kernel(data: torch.Tensor, kernel_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The eigenvectors (D, D) of the covariance Sigma of ``data`` (N, ...) and the kernel's variances c lambda (D,)."""
    if kernel_scale < 0:
        raise ValueError(f"kernel_scale must be >= 0, got {kernel_scale!r}")
    y = data.flatten(1).double()  # (N, D)
    if kernel_scale == 0:
        return torch.eye(y.shape[1]), torch.zeros(y.shape[1])
    if len(y) < 2:
        raise ValueError(f"data must hold at least 2 images for a kernel_scale > 0, got {len(y)}")
    lam, basis = torch.linalg.eigh(torch.atleast_2d(torch.cov(y.T)))
    return basis.float(), (kernel_scale * lam.clamp(min=0.0)).float()


def ideal_predictor(data: torch.Tensor, schedule: Schedule, kernel_scale: float = 0.1) -> NoisePredictor:
    """The exact minimiser of L_simple when the data are the N images ``data`` (N, ...) blurred by a Gaussian kernel.

    Book eq. ``ch12-eq-ideal``. The data distribution is (1/N) sum_j N(y_j, c Sigma), Sigma the covariance of
    ``data``, c = ``kernel_scale`` (c = 0: the N images themselves). Then q(x_t | j) = N(sqrt(alpha_bar_t) y_j,
    alpha_bar_t c Sigma + (1 - alpha_bar_t) I), and eps*(x_t, t) = (x_t - sqrt(alpha_bar_t) E[x_0 | x_t]) /
    sqrt(1 - alpha_bar_t) is computed exactly in the eigenbasis of Sigma: what a perfectly trained network would
    predict. It is called as ``model(x_t, t, cond=None)``, like any noise predictor.
    """
    basis, k = _kernel(data, kernel_scale)
    y_u = data.flatten(1).float() @ basis  # (N, D): the images in the eigenbasis

    def eps_star(x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        ab = schedule.alpha_bar.to(x_t)[t.to(x_t.device)].unsqueeze(1)  # (B, 1)
        u, ys, kk = basis.to(x_t), y_u.to(x_t), k.to(x_t)
        x_u = x_t.flatten(1) @ u  # (B, D)
        var = ab * kk + (1.0 - ab)  # (B, D): the variances of q(x_t | j) along the eigenvectors
        # log q(x_t | j), less a term that is the same for every j (the softmax ignores it); the last term depends
        # on t only, so it is computed once for each distinct t of the batch
        t_unique, index = torch.unique(t, return_inverse=True)
        ab_u = schedule.alpha_bar.to(x_t)[t_unique.to(x_t.device)].unsqueeze(1)  # (U, 1)
        y_term = (0.5 * ab_u / (ab_u * kk + 1.0 - ab_u)) @ (ys * ys).T  # (U, N)
        logits = ab.sqrt() * ((x_u / var) @ ys.T) - y_term[index.to(x_t.device)]  # (B, N)
        y_bar = torch.softmax(logits, dim=1) @ ys  # (B, D): E[y_j | x_t]
        x0_u = y_bar + ab.sqrt() * kk / var * (x_u - ab.sqrt() * y_bar)  # (B, D): E[x_0 | x_t]
        return ((x_t.flatten(1) - ab.sqrt() * (x0_u @ u.T)) / (1.0 - ab).sqrt()).reshape(x_t.shape)

    return eps_star


def ideal_sample(data: torch.Tensor, kernel_scale: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n exact samples (n, ...) of the distribution of :func:`ideal_predictor`: y_j, j uniform, plus N(0, c Sigma)
    noise. What a sampler with no discretisation error would return for that predictor."""
    basis, k = _kernel(data, kernel_scale)
    j = torch.randint(0, len(data), (n,), generator=generator)
    z = torch.randn(n, basis.shape[0], generator=generator)
    return data[j] + ((z * k.sqrt()) @ basis.T).reshape(n, *data.shape[1:])
