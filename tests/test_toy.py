"""Toy data with exact densities and the marginals q(x_t) of chapter 4 (diffnotes.toy).

Statistical checks use fixed seeds; each tolerance is a multiple of the standard error of the statistic it
bounds, with the multiple stated beside it.
"""

import math

import numpy as np
import pytest
import torch
from conftest import gen
from scipy import stats

from diffnotes import data, gaussians, mixtures, schedules, toy

S = schedules.linear()  # the book's default: T = 1000, beta from 1e-4 to 0.02
N = 20_000  # ancestral draws per statistical check



def slide_mixture(mixture: mixtures.GaussianMixture, t: int) -> mixtures.GaussianMixture:
    """What q(x_t) would be with the lecture slide's kernel (std sqrt(1 - alpha_bar_t) where the variance belongs)."""
    a = S.alpha_bar[t]
    covs = a * mixture.covs + (1 - a).sqrt() * torch.eye(mixture.dim, dtype=torch.float64)
    return mixtures.GaussianMixture(mixture.weights, a.sqrt() * mixture.means, covs)


# --- the closed form of q(x_t) (book eq. ch4-eq-diffused-mixture) against ancestral samples ---------------------


@pytest.mark.parametrize("t", [0, 50, 150, 300, 600, 1000])
def test_diffused_mixture_matches_ancestral_samples_1d(t):
    mixture = mixtures.example_mixture_1d()
    _, _, x_t = toy.ancestral_sample(S, mixture.sample, t, N, gen(t))
    statistic, p_value = mixtures.ks_test(mixture.diffuse(S, t), x_t)
    # A KS test at level 1e-3: under the closed form, this fails for 1 seed in 1000 (the seeds are fixed).
    assert p_value > 1e-3, (t, statistic, p_value)


@pytest.mark.parametrize("t", [50, 150, 300])
def test_ks_test_rejects_the_slides_kernel(t):
    # The check has power: with the standard deviation in place of the variance, q(x_t) is visibly wider.
    mixture = mixtures.example_mixture_1d()
    _, _, x_t = toy.ancestral_sample(S, mixture.sample, t, N, gen(t))
    _, p_value = mixtures.ks_test(slide_mixture(mixture, t), x_t)
    assert p_value < 1e-6


@pytest.mark.parametrize("t", [0, 150, 600])
def test_diffused_mixture_moments_2d(t):
    mixture = mixtures.example_mixture_2d()
    exact = mixture.diffuse(S, t)
    _, _, x_t = toy.ancestral_sample(S, mixture.sample, t, N, gen(t))
    # Sample mean: standard error sqrt(C_ii / n); sample covariance: sqrt((C_ii C_jj + C_ij^2) / n). Allow 5 of each.
    se_mean = (torch.diagonal(exact.cov) / N).sqrt()
    assert ((x_t.mean(0) - exact.mean).abs() < 5 * se_mean).all()
    diag = torch.diagonal(exact.cov)
    se_cov = ((torch.outer(diag, diag) + exact.cov**2) / N).sqrt()
    assert ((torch.cov(x_t.T) - exact.cov).abs() < 5 * se_cov).all()


@pytest.mark.parametrize("t", [0, 150, 1000])
def test_log_likelihood_z_accepts_the_closed_form_and_rejects_the_slide(t):
    mixture = mixtures.example_mixture_2d()
    _, _, x_t = toy.ancestral_sample(S, mixture.sample, t, N, gen(t))
    # z is approximately N(0, 1) for draws of q: |z| < 4 fails for about 6 seeds in 100,000.
    assert abs(mixtures.log_likelihood_z(mixture.diffuse(S, t), x_t, n_grid=201)) < 4
    if t == 150:
        assert abs(mixtures.log_likelihood_z(slide_mixture(mixture, t), x_t, n_grid=201)) > 20


def test_diffused_moments_follow_the_per_coordinate_formula():
    # The mixture's overall mean and covariance diffuse by the same rule as any data's (eq. ch4-eq-pixel-moments):
    # an exact identity, so the tolerance is float64 round-off.
    mixture = mixtures.example_mixture_2d()
    for t in (0, 1, 77, 500, 1000):
        exact = mixture.diffuse(S, t)
        a = S.alpha_bar[t]
        mean, var = toy.marginal_mean_var(S, t, mixture.mean, torch.diagonal(mixture.cov))
        assert torch.allclose(exact.mean, mean, atol=1e-12)
        assert torch.allclose(torch.diagonal(exact.cov), var, atol=1e-12)
        assert torch.allclose(exact.cov, a * mixture.cov + (1 - a) * torch.eye(2), atol=1e-12)


