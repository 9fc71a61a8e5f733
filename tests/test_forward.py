"""Chapter 2, the forward process: every identity the chapter states, checked with fixed seeds; and bad input.

Tolerances of Monte-Carlo checks are 5 standard errors of the estimate (a mean of n draws of variance v has
standard error sqrt(v / n); a sample variance has standard error about v sqrt(2 / n)). Two-sample tests use fixed
seeds: under the claim their p-value is uniform, so "p > 0.01" fails for 1 % of seeds; with the seeds fixed the
outcome is deterministic, and each such test is paired with a case that must be rejected (the lecture slide's
kernel), so that the test can fail.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import gen, randn
from scipy import stats

from diffnotes import forward, schedules
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation import statistics

LINEAR = schedules.linear()  # T = 1000, beta from 1e-4 to 0.02 (Ho et al., 2020)
TOY = schedules.from_betas(torch.tensor([0.2, 0.4, 0.3]))  # large betas: wide densities for quadrature




def assert_moments(sample: torch.Tensor, mean: float, var: float) -> None:
    n = sample.numel()
    assert abs(float(sample.mean()) - mean) < 5 * math.sqrt(var / n)
    assert abs(float(sample.var()) - var) < 5 * var * math.sqrt(2 / n)


# --- one step, two steps, t steps ---------------------------------------------------------------------------


def test_one_step_is_normal_with_mean_sqrt_alpha_x_prev_and_variance_beta():
    n, t, x_prev = 200_000, 1000, 0.7
    x_t = forward.q_step(LINEAR, torch.full((n,), x_prev, dtype=torch.float64), t, randn((n,), seed=1))
    beta = float(LINEAR.beta[t])
    assert_moments(x_t, math.sqrt(1 - beta) * x_prev, beta)


def test_one_step_accepts_a_timestep_per_sample():
    x_prev, eps, t = randn((3, 2), seed=2), randn((3, 2), seed=3), torch.tensor([1, 500, 1000])
    batched = forward.q_step(LINEAR, x_prev, t, eps)
    for i in range(3):
        assert torch.allclose(batched[i], forward.q_step(LINEAR, x_prev[i : i + 1], int(t[i]), eps[i : i + 1])[0])


@pytest.mark.parametrize("beta_1, beta_2", [(1e-4, 1.2e-4), (0.2, 0.4), (0.0, 1.0), (0.5, 0.0)])
def test_two_step_variance_is_one_minus_product(beta_1, beta_2):
    a, v = forward.two_step_coefficients(beta_1, beta_2)
    assert a == pytest.approx(math.sqrt((1 - beta_1) * (1 - beta_2)), rel=1e-15)
    assert v == pytest.approx(1 - (1 - beta_1) * (1 - beta_2), rel=1e-12, abs=1e-16)  # the lecture's identity
    assert a**2 + v == pytest.approx(1.0, rel=1e-15)  # variance preserving


def test_two_step_coefficients_are_the_kernel_at_t_2():
    a, v = forward.two_step_coefficients(float(LINEAR.beta[1]), float(LINEAR.beta[2]))
    assert a == pytest.approx(float(LINEAR.alpha_bar[2].sqrt()), rel=1e-14)
    assert v == pytest.approx(float(1 - LINEAR.alpha_bar[2]), rel=1e-12)


def test_two_steps_sampled_have_the_two_step_moments():
    n, x0 = 200_000, 1.5
    a, v = forward.two_step_coefficients(0.2, 0.4)
    x1 = forward.q_step(TOY, torch.full((n,), x0, dtype=torch.float64), 1, randn((n,), seed=4))
    x2 = forward.q_step(TOY, x1, 2, randn((n,), seed=5))
    assert_moments(x2, a * x0, v)


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_kernel_induction_step(name):
    # The proof's induction step: 1 - alpha_bar_t = alpha_t (1 - alpha_bar_{t-1}) + beta_t for every t.
    s = schedules.make_schedule(name)
    assert torch.allclose(1 - s.alpha_bar[1:], s.alpha[1:] * (1 - s.alpha_bar[:-1]) + s.beta[1:], rtol=0, atol=1e-14)


@pytest.mark.parametrize("t", [0, 1, 2, 10, 260, 1000])
def test_noise_contributions_add_up_to_the_compound_variance(t):
    contributions = forward.noise_contributions(LINEAR, t)
    assert contributions.shape == (t,)
    assert float(contributions.sum()) == pytest.approx(float(1 - LINEAR.alpha_bar[t]), rel=1e-12, abs=1e-15)
    assert bool((contributions <= LINEAR.beta[1 : t + 1]).all())  # later steps only shrink earlier noise
    assert float(contributions.sum()) <= float(LINEAR.beta[1 : t + 1].sum())  # below the naive sum of the betas


# --- iterating the chain equals sampling the kernel ---------------------------------------------------------


def test_iterate_chain_runs_t_steps_reproducibly_and_calls_back():
    x0 = randn((4, 1, 3, 3), seed=6)
    seen = []
    x_t = forward.iterate_chain(LINEAR, x0, 5, gen(7), callback=lambda s, x: seen.append((s, x.clone())))
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5] and torch.equal(seen[-1][1], x_t)
    assert torch.equal(x_t, forward.iterate_chain(LINEAR, x0, 5, gen(7)))
    first = forward.q_step(LINEAR, x0, 1, torch.randn(x0.shape, generator=gen(7), dtype=x0.dtype))
    assert torch.equal(seen[0][1], first)
    assert torch.equal(forward.iterate_chain(LINEAR, x0, 0, gen(7), callback=lambda s, x: 1 / 0), x0)


def test_chain_equals_kernel_on_scalars():
    n, checkpoints = 20_000, (1, 2, 10, 100, 500, 1000)
    x0 = torch.ones(n, dtype=torch.float64)
    kept = {}
    keep = lambda s, x: kept.update({s: x}) if s in checkpoints else None  # noqa: E731
    forward.iterate_chain(LINEAR, x0, 1000, gen(8), callback=keep)
    for t in checkpoints:
        kernel = forward.q_sample(LINEAR, x0, t, randn((n,), seed=100 + t))
        mean, var = float(LINEAR.alpha_bar[t].sqrt()), float(1 - LINEAR.alpha_bar[t])
        assert_moments(kept[t], mean, var)
        assert_moments(kernel, mean, var)
        assert stats.ks_2samp(kept[t].numpy(), kernel.numpy()).pvalue > 0.01
    for t in (10, 100):  # power: the slide's kernel (variance sqrt(1 - alpha_bar_t)) is rejected outright
        slide = forward.q_sample_as_on_slide(LINEAR, x0, t, randn((n,), seed=200 + t))
        assert stats.ks_2samp(kept[t].numpy(), slide.numpy()).pvalue < 1e-6


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_mnist_5k()[0]


def test_chain_equals_kernel_on_digits(digits):
    m, t, n_permutations = 200, 100, 200
    order = torch.randperm(len(digits), generator=gen(9))
    x0_chain, x0_kernel = digits[order[:m]], digits[order[m : 2 * m]]  # disjoint: independent samples of q(x_t)
    chain = forward.iterate_chain(LINEAR, x0_chain, t, gen(10))
    kernel = forward.q_sample(LINEAR, x0_kernel, t, randn(x0_kernel.shape, seed=11, dtype=torch.float32))
    slide = forward.q_sample_as_on_slide(LINEAR, x0_kernel, t, randn(x0_kernel.shape, seed=11, dtype=torch.float32))
    _, p_same = statistics.mmd_test(chain, kernel, n_permutations, gen(12))
    _, p_slide = statistics.mmd_test(chain, slide, n_permutations, gen(12))
    assert p_same > 0.01
    assert p_slide == pytest.approx(1 / (n_permutations + 1))  # no permutation comes close
    # Moments, pixel by pixel: the compound noise the chain added is standard normal (m * 784 independent draws).
    alpha_bar = float(LINEAR.alpha_bar[t])
    eps_bar = (chain.double() - math.sqrt(alpha_bar) * x0_chain.double()) / math.sqrt(1 - alpha_bar)
    assert_moments(eps_bar, 0.0, 1.0)


def test_mmd_test_tells_shifted_gaussians_apart_and_not_equal_ones():
    x, y = randn((200, 5), seed=13), randn((200, 5), seed=14)
    _, p_same = statistics.mmd_test(x, y, 200, gen(15))
    mmd2, p_shift = statistics.mmd_test(x, y + 0.5, 200, gen(15))
    assert p_same > 0.01 and mmd2 > 0 and p_shift == pytest.approx(1 / 201)


# --- the errata: the kernel's covariance is (1 - alpha_bar_t) I, not sqrt(1 - alpha_bar_t) I --------------------


def test_kernel_variance_is_one_minus_alpha_bar_not_its_square_root():
    n, t = 200_000, 100
    var = float(1 - LINEAR.alpha_bar[t])
    x_t = forward.q_sample(LINEAR, torch.zeros(n, dtype=torch.float64), t, randn((n,), seed=16))
    assert_moments(x_t, 0.0, var)
    assert abs(float(x_t.var()) - math.sqrt(var)) > 100 * var * math.sqrt(2 / n)  # far from the slide's value


# --- densities: one step, the kernel, the joint --------------------------------------------------------------


def test_log_q_step_and_kernel_match_scipy():
    x_prev, x_t, x0 = randn((3, 2, 2), seed=17), randn((3, 2, 2), seed=18), randn((3, 2, 2), seed=19)
    t = 400
    alpha, beta, alpha_bar = (float(v[t]) for v in (LINEAR.alpha, LINEAR.beta, LINEAR.alpha_bar))
    step = stats.norm.logpdf(x_t.numpy(), math.sqrt(alpha) * x_prev.numpy(), math.sqrt(beta)).sum(axis=(1, 2))
    kernel = stats.norm.logpdf(x_t.numpy(), math.sqrt(alpha_bar) * x0.numpy(), math.sqrt(1 - alpha_bar))
    assert torch.allclose(forward.log_q_step(LINEAR, x_t, x_prev, t), torch.from_numpy(step), rtol=1e-12)
    assert torch.allclose(forward.log_q_kernel(LINEAR, x_t, x0, t), torch.from_numpy(kernel.sum(axis=(1, 2))))


def test_log_q_joint_is_the_sum_of_the_steps():
    x0 = randn((3, 1, 4, 4), seed=20)
    path = []
    forward.iterate_chain(LINEAR, x0, 50, gen(21), callback=lambda s, x: path.append(x))
    xs = torch.stack(path)  # (50, 3, 1, 4, 4)
    per_step = sum(forward.log_q_step(LINEAR, xs[s - 1], xs[s - 2] if s > 1 else x0, s) for s in range(1, 51))
    assert torch.allclose(forward.log_q_joint(LINEAR, x0, xs), per_step, rtol=1e-12)


def test_log_q_joint_of_a_full_path_matches_scipy():
    x0 = randn((2,), seed=22)
    path = []
    forward.iterate_chain(LINEAR, x0, LINEAR.T, gen(23), callback=lambda s, x: path.append(x))
    xs = torch.stack(path)  # (T, 2): the lecture's x_{1:T}
    prev = torch.cat([x0[None], xs[:-1]])
    alpha, beta = LINEAR.alpha[1:, None], LINEAR.beta[1:, None]
    reference = stats.norm.logpdf(xs.numpy(), (alpha.sqrt() * prev).numpy(), beta.sqrt().numpy()).sum(axis=0)
    assert torch.allclose(forward.log_q_joint(LINEAR, x0, xs), torch.from_numpy(reference), rtol=1e-12)


@pytest.mark.parametrize(
    "schedule, t, grid, x_t",
    [  # under LINEAR, x_1 has standard deviation 0.01: the grid spacing is 40 times finer
        (LINEAR, 2, torch.linspace(0.9, 1.1, 801, dtype=torch.float64), torch.tensor([0.97, 0.99, 1.0, 1.01])),
        (TOY, 3, torch.linspace(-5.0, 5.0, 301, dtype=torch.float64), torch.tensor([-0.5, 0.97, 1.0, 2.0])),
    ],
)
def test_joint_marginalises_to_the_kernel(schedule, t, grid, x_t):
    x_t = x_t.double()
    marginal = forward.marginalise_joint_1d(schedule, 1.0, x_t, t, grid)
    kernel = forward.log_q_kernel(schedule, x_t, torch.ones_like(x_t), t)
    assert torch.allclose(marginal, kernel, rtol=0, atol=1e-8)
    alpha_bar = float(schedule.alpha_bar[t])
    slide = stats.norm.logpdf(x_t.numpy(), math.sqrt(alpha_bar), (1 - alpha_bar) ** 0.25)
    assert float((marginal - torch.from_numpy(slide)).abs().max()) > 0.1  # the slide's density is not the marginal


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 1001, -1, 1.5, torch.tensor([0, 3]), torch.tensor([1.0, 2.0])])
def test_q_step_rejects_bad_t(t):
    with pytest.raises(ValueError, match="t must"):
        forward.q_step(LINEAR, torch.zeros(2), t, torch.zeros(2))


@pytest.mark.parametrize("t", [-1, 1001, 2.5])
def test_q_sample_rejects_bad_t(t):
    with pytest.raises(ValueError, match="t must"):
        forward.q_sample(LINEAR, torch.zeros(2), t, torch.zeros(2))


@pytest.mark.parametrize("function", [forward.q_step, forward.q_sample, forward.q_sample_as_on_slide])
def test_rejects_eps_of_the_wrong_shape(function):
    with pytest.raises(ValueError, match=r"eps must have the shape .*\(2, 3\); got \(3, 2\)"):
        function(LINEAR, torch.zeros(2, 3), 5, torch.zeros(3, 2))


@pytest.mark.parametrize("t", [-1, 1001, 2.5, True, "3", torch.tensor(2.0)])
def test_iterate_chain_rejects_bad_t(t):
    with pytest.raises(ValueError, match=r"t must"):
        forward.iterate_chain(LINEAR, torch.zeros(2), t, gen(0))


def test_densities_reject_bad_t_and_shapes():
    x = torch.zeros(2, 3)
    for bad in (0, 1001, 1.5):
        with pytest.raises(ValueError, match=r"t must .*1\.\.T=1000"):
            forward.log_q_step(LINEAR, x, x, bad)
        with pytest.raises(ValueError, match=r"t must .*1\.\.T=1000"):
            forward.log_q_kernel(LINEAR, x, x, bad)
    with pytest.raises(ValueError, match="x_prev must have the shape of x_t"):
        forward.log_q_step(LINEAR, x, torch.zeros(3, 2), 1)
    for xs in (torch.zeros(0, 2, 3), torch.zeros(1001, 2, 3), torch.zeros(5, 3, 3), torch.zeros(5)):
        with pytest.raises(ValueError, match=r"xs must have shape \(t, \*x0.shape\)"):
            forward.log_q_joint(LINEAR, x, xs)


def test_helpers_reject_bad_input():
    with pytest.raises(ValueError, match=r"beta_2 must lie in \[0, 1\]"):
        forward.two_step_coefficients(0.1, 1.5)
    with pytest.raises(ValueError, match=r"beta_1 must lie in \[0, 1\]"):
        forward.two_step_coefficients(-0.1, 0.5)
    with pytest.raises(ValueError, match=r"t must lie in 0\.\.T=1000"):
        forward.noise_contributions(LINEAR, 1001)
    with pytest.raises(ValueError, match="uniformly spaced"):
        forward.marginalise_joint_1d(TOY, 1.0, torch.zeros(2), 2, torch.tensor([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="at most 4,000,000"):
        forward.marginalise_joint_1d(LINEAR, 1.0, torch.zeros(2), 4, torch.linspace(0, 1, 200))
    with pytest.raises(ValueError, match="n_permutations must be a positive integer"):
        statistics.mmd_test(torch.zeros(3, 2), torch.zeros(3, 2), 0, gen(0))
    with pytest.raises(ValueError, match=r"x and y need >= 2 rows of one shape"):
        statistics.mmd_test(torch.zeros(3, 2), torch.zeros(3, 4), 10, gen(0))


def test_config_by_profile():
    quick, full = forward.ForwardConfig.for_profile("quick"), forward.ForwardConfig.for_profile("full")
    assert quick.n_scalars < full.n_scalars and quick.n_images < full.n_images
    assert quick.t_images == full.t_images == 200
    with pytest.raises(ValueError, match="not a profile"):
        forward.ForwardConfig.for_profile("medium")
