"""The interfaces chapters 13-16 build on: conditioning through training and sampling, samplers that start
anywhere, guidance as a wrapper, latents of any shape."""

import dataclasses

import pytest
import torch
from conftest import TINY_UNET, ScaledInput, gen

from diffnotes import schedules
from diffnotes.nets.guidance import guided
from diffnotes.nets.unet import UNet
from diffnotes.samplers.ddim import ddim_sample
from diffnotes.samplers.ddpm import ddpm_sample, strided_sample
from diffnotes.samplers.timesteps import check_timesteps, starting_at, subsequence
from diffnotes.training import TrainConfig, train


def quick_config(**overrides):
    base = dict(steps=150, batch_size=16, lr=3e-3, warmup_steps=5, log_every=50, ema_decay=0.9, checkpoint_every=1000)
    return TrainConfig(**{**base, **overrides})


def test_a_class_conditional_run_learns_class_dependent_outputs():
    """Class 0 is the all-dark image, class 1 the all-bright one: samples from the same noise follow the label."""
    torch.manual_seed(0)
    images = torch.cat([-torch.ones(32, 1, 8, 8), torch.ones(32, 1, 8, 8)])
    labels = torch.cat([torch.zeros(32), torch.ones(32)]).long()
    s = schedules.cosine(T=100)  # alpha_bar_T ~ 0: x_T carries no trace of the data
    model = UNet(dataclasses.replace(TINY_UNET, num_classes=2))
    state = train(model, images, s, quick_config(steps=300), conditions=labels, progress=False)
    x_T = torch.randn(8, 1, 8, 8, generator=gen(1))
    dark = ddim_sample(state.ema, s, x_T, 10, cond=torch.zeros(8, dtype=torch.long))
    bright = ddim_sample(state.ema, s, x_T, 10, cond=torch.ones(8, dtype=torch.long))
    assert float(dark.mean()) < -0.4 and float(bright.mean()) > 0.4


def test_condition_dropout_swaps_in_the_null_condition_and_needs_one():
    images, labels = torch.zeros(8, 1, 8, 8), torch.arange(8) % 2
    model = UNet(dataclasses.replace(TINY_UNET, num_classes=2))
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[2].clone()))
    train(model, images, schedules.linear(T=10), quick_config(steps=20, cond_dropout=0.5), conditions=labels,
          null_condition=torch.tensor(2), progress=False)
    share = float(torch.cat(seen).eq(2).float().mean())
    assert 0.3 < share < 0.7  # 320 draws at p = 0.5: 5 standard errors is 0.14
    with pytest.raises(ValueError, match="cond_dropout > 0 needs conditions and a null_condition"):
        train(model, images, schedules.linear(T=10), quick_config(steps=1, cond_dropout=0.5), progress=False)
    with pytest.raises(ValueError, match="conditions must hold one condition per example"):
        train(model, images, schedules.linear(T=10), quick_config(steps=1), conditions=labels[:3], progress=False)


@pytest.mark.parametrize("shape", [(4, 7, 7), (4, 8, 8), (2, 6, 10)])
def test_latents_of_any_shape_train_and_sample(shape):
    """A model with in_channels 4 at 7x7 or 8x8 (and a non-square size) trains and samples."""
    latents = torch.randn(16, *shape, generator=gen(2))
    model = UNet(dataclasses.replace(TINY_UNET, in_channels=shape[0]))
    s = schedules.linear(T=50)
    state = train(model, latents, s, quick_config(steps=5, batch_size=4), progress=False)
    assert len(state.history["loss"]) == 0 or all(torch.isfinite(torch.tensor(state.history["loss"])))
    out = ddim_sample(state.ema, s, torch.randn(3, *shape, generator=gen(3)), 5)
    assert out.shape == (3, *shape) and bool(torch.isfinite(out).all())


def test_ddim_started_midway_finishes_the_full_run():
    """Stopping the deterministic sampler at tau_k and restarting there with the rest of the sequence gives the same x_0."""
    s, model = schedules.cosine(T=100), ScaledInput(0)
    x_T = torch.randn(2, 1, 4, 4, generator=gen(4), dtype=torch.float64)
    tau = subsequence(100, 10)
    states = {}
    full = ddim_sample(model, s, x_T, 10, callback=lambda t, x_t, x0: states.__setitem__(t, x_t.clone()))
    rest = starting_at(tau, 60)
    resumed = ddim_sample(model, s, states[60], None, timesteps=rest)
    torch.testing.assert_close(resumed, full, rtol=0, atol=1e-12)


