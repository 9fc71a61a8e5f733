"""The noise schedules of chapter 3: each formula against a direct evaluation, the properties the chapter states,
agreement with diffusers' DDPMScheduler, the terminal-noise measures, and bad input."""

import math

import matplotlib
import matplotlib.pyplot
import pytest
import torch

from diffnotes import schedules

matplotlib.use("Agg")

# float32 keeps 24 significant bits: one rounding changes a value by at most u = 2^-24 (relative).
U32 = 2.0**-24
# The direct evaluations below use Python floats (float64), as the package does: they agree to a few ulps of float64.
RTOL64 = 1e-12


def _ramp(t: int, T: int) -> float:  # noqa: N803
    return (t - 1) / (T - 1) if T > 1 else 0.0


def _f(t: int, T: int, s: float) -> float:  # noqa: N803
    return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2


def _close(actual: torch.Tensor, expected: list[float], rtol: float = RTOL64, atol: float = 0.0) -> bool:
    return torch.allclose(actual, torch.tensor(expected, dtype=torch.float64), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- the formulas, evaluated directly


@pytest.mark.parametrize("T", [1, 2, 10, 1000])
@pytest.mark.parametrize(("beta_1", "beta_T"), [(1e-4, 0.02), (1e-4, 1e-2), (0.00085, 0.012)])
def test_linear_quadratic_sigmoid_match_the_lectures_formulas(T, beta_1, beta_T):  # noqa: N803
    linear = [beta_1 + _ramp(t, T) * (beta_T - beta_1) for t in range(1, T + 1)]
    quadratic = [(math.sqrt(beta_1) + _ramp(t, T) * (math.sqrt(beta_T) - math.sqrt(beta_1))) ** 2 for t in range(1, T + 1)]
    for kappa in (1.0, 6.0, 10.0):
        sigmoid = [beta_1 + (beta_T - beta_1) / (1 + math.exp(kappa * (1 - 2 * _ramp(t, T)))) for t in range(1, T + 1)]
        assert _close(schedules.sigmoid(T, beta_1, beta_T, kappa=kappa).beta[1:], sigmoid)
    assert _close(schedules.linear(T, beta_1, beta_T).beta[1:], linear)
    assert _close(schedules.quadratic(T, beta_1, beta_T).beta[1:], quadratic)


@pytest.mark.parametrize("T", [1, 10, 1000, 4000])
@pytest.mark.parametrize("s", [0.0, 0.008, 0.1])
def test_cosine_matches_nichol_dhariwal(T, s):  # noqa: N803
    schedule = schedules.cosine(T, s=s)
    betas = [min(1 - _f(t, T, s) / _f(t - 1, T, s), 0.999) for t in range(1, T + 1)]
    # 1 - f(t)/f(t-1) subtracts from 1 a ratio near 1: its error is absolute, a few float64 ulps of 1 (2^-52).
    assert _close(schedule.beta[1:], betas, atol=8 * 2.0**-52)
    # Before the clip, the betas telescope: alpha_bar_t = f(t)/f(0) for every t < T ...
    assert _close(schedule.alpha_bar[:T], [_f(t, T, s) / _f(0, T, s) for t in range(T)])
    # ... and only beta_T (unclipped it is 1 - f(T)/f(T-1) = 1, as f(T) = 0) reaches the clip.
    assert (schedule.beta[1:T] < 0.999).all() and schedule.beta[T] == 0.999
    assert math.isclose(schedule.alpha_bar[T], 0.001 * schedule.alpha_bar[T - 1], rel_tol=1e-12)


def test_cosine_clip_is_an_argument():
    unclipped_beta_T = 1 - _f(10, 10, 0.008) / _f(9, 10, 0.008)  # noqa: N806
    assert unclipped_beta_T > 1 - 1e-15
    assert schedules.cosine(10, max_beta=0.9).beta[10] == 0.9


def test_sigmoid_endpoints_are_not_beta_1_and_beta_T():  # noqa: N802
    s = schedules.sigmoid(1000, 1e-4, 0.02, kappa=6.0)
    gap = (0.02 - 1e-4) / (1 + math.exp(6.0))
    assert math.isclose(s.beta[1], 1e-4 + gap, rel_tol=RTOL64)
    assert math.isclose(s.beta[1000], 0.02 - gap, rel_tol=RTOL64)


def test_sigmoid_with_tau_6_is_diffusers_formula():
    # diffusers: sigmoid(linspace(-6, 6, T)) (beta_end - beta_start) + beta_start, here evaluated in float64.
    for T in (10, 1000):  # noqa: N806
        direct = torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (0.02 - 1e-4) + 1e-4
        assert torch.allclose(schedules.sigmoid(T).beta[1:], direct, rtol=RTOL64, atol=0.0)


def test_alpha_bar_is_the_running_product():
    beta = [0.1, 0.25, 0.5, 0.05]
    s = schedules.from_betas(torch.tensor(beta, dtype=torch.float64))
    assert _close(s.alpha, [1.0] + [1 - b for b in beta])
    assert _close(s.alpha_bar, [1.0, 0.9, 0.9 * 0.75, 0.9 * 0.75 * 0.5, 0.9 * 0.75 * 0.5 * 0.95])
    assert _close(s.snr[1:], [a / (1 - a) for a in s.alpha_bar[1:].tolist()])
    assert _close(s.log_snr[1:], [math.log(a / (1 - a)) for a in s.alpha_bar[1:].tolist()])


def test_from_alpha_bar_inverts_from_betas():
    s = schedules.quadratic(50)
    back = schedules.from_alpha_bar(s.alpha_bar[1:])
    assert torch.allclose(back.beta, s.beta, rtol=1e-10, atol=1e-15)


def test_linear_sum_of_betas_and_the_exponential_bounds():
    s = schedules.linear(1000)
    assert math.isclose(s.beta.sum(), 1000 * (1e-4 + 0.02) / 2, rel_tol=RTOL64)
    # book proposition ch3-prop-bounds: exp(-sum beta / (1 - max beta)) <= alpha_bar_T <= exp(-sum beta).
    for name in schedules.SCHEDULES:
        for T in (10, 100, 1000):  # noqa: N806
            beta = schedules.make_schedule(name, T).beta[1:]
            alpha_bar_T = schedules.make_schedule(name, T).alpha_bar[-1]  # noqa: N806
            assert math.exp(-beta.sum() / (1 - beta.max())) <= alpha_bar_T <= math.exp(-beta.sum())


def test_golden_values():
    # REFERENCE sheet (diffusers' defaults and Stable Diffusion), and the anatomy chapter's crossing t = 260.
    assert f"{schedules.linear().alpha_bar[-1]:.1e}" == "4.0e-05"
    sd = schedules.quadratic(1000, *schedules.STABLE_DIFFUSION_BETAS)
    assert f"{sd.alpha_bar[-1].sqrt():.3f}" == "0.068"
    assert f"{schedules.cosine().beta[1]:.1e}" == "4.1e-05"
    assert int((schedules.linear().log_snr < 0).nonzero()[0]) == 260


# ---------------------------------------------------------------- properties every schedule has


@pytest.mark.parametrize("name", schedules.SCHEDULES)
@pytest.mark.parametrize("T", [1, 10, 1000])
def test_every_schedule_has_T_plus_1_entries_and_decreases(name, T):  # noqa: N802, N803
    s = schedules.make_schedule(name, T)
    assert s.name == name and s.T == T
    for values in (s.beta, s.alpha, s.alpha_bar, s.snr, s.log_snr):
        assert values.shape == (T + 1,) and values.dtype == torch.float64
    assert s.beta[0] == 0 and s.alpha[0] == 1 and s.alpha_bar[0] == 1 and math.isinf(s.snr[0])
    assert ((s.beta[1:] > 0) & (s.beta[1:] < 1)).all()
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all()
    assert (s.log_snr[1:] < s.log_snr[:-1]).all()
    assert torch.equal(s.alpha, 1 - s.beta)


# ---------------------------------------------------------------- diffusers' DDPMScheduler


@pytest.mark.parametrize("name", schedules.SCHEDULES)
@pytest.mark.parametrize("T", [1, 10, 100, 1000])
@pytest.mark.parametrize(("beta_1", "beta_T"), [(1e-4, 0.02), (0.00085, 0.012), (1e-3, 0.05)])
def test_agrees_with_diffusers(name, T, beta_1, beta_T):  # noqa: N803
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler(num_train_timesteps=T, beta_start=beta_1, beta_end=beta_T, beta_schedule=schedules.DIFFUSERS_NAMES[name])
    kwargs = {} if name == "cosine" else {"beta_1": beta_1, "beta_T": beta_T}  # diffusers' cosine ignores the range
    s = schedules.make_schedule(name, T, **kwargs)
    # diffusers counts i = 0..T-1: its index i is the book's t = i + 1.
    beta, alpha_bar = s.beta[1:], s.alpha_bar[1:]
    # Betas: a handful of float32 operations each (linspace, sqrt, square, sigmoid), each within u, the
    # square doubling the relative error: 16 u bounds them with room to spare.
    assert ((beta - ddpm.betas.double()).abs() <= 16 * U32 * beta).all()
    # alpha_bar: a float32 cumulative product of T factors. Its rounding errors add like a random walk of T
    # steps of size <= u; we allow 4 sqrt(T) u (the worst case T u would hide an index shift at small T).
    assert (alpha_bar - ddpm.alphas_cumprod.double()).abs().max() <= 4 * math.sqrt(T) * U32
    # A shift of the index by one would show: the book's alpha_bar_0 = 1 is not diffusers' first entry.
    assert (alpha_bar[0] - ddpm.alphas_cumprod[0].double()).abs() < (1 - alpha_bar[0]) / 2


# ---------------------------------------------------------------- Schedule.at and Schedule.to


def test_at_shapes_and_values():
    s = schedules.linear(100)
    picked = s.at(s.alpha_bar, 7, ndim=4)
    assert picked.shape == () and picked == s.alpha_bar[7]
    t = torch.tensor([0, 1, 100])
    picked = s.at(s.alpha_bar, t, ndim=4)
    assert picked.shape == (3, 1, 1, 1)
    assert torch.equal(picked.flatten(), s.alpha_bar[t])
    assert s.at(s.beta, t, ndim=1).shape == (3,)
    assert s.at(s.beta, torch.tensor([], dtype=torch.long), ndim=2).shape == (0, 1)


def test_to_casts_and_keeps_the_original():
    s = schedules.cosine(10)
    s32 = s.to(dtype=torch.float32)
    assert s32.name == "cosine" and s32.T == 10
    for values in (s32.beta, s32.alpha, s32.alpha_bar):
        assert values.dtype == torch.float32 and values.device.type == "cpu"
    assert torch.allclose(s32.alpha_bar.double(), s.alpha_bar, rtol=U32, atol=0.0)
    assert s.beta.dtype == torch.float64
    assert s.to("cpu").beta.device.type == "cpu"


# ---------------------------------------------------------------- how much survives at t = T


def test_prior_kl_is_the_gaussian_kl():
    s = schedules.linear(50)
    x0 = torch.linspace(-1, 1, 2 * 3 * 4, dtype=torch.float64).reshape(2, 3, 4)
    a = s.alpha_bar[-1]
    q = torch.distributions.Normal(a.sqrt() * x0, (1 - a).sqrt())
    direct = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).mean(1)
    kl = schedules.prior_kl(s, x0)
    assert kl.shape == (2,) and (kl > 0).all()
    assert torch.allclose(kl, direct, rtol=1e-10)


