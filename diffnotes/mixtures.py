"""Gaussian mixtures: the one mixture class of the book (chapters 1, 4, 5, 10 and 11).

:class:`GaussianMixture` is q(x) = sum_k w_k N(x; mu_k, Sigma_k) in D dimensions: its density, moments, samples,
score, the density of a sum of independent mixtures (chapter 1), and its exact diffusion q(x_t) (chapter 4). The
functions below it measure how close samples come to a mixture (KL on a grid, likelihood, the KS test).

Points are float64 tensors of shape (n, D); randomness enters as a ``generator`` argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import stats

from diffnotes.checks import positive_int
from diffnotes.gaussians import normal_pdf
from diffnotes.schedules import Schedule, check_timestep

#: How many standard deviations beyond the outermost component an integration grid reaches.
GRID_REACH = 12.0


def alpha_bar_at(schedule: Schedule, t: int) -> torch.Tensor:
    """alpha_bar_t (float64, 0-d) for one integer t in 0..T; ValueError naming ``t`` otherwise."""
    t = check_timestep(t, schedule.T)
    if t.dim() != 0:
        raise ValueError(f"t must be a single integer in 0..T={schedule.T}, got shape {tuple(t.shape)}")
    return schedule.alpha_bar[t].to(torch.float64)


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """The density q(x) = sum_k w_k N(x; mu_k, Sigma_k) in D dimensions (book eq. ``ch4-eq-mixture``).

    Attributes:
        weights: (K,) the w_k, non-negative and summing to 1.
        means: (K, D) the mu_k.
        covs: (K, D, D) the Sigma_k, symmetric positive definite.

    Raises:
        ValueError: naming the argument: negative weights, weights not summing to 1, shapes other than
            (K,), (K, D), (K, D, D), or a covariance that is not symmetric positive definite.
    """

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self) -> None:
        w, mu, cov = (torch.as_tensor(v, dtype=torch.float64) for v in (self.weights, self.means, self.covs))
        if not all(bool(torch.isfinite(v).all()) for v in (w, mu, cov)):
            raise ValueError("weights, means and covs must be finite")
        if w.dim() != 1 or w.numel() == 0:
            raise ValueError(f"weights must be a non-empty 1-D tensor (K,), got shape {tuple(w.shape)}")
        if bool((w < 0).any()):
            raise ValueError(f"weights must be non-negative, got {w.tolist()}")
        if abs(float(w.sum()) - 1.0) > 1e-9:
            raise ValueError(f"weights must sum to 1, got sum {float(w.sum()):.12g}")
        k = w.numel()
        if mu.dim() != 2 or mu.shape[0] != k:
            raise ValueError(f"means must have shape (K, D) with K = {k}, got {tuple(mu.shape)}")
        d = mu.shape[1]
        if cov.shape != (k, d, d):
            raise ValueError(f"covs must have shape (K, D, D) = ({k}, {d}, {d}), got {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.transpose(1, 2), rtol=0.0, atol=1e-12 * max(1.0, float(cov.abs().max()))):
            raise ValueError("covs must be symmetric positive definite; some covs[k] is not symmetric")
        bad = torch.linalg.cholesky_ex(cov).info.nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"covs must be symmetric positive definite; covs[k] is not for k in {bad}")
        for name, value in (("weights", w), ("means", mu), ("covs", cov)):
            object.__setattr__(self, name, value)

    @classmethod
    def in_1d(cls, weights: object, means: object, variances: object) -> GaussianMixture:
        """A 1-D mixture from (K,) weights, means and variances (variances are sigma_k^2, not sigma_k)."""
        variances = torch.as_tensor(variances, dtype=torch.float64)
        return cls(weights, torch.as_tensor(means, dtype=torch.float64).reshape(-1, 1), variances.reshape(-1, 1, 1))

    @property
    def dim(self) -> int:
        """D, the dimension of a point."""
        return self.means.shape[1]

    @property
    def mean(self) -> torch.Tensor:
        """(D,) the mixture's mean, sum_k w_k mu_k (book eq. ``ch4-eq-mixture-moments``)."""
        return self.weights @ self.means

    @property
    def cov(self) -> torch.Tensor:
        """(D, D) the mixture's covariance, sum_k w_k (Sigma_k + mu_k mu_k^T) - mean mean^T."""
        second = self.covs + self.means[:, :, None] * self.means[:, None, :]  # (K, D, D)
        return torch.einsum("k,kij->ij", self.weights, second) - torch.outer(self.mean, self.mean)

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """The density sum_k w_k N(x; mu_k, Sigma_k) (book eq. ``ch1-eq-mixture``): for a 1-D mixture at every entry
        of ``x`` (any shape, the result has its shape); for D > 1 at points (n, D), giving (n,)."""
        if self.dim == 1:
            x = torch.as_tensor(x, dtype=torch.float64)
            variances = self.covs[:, 0, 0]
            return (self.weights * normal_pdf(x.unsqueeze(-1), self.means[:, 0], variances)).sum(-1)  # (..., K) summed
        return self.log_prob(x).exp()

    def plus(self, other: GaussianMixture) -> GaussianMixture:
        """The density of X + Y for independent X ~ this mixture (K components) and Y ~ ``other`` (L components).

        Convolution distributes over the sums, and the convolution of two Gaussians is Gaussian (book eq.
        ``ch1-eq-mixture-sum``): component (k, l) has weight w_k v_l, mean mu_k + m_l and covariance Sigma_k + S_l.
        A Gaussian Y is the case L = 1.
        """
        if other.dim != self.dim:
            raise ValueError(f"other must be a mixture in D = {self.dim} dimensions, got D = {other.dim}")
        weights = torch.outer(self.weights, other.weights).flatten()
        means = (self.means[:, None] + other.means[None]).reshape(-1, self.dim)
        covs = (self.covs[:, None] + other.covs[None]).reshape(-1, self.dim, self.dim)
        return GaussianMixture(weights, means, covs)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) draws: a component k ~ Categorical(w), then mu_k + L_k eps with L_k L_k^T = Sigma_k."""
        positive_int("n", n)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.dim, 1, generator=generator, dtype=torch.float64)  # (n, D, 1)
        return self.means[k] + (torch.linalg.cholesky(self.covs)[k] @ eps).squeeze(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(n,) log q(x) for points x of shape (n, D), computed stably with logsumexp over the components."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, D) with D = {self.dim}, got {tuple(x.shape)}")
        chol = torch.linalg.cholesky(self.covs)  # (K, D, D), Sigma_k = L_k L_k^T
        eye = torch.eye(self.dim, dtype=torch.float64)
        whiten = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)  # (K, D, D), L_k^{-1}
        z = torch.einsum("kij,nkj->nki", whiten, x[:, None, :] - self.means[None])  # (n, K, D)
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(-1)  # (K,)
        log_n = -0.5 * (z.pow(2).sum(-1) + log_det + self.dim * math.log(2 * math.pi))  # (n, K)
        return torch.logsumexp(torch.log(self.weights) + log_n, dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) the score grad_x log q(x) at points x of shape (n, D), by automatic differentiation of
        :meth:`log_prob` (exact up to rounding; chapter 10 puts it into Tweedie's formula)."""
        with torch.enable_grad():
            points = torch.as_tensor(x, dtype=torch.float64).detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_prob(points).sum(), points)
        return grad

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """(n,) the distribution function sum_k w_k Phi((x - mu_k) / sigma_k) of a 1-D mixture at points x (n,)."""
        if self.dim != 1:
            raise ValueError(f"cdf needs a 1-D mixture (D = 1), this one has D = {self.dim}")
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1)
        sd = self.covs[:, 0, 0].sqrt()
        return (self.weights * torch.special.ndtr((x - self.means[:, 0]) / sd)).sum(-1)

    def diffuse(self, schedule: Schedule, t: int) -> GaussianMixture:
        """The exact q(x_t) when q(x_0) is this mixture (book eq. ``ch4-eq-diffused-mixture``).

        Component k becomes N(sqrt(alpha_bar_t) mu_k, alpha_bar_t Sigma_k + (1 - alpha_bar_t) I); the weights stay.

        Raises:
            ValueError: if ``t`` is not one integer in 0..T.
        """
        alpha_bar, eye = alpha_bar_at(schedule, t), torch.eye(self.dim, dtype=torch.float64)
        covs = alpha_bar * self.covs + (1 - alpha_bar) * eye  # (K, D, D)
        return GaussianMixture(self.weights, alpha_bar.sqrt() * self.means, covs)


