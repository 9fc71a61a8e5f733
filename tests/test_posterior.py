"""Chapters 9 and 10 (diffnotes.posterior): the variational bound, the posterior q(x_{t-1} | x_t, x_0), the four
parametrisations and Tweedie's formula; checked by brute-force Bayes, Monte Carlo, autograd and diffusers; bad input.

Monte Carlo tolerances are 5 standard errors of the estimate (a mean of n draws of variance v: sqrt(v / n); a sample
variance: v sqrt(2 / n); a regression slope: sigma / (sd(x) sqrt(n))). Grid checks use Riemann sums of smooth
densities whose spacing is a small fraction of the standard deviation: their error is far below the tolerances.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import gen, randn

from diffnotes import forward, posterior, posterior_grid, schedules
from diffnotes.evaluation import likelihood
from diffnotes.posterior import mu_theta, posterior_variance

LINEAR = schedules.linear()  # T = 1000, Ho et al. (2020)
COSINE = schedules.cosine()
TOY = schedules.from_betas(torch.tensor([0.2, 0.4, 0.3]))  # T = 3, large betas: wide densities for quadrature




def normal_nll(x: torch.Tensor, mean: float | torch.Tensor, var: float | torch.Tensor) -> torch.Tensor:
    return 0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * torch.as_tensor(var, dtype=torch.float64)))


# --- chapter 10: the posterior --------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", [LINEAR, COSINE], ids=["linear", "cosine"])
@pytest.mark.parametrize("t, x0, x_t", [(2, 0.7, 0.3), (50, -1.0, 0.4), (500, 0.5, -1.2), (1000, 0.9, 2.0)])
def test_posterior_matches_brute_force_bayes_on_a_grid(schedule, t, x0, x_t):
    grid = torch.linspace(-10, 10, 20001, dtype=torch.float64)  # spacing 1e-3 <= sqrt(beta-tilde_2) / 7; 10 sd wide
    mean_grid, var_grid = posterior_grid.grid_mean_var(grid, posterior_grid.posterior_on_grid(schedule, x0, x_t, t, grid))
    as_batch = lambda x: torch.tensor([[x]], dtype=torch.float64)  # noqa: E731 (not float32: 1.2 is not 1.2 there)
    mean, var = posterior.posterior_mean_var(schedule, as_batch(x0), as_batch(x_t), t)
    assert mean_grid == pytest.approx(float(mean), abs=1e-9)
    assert var_grid == pytest.approx(float(var), rel=1e-7)


def test_posterior_is_the_conditional_of_the_joint_gaussian():
    # Given x_0, (x_{t-1}, x_t) is jointly Gaussian: Var x_{t-1} = 1 - ab_{t-1}, Var x_t = 1 - ab_t and
    # Cov = sqrt(alpha_t)(1 - ab_{t-1}); condition by the Schur complement.
    t = torch.arange(1, LINEAR.T + 1)
    ab, ab_prev, alpha = LINEAR.alpha_bar[t], LINEAR.alpha_bar[t - 1], LINEAR.alpha[t]
    cov = alpha.sqrt() * (1 - ab_prev)
    slope = cov / (1 - ab)
    coef_x0, coef_x_t = posterior.posterior_mean_coefficients(LINEAR, t)
    assert torch.allclose(coef_x_t, slope, rtol=1e-12)
    assert torch.allclose(coef_x0, ab_prev.sqrt() - slope * ab.sqrt(), rtol=1e-9, atol=1e-12)
    assert torch.allclose(posterior_variance(LINEAR, t), (1 - ab_prev) - cov**2 / (1 - ab), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("t", [2, 100, 900])
def test_posterior_matches_monte_carlo_regression_in_four_dimensions(t):
    n, x0 = 200_000, torch.tensor([1.0, -0.5, 0.2, 0.8], dtype=torch.float64)
    x_prev = forward.q_sample(LINEAR, x0.expand(n, 4), t - 1, randn((n, 4), seed=t))
    x_t = forward.q_step(LINEAR, x_prev, t, randn((n, 4), seed=t + 1))
    slope, intercept, cov = posterior_grid.fit_linear_gaussian(x_prev, x_t)
    coef_x0, coef_x_t = (float(c) for c in posterior.posterior_mean_coefficients(LINEAR, t))
    var = float(posterior_variance(LINEAR, t))
    sd_x_t, mean_x_t = math.sqrt(1 - float(LINEAR.alpha_bar[t])), float(LINEAR.alpha_bar[t].sqrt()) * x0
    se_slope = math.sqrt(var / n) / sd_x_t
    assert torch.allclose(slope, coef_x_t * torch.eye(4, dtype=torch.float64), atol=5 * se_slope, rtol=0)
    # Var(intercept) = var / n (1 + |E x_t|^2 / sd(x_t)^2): it carries the errors of all four slopes.
    se_intercept = math.sqrt(var / n * (1 + float(mean_x_t.pow(2).sum()) / sd_x_t**2))
    assert torch.all((intercept - coef_x0 * x0).abs() < 5 * se_intercept)
    assert float((cov.diagonal() - var).abs().max()) < 5 * var * math.sqrt(2 / n)
    off_diagonal = cov - torch.diag(cov.diagonal())
    assert float(off_diagonal.abs().max()) < 5 * var / math.sqrt(n)
    if t == 2:  # the test can fail: beta_t, the other choice of sigma_t^2, is far outside the bounds at small t
        assert abs(float(cov[0, 0]) - float(LINEAR.beta[t])) > 5 * var * math.sqrt(2 / n)


def test_eps_form_of_the_mean_equals_the_x0_form():
    x0, eps = randn((LINEAR.T, 3, 2, 2), seed=1), randn((LINEAR.T, 3, 2, 2), seed=2)
    t = torch.arange(1, LINEAR.T + 1)
    x_t = forward.q_sample(LINEAR, x0, t, eps)
    mean, var = posterior.posterior_mean_var(LINEAR, x0, x_t, t)
    assert var.shape == (LINEAR.T, 1, 1, 1)
    assert torch.allclose(posterior.posterior_mean_from_eps(LINEAR, x_t, t, eps), mean, rtol=0, atol=1e-9)
    assert torch.equal(posterior.posterior_mean_from_eps(LINEAR, x_t, t, eps), mu_theta(LINEAR, x_t, t, eps))


def test_posterior_at_t_equal_one_is_the_point_x0():
    coef_x0, coef_x_t = posterior.posterior_mean_coefficients(LINEAR, 1)
    assert float(coef_x0) == pytest.approx(1.0, rel=1e-12)  # beta_1 / (1 - alpha_1), up to rounding
    assert (float(coef_x_t), float(posterior_variance(LINEAR, 1))) == (0.0, 0.0)


# --- parametrisations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", posterior.PARAMETRISATIONS)
@pytest.mark.parametrize("target", posterior.PARAMETRISATIONS)
def test_conversions_round_trip(source, target):
    t = torch.tensor([1, 10, 500, 1000])
    x_t, value = randn((4, 3, 5), seed=3), randn((4, 3, 5), seed=4)
    there = posterior.convert(LINEAR, x_t, t, value, source, target)
    back = posterior.convert(LINEAR, x_t, t, there, target, source)
    assert torch.allclose(back, value, rtol=0, atol=1e-9)


def test_conversions_agree_with_the_definitions():
    t = torch.tensor([1, 10, 500, 1000])
    x0, eps = randn((4, 6), seed=5), randn((4, 6), seed=6)
    x_t = forward.q_sample(LINEAR, x0, t, eps)
    v = posterior.velocity(LINEAR, x0, t, eps)
    ab = LINEAR.alpha_bar[t].reshape(4, 1)
    assert torch.allclose(v, ab.sqrt() * eps - (1 - ab).sqrt() * x0)
    for target, expected in (("x0", x0), ("v", v), ("score", -eps / (1 - ab).sqrt())):
        assert torch.allclose(posterior.convert(LINEAR, x_t, t, eps, "eps", target), expected, atol=1e-9), target
    assert torch.allclose(posterior.convert(LINEAR, x_t, t, v, "v", "x0"), x0, atol=1e-9)  # x_0 from v
    assert torch.allclose(posterior.eps_from_v(LINEAR, x_t, t, v), eps, atol=1e-12)
    assert torch.allclose(posterior.eps_from_x0(LINEAR, x_t, t, x0), eps, atol=1e-9)


def test_score_of_eps_is_the_gradient_of_the_kernel_log_density():
    t = 300
    x0, eps = randn((5, 3), seed=7), randn((5, 3), seed=8)
    x_t = forward.q_sample(LINEAR, x0, t, eps).requires_grad_(True)
    (grad,) = torch.autograd.grad(forward.log_q_kernel(LINEAR, x_t, x0, t).sum(), x_t)
    assert torch.allclose(posterior.score_from_eps(LINEAR, x_t.detach(), t, eps), grad, atol=1e-10)


@pytest.mark.parametrize("t", [1, 20, 300, 1000])
@pytest.mark.parametrize("m, s2", [(0.0, 1.0), (0.7, 0.2), (-2.0, 3.0)])
def test_tweedie_is_exact_for_gaussian_data(t, m, s2):
    x_t = torch.linspace(-3, 3, 13, dtype=torch.float64).requires_grad_(True)
    ab = float(LINEAR.alpha_bar[t])
    log_q = -normal_nll(x_t, math.sqrt(ab) * m, ab * s2 + 1 - ab).sum()
    (score,) = torch.autograd.grad(log_q, x_t)
    x_t = x_t.detach()
    assert torch.allclose(posterior_grid.gaussian_data_score(LINEAR, x_t, t, m, s2), score, atol=1e-12)
    tweedie = posterior.tweedie_x0(LINEAR, x_t, t, score)
    assert torch.allclose(tweedie, posterior_grid.gaussian_data_x0_mean(LINEAR, x_t, t, m, s2), rtol=1e-10, atol=1e-10)


def test_exact_conditional_mean_of_gaussian_data_matches_monte_carlo():
    n, t, m, s2 = 400_000, 200, 0.7, 0.2
    x0 = m + math.sqrt(s2) * randn((n, 1), seed=9)
    x_t = forward.q_sample(LINEAR, x0, t, randn((n, 1), seed=10))
    slope, intercept, cov = posterior_grid.fit_linear_gaussian(x0, x_t)  # E[x_0 | x_t] is linear in x_t
    probe = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    exact = posterior_grid.gaussian_data_x0_mean(LINEAR, probe, t, m, s2)
    ab = float(LINEAR.alpha_bar[t])
    resid_sd, sd_x_t = math.sqrt(float(cov)), math.sqrt(ab * s2 + 1 - ab)
    se = resid_sd / math.sqrt(n) * (1 + (probe.abs() + math.sqrt(ab) * abs(m)) / sd_x_t)
    assert torch.all((slope[0, 0] * probe + intercept[0] - exact).abs() < 5 * se)


def test_tweedie_is_exact_for_a_gaussian_mixture():
    # Data 0.3 N(-1, 0.05) + 0.7 N(1.5, 0.1): the score of q(x_t) by autograd of its log density, E[x_0 | x_t]
    # by brute-force Bayes over a grid of x_0.
    t, weights, means, variances = 150, torch.tensor([0.3, 0.7]), torch.tensor([-1.0, 1.5]), torch.tensor([0.05, 0.1])
    ab = float(LINEAR.alpha_bar[t])
    weights, means, variances = weights.double(), means.double(), variances.double()
    x_t = torch.linspace(-2.5, 2.5, 11, dtype=torch.float64).requires_grad_(True)
    log_components = weights.log() - normal_nll(x_t[:, None], math.sqrt(ab) * means, ab * variances + 1 - ab)
    log_q = torch.logsumexp(log_components, dim=1)
    (score,) = torch.autograd.grad(log_q.sum(), x_t)
    x_t = x_t.detach()
    grid = torch.linspace(-4, 5, 18001, dtype=torch.float64)
    log_prior = torch.logsumexp(weights.log() - normal_nll(grid[:, None], means, variances), dim=1)
    log_post = log_prior[None, :] - normal_nll(x_t[:, None], math.sqrt(ab) * grid[None, :], 1 - ab)
    brute = (torch.softmax(log_post, dim=1) * grid).sum(dim=1)
    assert torch.allclose(posterior.tweedie_x0(LINEAR, x_t, t, score), brute, atol=1e-8)


def test_posterior_coefficients_and_variance_match_diffusers():
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDPMScheduler(clip_sample=False, prediction_type="sample", variance_type="fixed_small")
    s = schedules.from_betas(scheduler.betas.double())  # diffusers' float32 betas, so only the formulas differ
    x0, x_t = torch.randn(2, 8, generator=gen(11)), torch.randn(2, 8, generator=gen(12))
    for t in (2, 10, 100, 500, 1000):  # diffusers' timestep index is t - 1
        # The same seed gives the same noise, so the difference of two steps is the posterior mean alone.
        step = lambda a, b: scheduler.step(a, t - 1, b, generator=gen(t)).prev_sample.double()  # noqa: E731
        theirs = step(x0, x_t) - step(torch.zeros_like(x0), torch.zeros_like(x_t))
        ours, var = posterior.posterior_mean_var(s, x0.double(), x_t.double(), t)
        tolerance = 1e-6 / float(1 - s.alpha_bar[t])  # float32 rounding, amplified by 1/(1 - alpha_bar_t)
        assert float((theirs - ours).abs().max()) < tolerance, t
        # diffusers forms beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} in float32: a relative error of 1e-7 / beta_t.
        rel = 1e-7 * (1 / float(1 - s.alpha_bar[t]) + 1 / float(s.beta[t]))
        assert float(scheduler._get_variance(t - 1)) == pytest.approx(float(var), rel=rel)


def test_x0_and_v_conversions_match_diffusers():
    diffusers = pytest.importorskip("diffusers")
    s = schedules.linear()
    x0, eps = torch.randn(3, 2, 4, generator=gen(13)).double(), torch.randn(3, 2, 4, generator=gen(14)).double()
    t = torch.tensor([1, 400, 1000])
    scheduler = diffusers.DDPMScheduler(clip_sample=False)
    scheduler.alphas_cumprod = s.alpha_bar[1:].clone()  # float64, so that only the formulas are compared
    assert torch.allclose(scheduler.get_velocity(x0, eps, t - 1), posterior.velocity(s, x0, t, eps), atol=1e-12)
    x_t = forward.q_sample(s, x0, t, eps)
    v = posterior.velocity(s, x0, t, eps)
    for prediction_type, output, source in (("epsilon", eps, "eps"), ("v_prediction", v, "v")):
        sch = diffusers.DDPMScheduler(clip_sample=False, prediction_type=prediction_type)
        sch.alphas_cumprod, sch.alphas, sch.betas = s.alpha_bar[1:], s.alpha[1:], s.beta[1:]
        for i in range(3):
            theirs = sch.step(output[i : i + 1], int(t[i]) - 1, x_t[i : i + 1], generator=gen(0)).pred_original_sample
            ours = posterior.convert(s, x_t[i : i + 1], int(t[i]), output[i : i + 1], source, "x0")
            assert torch.allclose(theirs, ours, atol=1e-9), (prediction_type, int(t[i]))


# --- chapter 9: the latent-variable model and the bound ---------------------------------------------------------


def test_exact_marginal_equals_numerical_integration_over_the_latents():
    reverse = likelihood.true_reverse_gaussian(TOY, m=0.5, s2=0.3)  # prior N(0, 1) differs from q(x_T): p_theta != q
    x0 = torch.tensor([-1.0, 0.0, 0.8, 2.0], dtype=torch.float64)
    mean, var = likelihood.reverse_marginal(reverse)
    grid = torch.linspace(-10, 10, 2001, dtype=torch.float64)  # spacing 0.01 against step sds >= 0.37
    numerical = likelihood.log_p_x0_numerical(reverse, x0, grid)
    assert torch.allclose(numerical, -normal_nll(x0, mean, var), atol=1e-9)
    assert abs(mean - 0.5) > 0.01  # the marginal is not the data distribution: the check has something to find


def test_true_reverse_steps_map_each_marginal_of_q_to_the_previous_one():
    m, s2 = 0.5, 0.3
    reverse = likelihood.true_reverse_gaussian(LINEAR, m, s2)
    ab = LINEAR.alpha_bar
    mean, v = ab.sqrt() * m, ab * s2 + 1 - ab
    assert torch.allclose(reverse.a[1:] * mean[1:] + reverse.b[1:], mean[:-1], atol=1e-12)
    assert torch.allclose(reverse.a[1:] ** 2 * v[1:] + reverse.var[1:], v[:-1], atol=1e-12)


def test_true_reverse_of_a_point_mass_is_the_posterior():
    # As s2 -> 0 the data is the point x_0 = m, and q(x_{t-1} | x_t) becomes q(x_{t-1} | x_t, x_0 = m).
    m = 0.6
    reverse = likelihood.true_reverse_gaussian(LINEAR, m, 1e-12)
    t = torch.arange(2, LINEAR.T + 1)
    coef_x0, coef_x_t = posterior.posterior_mean_coefficients(LINEAR, t)
    assert torch.allclose(reverse.a[t], coef_x_t, rtol=1e-6)
    assert torch.allclose(reverse.b[t], coef_x0 * m, atol=1e-6)
    assert torch.allclose(reverse.var[t], posterior_variance(LINEAR, t), rtol=1e-6, atol=1e-12)


def test_bound_is_above_the_exact_nll_for_a_mismatched_model():
    n, x0_value = 100_000, 0.8
    arbitrary = likelihood.LinearReverse(0.8 * TOY.alpha.sqrt(), torch.zeros(4).double(), torch.full((4,), 0.5).double())
    for reverse in (likelihood.true_reverse_gaussian(TOY, 0.5, 0.3), arbitrary):
        x0 = torch.full((n,), x0_value, dtype=torch.float64)
        samples = likelihood.bound_samples(TOY, reverse, x0, gen(15))
        nll = float(normal_nll(torch.tensor(x0_value), *likelihood.reverse_marginal(reverse)))
        se = float(samples.std()) / math.sqrt(n)
        assert float(samples.mean()) - 5 * se > nll  # the gap, KL(q(x_{1:T}|x_0) || p(x_{1:T}|x_0)), is > 0


def gaussian_path_kl(schedule: schedules.Schedule, reverse: likelihood.LinearReverse, x0: float) -> float:
    """KL(q(x_{1:T} | x_0) || p_theta(x_{1:T} | x_0)) in closed form: both are Gaussian in (x_1, ..., x_T)."""
    T = schedule.T
    # p_theta: x = M z + c for z ~ N(0, I_{T+1}), rows x_0..x_T, built from x_T = z_T down the chain.
    m_p, c_p = torch.zeros(T + 1, T + 1, dtype=torch.float64), torch.zeros(T + 1, dtype=torch.float64)
    m_p[T, T] = 1.0
    for t in range(T, 0, -1):
        m_p[t - 1] = reverse.a[t] * m_p[t]
        m_p[t - 1, t - 1] = reverse.var[t].sqrt()
        c_p[t - 1] = reverse.a[t] * c_p[t] + reverse.b[t]
    cov_p = m_p @ m_p.T
    gain = cov_p[1:, :1] / cov_p[0, 0]  # condition the joint Gaussian on x_0
    mean_p, cov_p = c_p[1:] + gain[:, 0] * (x0 - c_p[0]), cov_p[1:, 1:] - gain @ cov_p[:1, 1:]
    # q: x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) e_t from the fixed x_0.
    m_q, mean_q = torch.zeros(T + 1, T, dtype=torch.float64), torch.zeros(T + 1, dtype=torch.float64)
    mean_q[0] = x0
    for t in range(1, T + 1):
        m_q[t] = schedule.alpha[t].sqrt() * m_q[t - 1]
        m_q[t, t - 1] = schedule.beta[t].sqrt()
        mean_q[t] = schedule.alpha[t].sqrt() * mean_q[t - 1]
    cov_q, mean_q = (m_q @ m_q.T)[1:, 1:], mean_q[1:]
    inv_p, diff = torch.linalg.inv(cov_p), mean_p - mean_q
    return 0.5 * float(torch.trace(inv_p @ cov_q) + diff @ inv_p @ diff - T + torch.logdet(cov_p) - torch.logdet(cov_q))


def test_gap_of_the_bound_is_the_kl_between_the_posteriors():
    # -log p(x_0) = bound - KL(q(x_{1:T} | x_0) || p_theta(x_{1:T} | x_0)): the identity behind the bound.
    n, x0_value = 100_000, 0.8
    reverse = likelihood.true_reverse_gaussian(TOY, 0.5, 0.3)
    samples = likelihood.bound_samples(TOY, reverse, torch.full((n,), x0_value, dtype=torch.float64), gen(17))
    nll = float(normal_nll(torch.tensor(x0_value), *likelihood.reverse_marginal(reverse)))
    kl = gaussian_path_kl(TOY, reverse, x0_value)
    assert kl > 0.01
    assert abs(float(samples.mean()) - nll - kl) < 5 * float(samples.std()) / math.sqrt(n)
    matched = likelihood.true_reverse_gaussian(TOY, 0.0, 1.0)
    assert gaussian_path_kl(TOY, matched, x0_value) == pytest.approx(0.0, abs=1e-12)


def test_bound_equals_the_exact_nll_when_the_model_posterior_is_q():
    # Data N(0, 1) keeps every marginal N(0, 1) = p(x_T), so p_theta = q as joints: each path gives the NLL itself.
    for schedule in (TOY, LINEAR):
        reverse = likelihood.true_reverse_gaussian(schedule, 0.0, 1.0)
        assert torch.allclose(reverse.a[1:], schedule.alpha[1:].sqrt())
        assert torch.allclose(reverse.var[1:], schedule.beta[1:])
        x0 = torch.tensor([-1.5, 0.0, 0.3, 2.0], dtype=torch.float64).repeat_interleave(50)
        samples = likelihood.bound_samples(schedule, reverse, x0, gen(16))
        assert torch.allclose(samples, normal_nll(x0, 0.0, 1.0), atol=1e-8)


def test_binned_means_recover_a_known_conditional_mean():
    # y = 2 x + 1 + noise of sd 0.5; with x uniform inside each bin the bin mean of y is 2 centre + 1.
    n = 100_000
    x = torch.rand(n, generator=gen(18), dtype=torch.float64) * 4 - 2
    y = 2 * x + 1 + 0.5 * randn((n,), seed=19)
    centres, means, se = posterior_grid.binned_means(x, y, torch.linspace(-2, 2, 9, dtype=torch.float64))
    assert torch.all((means - (2 * centres + 1)).abs() < 5 * se)
    # Within a bin of width 0.5, y varies by 0.5^2 (noise) + 4 * 0.5^2 / 12 (the slope across the bin).
    expected_se = math.sqrt((0.25 + 4 * 0.25 / 12) / (n / 8))
    assert torch.allclose(se, torch.full_like(se, expected_se), rtol=0.05)


def test_linear_gaussian_regression_recovers_known_coefficients():
    n = 50_000
    x = randn((n, 2), seed=20)
    a, c = torch.tensor([[0.5, -1.0], [2.0, 0.3]], dtype=torch.float64), torch.tensor([1.0, -2.0], dtype=torch.float64)
    y = x @ a.T + c + 0.1 * randn((n, 2), seed=21)
    slope, intercept, cov = posterior_grid.fit_linear_gaussian(y, x)
    se = 0.1 / math.sqrt(n)  # slope and intercept errors, with x standard normal
    assert torch.allclose(slope, a, atol=5 * se, rtol=0) and torch.allclose(intercept, c, atol=5 * se, rtol=0)
    assert torch.allclose(cov, 0.01 * torch.eye(2, dtype=torch.float64), atol=5 * 0.01 * math.sqrt(2 / n), rtol=0)


# --- bad input --------------------------------------------------------------------------------------------------


def test_bad_input():
    s, x = schedules.linear(T=10), torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"t must lie in 1..T=10"):
        posterior.posterior_mean_var(s, x, x, 0)
    with pytest.raises(ValueError, match=r"t must lie in 0..T=10"):
        posterior.posterior_mean_var(s, x, x, 11)
    with pytest.raises(ValueError, match=r"t must hold integers"):
        posterior.posterior_mean_from_eps(s, x, 2.5, x)
    with pytest.raises(ValueError, match=r"t must be an int or a \(B,\) tensor"):
        posterior.posterior_mean_var(s, x, x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"x0 must have the shape of x_t"):
        posterior.posterior_mean_var(s, torch.zeros(2, 4), x, 3)
    with pytest.raises(ValueError, match=r"eps must have the shape of x_t"):
        posterior.posterior_mean_from_eps(s, x, 3, torch.zeros(3))
    with pytest.raises(ValueError, match=r"target='sample' is not a parametrisation.*eps, x0, score, v"):
        posterior.convert(s, x, 3, x, "eps", "sample")
    with pytest.raises(ValueError, match=r"score must have the shape of x_t"):
        posterior.tweedie_x0(s, x, 3, torch.zeros(1))
    with pytest.raises(ValueError, match=r"s2 is a variance and must be finite and > 0"):
        posterior_grid.gaussian_data_x0_mean(s, x, 3, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"var is a variance and must be finite and > 0"):
        likelihood.LinearReverse(torch.ones(4), torch.zeros(4), torch.tensor([1.0, 0.1, -0.2, 0.3]))
    with pytest.raises(ValueError, match=r"a, b and var must be \(T \+ 1,\) tensors"):
        likelihood.LinearReverse(torch.ones(4), torch.zeros(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"t must lie in 2..T=10 for a density on a grid"):
        posterior_grid.posterior_on_grid(s, 0.0, 0.0, 1, torch.linspace(-1, 1, 5))
    with pytest.raises(ValueError, match=r"grid must be a 1-D tensor of at least 2 uniformly spaced values"):
        posterior_grid.posterior_on_grid(s, 0.0, 0.0, 3, torch.tensor([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match=r"reverse.T must equal schedule.T=10"):
        likelihood.bound_samples(s, likelihood.true_reverse_gaussian(TOY), torch.zeros(3), gen(0))
    with pytest.raises(ValueError, match=r"y and x must both be \(N, d\)"):
        posterior_grid.fit_linear_gaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"x, y must be \(N,\) and edges \(K \+ 1,\)"):
        posterior_grid.binned_means(torch.zeros(3), torch.zeros(4), torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match=r"x0 must be \(B,\) and xs \(T, B\) with T = 3"):
        likelihood.log_p_joint(likelihood.true_reverse_gaussian(TOY), torch.zeros(2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"grid must be a 1-D tensor"):
        likelihood.log_p_x0_numerical(likelihood.true_reverse_gaussian(TOY), torch.zeros(2), torch.zeros(1))
    with pytest.raises(ValueError, match=r"t must lie in 1..T=10"):
        posterior.convert(s, x, 0, x, "eps", "v")