def test_nearest_mean_label_and_the_chance_bound():
    means = torch.eye(3).reshape(3, 1, 3)
    assert torch.equal(schedules.nearest_mean_label(0.5 * means, means, 0.25), torch.arange(3))
    # The means must be scaled by sqrt(alpha_bar_t): 0.4 = sqrt(0.04) * 2 belongs to the mean 2, not to 0.
    centres = torch.tensor([[0.0], [2.0]])
    assert schedules.nearest_mean_label(torch.tensor([[0.4]]), centres, 0.04).tolist() == [1]
    # Two classes +-m in d = 16 dimensions with ||m|| = 2: the nearest scaled mean is right with probability
    # Phi(sqrt(alpha_bar) ||m|| / sqrt(1 - alpha_bar)), and never above 1/2 + sqrt(KL/2) (proposition ch3-prop-chance).
    s = schedules.linear(250)
    a = float(s.alpha_bar[-1])
    m = torch.full((16,), 0.5, dtype=torch.float64)
    n = 20_000
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=generator)
    x0 = torch.where(labels[:, None] == 0, m, -m)
    x_T = a**0.5 * x0 + (1 - a) ** 0.5 * torch.randn(n, 16, generator=generator, dtype=torch.float64)  # noqa: N806
    accuracy = (schedules.nearest_mean_label(x_T, torch.stack([m, -m]), a) == labels).double().mean()
    exact = 0.5 * (1 + math.erf(a**0.5 * 2.0 / (1 - a) ** 0.5 / math.sqrt(2)))
    # The exact accuracy is about 0.72; its standard error with n = 20,000 is 0.0032: we allow 5 of them.
    assert abs(accuracy - exact) < 5 * math.sqrt(exact * (1 - exact) / n)
    kl_total = 16 * float(schedules.prior_kl(s, x0[:1]))
    assert exact <= 0.5 + math.sqrt(kl_total / 2)


