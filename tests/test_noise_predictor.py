"""The toy noise predictor of chapter 5 and its yardsticks: diffnotes.nets.mlp, diffnotes.training.train_toy,
diffnotes.nets.exact.affine_eps and diffnotes.evaluation.statistics."""

import math

import pytest
import torch
from conftest import gen

from diffnotes import objective, posterior, schedules, toy, training
from diffnotes.evaluation import statistics
from diffnotes.forward import q_sample
from diffnotes.nets import exact as exact_eps
from diffnotes.nets import mlp
from diffnotes.objective import simple_loss
from diffnotes.posterior import predict_x0
from diffnotes.samplers.ddpm import ddpm_sample


def randomised(model, seed=1):
    """The MLP with its zero output layer replaced by random weights, so that its output depends on the input."""
    with torch.no_grad():
        model.out.weight.copy_(torch.randn(model.out.weight.shape, generator=gen(seed)))
    return model


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 5, 64])
def test_mlp_returns_the_shape_of_x_t_and_starts_as_the_zero_predictor(dim, batch):
    model = mlp.MLP(mlp.MLPConfig(dim=dim, T=50, hidden=16, layers=2))
    x_t = torch.randn(batch, dim, generator=gen())
    t = torch.randint(1, 51, (batch,), generator=gen(1))
    out = model(x_t, t)
    assert out.shape == (batch, dim) and out.dtype == x_t.dtype
    assert torch.equal(out, torch.zeros(batch, dim))  # the zero-initialised last layer
    assert randomised(model)(x_t, t).shape == (batch, dim)


def test_untrained_loss_is_the_mean_squared_noise():
    s = schedules.cosine(T=100)
    model = mlp.MLP(mlp.MLPConfig(T=100, hidden=16))
    x0, eps = toy.moons(64, gen()), torch.randn(64, 2, generator=gen(1))
    t = torch.randint(1, 101, (64,), generator=gen(2))
    assert torch.isclose(simple_loss(model, s, x0, t, eps), (eps**2).mean())
    assert torch.allclose(objective.loss_at(model, s, x0, 30, eps), (eps**2).mean(dim=1))


def test_time_embedding_is_what_lets_the_output_depend_on_t():
    x_t = torch.randn(4, 2, generator=gen()).repeat(2, 1)  # the same points twice
    t = torch.tensor([3] * 4 + [70] * 4)
    with_t = randomised(mlp.MLP(mlp.MLPConfig(T=100, hidden=16)))(x_t, t)
    blind = randomised(mlp.MLP(mlp.MLPConfig(T=100, hidden=16, emb_dim=0)))(x_t, t)
    assert not torch.allclose(with_t[:4], with_t[4:], atol=1e-3)
    assert torch.equal(blind[:4], blind[4:])