def test_ancestral_sample_is_q_sample_with_the_same_draws():
    mixture = mixtures.example_mixture_2d()
    x0, eps, x_t = toy.ancestral_sample(S, mixture.sample, 300, 16, gen(3))
    g = gen(3)
    x0_again = mixture.sample(16, g)
    eps_again = torch.randn(x0_again.shape, generator=g, dtype=torch.float64)
    assert torch.equal(x0, x0_again) and torch.equal(eps, eps_again)
    assert torch.allclose(x_t, S.alpha_bar[300].sqrt() * x0 + (1 - S.alpha_bar[300]).sqrt() * eps, atol=1e-12)


def test_ancestral_sample_with_one_timestep_per_draw():
    # As in training: t is an (n,) tensor; each row is noised at its own t, and t = 0 leaves x0 unchanged.
    t = torch.tensor([0, 1, 500, 1000])
    x0, eps, x_t = toy.ancestral_sample(S, mixtures.example_mixture_1d().sample, t, 4, gen(1))
    a = S.alpha_bar[t][:, None]
    assert torch.allclose(x_t, a.sqrt() * x0 + (1 - a).sqrt() * eps, atol=1e-12)
    assert torch.equal(x_t[0], x0[0])


# --- the limit t = T ---------------------------------------------------------------------------------------------


def test_q_x_T_is_nearly_standard_normal():
    alpha_bar_T = float(S.alpha_bar[-1])
    assert 3e-5 < alpha_bar_T < 5e-5  # 4.04e-5 for the linear schedule (REFERENCE.md)
    for mixture in (mixtures.example_mixture_1d(), mixtures.example_mixture_2d()):
        q_T = mixture.diffuse(S, S.T)
        # means shrink by sqrt(alpha_bar_T) < 0.0065, covariances move to I up to alpha_bar_T |Sigma_k - I|.
        assert q_T.means.abs().max() < math.sqrt(alpha_bar_T) * 2.2
        assert (q_T.covs - torch.eye(mixture.dim)).abs().max() < alpha_bar_T
        assert mixtures.kl_to_standard_normal(q_T, 201 if mixture.dim == 2 else 4001) < 1e-5


def test_standard_normal_is_stationary():
    for dim in (1, 2):
        reference = mixtures.standard_normal(dim)
        for t in (0, 10, 999):
            q_t = reference.diffuse(S, t)
            assert torch.allclose(q_t.means, reference.means) and torch.allclose(q_t.covs, reference.covs, atol=1e-12)
        assert abs(mixtures.kl_to_standard_normal(reference, 201)) < 1e-12


# --- densities, distribution functions and integrals -----------------------------------------------------------