def standard_normal(dim: int) -> GaussianMixture:
    """N(0, I) in ``dim`` dimensions, as a one-component mixture: the end point of the forward process."""
    positive_int("dim", dim)
    return GaussianMixture(torch.ones(1), torch.zeros(1, dim), torch.eye(dim)[None])


def example_mixture_1d() -> GaussianMixture:
    """The chapter's 1-D example: three unequal, narrow components in about [-2, 2]."""
    return GaussianMixture.in_1d([0.25, 0.45, 0.30], [-1.5, 0.2, 1.6], [0.15**2, 0.35**2, 0.2**2])


def example_mixture_2d() -> GaussianMixture:
    """The chapter's 2-D example: four components with unequal weights and elongated covariances (sd 0.45 by 0.12)."""
    angles = torch.tensor([0.0, math.pi / 3, -math.pi / 4, math.pi / 2], dtype=torch.float64)
    u = torch.stack([angles.cos(), angles.sin()], dim=1)  # (K, 2) unit vectors along each component's long axis
    covs = 0.12**2 * torch.eye(2, dtype=torch.float64) + (0.45**2 - 0.12**2) * u[:, :, None] * u[:, None, :]
    return GaussianMixture([0.35, 0.25, 0.25, 0.15], [[-1.2, -0.8], [1.3, -0.6], [0.2, 1.3], [1.6, 1.4]], covs)


