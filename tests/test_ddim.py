"""DDIM (diffnotes.samplers.ddim): the update against diffusers, its identities, inversion, spacings and bad input."""

import math

import pytest
import torch
from conftest import ScaledInput

from diffnotes import schedules
from diffnotes.evaluation import table
from diffnotes.forward import q_sample
from diffnotes.nets import exact as exact_eps
from diffnotes.posterior import posterior_variance, predict_x0
from diffnotes.samplers import ddim, timesteps
from diffnotes.samplers.ddpm import ddpm_sample, ddpm_step


def sample_deter():
    """diffusers' scheduler-test fixture: arange(768) / 768 as (3, 8, 8, 4), permuted to (4, 3, 8, 8)."""
    return (torch.arange(768) / 768).reshape(3, 8, 8, 4).permute(3, 0, 1, 2)


def gaussian_oracle(schedule, mean, var):
    """The exact noise predictor when x_0 ~ N(mean, var I): E[x_0 | x_t] is linear in x_t (book, chapter 10)."""

    def eps(x_t, t, cond=None):
        ab = schedule.at(schedule.alpha_bar, t, x_t.dim()).to(x_t)
        x0_mean = mean + ab.sqrt() * var / (ab * var + 1 - ab) * (x_t - ab.sqrt() * mean)
        return (x_t - ab.sqrt() * x0_mean) / (1 - ab).sqrt()

    return eps


# --- Timestep subsequences -----------------------------------------------------------------------------------------


def test_paper_spacings_end_at_T_and_increase_for_every_S():
    T = 1000
    assert timesteps.subsequence(T, 10, "linear").tolist() == list(range(100, 1001, 100))
    assert timesteps.subsequence(T, 10, "quadratic").tolist() == [10, 40, 90, 160, 250, 360, 490, 640, 810, 1000]
    assert timesteps.subsequence(T, T, "linear").tolist() == list(range(1, T + 1))
    for spacing in ("linear", "quadratic"):
        for S in range(1, T + 1):
            tau = timesteps.subsequence(T, S, spacing)
            assert len(tau) == S and int(tau[0]) >= 1 and int(tau[-1]) == T and bool((tau.diff() > 0).all())


def test_diffusers_spacings_are_its_timesteps_plus_one():
    diffusers = pytest.importorskip("diffusers")
    for spacing in ("leading", "trailing", "linspace"):
        scheduler = diffusers.DDIMScheduler(timestep_spacing=spacing)
        for S in (1, 2, 3, 7, 10, 50, 99, 333, 400, 999, 1000):
            scheduler.set_timesteps(S)
            assert torch.equal(timesteps.subsequence(1000, S, spacing), scheduler.timesteps.flip(0) + 1), (spacing, S)


def test_the_previous_timestep_quirk():
    tau = timesteps.subsequence(1000, 10, "linspace")
    assert tau.tolist()[-2:] == [889, 1000]
    assert timesteps.diffusers_previous_timestep(1000, 1000, 10) == 900  # not 889, the next listed step
    assert timesteps.previous_timesteps(tau).tolist()[-1] == 889
    for spacing in ("leading", "trailing"):  # where S divides T, diffusers lands on the listed step
        tau = timesteps.subsequence(1000, 10, spacing)
        ours = timesteps.previous_timesteps(tau).tolist()
        assert ours == [timesteps.diffusers_previous_timestep(t, 1000, 10) for t in tau.tolist()]