def test_log_prob_integrates_to_one():
    # A fine grid: the midpoint rule on smooth, Gaussian-tailed densities is accurate far below 1e-8.
    mixture = mixtures.example_mixture_1d()
    x = torch.linspace(-8, 8, 16001, dtype=torch.float64)[:, None]
    assert abs(float(torch.trapezoid(mixture.log_prob(x).exp(), x[:, 0])) - 1) < 1e-8
    mixture_2d = mixtures.example_mixture_2d()
    axis = torch.linspace(-6, 6, 601, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    assert abs(float(mixture_2d.log_prob(grid).exp().sum()) * float(axis[1] - axis[0]) ** 2 - 1) < 1e-8


def test_log_prob_and_cdf_match_scipy():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    single = mixtures.GaussianMixture.in_1d([1.0], [0.4], [0.7**2])
    assert np.allclose(single.log_prob(x[:, None]).numpy(), stats.norm(0.4, 0.7).logpdf(x.numpy()), atol=1e-12)
    mixture = mixtures.example_mixture_1d()
    w, mu, sd = mixture.weights.numpy(), mixture.means[:, 0].numpy(), mixture.covs[:, 0, 0].sqrt().numpy()
    pdf = sum(w[k] * stats.norm(mu[k], sd[k]).pdf(x.numpy()) for k in range(3))
    cdf = sum(w[k] * stats.norm(mu[k], sd[k]).cdf(x.numpy()) for k in range(3))
    assert np.allclose(mixture.log_prob(x[:, None]).exp().numpy(), pdf, rtol=1e-12, atol=1e-300)
    assert np.allclose(mixture.cdf(x).numpy(), cdf, atol=1e-12)
    mixture_2d = mixtures.example_mixture_2d()
    points = torch.randn(20, 2, generator=gen(5), dtype=torch.float64)
    for k in range(4):
        component = mixtures.GaussianMixture([1.0], mixture_2d.means[k : k + 1], mixture_2d.covs[k : k + 1])
        reference = stats.multivariate_normal(mixture_2d.means[k].numpy(), mixture_2d.covs[k].numpy())
        expected = reference.logpdf(points.numpy())
        assert np.allclose(component.log_prob(points).numpy(), expected, atol=1e-10)


def test_sample_moments_match_the_mixture_moments():
    mixture = mixtures.example_mixture_2d()
    x = mixture.sample(N, gen(11))
    diag = torch.diagonal(mixture.cov)
    # 5 standard errors, as in test_diffused_mixture_moments_2d.
    assert ((x.mean(0) - mixture.mean).abs() < 5 * (diag / N).sqrt()).all()
    se_cov = ((torch.outer(diag, diag) + mixture.cov**2) / N).sqrt()
    assert ((torch.cov(x.T) - mixture.cov).abs() < 5 * se_cov).all()


def test_grid_kl_matches_the_gaussian_closed_form():
    # One component: the quadrature must reproduce (tr S + m^T m - D - log det S) / 2 to near round-off.
    for mixture in (mixtures.example_mixture_1d(), mixtures.example_mixture_2d()):
        for t in (0, 200):
            q_t = mixture.diffuse(S, t)
            for k in range(q_t.weights.numel()):
                component = mixtures.GaussianMixture([1.0], q_t.means[k : k + 1], q_t.covs[k : k + 1])
                closed = float(gaussians.gaussian_kl_to_standard_normal(q_t.means[k], q_t.covs[k]))
                assert abs(mixtures.kl_to_standard_normal(component, 4001 if mixture.dim == 1 else 201) - closed) < 1e-9


def test_kl_decreases_in_t_and_obeys_the_convexity_bound():
    mixture = mixtures.example_mixture_1d()
    kl = [mixtures.kl_to_standard_normal(mixture.diffuse(S, t), 4001) for t in range(0, 1001, 25)]
    assert all(later < earlier for earlier, later in zip(kl, kl[1:]))  # eq. ch4-eq-kl: strictly decreasing here
    for t in (0, 150, 300):
        q_t = mixture.diffuse(S, t)
        bound = float((q_t.weights * gaussians.gaussian_kl_to_standard_normal(q_t.means, q_t.covs)).sum())
        assert mixtures.kl_to_standard_normal(q_t, 4001) < bound


# --- per-pixel statistics on real digits (book eq. ch4-eq-pixel-moments) -------------------------------------------


@pytest.fixture(scope="module")
def digits():
    images, _ = data.load_mnist_5k()
    return images


def test_pixel_stats_at_t0_are_the_data_stats(digits):
    mean, var = toy.diffused_pixel_stats(S, digits, 0, 1, gen(0))
    x = digits.to(torch.float64)
    assert torch.allclose(mean, x.mean(0), atol=1e-6) and torch.allclose(var, x.var(0, unbiased=False), atol=1e-6)


@pytest.mark.parametrize("t", [50, 300, 1000])
def test_pixel_stats_follow_the_formula(digits, t):
    x = digits.to(torch.float64)
    mean_exact, var_exact = toy.marginal_mean_var(S, t, x.mean(0), x.var(0, unbiased=False))
    repeats = 2
    mean, var = toy.diffused_pixel_stats(S, digits, t, repeats, gen(t))
    n = digits.shape[0] * repeats
    # Only the noise is random. Per pixel the mean's standard error is sqrt((1 - a) / n) <= 1 / sqrt(n), and the
    # variance's is sqrt((2 (1 - a)^2 + 4 a (1 - a) v0) / n) <= sqrt(2 / n) since v0 <= 1 for pixels in [-1, 1].
    # Allow 5 of each on every one of the 784 pixels (each exceeds it with probability 6e-7).
    assert (mean - mean_exact).abs().max() < 5 / math.sqrt(n)
    assert (var - var_exact).abs().max() < 5 * math.sqrt(2 / n)
    if t == 50:  # the slide's kernel would add sqrt(1 - a) = 0.17 instead of 1 - a = 0.03: far outside the band
        a = S.alpha_bar[t]
        wrong = a * x.var(0, unbiased=False) + (1 - a).sqrt()
        assert (var - wrong).abs().min() > 5 * math.sqrt(2 / n)


# --- two moons ------------------------------------------------------------------------------------------------


def test_two_moons_lie_on_two_half_circles():
    x = toy.two_moons(1000, gen(0), noise=0.0)
    upper = (x.norm(dim=1) - 1).abs() < 1e-12
    lower = ((x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs() < 1e-12
    assert bool((upper | lower).all()) and 400 < int(upper.sum()) < 600  # half of 1000, +- 6 standard errors
    assert bool((x[upper, 1] >= 0).all()) and bool((x[lower, 1] <= 0.5).all())
    assert torch.equal(toy.two_moons(10, gen(1)), toy.two_moons(10, gen(1)))



# --- configuration and bad input -------------------------------------------------------------------------------


def test_config_for_profile():
    quick, full = toy.ToyConfig.for_profile("quick"), toy.ToyConfig.for_profile("full")
    assert quick.n_samples < full.n_samples and quick.digit_repeats < full.digit_repeats
    assert quick.n_grid_1d % 2 == 1 and quick.n_grid_2d % 2 == 1


@pytest.mark.parametrize(
    ("weights", "means", "covs", "message"),
    [
        ([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "weights must sum to 1"),
        ([1.5, -0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "weights must be non-negative"),
        ([[1.0]], [[0.0]], [[[1.0]]], r"weights must be a non-empty 1-D tensor \(K,\)"),
        ([0.5, 0.5], [[0.0], [1.0], [2.0]], [[[1.0]], [[1.0]]], r"means must have shape \(K, D\) with K = 2"),
        ([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [[[1.0]], [[1.0]]], r"covs must have shape \(K, D, D\) = \(2, 2, 2\)"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], "covs must be symmetric positive definite; covs"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], "covs must be symmetric positive definite; some"),
        ([1.0], [[0.0]], [[[0.0]]], "covs must be symmetric positive definite"),
        ([1.0], [[float("nan")]], [[[1.0]]], "must be finite"),
    ],
)
def test_bad_mixture(weights, means, covs, message):
    with pytest.raises(ValueError, match=message):
        mixtures.GaussianMixture(weights, means, covs)


@pytest.mark.parametrize("t", [-1, 1001, 2.5, torch.tensor([1, 2])])
def test_bad_timestep(t):
    with pytest.raises(ValueError, match="t must"):
        mixtures.example_mixture_1d().diffuse(S, t)
    with pytest.raises(ValueError, match="t must"):
        toy.marginal_mean_var(S, t, torch.zeros(3), torch.ones(3))


def test_bad_arguments():
    mixture_1d, mixture_2d = mixtures.example_mixture_1d(), mixtures.example_mixture_2d()
    with pytest.raises(ValueError, match=r"x must have shape \(n, D\) with D = 2"):
        mixture_2d.log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="cdf needs a 1-D mixture"):
        mixture_2d.cdf(torch.zeros(5))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        mixture_1d.sample(0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        toy.ancestral_sample(S, mixture_1d.sample, 10, -3)
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        toy.diffused_pixel_stats(S, torch.zeros(2, 1, 4, 4), 10, 0)
    with pytest.raises(ValueError, match="mixture.dim must be 1 or 2"):
        mixtures.kl_to_standard_normal(mixtures.standard_normal(3), 11)
    with pytest.raises(ValueError, match="noise must be a standard deviation >= 0"):
        toy.two_moons(10, noise=-0.1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        toy.two_moons(0)


def test_score_is_the_gradient_of_log_prob():
    """One component: -Sigma^-1 (x - mu) exactly; a mixture: central differences of log_prob."""
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    single = mixtures.GaussianMixture(torch.ones(1), torch.tensor([[1.0, -2.0]]), cov[None])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(single.score(x), -(x - single.means[0]) @ torch.linalg.inv(cov), rtol=1e-12)
    mixture = mixtures.example_mixture_2d()
    h = 1e-5
    for d in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[d] = h
        numeric = (mixture.log_prob(x + step) - mixture.log_prob(x - step)) / (2 * h)
        assert torch.allclose(mixture.score(x)[:, d], numeric, rtol=1e-6, atol=1e-8)
    with torch.no_grad():  # works where gradients are switched off, as in a sampler
        assert torch.equal(mixture.score(x), mixture.score(x))
    with pytest.raises(ValueError, match=r"x must have shape \(n, D\) with D = 2"):
        mixture.score(torch.zeros(3))