def integration_grid(mixture: GaussianMixture, n_grid: int) -> tuple[torch.Tensor, float]:
    """Points (n_grid^D, D) of a midpoint-rule grid for integrals against q, and the volume of one cell (D = 1 or 2).

    The grid spans every component's mean +- :data:`GRID_REACH` standard deviations, beyond which q is
    negligible; for Gaussian tails the rule converges faster than any power of the spacing.
    """
    if mixture.dim not in (1, 2):
        raise ValueError(f"mixture.dim must be 1 or 2 for a grid integral, got {mixture.dim}")
    positive_int("n_grid", n_grid)
    sd = torch.diagonal(mixture.covs, dim1=1, dim2=2).sqrt()  # (K, D)
    lo, hi = (mixture.means - GRID_REACH * sd).min(0).values, (mixture.means + GRID_REACH * sd).max(0).values
    axes = [torch.linspace(float(a), float(b), n_grid, dtype=torch.float64) for a, b in zip(lo, hi)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, mixture.dim)
    return points, math.prod(float(axis[1] - axis[0]) for axis in axes)


def kl_to_standard_normal(mixture: GaussianMixture, n_grid: int) -> float:
    """KL(q || N(0, I)) = int q(x) log(q(x) / N(x; 0, I)) dx on a grid (book eq. ``ch4-eq-kl``; D = 1 or 2)."""
    points, cell = integration_grid(mixture, n_grid)
    log_q = mixture.log_prob(points)
    return float((log_q.exp() * (log_q - standard_normal(mixture.dim).log_prob(points))).sum() * cell)


def log_likelihood_z(mixture: GaussianMixture, x: torch.Tensor, n_grid: int) -> float:
    """The z-score of the average log-likelihood of samples x (n, D) under q (book eq. ``ch4-eq-loglik-z``).

    z = (mean_i log q(x_i) - E_q[log q]) / sqrt(Var_q[log q] / n), with the mean and variance of log q(X),
    X ~ q, integrated on a grid (D = 1 or 2). If the x_i are independent draws from q, z is close to N(0, 1).
    """
    points, cell = integration_grid(mixture, n_grid)
    log_q = mixture.log_prob(points)
    mean = float((log_q.exp() * log_q).sum() * cell)
    var = float((log_q.exp() * log_q.pow(2)).sum() * cell) - mean**2
    return (float(mixture.log_prob(x).mean()) - mean) / math.sqrt(var / x.shape[0])


def ks_test(mixture: GaussianMixture, x: torch.Tensor) -> tuple[float, float]:
    """Kolmogorov-Smirnov test of 1-D samples x (n,) against the mixture's exact cdf: (statistic, p-value)."""
    result = stats.kstest(torch.as_tensor(x).reshape(-1).numpy(), lambda v: mixture.cdf(torch.from_numpy(v)).numpy())
    return float(result.statistic), float(result.pvalue)