def test_bad_input_raises_value_error_naming_the_argument():
    model = mlp.MLP(mlp.MLPConfig(T=10, hidden=8))
    x_t, t = torch.zeros(3, 2), torch.ones(3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 2\)"):
        model(torch.zeros(3, 3), t)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 2\)"):
        model(torch.zeros(3, 1, 2), t)
    with pytest.raises(ValueError, match=r"t must be an integer tensor of shape \(B,\)"):
        model(x_t, torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"t must be an integer tensor"):
        model(x_t, torch.ones(3))
    for bad in (0, 11):
        with pytest.raises(ValueError, match=r"t must lie in 1..T=10"):
            model(x_t, torch.full((3,), bad))
    with pytest.raises(ValueError, match="cond must be None"):
        model(x_t, t, torch.zeros(3))
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        mlp.MLPConfig(hidden=0)
    with pytest.raises(ValueError, match="emb_dim must be an even number"):
        mlp.MLPConfig(emb_dim=5)
    with pytest.raises(ValueError, match=r"cov must have shape \(D, D\)"):
        exact_eps.affine_eps_loss(0.5, torch.eye(2)[0])
    with pytest.raises(ValueError, match=r"alpha_bar_t must lie in \[0, 1\]"):
        exact_eps.affine_eps_loss(1.5, torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x_t must be \(B, D\) and mean \(D,\)"):
        exact_eps.affine_eps(torch.zeros(3, 3), 0.5, torch.zeros(2), torch.eye(2))
    with pytest.raises(ValueError, match=r"x and y must be \(m, D\) and \(n, D\)"):
        statistics.energy_distance(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"x and y must be \(m, D\) and \(n, D\)"):
        statistics.nearest_distance(torch.zeros(3), torch.zeros(3, 1))
    cfg = training.ToyTrainConfig(steps=1)
    with pytest.raises(ValueError, match="model_config.T=50 must equal config.T=100"):
        training.train_toy(cfg, mlp.MLPConfig(T=50))


def test_moons_moments_match_a_large_sample():
    n = 400_000
    x = toy.two_moons(n, gen(), noise=toy.MOONS_NOISE)
    mean, cov = toy.moons_moments()
    # Each estimate is an average of n i.i.d. terms; allow 5 of its standard errors, estimated from the terms.
    assert torch.all((x.mean(0) - mean).abs() < 5 * x.std(0) / math.sqrt(n))
    centred = x - mean
    products = centred[:, :, None] * centred[:, None, :]  # (n, 2, 2): the terms whose mean is the covariance
    se = products.std(0) / math.sqrt(n)
    assert torch.all((products.mean(0) - cov).abs() < 5 * se)
    assert torch.all(toy.moons(n, gen()).double().mean(0).abs() < 5 * x.std(0) / math.sqrt(n))


def test_noise_and_clean_data_determine_each_other():
    s = schedules.cosine(T=100)
    x0 = torch.randn(16, 2, generator=gen(), dtype=torch.float64)
    eps = torch.randn(16, 2, generator=gen(1), dtype=torch.float64)
    t = torch.randint(1, 101, (16,), generator=gen(2))
    x_t = q_sample(s, x0, t, eps)
    assert torch.allclose(predict_x0(s, x_t, t, eps), x0, atol=1e-9)
    assert torch.allclose(posterior.eps_from_x0(s, x_t, t, x0), eps, atol=1e-12)
    # Any estimate x0_hat converts to eps_hat, and the squared errors differ by the factor SNR(t).
    x0_hat = torch.randn(16, 2, generator=gen(3), dtype=torch.float64)
    eps_hat = posterior.eps_from_x0(s, x_t, t, x0_hat)
    assert torch.allclose(predict_x0(s, x_t, t, eps_hat), x0_hat, atol=1e-9)
    snr = s.snr[t]
    assert torch.allclose(((eps - eps_hat) ** 2).sum(1), snr * ((x0 - x0_hat) ** 2).sum(1), rtol=1e-9)


def test_affine_predictor_is_the_least_squares_regression_and_its_loss_is_exact():
    s = schedules.cosine(T=100)
    mean, cov = toy.moons_moments()
    n = 200_000
    x0 = toy.two_moons(n, gen(), noise=toy.MOONS_NOISE)  # not centred: the mean enters the predictor
    eps = torch.randn(n, 2, generator=gen(1), dtype=torch.float64)
    for t in (5, 30, 70):
        a = float(s.alpha_bar[t])
        x_t = q_sample(s, x0, t, eps)
        predicted = exact_eps.affine_eps(x_t, a, mean, cov)
        # (1) The closed-form loss equals the Monte Carlo average within 5 standard errors of that average.
        errors = ((eps - predicted) ** 2).mean(1)
        assert abs(float(errors.mean()) - exact_eps.affine_eps_loss(a, cov)) < 5 * float(errors.std()) / math.sqrt(n)
        # (2) It is the least-squares affine fit of eps on x_t: the fitted coefficients have standard errors of
        # about 1/sqrt(n Var(x_t)) < 0.005 here, so the predictions on a few points agree to 0.03.
        design = torch.cat([x_t, torch.ones(n, 1, dtype=torch.float64)], dim=1)
        coef = torch.linalg.lstsq(design, eps).solution  # (3, 2)
        probe = torch.tensor([[0.0, 0.0], [1.0, -0.5], [-1.0, 1.0]], dtype=torch.float64)
        fitted = torch.cat([probe, torch.ones(3, 1, dtype=torch.float64)], dim=1) @ coef
        assert torch.allclose(exact_eps.affine_eps(probe, a, mean, cov), fitted, atol=0.03)


def test_affine_loss_closed_forms():
    cov = torch.tensor([[0.7, -0.2], [-0.2, 0.3]], dtype=torch.float64)
    assert exact_eps.affine_eps_loss(1.0, cov) == pytest.approx(1.0, abs=1e-12)  # x_t = x_0 holds no noise
    assert exact_eps.affine_eps_loss(0.0, cov) == pytest.approx(0.0, abs=1e-12)  # x_t is the noise
    # Isotropic data, C = v I: the loss is a v / (a v + 1 - a) (an exercise of the chapter).
    for a, v in ((0.3, 0.5), (0.9, 2.0)):
        iso = v * torch.eye(3, dtype=torch.float64)
        assert exact_eps.affine_eps_loss(a, iso) == pytest.approx(a * v / (a * v + 1 - a), rel=1e-12)


def test_energy_distance_identities():
    x = torch.randn(50, 2, generator=gen(), dtype=torch.float64)
    y = torch.randn(40, 2, generator=gen(1), dtype=torch.float64) + 0.5
    assert statistics.energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert statistics.energy_distance(x, y) == pytest.approx(statistics.energy_distance(y, x), rel=1e-12)
    assert statistics.energy_distance(x, y) > 0
    # Two point masses a and b: 2|a - b|.
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, 6.0]])
    assert statistics.energy_distance(a.repeat(3, 1), b.repeat(5, 1)) == pytest.approx(10.0, rel=1e-12)
    # In one dimension, the energy distance is 2 * integral of (F - G)^2 for the empirical cdfs F and G.
    u, w = x[:, :1], y[:, :1]
    points = torch.cat([u, w]).flatten().sort().values
    f = (u.flatten()[None, :] <= points[:-1, None]).double().mean(1)  # cdf on each interval between points
    g = (w.flatten()[None, :] <= points[:-1, None]).double().mean(1)
    integral = ((f - g) ** 2 * points.diff()).sum()
    assert statistics.energy_distance(u, w) == pytest.approx(2 * float(integral), rel=1e-10)


