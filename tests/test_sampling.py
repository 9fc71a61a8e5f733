"""Algorithm 2 (diffnotes.samplers.ddpm): step by step on stub predictors, and against diffusers' DDPMScheduler."""

import math

import pytest
import torch
from conftest import ScaledInput

from diffnotes import schedules
from diffnotes.forward import q_sample
from diffnotes.nets.exact import gaussian_data_predictor
from diffnotes.posterior import mu_theta, posterior_variance, predict_x0
from diffnotes.samplers.ddpm import ddpm_sample, ddpm_step, sigma_t
from diffnotes.samplers.gaussian_chain import (
    as_on_slide,
    chain_variances,
    slide_coefficient_on_gaussian_data,
    variance_recursion,
)


def test_sampler_follows_algorithm_2_line_by_line():
    s = schedules.linear(T=20)
    model = ScaledInput()
    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = []
    out = ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(1), callback=lambda t, x, x0: seen.append(t))
    # The same loop, written out from the algorithm box with explicit scalars.
    g = torch.Generator().manual_seed(1)
    x = x_T.clone()
    for t in range(20, 0, -1):
        z = torch.randn(x.shape, generator=g, dtype=x.dtype) if t > 1 else torch.zeros_like(x)
        alpha, ab, beta = float(s.alpha[t]), float(s.alpha_bar[t]), float(s.beta[t])
        eps = x * t / (t + 1)
        x = (x - (1 - alpha) / (1 - ab) ** 0.5 * eps) / alpha**0.5 + beta**0.5 * z
    assert torch.allclose(out, x, atol=1e-12)
    assert seen == list(range(20, 0, -1))


def test_perfect_predictor_of_a_point_mass_recovers_it():
    """If q(x_0) is one point x*, the true noise is known exactly; sigma = posterior then returns x* itself."""
    s = schedules.linear(T=50)
    x_star = torch.tensor([[0.5, -0.25]], dtype=torch.float64)

    def oracle(x_t, t, cond=None):
        ab = s.at(s.alpha_bar, t, x_t.dim())
        return (x_t - ab.sqrt() * x_star) / (1 - ab).sqrt()

    x_T = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = ddpm_sample(oracle, s, x_T, generator=torch.Generator().manual_seed(1), sigma="posterior")
    assert torch.allclose(out, x_star.expand(4, 2), atol=1e-9)


def test_predict_x0_inverts_the_kernel():
    s = schedules.cosine(T=100)
    x0 = torch.randn(5, 3, dtype=torch.float64)
    eps = torch.randn(5, 3, dtype=torch.float64)
    t = torch.tensor([1, 10, 50, 90, 100])
    assert torch.allclose(predict_x0(s, q_sample(s, x0, t, eps), t, eps), x0, atol=1e-6)


def test_mu_theta_with_the_true_noise_is_the_posterior_mean():
    """mu_theta(x_t, eps) equals the posterior mean written with x_0 (Ho et al., eq. 7)."""
    s = schedules.linear(T=1000)
    x0, eps = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    t = torch.tensor([2, 5, 100, 500, 900, 1000])
    x_t = q_sample(s, x0, t, eps)
    ab, ab_prev = s.alpha_bar[t, None], s.alpha_bar[t - 1, None]
    beta, alpha = s.beta[t, None], s.alpha[t, None]
    posterior_mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    assert torch.allclose(mu_theta(s, x_t, t, eps), posterior_mean, atol=1e-10)


def test_sigma_choices():
    s = schedules.linear(T=1000)
    assert float(posterior_variance(s, 1)) == 0.0
    t = torch.arange(2, 1001)
    assert torch.all(posterior_variance(s, t) < s.beta[t])  # beta-tilde_t < beta_t for t > 1
    assert torch.allclose(sigma_t(s, t, "beta") ** 2, s.beta[t])