def test_config_for_profile():
    assert schedules.SchedulesConfig.for_profile("quick").n_test == 1000
    full = schedules.SchedulesConfig.for_profile("full")
    assert full.n_test == 2500 and full.T_values == (10, 50, 100, 250, 1000, 4000)
    assert max(full.grid_t) <= schedules.DEFAULT_T
    with pytest.raises(ValueError, match="valid profiles are: quick, full"):
        schedules.SchedulesConfig.for_profile("huge")


def test_plots_draw():
    from diffnotes.plotting import schedules as plots

    sched = [schedules.make_schedule(name, 20) for name in schedules.SCHEDULES]
    fig = plots.plot_schedule_curves(sched)
    assert len(fig.axes) == 3 and len(fig.axes[1].lines) == 4
    x0, eps = torch.zeros(1, 1, 8, 8), torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fig = plots.plot_noised_grid(x0, sched, [0, 10, 20], eps)
    assert len(fig.axes) == 12
    with pytest.raises(ValueError, match="labels must give one name per schedule"):
        plots.plot_schedule_curves(sched, labels=["a"])
    with pytest.raises(ValueError, match=r"x0 must have shape \(1, C, H, W\)"):
        plots.plot_noised_grid(torch.zeros(2, 1, 8, 8), sched, [0], eps)
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("T", [0, -1, 2.5, True, "10"])
def test_bad_T(T):  # noqa: N802, N803
    for name in schedules.SCHEDULES:
        with pytest.raises(ValueError, match=r"T must be a positive integer"):
            schedules.make_schedule(name, T)