def test_chunked_distances_match_the_direct_computation():
    x = torch.randn(300, 2, generator=gen(), dtype=torch.float64)
    y = torch.randn(3_000, 2, generator=gen(1), dtype=torch.float64)  # y against y runs in 3 chunks of rows
    assert torch.equal(statistics.nearest_distance(x, y), torch.cdist(x, y).min(dim=1).values)
    direct = 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()
    assert statistics.energy_distance(x, y) == pytest.approx(float(direct), rel=1e-9)


def test_initial_weights_depend_on_the_seed_alone():
    cfg = training.ToyTrainConfig(steps=3, n_data=64, batch_size=16, hidden=8)
    torch.manual_seed(123)
    first = training.train_toy(cfg)
    torch.manual_seed(456)
    second = training.train_toy(cfg)
    assert first.history == second.history
    for p, q in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)


def test_training_lowers_the_loss_and_samples_land_near_the_data():
    cfg = training.ToyTrainConfig(hidden=32, n_data=4_000, steps=400, batch_size=256, lr=5e-3, ema_decay=0.9)
    state = training.train_toy(cfg)
    losses = state.history["loss"]
    assert losses[0] > 0.9  # the zero predictor's 1, less what the first few steps learn
    assert losses[-1] < 0.5
    s, model = cfg.schedule(), state.ema
    # At t = 10 the trained model beats the zero predictor (loss 1) and the best affine predictor (loss 0.91) on
    # fresh data: the mean of the paired differences of the per-point errors lies 5 standard errors below zero.
    n, t = 4_000, 10
    x0, eps = toy.moons(n, gen(7)), torch.randn(n, 2, generator=gen(8))
    errors = objective.loss_at(model, s, x0, t, eps)
    affine_eps = exact_eps.affine_eps(q_sample(s, x0, t, eps), s.alpha_bar[t], torch.zeros(2), toy.moons_moments()[1])
    affine = ((eps - affine_eps) ** 2).mean(1)
    for baseline in (affine, (eps**2).mean(1)):
        difference = errors - baseline
        assert difference.mean() < -5 * difference.std() / math.sqrt(n)
    # Samples from N(0, I) pushed through Algorithm 2 land much nearer the data than N(0, I) itself.
    x_T = torch.randn(500, 2, generator=gen(9))
    samples = ddpm_sample(model, s, x_T, generator=gen(10))
    data = toy.moons(500, gen(11))
    assert statistics.energy_distance(samples, data) < 0.3 * statistics.energy_distance(x_T, data)


def test_profiles():
    quick, full = training.ToyTrainConfig.for_profile("quick"), training.ToyTrainConfig.for_profile("full")
    assert quick.steps < full.steps and quick.n_eval < full.n_eval
    loop = quick.loop_config()
    assert (loop.steps, loop.batch_size, loop.lr) == (quick.steps, quick.batch_size, quick.lr)
    assert loop.mixed_precision == "fp32"  # the toy runs are float32 on every machine
    assert quick.model_config(emb_dim=0) == mlp.MLPConfig(T=quick.T, hidden=quick.hidden, emb_dim=0)
    assert quick.schedule().T == quick.T and quick.schedule().name == "cosine"