def test_one_step_matches_diffusers_ddpm_scheduler():
    diffusers = pytest.importorskip("diffusers")
    T = 1000
    s64 = schedules.linear(T=T)
    s = s64.to(dtype=torch.float32)
    x_t = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for sigma, variance_type in (("beta", "fixed_large"), ("posterior", "fixed_small")):
        scheduler = diffusers.DDPMScheduler(num_train_timesteps=T, clip_sample=False, variance_type=variance_type)
        for t in (1000, 500, 50, 10, 2):  # diffusers' timestep index is t - 1
            z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
            exact = ddpm_step(s64, x_t.double(), t, eps.double(), z.double(), sigma)
            ours = ddpm_step(s, x_t, t, eps, z, sigma)
            theirs = scheduler.step(eps, t - 1, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
            # Our float32 step stays within a few float32 ulps of the float64 one. diffusers goes through x0_hat and
            # the posterior coefficients, whose float32 rounding is amplified by 1/(1 - alpha_bar_t) at small t.
            assert float((ours.double() - exact).abs().max()) < 1e-5
            tolerance = 2e-6 / float(1 - s64.alpha_bar[t])
            assert float((theirs.double() - exact).abs().max()) < tolerance, (sigma, t)


def test_bad_input():
    s = schedules.linear(T=10)
    with pytest.raises(ValueError, match=r"sigma='large'.*beta, posterior"):
        sigma_t(s, 3, "large")
    with pytest.raises(ValueError, match=r"sigma='x'.*beta, posterior"):
        ddpm_sample(ScaledInput(), s, torch.zeros(1, 2), sigma="x")
    with pytest.raises(ValueError, match=r"t must lie in 1..T=10"):
        ddpm_step(s, torch.zeros(1, 2), 11, torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"t must lie in 1..T=10"):
        posterior_variance(s, 0)

def test_posterior_variance_ratio_lies_in_0_1_and_its_gap_is_bounded_by_alpha_bar_prev():
    """Book prop. ch8-prop-ratio: beta-tilde_1 = 0; 0 < beta-tilde_t / beta_t < 1 for t >= 2; 1 - ratio <= alpha_bar_{t-1}."""
    s = schedules.linear(T=1000)
    t = torch.arange(1, 1001)
    ratio = posterior_variance(s, t) / s.beta[t]
    assert ratio[0] == 0 and torch.all((ratio[1:] > 0) & (ratio[1:] < 1))
    assert torch.all(1 - ratio <= s.alpha_bar[t - 1] + 1e-15)


def test_gaussian_data_with_the_exact_predictor():
    """Book prop. ch8-prop-gaussian: for x_0 ~ N(0, I) and eps_theta = sqrt(1 - alpha_bar_t) x_t, sigma^2 = beta keeps
    Var(x_t) = 1 for every t >= 1, and every choice follows Var(x_{t-1}) = alpha_t Var(x_t) + sigma_t^2."""
    s = schedules.linear(T=200)
    n = 50_000
    x_T = torch.randn(n, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    predictor = gaussian_data_predictor(s)
    x_t = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    t = torch.tensor([1, 50, 200])
    assert torch.allclose(predictor(x_t, t), (1 - s.alpha_bar[t]).sqrt()[:, None, None, None] * x_t, rtol=1e-15)
    for sigma in ("beta", "posterior"):
        seen = chain_variances(predictor, s, x_T, sigma, torch.Generator().manual_seed(1))
        exact = variance_recursion(s, sigma)
        assert sorted(seen) == sorted(exact) == list(range(s.T + 1))
        # the sample variance of n standard normals has standard error sqrt(2 / n) = 0.0063; allow 5 of them
        assert max(abs(seen[t] - exact[t]) for t in exact) < 5 * math.sqrt(2 / n)
        if sigma == "beta":
            assert all(abs(exact[t] - 1) < 1e-12 for t in exact if t > 0)  # alpha_t + beta_t = 1
        else:
            assert exact[0] < 1 - 1e-3  # the posterior choice shrinks the variance (exactly, not by chance)
    halved = variance_recursion(s, "beta", coefficient=lambda t: 0.5)  # Var(x_{t-1}) = Var(x_t) / 4 + beta_t
    assert halved[s.T - 1] == 0.25 + float(s.beta[s.T]) and halved[0] == halved[1] / 4
    with pytest.raises(ValueError, match="valid choices are: beta, posterior"):
        variance_recursion(s, "large")


def test_the_slides_step_and_its_variance_on_gaussian_data():
    """Chapter 8's erratum: the slides' line 4 is x_{t-1} = (x_t - sqrt(beta_t) eps) / sqrt(alpha_t) + sigma_t z; on
    Gaussian data with the exact predictor its chain follows the recursion with the slides' coefficient and collapses."""
    s = schedules.linear(T=200)
    x_t, z = torch.randn(2, 4, 1, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    model = ScaledInput()
    for t in (2, 77, 200):
        t_batch = torch.full((4,), t)
        eps = model(x_t, t_batch)
        slide = ddpm_step(s, x_t, t, as_on_slide(model, s)(x_t, t_batch), z)
        assert torch.allclose(slide, (x_t - s.beta[t].sqrt() * eps) / s.alpha[t].sqrt() + s.beta[t].sqrt() * z, rtol=1e-12)
    n = 50_000
    x_T = torch.randn(n, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = chain_variances(as_on_slide(gaussian_data_predictor(s), s), s, x_T, "beta", torch.Generator().manual_seed(1))
    exact = variance_recursion(s, "beta", lambda t: slide_coefficient_on_gaussian_data(s, t))
    assert max(abs(seen[t] - exact[t]) for t in exact) < 5 * math.sqrt(2 / n)
    assert abs(slide_coefficient_on_gaussian_data(s, 1) - float(s.alpha[1].sqrt())) < 1e-15  # alpha_bar_1 = alpha_1
    assert all(slide_coefficient_on_gaussian_data(s, t) < float(s.alpha[t].sqrt()) for t in range(2, s.T + 1))
    assert exact[0] < 0.5  # so the variance drifts far below the data's 1
    with pytest.raises(ValueError, match="t must lie in 1..T=200, got 0"):
        slide_coefficient_on_gaussian_data(s, 0)