@pytest.mark.parametrize(("beta_1", "beta_T", "bad"), [(0.0, 0.02, "beta_1"), (1e-4, 1.0, "beta_T"), (-1e-4, 0.02, "beta_1")])
def test_bad_beta_range(beta_1, beta_T, bad):  # noqa: N803
    for build in (schedules.linear, schedules.quadratic, schedules.sigmoid):
        with pytest.raises(ValueError, match=rf"{bad} must lie in the open interval \(0, 1\)"):
            build(10, beta_1, beta_T)


def test_bad_betas_and_alpha_bars():
    with pytest.raises(ValueError, match=r"beta must lie in the open interval \(0, 1\)"):
        schedules.from_betas(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match=r"beta must lie in the open interval \(0, 1\)"):
        schedules.from_betas(torch.tensor([0.0, 0.1]))
    with pytest.raises(ValueError, match="beta must be a non-empty 1-D tensor"):
        schedules.from_betas(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="alpha_bar must be strictly decreasing"):
        schedules.from_alpha_bar(torch.tensor([0.9, 0.95, 0.5]))
    with pytest.raises(ValueError, match="alpha_bar must be strictly decreasing"):
        schedules.from_alpha_bar(torch.tensor([1.0, 0.5]))  # alpha_bar_1 = alpha_bar_0 = 1 means beta_1 = 0
    with pytest.raises(ValueError, match=r"alpha_bar must lie in \(0, 1\]"):
        schedules.from_alpha_bar(torch.tensor([0.5, 0.0]))


def test_bad_schedule_parameters():
    with pytest.raises(ValueError, match="kappa must be > 0"):
        schedules.sigmoid(10, kappa=0.0)
    with pytest.raises(ValueError, match="s must be >= 0"):
        schedules.cosine(10, s=-0.1)
    with pytest.raises(ValueError, match=r"max_beta must lie in the open interval \(0, 1\)"):
        schedules.cosine(10, max_beta=1.0)


@pytest.mark.parametrize("t", [-1, 11, torch.tensor([0, 11]), torch.tensor([-2, 3])])
def test_t_outside_0_to_T(t):  # noqa: N802
    s = schedules.linear(10)
    with pytest.raises(ValueError, match=r"t must lie in 0\.\.T=10"):
        s.at(s.alpha_bar, t, ndim=1)


def test_t_must_be_integer():
    s = schedules.linear(10)
    with pytest.raises(ValueError, match=r"t must hold integers in 0\.\.T=10"):
        s.at(s.alpha_bar, torch.tensor([1.5]), ndim=1)


def test_unknown_schedule_name():
    with pytest.raises(ValueError, match=r"name='scaled_linear' is not a schedule; valid schedules are: linear, quadratic, sigmoid, cosine"):
        schedules.make_schedule("scaled_linear")


def test_nearest_mean_label_shapes():
    with pytest.raises(ValueError, match=r"class_means must have shape \(K, \*\(1, 4\)\)"):
        schedules.nearest_mean_label(torch.zeros(5, 1, 4), torch.zeros(3, 1, 5), 0.5)
