"""Checks of every identity in the chapter "Sums of Gaussians" (diffnotes.gaussians).

Monte Carlo tolerances are 5 standard errors of the estimate at the sample size used (a false alarm has
probability below 1e-6 per comparison); grid tolerances come from the grid spacing dz.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import gen
from scipy import stats

from diffnotes import gaussians
from diffnotes.mixtures import GaussianMixture

N = 200_000  # Monte Carlo draws per check



def mixture_cdf(x: torch.Tensor, w: torch.Tensor, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """sum_k w_k Phi((x - mu_k) / sigma_k), the CDF of a mixture (written here independently of the module)."""
    return (w * torch.special.ndtr((x.unsqueeze(-1) - mu) / var.sqrt())).sum(-1)


def normal_ks_pvalue(samples: torch.Tensor, mean: float, var: float) -> float:
    return float(stats.kstest(samples.numpy(), "norm", args=(float(mean), math.sqrt(float(var)))).pvalue)


# ---------------------------------------------------------------------------------------------------------------
# The identity a X + b Y ~ N(a mu_x + b mu_y, a^2 var_x + b^2 var_y), scalar and vector


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.8, -1.3), (math.sqrt(0.9), math.sqrt(0.1))])
def test_scalar_sum_matches_monte_carlo(a: float, b: float) -> None:
    mu_x, var_x, mu_y, var_y = 1.5, 0.64, -0.5, 2.25
    generator = gen(1)
    x = mu_x + math.sqrt(var_x) * torch.randn(N, generator=generator, dtype=torch.float64)
    y = mu_y + math.sqrt(var_y) * torch.randn(N, generator=generator, dtype=torch.float64)
    z = a * x + b * y
    mu_z, var_z = gaussians.gaussian_sum(mu_x, var_x, mu_y, var_y, a=a, b=b)
    # Standard errors: sqrt(var / n) for the mean; var * sqrt(2 / (n - 1)) for a Gaussian's sample variance.
    assert abs(float(z.mean() - mu_z)) < 5 * math.sqrt(float(var_z) / N)
    assert abs(float(z.var() - var_z)) < 5 * float(var_z) * math.sqrt(2 / (N - 1))
    # Not only the moments: the whole distribution is N(mu_z, var_z) (KS test at the 1e-3 level).
    assert normal_ks_pvalue(z, mu_z, var_z) > 1e-3


def test_scaled_sum_rejects_the_wrong_rule() -> None:
    """Variances scale by a^2, not a: the KS test must tell the two apart (so the check above has teeth)."""
    a, b = 0.5, 0.5
    generator = gen(2)
    x, y = torch.randn(2, N, generator=generator, dtype=torch.float64)
    z = a * x + b * y
    _, var_right = gaussians.gaussian_sum(0.0, 1.0, 0.0, 1.0, a=a, b=b)
    assert float(var_right) == pytest.approx(0.5)
    assert normal_ks_pvalue(z, 0.0, var_right) > 1e-3
    assert normal_ks_pvalue(z, 0.0, a * 1.0 + b * 1.0) < 1e-10  # variance 1 instead of 0.5


def test_elementwise_sum_broadcasts_per_coordinate() -> None:
    mu_z, var_z = gaussians.gaussian_sum(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]),
                                 torch.tensor([0.5, 0.0]), a=2.0, b=-1.0)
    torch.testing.assert_close(mu_z, torch.tensor([-3.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(var_z, torch.tensor([4.5, 8.0], dtype=torch.float64))


def test_vector_sum_matches_monte_carlo() -> None:
    a, b = 0.6, 1.7
    mu_x, mu_y = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 3.0, -1.0])
    root_x = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.2, 0.5]], dtype=torch.float64)
    root_y = torch.tensor([[0.4, 0.0, 0.0], [-0.2, 0.9, 0.0], [0.1, 0.3, 1.2]], dtype=torch.float64)
    cov_x, cov_y = root_x @ root_x.T, root_y @ root_y.T
    generator = gen(3)
    z = a * gaussians.sample_gaussian(mu_x, cov_x, N, generator) + b * gaussians.sample_gaussian(mu_y, cov_y, N, generator)
    mu_z, cov_z = gaussians.gaussian_vector_sum(mu_x, cov_x, mu_y, cov_y, a=a, b=b)
    torch.testing.assert_close(cov_z, a**2 * cov_x + b**2 * cov_y)
    # 5 standard errors per entry: sqrt(C_ii / n) for the mean, sqrt((C_ii C_jj + C_ij^2) / n) for the covariance.
    assert ((z.mean(0) - mu_z).abs() < 5 * (torch.diagonal(cov_z) / N).sqrt()).all()
    assert ((torch.cov(z.T) - cov_z).abs() < 5 * gaussians.sample_cov_se(cov_z, N)).all()


def test_sample_gaussian_accepts_a_singular_covariance() -> None:
    x = gaussians.sample_gaussian(torch.zeros(2), torch.ones(2, 2), 1000, gen(4))  # x_1 = x_2 ~ N(0, 1)
    torch.testing.assert_close(x[:, 0], x[:, 1], rtol=0.0, atol=1e-12)
    assert 0.8 < float(x[:, 0].std()) < 1.2  # 1000 draws: std's standard error is about 0.022


def test_sample_cov_se_matches_replicates() -> None:
    """The spread of sample covariances over 2,000 replicates of n = 100 matches sample_cov_se."""
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    replicates, n = 2000, 100
    x = gaussians.sample_gaussian(torch.zeros(2), cov, replicates * n, gen(5)).reshape(replicates, n, 2)
    centred = x - x.mean(1, keepdim=True)
    covs = centred.transpose(1, 2) @ centred / (n - 1)  # (replicates, 2, 2)
    ratio = covs.std(0) / gaussians.sample_cov_se(cov, n)
    # A standard deviation from 2,000 replicates has relative standard error 1/sqrt(2 * 2000) = 1.6 %; 5 of them
    # is 8 %, plus the n - 1 vs n convention (0.5 %): 10 %.
    assert ((ratio - 1).abs() < 0.10).all()


# ---------------------------------------------------------------------------------------------------------------
# The density of a sum is the convolution of the densities

GRID = torch.linspace(-12.0, 12.0, 2001, dtype=torch.float64)
DZ = float(GRID[1] - GRID[0])  # 0.012


def test_convolution_of_gaussians_is_the_closed_form() -> None:
    p_z = gaussians.density_of_sum(gaussians.normal_pdf(GRID, 1.0, 0.5), gaussians.normal_pdf(GRID, -2.0, 1.5), GRID)
    exact = gaussians.normal_pdf(GRID, -1.0, 2.0)
    # The Riemann sum of a smooth, fast-decaying integrand converges faster than any power of dz; dz^2 (1.4e-4) is a
    # generous bound, yet a grid shifted by one cell would err by dz * max|p_Z'| (about 2e-3) and fail.
    assert float((p_z - exact).abs().max()) < DZ**2
    assert float(torch.trapezoid(p_z, GRID)) == pytest.approx(1.0, abs=1e-9)


def test_convolution_of_mixtures_is_the_mixture_of_sums() -> None:
    wx, mx, vx = torch.tensor([0.3, 0.7]), torch.tensor([-2.0, 2.0]), torch.tensor([0.25, 1.0])
    wy, my, vy = torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 1.5]), torch.tensor([0.3, 0.1])
    x, y = GaussianMixture.in_1d(wx, mx, vx), GaussianMixture.in_1d(wy, my, vy)
    p_z = gaussians.density_of_sum(x.pdf(GRID), y.pdf(GRID), GRID)
    z = x.plus(y)
    assert z.weights.shape == (4,) and float(z.weights.sum()) == pytest.approx(1.0)
    assert float((p_z - z.pdf(GRID)).abs().max()) < DZ**2  # as in the Gaussian case


def test_mixture_of_sums_matches_monte_carlo() -> None:
    wx, mx, vx = torch.tensor([0.3, 0.7]), torch.tensor([-2.0, 2.0]), torch.tensor([0.25, 1.0])
    wy, my, vy = torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([0.8])  # Y Gaussian: L = 1
    generator = gen(6)
    x, y = GaussianMixture.in_1d(wx, mx, vx), GaussianMixture.in_1d(wy, my, vy)
    z = x.sample(N, generator)[:, 0] + y.sample(N, generator)[:, 0]
    total = x.plus(y)
    w, mu, var = total.weights, total.means[:, 0], total.covs[:, 0, 0]
    pvalue = stats.kstest(z.numpy(), lambda t: mixture_cdf(torch.as_tensor(t), w, mu, var).numpy()).pvalue
    assert pvalue > 1e-3


def test_convolution_of_uniforms_is_a_triangle() -> None:
    """The convolution rule needs no Gaussians: U(-1, 1) + U(-1, 1) has the triangular density (2 - |z|)/4."""
    uniform = ((GRID >= -1) & (GRID <= 1)).double() / 2
    p_z = gaussians.density_of_sum(uniform, uniform, GRID)
    # At the jumps of p_X the Riemann sum can be off by one cell: about dz * max p_X * max p_Y = dz / 4.
    assert float((p_z - (2 - GRID.abs()).clamp(min=0) / 4).abs().max()) < DZ / 2


# ---------------------------------------------------------------------------------------------------------------
# Mixtures: density, moments, and why a mixture is not a sum

W = torch.tensor([0.3, 0.7])
MU = torch.tensor([-2.0, 2.0])
VAR = torch.tensor([0.25, 1.0])


def test_mixture_density_integrates_to_one() -> None:
    assert float(torch.trapezoid(GaussianMixture.in_1d(W, MU, VAR).pdf(GRID), GRID)) == pytest.approx(1.0, abs=1e-9)


def test_mixture_samples_match_density_and_moments() -> None:
    x = GaussianMixture.in_1d(W, MU, VAR).sample(N, gen(7))[:, 0]
    edges = torch.linspace(-5.0, 6.0, 45, dtype=torch.float64)
    counts = torch.histc(x, bins=44, min=-5.0, max=6.0)
    cdf = mixture_cdf(edges, W.double(), MU.double(), VAR.double())
    p_bin = cdf[1:] - cdf[:-1]
    p_bin_from_pdf = torch.stack([torch.trapezoid(GaussianMixture.in_1d(W, MU, VAR).pdf(t), t)
                                  for t in (torch.linspace(lo, hi, 101) for lo, hi in zip(edges[:-1], edges[1:]))])
    torch.testing.assert_close(p_bin_from_pdf, p_bin, rtol=0.0, atol=1e-6)  # the density integrates to the CDF
    # Each bin's count is Binomial(n, p): 5 standard errors sqrt(n p (1 - p)), plus 1 for histc's edge handling.
    assert ((counts - N * p_bin).abs() < 5 * (N * p_bin * (1 - p_bin)).sqrt() + 1).all()
    mean, var = GaussianMixture.in_1d(W, MU, VAR).mean[0], GaussianMixture.in_1d(W, MU, VAR).cov[0, 0]
    fourth = float(((x - x.mean()) ** 4).mean())
    assert abs(float(x.mean() - mean)) < 5 * math.sqrt(float(var) / N)
    assert abs(float(x.var() - var)) < 5 * math.sqrt((fourth - float(var) ** 2) / N)  # SE of a variance


@pytest.mark.parametrize(
    "w1, m1, s1, m2, s2", [(0.3, -2.0, 0.5, 2.0, 1.0), (0.5, 0.0, 1.0, 0.0, 1.0), (0.9, 1.0, 0.2, -3.0, 2.0)]
)
def test_mixture_variance_exceeds_sum_variance(w1: float, m1: float, s1: float, m2: float, s2: float) -> None:
    """Same mean; var(mixture) - var(w X1 + (1-w) X2) = w (1-w) (s1^2 + s2^2 + (m1 - m2)^2) > 0 for 0 < w < 1."""
    mix = GaussianMixture.in_1d([w1, 1 - w1], [m1, m2], [s1**2, s2**2])
    mix_mean, mix_var = mix.mean[0], mix.cov[0, 0]
    sum_mean, sum_var = gaussians.gaussian_sum(m1, s1**2, m2, s2**2, a=w1, b=1 - w1)
    assert float(mix_mean) == pytest.approx(float(sum_mean))
    assert float(mix_var - sum_var) == pytest.approx(w1 * (1 - w1) * (s1**2 + s2**2 + (m1 - m2) ** 2))
    assert float(mix_var) > float(sum_var)


def test_mixture_samples_are_not_sum_samples() -> None:
    generator = gen(8)
    mixture = GaussianMixture.in_1d(W, MU, VAR).sample(N, generator)[:, 0]
    w = float(W[0])
    x1 = MU[0] + VAR[0].sqrt() * torch.randn(N, generator=generator, dtype=torch.float64)
    x2 = MU[1] + VAR[1].sqrt() * torch.randn(N, generator=generator, dtype=torch.float64)
    weighted_sum = w * x1 + (1 - w) * x2
    sum_mean, sum_var = gaussians.gaussian_sum(MU[0], VAR[0], MU[1], VAR[1], a=w, b=1 - w)
    mix_mean, mix_var = GaussianMixture.in_1d(W, MU, VAR).mean[0], GaussianMixture.in_1d(W, MU, VAR).cov[0, 0]
    assert normal_ks_pvalue(weighted_sum, sum_mean, sum_var) > 1e-3  # the weighted sum is Gaussian
    assert normal_ks_pvalue(mixture, mix_mean, mix_var) < 1e-10  # the mixture is not, even moment-matched
    assert stats.ks_2samp(mixture.numpy(), weighted_sum.numpy()).pvalue < 1e-10


# ---------------------------------------------------------------------------------------------------------------
# Configuration and bad input


def test_config_sizes() -> None:
    quick, full = gaussians.GaussiansConfig.for_profile("quick"), gaussians.GaussiansConfig.for_profile("full")
    assert quick.grid_points % 2 == 1 and full.grid_points % 2 == 1
    assert quick.n_samples < full.n_samples


EYE = torch.eye(2)
BAD_INPUT = [
    (lambda: gaussians.gaussian_sum(0.0, -1.0, 0.0, 1.0), "var_x"),
    (lambda: gaussians.gaussian_sum(0.0, 1.0, 0.0, -0.5), "var_y"),
    (lambda: gaussians.gaussian_sum(torch.zeros(2), torch.ones(2), torch.zeros(3), torch.ones(3)), "mu_y"),
    (lambda: gaussians.gaussian_sum(float("nan"), 1.0, 0.0, 1.0), "mu_x"),
    (lambda: gaussians.gaussian_vector_sum(torch.zeros(2), [[1.0, 2.0], [2.0, 1.0]], torch.zeros(2), EYE), "cov_x"),
    (lambda: gaussians.gaussian_vector_sum(torch.zeros(2), EYE, torch.zeros(2), [[1.0, 0.5], [0.0, 1.0]]), "cov_y"),
    (lambda: gaussians.gaussian_vector_sum(torch.zeros(2), torch.eye(3), torch.zeros(2), EYE), "cov_x"),
    (lambda: gaussians.gaussian_vector_sum(torch.zeros(2), EYE, torch.zeros(3), torch.eye(3)), "mu_y"),
    (lambda: gaussians.gaussian_vector_sum(torch.zeros(2, 2), EYE, torch.zeros(2, 2), EYE), "mu_x"),
    (lambda: gaussians.sample_gaussian(torch.zeros(2), -EYE, 10), "cov"),
    (lambda: gaussians.sample_gaussian(torch.zeros(2), EYE, 0), "n"),
    (lambda: GaussianMixture.in_1d(W, MU, VAR).sample(2.5), "n"),
    (lambda: gaussians.normal_pdf(GRID, 0.0, 0.0), "var"),
    (lambda: GaussianMixture.in_1d([0.5, 0.6], MU, VAR), "weights"),
    (lambda: GaussianMixture.in_1d([1.2, -0.2], MU, VAR), "weights"),
    (lambda: GaussianMixture.in_1d(W, [0.0, 1.0, 2.0], VAR), "means"),
    (lambda: GaussianMixture.in_1d(W, MU, [1.0, -1.0]), "covs"),
    (lambda: GaussianMixture.in_1d([[0.5, 0.5]], MU, VAR), "weights"),
    (lambda: GaussianMixture.in_1d(W, MU, VAR).plus(GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])), "other"),
    (lambda: gaussians.density_of_sum(GRID[:-1], GRID[:-1], GRID[:-1]), "grid"),  # even length
    (lambda: gaussians.density_of_sum(GRID, GRID, GRID + 0.5), "grid"),  # not symmetric
    (lambda: gaussians.density_of_sum(GRID[:5], GRID, GRID), "p_x"),
]


@pytest.mark.parametrize("call, name", BAD_INPUT)
def test_bad_input_names_the_argument(call, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