# --- One step against diffusers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_one_step_matches_diffusers_ddim_scheduler(spacing):
    diffusers = pytest.importorskip("diffusers")
    T, S = 1000, 10
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=T, clip_sample=False, timestep_spacing=spacing)
    scheduler.set_timesteps(S)
    # The same alpha_bar as diffusers (float32 cumprod), so that only the step formula is compared.
    s = schedules.from_alpha_bar(scheduler.alphas_cumprod.double()).to(dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    worst = 0.0
    for i in scheduler.timesteps.tolist():
        t = i + 1
        t_prev = timesteps.diffusers_previous_timestep(t, T, S)
        for eta in (0.0, 0.5, 1.0):
            z = torch.randn(x_t.shape, generator=g)
            ours = ddim.ddim_step(s, x_t, t, t_prev, eps, eta, z)
            theirs = scheduler.step(eps, i, x_t, eta=eta, variance_noise=z).prev_sample
            worst = max(worst, float(((ours - theirs).abs() / (1 + theirs.abs())).max()))
    # Both compute in float32 from the same float32 alpha_bar; they differ only in the order of a few operations,
    # so they agree to a few float32 rounding errors (2^-23 = 1.2e-7), amplified by at most 1/sqrt(alpha_bar_t).
    assert worst < 2e-5


def test_inverse_step_matches_diffusers_ddim_inverse_scheduler():
    diffusers = pytest.importorskip("diffusers")
    T, S = 1000, 20
    scheduler = diffusers.DDIMInverseScheduler(num_train_timesteps=T, clip_sample=False)
    scheduler.set_timesteps(S)
    s = schedules.from_alpha_bar(scheduler.alphas_cumprod.double()).to(dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    x, eps = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    for i in scheduler.timesteps.tolist():  # upwards: 0, 50, ..., 950 -> book t = 1, 51, ..., 951
        t = i + 1
        ours = ddim.ddim_invert_step(s, x, max(t - T // S, 0), t, eps)
        theirs = scheduler.step(eps, i, x).prev_sample
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5), t


def test_golden_values_of_diffusers_full_loop():
    """REFERENCE.md 1.4: 10 leading steps, eta = 0, linear schedule, clipping on: sum |x| 172.0067, mean 0.223967."""
    s = schedules.linear(1000).to(dtype=torch.float32)
    out = ddim.ddim_sample(ScaledInput(1), s, sample_deter(), 10, eta=0.0, spacing="leading", clip_x0=True)
    assert abs(float(out.abs().sum()) - 172.0067) < 1e-2  # the tolerances of diffusers' own test
    assert abs(float(out.abs().mean()) - 0.223967) < 1e-3


def test_full_loop_matches_diffusers_with_the_same_generator():
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="trailing")
    scheduler.set_timesteps(20)
    s = schedules.from_alpha_bar(scheduler.alphas_cumprod.double()).to(dtype=torch.float32)
    g = torch.Generator().manual_seed(2)
    x = sample_deter()
    for i in scheduler.timesteps.tolist():
        x = scheduler.step(ScaledInput(1)(x, torch.tensor([i + 1])), i, x, eta=0.3, generator=g).prev_sample
    # diffusers draws z at every step, ours not at the last one (where sigma = 0): the draws before it coincide.
    ours = ddim.ddim_sample(ScaledInput(1), s, sample_deter(), 20, 0.3, "trailing", torch.Generator().manual_seed(2))
    assert torch.allclose(ours, x, rtol=1e-4, atol=1e-5)


# --- The identities of the chapter ---------------------------------------------------------------------------------


def test_eta_one_every_step_is_the_ddpm_step_with_posterior_variance():
    s = schedules.linear(1000)
    g = torch.Generator().manual_seed(3)
    x_t, eps, z = (torch.randn(4, 5, generator=g, dtype=torch.float64) for _ in range(3))
    for t in range(1, 1001):
        sigma = ddim.ddim_sigma(s, t, t - 1, 1.0)
        assert abs(float(sigma**2 - posterior_variance(s, t))) < 1e-12
        mean = ddim.ddim_step(s, x_t, t, t - 1, eps, 1.0, torch.zeros_like(x_t))  # z = 0: the mean
        assert torch.allclose(mean, ddpm_step(s, x_t, t, eps, torch.zeros_like(x_t), "posterior"), atol=1e-10)
        step = ddim.ddim_step(s, x_t, t, t - 1, eps, 1.0, z)
        assert torch.allclose(step, ddpm_step(s, x_t, t, eps, z, "posterior"), atol=1e-10)


def test_eta_one_on_a_subsequence_is_ddpm_on_the_strided_chain():
    s = schedules.cosine(200)
    tau = timesteps.subsequence(200, 7, "quadratic")
    strided = schedules.from_alpha_bar(s.alpha_bar[tau])  # alpha_bar'_i = alpha_bar_{tau_i}
    x_t, eps, z = (torch.randn(3, 4, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in range(3))
    for i in range(2, 8):
        ours = ddim.ddim_step(s, x_t, int(tau[i - 1]), int(tau[i - 2]), eps, 1.0, z)
        assert torch.allclose(ours, ddpm_step(strided, x_t, i, eps, z, "posterior"), atol=1e-10)


def test_eta_one_every_step_samples_like_ddpm():
    s = schedules.linear(50)
    model = ScaledInput(1)
    x_T = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = ddim.ddim_sample(model, s, x_T, 50, eta=1.0, generator=torch.Generator().manual_seed(9))
    theirs = ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(9), sigma="posterior")
    assert torch.allclose(ours, theirs, atol=1e-10)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_the_non_markovian_family_keeps_the_marginals(eta):
    """With the true noise, x_t ~ q(x_t | x_0) gives x_prev ~ N(sqrt(alpha_bar_prev) x_0, (1 - alpha_bar_prev) I)."""
    s = schedules.linear(1000)
    n = 400_000
    g = torch.Generator().manual_seed(4)
    x0 = torch.full((n,), 0.7, dtype=torch.float64)
    for t, t_prev in ((1000, 900), (300, 299), (500, 50), (40, 0)):
        eps = torch.randn(n, generator=g, dtype=torch.float64)
        x_t = q_sample(s, x0, t, eps)
        x_prev = ddim.ddim_step(s, x_t, t, t_prev, eps, eta, torch.randn(n, generator=g, dtype=torch.float64))
        mean, var = float(s.alpha_bar[t_prev].sqrt() * 0.7), float(1 - s.alpha_bar[t_prev])
        # 5 standard errors: sd(mean) = sqrt(var / n), sd(sample variance) = var sqrt(2 / n).
        assert abs(float(x_prev.mean()) - mean) < 5 * math.sqrt(var / n) + 1e-12
        assert abs(float(x_prev.var()) - var) < 5 * var * math.sqrt(2 / n) + 1e-12
        if eta == 0.0:  # deterministic: exactly the kernel with the same noise
            assert torch.allclose(x_prev, q_sample(s, x0, t_prev, eps), atol=1e-10)


def test_eta_zero_is_deterministic_and_eta_positive_is_not():
    s = schedules.linear(100).to(dtype=torch.float32)
    model = gaussian_oracle(s, 0.2, 0.5)
    x_T = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    a = ddim.ddim_sample(model, s, x_T, 10, eta=0.0, generator=torch.Generator().manual_seed(1))
    b = ddim.ddim_sample(model, s, x_T, 10, eta=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    c = ddim.ddim_sample(model, s, x_T, 10, eta=0.5, generator=torch.Generator().manual_seed(1))
    d = ddim.ddim_sample(model, s, x_T, 10, eta=0.5, generator=torch.Generator().manual_seed(2))
    assert float((c - d).abs().max()) > 0.01


def test_eta_zero_step_is_an_euler_step_of_the_probability_flow():
    s = schedules.cosine(1000)
    x_t, eps = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    for t, t_prev in ((1000, 800), (500, 499), (37, 0)):
        sig, x_bar = ddim.flow_coordinates(s, x_t, t)
        sig_prev, _ = ddim.flow_coordinates(s, x_t, t_prev)
        _, x_bar_prev = ddim.flow_coordinates(s, ddim.ddim_step(s, x_t, t, t_prev, eps), t_prev)
        assert torch.allclose(x_bar_prev, x_bar + (sig_prev - sig) * eps, atol=1e-9)


def test_callback_sees_every_step_with_the_predicted_x0():
    s = schedules.linear(100)
    seen = []
    x_T = torch.randn(2, 3, dtype=torch.float64)
    ddim.ddim_sample(ScaledInput(1), s, x_T, 5, callback=lambda t, x, x0: seen.append((t, x0)))
    assert [t for t, _ in seen] == [100, 80, 60, 40, 20]
    assert torch.allclose(seen[0][1], predict_x0(s, x_T, 100, ScaledInput(1)(x_T, torch.tensor([100, 100]))))


# --- Inversion -----------------------------------------------------------------------------------------------------


def test_inversion_is_exact_when_the_noise_prediction_is_constant():
    s = schedules.linear(1000)
    e = torch.randn(2, 8, dtype=torch.float64)
    x0 = torch.randn(2, 8, dtype=torch.float64)
    constant = lambda x_t, t, cond=None: e  # noqa: E731
    for S in (1, 7, 50):
        x_T = ddim.ddim_invert(constant, s, x0, S)
        assert torch.allclose(x_T, q_sample(s, x0, 1000, e), atol=1e-9)
        assert torch.allclose(ddim.ddim_sample(constant, s, x_T, S), x0, atol=1e-9)


def test_inversion_then_sampling_reconstructs_with_an_error_that_shrinks_with_the_steps():
    s = schedules.linear(1000)
    model = gaussian_oracle(s, 0.1, 0.3)  # data N(0.1, 0.3 I): the flow is linear and smooth
    x0 = 0.1 + 0.3**0.5 * torch.randn(64, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    errors = {}
    for S in (10, 40, 160):
        errors[S] = ddim.reconstruction_mse(x0, ddim.ddim_sample(model, s, ddim.ddim_invert(model, s, x0, S), S))
    # The scheme is first order, so the error in x_0 falls like 1/S and its square like 1/S^2: 16 times per factor 4
    # in S. Measured: S^2 x error = 0.42, 0.38, 0.38; the bound 0.6 / S^2 leaves a margin of 1.4 or more at every S.
    for S, error in errors.items():
        assert error < 0.6 / S**2, (S, error)
    assert errors[10] > 8 * errors[40] > 64 * errors[160]


# --- Interpolation, the ideal predictor, the quality table ---------------------------------------------------------


def test_slerp_ends_at_the_noises_and_keeps_their_norm():
    z0 = torch.tensor([3.0, 0.0], dtype=torch.float64)
    z1 = torch.tensor([0.0, 3.0], dtype=torch.float64)
    frames = ddim.slerp(z0, z1, torch.linspace(0, 1, 5, dtype=torch.float64))
    assert torch.allclose(frames[0], z0) and torch.allclose(frames[-1], z1)
    assert torch.allclose(frames.norm(dim=1), torch.full((5,), 3.0, dtype=torch.float64))
    angles = torch.atan2(frames[:, 1], frames[:, 0])
    assert torch.allclose(angles, torch.linspace(0, math.pi / 2, 5, dtype=torch.float64))


def test_ideal_predictor_of_one_image_is_the_true_noise():
    s = schedules.linear(1000)
    y = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    model = exact_eps.ideal_predictor(y, s, kernel_scale=0.0)
    eps = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    t = torch.tensor([5, 500, 1000])
    assert torch.allclose(model(q_sample(s, y.expand(3, -1, -1, -1), t, eps).float(), t), eps.float(), atol=1e-4)


def test_ideal_predictor_is_bayes_rule_for_the_smoothed_data():
    """Against a direct computation in pixel space with full covariances (no eigenbasis)."""
    s = schedules.linear(1000)
    g = torch.Generator().manual_seed(6)
    data = torch.randn(5, 3, generator=g) * torch.tensor([1.0, 0.5, 0.2]) + torch.tensor([0.0, 0.3, -0.1])
    c = 0.3
    model = exact_eps.ideal_predictor(data, s, kernel_scale=c)
    y = data.double()
    sigma = torch.cov(y.T)
    x_t = torch.randn(4, 3, generator=g)
    for t in (3, 200, 900):
        ab = float(s.alpha_bar[t])
        cov = ab * c * sigma + (1 - ab) * torch.eye(3, dtype=torch.float64)  # Cov[x_t | j]
        dist = torch.distributions.MultivariateNormal(ab**0.5 * y, covariance_matrix=cov)
        log_w = dist.log_prob(x_t.double()[:, None, :])  # (4, 5)
        w = torch.softmax(log_w, dim=1)
        gain = ab**0.5 * c * sigma @ torch.linalg.inv(cov)  # E[x_0 | x_t, j] = y_j + gain (x_t - sqrt(ab) y_j)
        x0_j = y[None] + (x_t.double()[:, None, :] - ab**0.5 * y[None]) @ gain.T
        x0_mean = (w[..., None] * x0_j).sum(1)
        expected = (x_t.double() - ab**0.5 * x0_mean) / (1 - ab) ** 0.5
        got = model(x_t, torch.full((4,), t))
        assert torch.allclose(got.double(), expected, atol=2e-4, rtol=1e-4), t


def test_ideal_sample_has_the_mixtures_moments():
    g = torch.Generator().manual_seed(7)
    data = torch.randn(6, 2, generator=g, dtype=torch.float64)
    n, c = 400_000, 0.5
    x = exact_eps.ideal_sample(data, c, n, torch.Generator().manual_seed(8)).double()
    sigma = torch.cov(data.T)
    mean = data.mean(0)
    cov = (data - mean).T @ (data - mean) / len(data) + c * sigma  # mixture: spread of the centres plus the kernel
    # 5 standard errors of a sample mean; the covariance entries have standard error about sqrt(2 / n) |cov|.
    assert torch.all((x.mean(0) - mean).abs() < 5 * (cov.diagonal() / n).sqrt())
    assert torch.allclose(torch.cov(x.T), cov, atol=5 * math.sqrt(2 / n) * float(cov.abs().max()))


def test_quality_table_shape_and_common_random_numbers():
    from diffnotes.data import load_mnist_5k

    images = load_mnist_5k()[0][:60]
    s = schedules.linear(1000)
    model = exact_eps.ideal_predictor(images, s, kernel_scale=0.1)
    cells = table.quality_table(model, s, (2, 4), (0.0, 1.0), 12, images, torch.Generator().manual_seed(0))
    assert [(c.steps, c.eta) for c in cells] == [(2, 0.0), (4, 0.0), (2, 1.0), (4, 1.0)]
    assert all(c.report.n == 12 and c.seconds_per_image > 0 for c in cells)
    again = table.quality_table(model, s, (4,), (1.0,), 12, images, torch.Generator().manual_seed(0))
    assert again[0].report == cells[3].report  # the same noises for the same seed: a cell repeats exactly
    import json
    from dataclasses import asdict

    assert all(table.cell_from_dict(json.loads(json.dumps(asdict(c)))) == c for c in cells)  # a record reads back


# --- Bad input -----------------------------------------------------------------------------------------------------


def test_bad_input():
    s = schedules.linear(10)
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=r"S \(the number of sampling steps\) must be an integer in 1..T=10, got 11"):
        timesteps.subsequence(10, 11)
    with pytest.raises(ValueError, match=r"in 1..T=10, got 0"):
        ddim.ddim_sample(ScaledInput(1), s, x, 0)
    with pytest.raises(ValueError, match=r"got 2.5"):
        timesteps.subsequence(10, 2.5)
    with pytest.raises(ValueError, match=r"spacing='uniform'.*linear, quadratic, leading, trailing, linspace"):
        ddim.ddim_sample(ScaledInput(1), s, x, 5, spacing="uniform")
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\].*got -0.1"):
        ddim.ddim_sample(ScaledInput(1), s, x, 5, eta=-0.1)
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\].*got 1.5"):
        ddim.ddim_sigma(s, 5, 4, 1.5)
    with pytest.raises(ValueError, match=r"t in 1..T=10 down to t_prev in 0..t-1, got t=3, t_prev=3"):
        ddim.ddim_step(s, x, 3, 3, x)
    with pytest.raises(ValueError, match=r"z must be noise of shape \(1, 2\) when sigma > 0"):
        ddim.ddim_step(s, x, 5, 2, x, eta=0.5)
    with pytest.raises(ValueError, match=r"kernel_scale must be >= 0"):
        exact_eps.ideal_predictor(torch.zeros(3, 2), s, kernel_scale=-1.0)
    with pytest.raises(ValueError, match=r"same shape"):
        ddim.slerp(torch.ones(2), torch.ones(3), torch.zeros(1))
    with pytest.raises(ValueError, match=r"S \(the number of sampling steps\)"):
        table.quality_table(ScaledInput(1), s, (0,), (0.0,), 2, torch.zeros(2, 1, 28, 28), torch.Generator())


def test_config_and_reconstruction_scale():
    quick, full = ddim.DDIMConfig.for_profile("quick"), ddim.DDIMConfig.for_profile("full")
    assert full.steps_list == (10, 20, 50, 100, 1000) and full.etas == (0.0, 0.2, 0.5, 1.0)  # Song et al.'s Table 1
    assert quick.n_samples < full.n_samples and max(quick.steps_list) < max(full.steps_list)
    x = -torch.ones(2, 1, 3, 3)
    assert ddim.reconstruction_mse(x, x + 2) == 1.0  # black against white is an error of 1 on the [0, 1] scale


def test_figures_draw():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from diffnotes.evaluation.quality import QualityReport
    from diffnotes.plotting import ddim as plots

    s = schedules.linear(100)
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    report = QualityReport(3, 1.0, 1.0, (0.1,) * 10, 5.0, 1.0, 2.0, 0)
    cells = [table.QualityCell(S, eta, report, 1e-3 * S) for eta in (0.0, 1.0) for S in (5, 10)]
    spacings = plots.plot_spacings(s, {name: timesteps.subsequence(100, 10, name) for name in timesteps.SPACINGS})
    rows = spacings.axes[0]
    assert [t.get_text() for t in rows.get_yticklabels()] == list(timesteps.SPACINGS)  # one row per spacing
    assert [len(c.get_offsets()) for c in rows.collections] == [10] * len(timesteps.SPACINGS)  # S marks each
    trajectories = plots.plot_trajectories({"a": [(100, images), (50, images)], "b": [(100, images), (50, images)]})
    assert [ax.get_ylabel() for ax in trajectories.axes] == ["a", "b"]
    assert [t.get_text() for t in trajectories.axes[0].get_xticklabels()] == ["$t=100$", "$t=50$"]
    assert [ax.get_ylabel() for ax in plots.plot_same_noise({5: images, 10: images}).axes] == ["$S=5$", "$S=10$"]
    convergence = plots.plot_convergence({5: 0.1, 10: 0.05}, "x", "error", paper={10: 0.01}).axes[0]
    assert [line.get_label() for line in convergence.lines] == ["x", "slope $-1$", "Song et al., CIFAR-10"]
    assert list(convergence.lines[1].get_ydata()) == pytest.approx([0.1, 0.05])  # the guide has the slope
    inversion = plots.plot_inversion(images, images, {10: images})
    assert [ax.get_ylabel() for ax in inversion.axes] == ["digit $x_0$", "encoded $x_T$", "back, $S=10$"]
    interpolation = plots.plot_interpolation({"spherical": images}, torch.linspace(0, 1, 3))
    assert [t.get_text() for t in interpolation.axes[0].get_xticklabels()] == ["$w=0$", "$w=0.5$", "$w=1$"]
    table_figure = plots.plot_quality_table(cells, floor=3.0, floor_label="real digits", floor_range=(2.0, 4.5))
    left, right = table_figure.axes
    assert [line.get_label() for line in left.lines] == [r"$\eta=0$", r"$\eta=1$", "real digits"]
    assert list(left.lines[0].get_ydata()) == [5.0, 5.0] and list(left.lines[2].get_ydata()) == [3.0, 3.0]
    assert list(right.lines[1].get_ydata()) == pytest.approx([5.0, 10.0])  # milliseconds per image: 1e3 * 1e-3 S
    assert len(left.patches) == 1  # the band of the yardstick's draws
    matplotlib.pyplot.close("all")