def test_ddpm_started_midway_with_the_same_noise_finishes_the_full_run():
    s, model = schedules.linear(T=50), ScaledInput(0)
    x_T = torch.randn(2, 1, 4, 4, generator=gen(5), dtype=torch.float64)
    g, saved = gen(6), {}

    def keep(t, x_t, x0_hat):
        if t == 20:
            saved.update(x=x_t.clone(), rng=g.get_state())

    full = ddpm_sample(model, s, x_T, generator=g, callback=keep)
    restarted = torch.Generator().set_state(saved["rng"])
    resumed = ddpm_sample(model, s, saved["x"], generator=restarted, timesteps=torch.arange(1, 21))
    torch.testing.assert_close(resumed, full, rtol=0, atol=1e-12)


def test_the_strided_sampler_is_ddpm_along_its_timesteps():
    s, model = schedules.linear(T=60), ScaledInput(0)
    x_T = torch.randn(2, 1, 4, 4, generator=gen(7), dtype=torch.float64)
    a = strided_sample(model, s, x_T, 7, generator=gen(8))
    b = ddpm_sample(model, s, x_T, generator=gen(8), timesteps=subsequence(60, 7, "endpoints"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_sampler_takes_any_callable_predictor():
    s = schedules.linear(T=20)
    out = ddim_sample(lambda x_t, t, cond=None: 0.5 * x_t, s, torch.ones(1, 3), 4)
    assert out.shape == (1, 3)


@pytest.mark.parametrize("bad", [[3, 2, 5], [0, 4], [5, 21], [[1, 2]], [1.0, 2.0], []])
def test_bad_timesteps_are_refused(bad):
    with pytest.raises(ValueError, match="timesteps must"):
        check_timesteps(torch.tensor(bad), 20)


def test_ddim_needs_steps_or_timesteps():
    with pytest.raises(ValueError, match="give steps"):
        ddim_sample(ScaledInput(0), schedules.linear(T=20), torch.ones(1, 3), None)
    with pytest.raises(ValueError, match="lies below every timestep"):
        starting_at(subsequence(20, 4), 3)


def conditional_model():
    model = UNet(dataclasses.replace(TINY_UNET, num_classes=3))
    for p in model.head[-1].parameters():  # the head starts at zero; give it weights so that labels matter
        torch.nn.init.normal_(p, std=0.1, generator=gen(9))
    return model.eval()


def test_guidance_at_one_is_the_conditional_model_and_at_zero_the_unconditional_one():
    model = conditional_model()
    x_t, t = torch.randn(4, 1, 8, 8, generator=gen(10)), torch.tensor([5, 50, 500, 900])
    labels, null = torch.tensor([0, 1, 2, 1]), torch.tensor([3])
    with torch.no_grad():
        conditional, unconditional = model(x_t, t, labels), model(x_t, t, null.expand(4))
        torch.testing.assert_close(guided(model, null, 1.0)(x_t, t, labels), conditional, rtol=0, atol=1e-6)
        torch.testing.assert_close(guided(model, null, 0.0)(x_t, t, labels), unconditional, rtol=0, atol=1e-6)
        w3 = guided(model, null, 3.0)(x_t, t, labels)
        torch.testing.assert_close(w3, unconditional + 3 * (conditional - unconditional), rtol=0, atol=1e-5)
        assert not torch.allclose(conditional, unconditional)  # the test would mean nothing otherwise
        negative = guided(model, torch.tensor([2]), 1.5)(x_t, t, labels)  # a negative prompt: another null
        expected = model(x_t, t, torch.tensor([2]).expand(4))
        torch.testing.assert_close(negative, expected + 1.5 * (conditional - expected), rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), "2", True])
def test_guidance_scale_must_be_a_finite_number(scale):
    with pytest.raises(ValueError, match="scale .* must be a finite number"):
        guided(conditional_model(), torch.tensor([3]), scale)


def test_guidance_needs_a_condition_of_the_right_shape():
    model = guided(conditional_model(), torch.tensor([3, 3]), 2.0)
    x_t, t = torch.zeros(3, 1, 8, 8), torch.tensor([1, 2, 3])
    with pytest.raises(ValueError, match="cond is required"):
        model(x_t, t)
    with pytest.raises(ValueError, match="null_cond must have the shape"):
        model(x_t, t, torch.tensor([0, 1, 2]))
