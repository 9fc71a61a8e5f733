"""Chapter 11 (diffnotes.evaluation.bound): the bound term by term, the KL between Gaussians, the weights that L_simple drops,
closed forms for Gaussian and Gaussian-mixture data, the discretised decoder and bits per dimension; bad input.

Monte Carlo tolerances are 5 standard errors of the estimate: a mean of n draws with sample standard deviation sd
has standard error sd / sqrt(n). Under a correct formula a 5-SE check fails with probability below 1e-6 per
comparison, and the seeds are fixed.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import gen, randn

from diffnotes import gaussians, mixtures, posterior_grid, schedules
from diffnotes.evaluation import bound, exact_bound, likelihood
from diffnotes.nets import exact as exact_eps
from diffnotes.posterior import mu_theta, posterior_variance

LINEAR = schedules.linear()  # T = 1000, Ho et al. (2020)
M, S2 = 0.5, 0.25  # the Gaussian data N(M, S2) of the chapter




def within_5_se(samples: torch.Tensor, exact: torch.Tensor | float) -> bool:
    se = float(samples.std()) / math.sqrt(samples.numel())
    return abs(float(samples.mean()) - float(exact)) <= 5 * se + 1e-12


def gaussian_setup(schedule: schedules.Schedule, sigma: str, m: float = M, s2: float = S2):
    g, h = exact_eps.optimal_eps_gaussian(schedule, m, s2)
    var = bound.reverse_variance(schedule, sigma)
    return g, h, var, exact_bound.gaussian_bound_terms(schedule, m, s2, var, g, h)


# --- the KL divergence between Gaussians (book eq. ch11-eq-kl) ------------------------------------------------


def test_gaussian_kl_matches_torch_distributions_on_random_parameters():
    g = gen(0)
    mean1, mean2 = 3 * randn((1000,), g), 3 * randn((1000,), g)
    var1, var2 = torch.exp(4 * randn((1000,), g)), torch.exp(4 * randn((1000,), g))  # variances from about 1e-5 to 1e5
    normal = torch.distributions.Normal
    theirs = torch.distributions.kl_divergence(normal(mean1, var1.sqrt()), normal(mean2, var2.sqrt()))
    assert torch.allclose(gaussians.gaussian_kl(mean1, var1, mean2, var2), theirs, rtol=1e-9, atol=1e-12)


def test_gaussian_kl_is_never_negative_and_zero_only_for_equal_gaussians():
    g = gen(1)
    mean1, var1 = randn((100_000,), g), torch.exp(3 * randn((100_000,), g))
    # Half the pairs nearly equal (relative differences down to 1e-12), where cancellation would show up as kl < 0.
    tiny = 10.0 ** -torch.randint(1, 13, (100_000,), generator=g).double()
    near = torch.rand(100_000, generator=g) < 0.5
    mean2 = torch.where(near, mean1 + tiny * randn((100_000,), g), randn((100_000,), g))
    var2 = torch.where(near, var1 * (1 + tiny), torch.exp(3 * randn((100_000,), g)))
    kl = gaussians.gaussian_kl(mean1, var1, mean2, var2)
    assert bool((kl >= 0).all())
    assert bool((gaussians.gaussian_kl(mean1, var1, mean1, var1) == 0).all())
    assert bool((kl[~near] > 0).all())


@pytest.mark.parametrize(
    "mean1, var1, mean2, var2", [(0.0, 1.0, 0.0, 1.0), (1.0, 0.5, -0.3, 2.0), (0.2, 3.0, 0.0, 0.4)]
)
def test_gaussian_kl_matches_monte_carlo(mean1, var1, mean2, var2):
    n = 200_000
    x = mean1 + math.sqrt(var1) * torch.randn(n, generator=gen(2), dtype=torch.float64)
    normal = torch.distributions.Normal
    log_ratio = normal(mean1, math.sqrt(var1)).log_prob(x) - normal(mean2, math.sqrt(var2)).log_prob(x)
    exact = gaussians.gaussian_kl(torch.tensor(mean1), torch.tensor(var1), torch.tensor(mean2), torch.tensor(var2))
    assert within_5_se(log_ratio, exact)


def test_gaussian_kl_sums_over_coordinates_of_a_diagonal_gaussian():
    g = gen(3)
    mean1, mean2 = randn((5,), g), randn((5,), g)
    var1, var2 = randn((5,), g).exp(), randn((5,), g).exp()
    p = torch.distributions.MultivariateNormal(mean1, torch.diag(var1))
    q = torch.distributions.MultivariateNormal(mean2, torch.diag(var2))
    theirs = float(torch.distributions.kl_divergence(p, q))
    assert float(gaussians.gaussian_kl(mean1, var1, mean2, var2).sum()) == pytest.approx(theirs, rel=1e-10)


# --- the weights lambda_t and the choices of sigma_t^2 ----------------------------------------------------------


def test_reverse_variance_tables():
    t = torch.arange(2, LINEAR.T + 1)
    beta, post = bound.reverse_variance(LINEAR, "beta"), bound.reverse_variance(LINEAR, "posterior")
    assert math.isnan(beta[0]) and math.isnan(post[0])
    assert torch.equal(beta[1:], LINEAR.beta[1:])
    assert torch.allclose(post[t], posterior_variance(LINEAR, t), rtol=1e-12)
    assert float(post[1]) == float(posterior_variance(LINEAR, 2)) > 0  # beta-tilde_1 = 0 is replaced by beta-tilde_2


def test_vlb_weight_closed_forms():
    # lambda_t = beta_t / (2 alpha_t (1 - alpha_bar_t)) for sigma^2 = beta_t, and
    # beta_t / (2 alpha_t (1 - alpha_bar_{t-1})) for sigma^2 = beta-tilde_t (t >= 2); their ratio
    # (1 - alpha_bar_t) / (1 - alpha_bar_{t-1}) is 2.2 at t = 2 and about 1 at late t.
    s, t = LINEAR, torch.arange(2, LINEAR.T + 1)
    lam_beta = bound.vlb_weight(s, bound.reverse_variance(s, "beta"))
    lam_post = bound.vlb_weight(s, bound.reverse_variance(s, "posterior"))
    assert torch.allclose(lam_beta[1:], s.beta[1:] / (2 * s.alpha[1:] * (1 - s.alpha_bar[1:])), rtol=1e-12)
    assert torch.allclose(lam_post[t], s.beta[t] / (2 * s.alpha[t] * (1 - s.alpha_bar[t - 1])), rtol=1e-10)
    assert float(lam_beta[1]) == pytest.approx(0.5 / float(s.alpha[1]), rel=1e-12)
    assert float(lam_post[2] / lam_beta[2]) == pytest.approx(2.199, abs=1e-3)
    assert float(lam_post[1000] / lam_beta[1000]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("sigma", ["beta", "posterior"])
def test_kl_term_is_a_constant_plus_lambda_times_the_squared_error(sigma):
    # KL(q(x_{t-1}|x_t,x_0) || p_theta) = D/2 (r - 1 - log r) + lambda_t ||eps - eps_theta||^2 for any eps_theta.
    s, b, d = LINEAR, 64, 6
    x0 = torch.rand(b, d, generator=gen(4), dtype=torch.float64) * 2 - 1
    eps = torch.randn(b, d, generator=gen(5), dtype=torch.float64)
    eps_theta = torch.randn(b, d, generator=gen(6), dtype=torch.float64)
    t = torch.randint(2, s.T + 1, (b,), generator=gen(7))
    var = bound.reverse_variance(s, sigma)
    kl = bound.diffusion_term(lambda x_t, tt, c=None: eps_theta, s, x0, t, eps, var)
    r = posterior_variance(s, t) / var[t]
    expected = d / 2 * (r - 1 - torch.log(r)) + bound.vlb_weight(s, var)[t] * ((eps - eps_theta) ** 2).sum(1)
    assert torch.allclose(kl, expected, rtol=1e-7)


def test_linear_in_time_is_close_to_hos_linear_schedule_and_refines_one_process():
    s = bound.linear_in_time(1000)
    assert float(((s.beta[1:] - LINEAR.beta[1:]) / LINEAR.beta[1:]).abs().max()) < 0.1
    coarse, fine = bound.linear_in_time(10), bound.linear_in_time(100)
    assert torch.allclose(coarse.alpha_bar[1:], fine.alpha_bar[10::10], rtol=1e-12)  # the same alpha_bar(tau)


# --- Gaussian data: the optimal predictor and every term in closed form ----------------------------------------


def test_optimal_predictor_is_the_conditional_mean_of_the_noise():
    # eps* = -sqrt(1 - alpha_bar_t) x score of q(x_t), with the exact score of chapter 10, at every t.
    s = LINEAR
    g, h = exact_eps.optimal_eps_gaussian(s, M, S2)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    for t in (1, 10, 300, 1000):
        score = posterior_grid.gaussian_data_score(s, x, t, M, S2)
        assert torch.allclose(g[t] * x + h[t], -(1 - s.alpha_bar[t]).sqrt() * score, atol=1e-12)
    # and a Monte Carlo regression of eps on x_t recovers the slope g_t (standard error sd_resid / (sd_x sqrt(n)))
    n, t = 200_000, 300
    x0 = M + math.sqrt(S2) * torch.randn(n, generator=gen(8), dtype=torch.float64)
    eps = torch.randn(n, generator=gen(9), dtype=torch.float64)
    x_t = s.alpha_bar[t].sqrt() * x0 + (1 - s.alpha_bar[t]).sqrt() * eps
    slope = float(torch.cov(torch.stack([x_t, eps]))[0, 1] / x_t.var())
    se = float((eps - g[t] * x_t - h[t]).std() / (x_t.std() * math.sqrt(n)))
    assert abs(slope - float(g[t])) < 5 * se


@pytest.mark.parametrize("make", [bound.linear_in_time, schedules.cosine], ids=["linear-in-time", "cosine"])
@pytest.mark.parametrize("sigma", ["beta", "posterior"])
@pytest.mark.parametrize("predictor", ["optimal", "other"])
def test_every_closed_form_term_matches_monte_carlo(make, sigma, predictor):
    s, n = make(10), 20_000
    g, h = exact_eps.optimal_eps_gaussian(s, M, S2)
    if predictor == "other":  # any linear predictor has closed-form terms, not only the optimal one
        g, h = 0.7 * g + 0.1, h - 0.2
    var = bound.reverse_variance(s, sigma)
    exact = exact_bound.gaussian_bound_terms(s, M, S2, var, g, h)
    model = exact_eps.linear_eps(g, h)
    x0 = M + math.sqrt(S2) * torch.randn(n, 1, generator=gen(10), dtype=torch.float64)
    for t in range(2, s.T + 1):
        eps = torch.randn(n, 1, generator=gen(100 + t), dtype=torch.float64)
        assert within_5_se(bound.diffusion_term(model, s, x0, torch.full((n,), t), eps, var), exact[t - 1]), t
    eps = torch.randn(n, 1, generator=gen(11), dtype=torch.float64)
    assert within_5_se(bound.decoder_term(model, s, x0, eps, var, "gaussian"), exact[0])
    assert within_5_se(bound.prior_term(s, x0), exact[s.T])


def test_mse_of_the_optimal_predictor_is_the_conditional_variance_and_is_minimal():
    s = LINEAR
    g, h = exact_eps.optimal_eps_gaussian(s, M, S2)
    var = bound.reverse_variance(s, "posterior")
    lam = bound.vlb_weight(s, var)
    terms = exact_bound.gaussian_bound_terms(s, M, S2, var, g, h)
    t = torch.arange(2, s.T + 1)
    ab = s.alpha_bar[t]
    assert torch.allclose(terms[t - 1], lam[t] * ab * S2 / (ab * S2 + 1 - ab), rtol=1e-9)  # r = 1: no variance term
    for dg, dh in ((0.01, 0.0), (-0.01, 0.0), (0.0, 0.01), (0.0, -0.01)):
        other = exact_bound.gaussian_bound_terms(s, M, S2, var, g + dg, h + dh)
        assert bool((other[:-1] > terms[:-1]).all())  # every term but L_T (which has no parameters) gets worse


def test_terms_add_up_to_the_path_definition_of_the_bound():
    # The decomposition against chapter 9's estimate of E_q[-log p_theta(x_{0:T}) + log q(x_{1:T} | x_0)] along paths.
    s, n = bound.linear_in_time(10), 100_000
    g, h, var, terms = gaussian_setup(s, "beta")
    reverse = exact_bound.gaussian_reverse(s, var, g, h)
    x0 = M + math.sqrt(S2) * torch.randn(n, generator=gen(12), dtype=torch.float64)
    assert within_5_se(likelihood.bound_samples(s, reverse, x0, gen(13)), terms.sum())


def test_linear_model_marginal_matches_ancestral_samples():
    s, n = bound.linear_in_time(100), 100_000
    g, h, var, _ = gaussian_setup(s, "posterior")
    mean, var0 = likelihood.reverse_marginal(exact_bound.gaussian_reverse(s, var, g, h))
    model, x = exact_eps.linear_eps(g, h), torch.randn(n, 1, generator=gen(14), dtype=torch.float64)
    for t in range(s.T, 0, -1):  # Algorithm 2 with the model's own sigma_t at every step, t = 1 included
        x = mu_theta(s, x, t, model(x, torch.full((n,), t))) + var[t].sqrt() * randn((n, 1), gen(15 + t))
    assert within_5_se(x, mean)
    assert within_5_se((x - mean) ** 2, var0)


@pytest.mark.parametrize("make", [bound.linear_in_time, schedules.cosine], ids=["linear-in-time", "cosine"])
def test_bound_is_above_the_model_nll_above_the_entropy_and_the_gap_shrinks_with_T(make):  # noqa: N802
    entropy, gaps = exact_bound.gaussian_entropy(S2), []
    for T in (10, 100, 1000, 4000):  # noqa: N806
        s = make(T)
        for sigma in ("beta", "posterior"):
            g, h, var, terms = gaussian_setup(s, sigma)
            nll = exact_bound.gaussian_model_nll(exact_bound.gaussian_reverse(s, var, g, h), M, S2)
            assert float(terms.sum()) > nll > entropy
            if sigma == "beta":
                gaps.append(float(terms.sum()) - nll)
    assert all(later < earlier / 3 for earlier, later in zip(gaps, gaps[1:])), gaps  # ~1/T; T grows 10, 10, 4 times
    assert gaps[-1] < 1e-3


def test_bound_is_exact_for_standard_normal_data_with_sigma_beta():
    # N(0, 1) data: every q(x_t) is N(0, 1) = p(x_T) and q(x_{t-1} | x_t) = N(sqrt(alpha_t) x_t, beta_t): no gap.
    for T in (10, 1000):  # noqa: N806
        s = bound.linear_in_time(T)
        g, h, var, terms = gaussian_setup(s, "beta", 0.0, 1.0)
        nll = exact_bound.gaussian_model_nll(exact_bound.gaussian_reverse(s, var, g, h), 0.0, 1.0)
        assert float(terms.sum()) == pytest.approx(exact_bound.gaussian_entropy(1.0), abs=1e-10)
        assert nll == pytest.approx(exact_bound.gaussian_entropy(1.0), abs=1e-10)


def test_true_reverse_variance_lies_between_the_two_choices():
    # Var(x_{t-1} | x_t) = beta_t v_{t-1} / v_t for data N(m, s2) (chapter 9's true reverse); for s2 <= 1 it lies in
    # [beta-tilde_t, beta_t], the ends reached for a point mass (s2 = 0) and for s2 = 1.
    t = torch.arange(2, LINEAR.T + 1)
    for s2 in (1e-12, 0.25, 1.0):
        true_var = likelihood.true_reverse_gaussian(LINEAR, M, s2).var[t]
        ab = LINEAR.alpha_bar
        v = ab * s2 + 1 - ab
        assert torch.allclose(true_var, LINEAR.beta[t] * v[t - 1] / v[t], rtol=1e-9)
        assert bool((true_var >= posterior_variance(LINEAR, t) * (1 - 1e-9)).all())
        assert bool((true_var <= LINEAR.beta[t] * (1 + 1e-9)).all())


# --- a 1-D Gaussian mixture ---------------------------------------------------------------------------------------


def test_mixture_predictor_is_minus_scaled_score_and_reduces_to_the_gaussian_one():
    s, mixture = LINEAR, mixtures.example_mixture_1d()
    model = exact_eps.mixture_eps(mixture, s)
    for t in (1, 50, 400):
        x = torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(-1, 1).requires_grad_(True)
        (score,) = torch.autograd.grad(mixture.diffuse(s, t).log_prob(x).sum(), x)
        eps = model(x.detach(), torch.full((13,), t))
        assert torch.allclose(eps, -(1 - s.alpha_bar[t]).sqrt() * score, atol=1e-10)
    single = mixtures.GaussianMixture.in_1d([1.0], [M], [S2])
    g, h = exact_eps.optimal_eps_gaussian(s, M, S2)
    x, t = torch.linspace(-2, 2, 5, dtype=torch.float64).reshape(-1, 1), torch.tensor([1, 10, 100, 500, 1000])
    assert torch.allclose(exact_eps.mixture_eps(single, s)(x, t), exact_eps.linear_eps(g, h)(x, t), atol=1e-12)


def test_mixture_terms_match_monte_carlo_and_the_gaussian_closed_form():
    s, n, mixture = bound.linear_in_time(10), 20_000, mixtures.example_mixture_1d()
    var = bound.reverse_variance(s, "beta")
    exact = exact_bound.mixture_bound_terms(mixture, s, var, 401)
    x0 = mixture.sample(n, gen(16))
    estimate = bound.estimate_bound(exact_eps.mixture_eps(mixture, s), s, x0, gen(17), "beta", "gaussian")
    for k in range(s.T - 1):
        assert within_5_se(estimate.terms[:, k], exact[k + 1]), k
    assert within_5_se(estimate.decoder, exact[0])
    assert within_5_se(estimate.total, exact.sum())
    single = mixtures.GaussianMixture.in_1d([1.0], [M], [S2])
    assert torch.allclose(exact_bound.mixture_bound_terms(single, s, var, 401), gaussian_setup(s, "beta")[3], rtol=1e-9)


def test_mixture_bound_is_above_the_entropy_and_closes_in_on_it():
    mixture = mixtures.example_mixture_1d()
    entropy = exact_bound.mixture_entropy(mixture, 401)
    assert entropy == pytest.approx(exact_bound.mixture_entropy(mixture, 2001), abs=1e-9)
    gaps = [float(exact_bound.mixture_bound_terms(mixture, s, bound.reverse_variance(s, "beta"), 401).sum()) - entropy
            for s in (bound.linear_in_time(T) for T in (10, 100, 1000))]
    assert gaps[0] > gaps[1] > gaps[2] > 0 and gaps[2] < 0.01


# --- the discretised decoder and bits per dimension --------------------------------------------------------------


LEVELS = torch.arange(256, dtype=torch.float64) / 127.5 - 1  # the 256 values of an 8-bit pixel in [-1, 1]


@pytest.mark.parametrize("mean, var", [(0.0, 1e-4), (0.3, 0.01), (-0.99, 1e-3), (1.0, 4.0), (5.0, 0.1), (-0.5, 1e-8)])
def test_discretised_decoder_probabilities_sum_to_one(mean, var):
    log_p = bound.discretised_log_likelihood(LEVELS, torch.tensor(mean, dtype=torch.float64), torch.tensor(var))
    assert float(torch.logsumexp(log_p, 0).exp()) == pytest.approx(1.0, abs=1e-12)
    assert bool(torch.isfinite(log_p).all())


def test_discretised_decoder_is_the_bin_mass():
    mean, sd = torch.tensor(0.1, dtype=torch.float64), 0.5
    normal = torch.distributions.Normal(mean, sd)
    inner = LEVELS[1:-1]
    mass = normal.cdf(inner + 1 / 255) - normal.cdf(inner - 1 / 255)
    log_p = bound.discretised_log_likelihood(LEVELS, mean, torch.tensor(sd**2))
    assert torch.allclose(log_p[1:-1].exp(), mass, atol=1e-15, rtol=1e-9)
    edge = float(normal.cdf(torch.tensor(-1 + 1 / 255, dtype=torch.float64)))
    assert float(log_p[0].exp()) == pytest.approx(edge, rel=1e-9)
    # far from the mean the mass is tiny but its logarithm is still accurate (no cancellation of two cdfs near 1)
    x = float(LEVELS[242])  # 0.898, nine standard deviations from the mean 0
    zero, var = torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.01, dtype=torch.float64)
    far = bound.discretised_log_likelihood(LEVELS[242:243], zero, var)
    upper_tail = lambda z: 0.5 * math.erfc(z / 0.1 / math.sqrt(2))  # noqa: E731 (P(N(0, 0.01) > z), accurate in tails)
    reference = math.log(upper_tail(x - 1 / 255) - upper_tail(x + 1 / 255))
    assert float(far) == pytest.approx(reference, rel=1e-9)


def test_stratified_estimate_with_every_t_is_the_full_sum_and_is_unbiased_with_fewer():
    edges = bound.strata(1000, 24)
    assert int(edges[0]) == 2 and int(edges[-1]) == 1001 and bool((edges.diff() >= 1).all()) and len(edges) == 25
    assert torch.equal(bound.strata(50, 49), torch.arange(2, 52))
    s, n = bound.linear_in_time(100), 4000
    g, h, var, exact = gaussian_setup(s, "beta")
    x0 = M + math.sqrt(S2) * torch.randn(n, 1, generator=gen(18), dtype=torch.float64)
    coarse = bound.estimate_bound(exact_eps.linear_eps(g, h), s, x0, gen(19), "beta", "gaussian", n_timesteps=7)
    assert within_5_se(coarse.total, exact.sum())


def quantised_gaussian_images(n: int, d: int, sd: float, seed: int) -> torch.Tensor:
    x = (sd * torch.randn(n, d, generator=gen(seed), dtype=torch.float64)).clamp(-1, 1)
    return torch.round((x + 1) * 127.5) / 127.5 - 1


def test_bits_per_dim_of_the_zero_predictor_is_finite_and_above_the_optimal_predictor():
    s, sd = schedules.cosine(200), 0.3
    x0 = quantised_gaussian_images(64, 16, sd, seed=20)
    zero = bound.bits_per_dim(lambda x_t, t, c=None: torch.zeros_like(x_t), s, x0, gen(21), n_timesteps=40)
    g, h = exact_eps.optimal_eps_gaussian(s, 0.0, sd**2)
    best = bound.bits_per_dim(exact_eps.linear_eps(g, h), s, x0, gen(21), n_timesteps=40)
    assert bool(torch.isfinite(zero.total).all() and torch.isfinite(best.total).all())
    assert float(zero.total.mean()) > float(best.total.mean()) + 1.0
    # bits/dim of continuous data N(0, sd^2) on bins of width 2/255: about (entropy + log(255/2)) / log 2 = 5.26
    reference = (exact_bound.gaussian_entropy(sd**2) + math.log(127.5)) / math.log(2)
    assert reference < float(best.total.mean()) < reference + 0.5
    nats = bound.estimate_bound(exact_eps.linear_eps(g, h), s, x0, gen(21), n_timesteps=40)
    assert torch.allclose(best.total, nats.total / (16 * math.log(2)))


def test_estimate_bound_runs_the_model_on_the_device_and_dtype_of_x0():
    seen = []

    def model(x_t: torch.Tensor, t: torch.Tensor, c=None) -> torch.Tensor:
        seen.append((x_t.dtype, t.dtype))
        return torch.zeros_like(x_t)

    bound.bits_per_dim(model, schedules.cosine(20), quantised_gaussian_images(4, 3, 0.3, 22).float(), gen(23))
    assert set(seen) == {(torch.float32, torch.int64)} and len(seen) == 20  # 19 strata and the decoder


# --- configuration and bad input ------------------------------------------------------------------------------------


def test_config_for_profile():
    quick, full = bound.BoundConfig.for_profile("quick"), bound.BoundConfig.for_profile("full")
    assert quick.n_mc < full.n_mc and quick.n_images < full.n_images and quick.n_timesteps < full.n_timesteps
    assert full.n_timesteps == 999 and quick.T_values == (10, 100, 1000, 4000)


def test_bad_input_raises_value_error_naming_the_argument():
    s, one = LINEAR, torch.tensor(1.0)
    x0, eps = torch.zeros(4, 2), torch.zeros(4, 2)
    var = bound.reverse_variance(s)
    zero = lambda x_t, t, c=None: torch.zeros_like(x_t)  # noqa: E731
    t_ok = torch.tensor([2, 3, 4, 5])
    cases = [
        (lambda: gaussians.gaussian_kl(one, torch.tensor(0.0), one, one), "var1"),
        (lambda: gaussians.gaussian_kl(one, one, one, torch.tensor([1.0, -1.0])), "var2"),
        (lambda: gaussians.gaussian_kl(torch.zeros(3), one, torch.zeros(4), one), "broadcast"),
        (lambda: bound.reverse_variance(s, "learned"), "sigma"),
        (lambda: bound.reverse_variance(schedules.linear(T=1), "posterior"), "T >= 2"),
        (lambda: bound.vlb_weight(s, var[:-1]), "var"),
        (lambda: bound.vlb_weight(s, torch.cat([var[:5], -var[5:]])), "var"),
        (lambda: bound.diffusion_term(zero, s, x0, torch.tensor([1, 2, 3, 4]), eps, var), "t must"),
        (lambda: bound.diffusion_term(zero, s, x0, torch.tensor([2, 3, 4, 1001]), eps, var), "t must"),
        (lambda: bound.diffusion_term(zero, s, x0, torch.tensor([2, 3]), eps, var), "t must"),
        (lambda: bound.diffusion_term(zero, s, x0, torch.tensor([2, 3, 4, 5]), torch.zeros(4, 3), var), "eps"),
        (lambda: bound.diffusion_term(lambda x, t, c=None: x[:, :1], s, x0, t_ok, eps, var), "model"),
        (lambda: bound.decoder_term(zero, s, x0, eps, var, "logistic"), "decoder"),
        (lambda: bound.prior_term(s, torch.zeros(4)), "x0"),
        (lambda: bound.discretised_log_likelihood(torch.tensor([0.5]), torch.tensor(0.0), torch.tensor(0.1)), "x0"),
        (lambda: bound.discretised_log_likelihood(torch.tensor([1.5]), torch.tensor(0.0), torch.tensor(0.1)), "x0"),
        (lambda: bound.discretised_log_likelihood(LEVELS, torch.tensor(0.0), torch.tensor(0.0)), "var"),
        (lambda: bound.estimate_bound(zero, s, x0, gen(0), n_timesteps=1000), "n_timesteps"),
        (lambda: bound.estimate_bound(zero, s, x0, gen(0), n_timesteps=0), "n_timesteps"),
        (lambda: bound.estimate_bound(zero, s, x0, gen(0), sigma="small"), "sigma"),
        (lambda: exact_eps.optimal_eps_gaussian(s, 0.0, -1.0), "s2"),
        (lambda: exact_eps.optimal_eps_gaussian(s, torch.zeros(3), torch.ones(2)), "s2"),
        (lambda: exact_eps.linear_eps(torch.zeros(3), torch.zeros(4)), "h"),
        (lambda: exact_bound.gaussian_bound_terms(s, 0.0, 0.0, var, *exact_eps.optimal_eps_gaussian(s, 0.0, 1.0)), "s2"),
        (lambda: exact_bound.gaussian_bound_terms(s, 0.0, 1.0, var, torch.zeros(5), torch.zeros(5)), "g and h"),
        (lambda: bound.terms_from_mse(s, var, torch.zeros(5), 1.0), "mse"),
        (lambda: exact_bound.gaussian_entropy(0.0), "s2"),
        (lambda: bound.linear_in_time(0), "T"),
        (lambda: exact_eps.mixture_eps(mixtures.example_mixture_2d(), s), "mixture"),
        (lambda: exact_bound.mixture_bound_terms(mixtures.example_mixture_2d(), s, var, 401), "mixture"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()
