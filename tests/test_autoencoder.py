"""The KL autoencoder of latent diffusion: shapes, the KL term against its closed form, the scale factor, bad input,
and a short training run that learns and resumes exactly."""

import pytest
import torch
from conftest import gen

from diffnotes import files, perfnotes
from diffnotes.data import load_mnist_5k
from diffnotes.gaussians import gaussian_kl
from diffnotes.latent import (
    AutoencoderTrainConfig,
    autoencoder_loss,
    decode_latents,
    encode_dataset,
    fit_autoencoder,
    load_autoencoder,
    scale_factor,
)
from diffnotes.nets.autoencoder import LATENT_SIZES, Autoencoder, AutoencoderConfig, DiagonalGaussian

#: An autoencoder small enough to train for a few steps in a test: 28x28x1 -> 7x7x4 with narrow widths.
TINY = AutoencoderConfig(widths=(8, 16, 16), groups=4)


def model(config: AutoencoderConfig = TINY, seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(config)


@pytest.mark.parametrize("name", sorted(LATENT_SIZES))
def test_encoder_and_decoder_shapes_for_every_latent_size(name):
    config = LATENT_SIZES[name]
    h, w, c = (int(s) for s in name.split("x"))
    assert config.latent_shape == (c, h, w)
    ae = model(config)
    x = torch.rand(3, 1, 28, 28, generator=gen()) * 2 - 1
    posterior = ae.encode(x)
    assert posterior.mean.shape == posterior.logvar.shape == (3, c, h, w)
    assert ae.decode(posterior.mean).shape == (3, 1, 28, 28)
    x_hat, _ = ae(x, gen(1))
    assert x_hat.shape == x.shape


def test_latent_sizes_run_from_2x_to_12x_fewer_numbers():
    sizes = {name: torch.Size(c.latent_shape).numel() for name, c in LATENT_SIZES.items()}
    assert sizes == {"14x14x2": 392, "7x7x4": 196, "7x7x2": 98, "4x4x4": 64}
    assert LATENT_SIZES["4x4x4"].padded_size == 32  # three halvings of 28 need 32


def test_kl_matches_torch_distributions_and_the_gaussian_kl():
    mean = torch.randn(5, 4, 7, 7, generator=gen(), dtype=torch.float64)
    logvar = torch.randn(5, 4, 7, 7, generator=gen(1), dtype=torch.float64)
    posterior = DiagonalGaussian(mean, logvar)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    torch.testing.assert_close(posterior.kl(), expected, rtol=1e-12, atol=1e-12)
    book = gaussian_kl(mean, logvar.exp(), torch.zeros(()), torch.ones(())).flatten(1).sum(1)
    torch.testing.assert_close(posterior.kl(), book.to(torch.float64), rtol=1e-10, atol=1e-10)


def test_kl_matches_a_monte_carlo_estimate():
    """KL = E_q[log q(z) - log N(z; 0, I)], by 200,000 samples of one small posterior (4 standard errors)."""
    mean = torch.tensor([[0.5, -1.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[-1.0, 0.5, 0.0]], dtype=torch.float64)
    posterior = DiagonalGaussian(mean, logvar)
    z = DiagonalGaussian(mean.expand(200_000, 3), logvar.expand(200_000, 3)).sample(gen())
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    log_ratio = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(1)
    stderr = float(log_ratio.std()) / len(log_ratio) ** 0.5
    assert abs(float(log_ratio.mean()) - float(posterior.kl()[0])) < 4 * stderr


def test_posterior_samples_have_the_posterior_moments():
    mean, logvar = torch.full((20_000, 1), 0.3), torch.full((20_000, 1), -2.0)
    z = DiagonalGaussian(mean, logvar).sample(gen())
    assert abs(float(z.mean()) - 0.3) < 4 * 0.37 / 20_000**0.5
    assert float(z.std()) == pytest.approx(float(torch.tensor(-1.0).exp()), rel=0.03)
    assert float(DiagonalGaussian(mean, torch.full_like(mean, -100.0)).logvar.min()) == -30.0  # LDM's clamp


def test_the_loss_is_reconstruction_plus_the_weighted_kl():
    ae, x = model(), torch.rand(4, 1, 28, 28, generator=gen()) * 2 - 1
    loss, reconstruction, kl = autoencoder_loss(ae, x, kl_weight=1e-3, generator=gen(1))
    x_hat, posterior = ae(x, gen(1))
    torch.testing.assert_close(reconstruction, (x - x_hat).abs().flatten(1).sum(1).mean())
    torch.testing.assert_close(kl, posterior.kl().mean())
    torch.testing.assert_close(loss, reconstruction + 1e-3 * kl)
    assert AutoencoderTrainConfig().kl_weight == 1e-6  # Rombach et al.'s KL autoencoders


def test_scaled_latents_have_unit_variance():
    """The factor measured on a first shuffled batch of 250 digits (as Stable Diffusion's 0.18215 was) gives 750
    others unit variance within 10 %; on the latents it was measured on, exactly. (The offline digits are sorted by
    class, so the batch must be drawn at random: the first 250 are all zeros.)"""
    images = load_mnist_5k()[0][torch.randperm(5000, generator=gen())[:1000]]
    latents = encode_dataset(model(), images)
    assert latents.shape == (1000, 4, 7, 7)
    scale = scale_factor(latents[:250])
    assert float((scale * latents[:250]).double().var()) == pytest.approx(1.0, abs=1e-6)
    assert float((scale * latents[250:]).var()) == pytest.approx(1.0, rel=0.1)
    assert float((scale_factor(latents) * latents).double().var()) == pytest.approx(1.0, abs=1e-6)


def test_scale_factor_rejects_constant_or_empty_latents():
    with pytest.raises(ValueError, match="latents must vary"):
        scale_factor(torch.ones(10, 4, 7, 7))
    with pytest.raises(ValueError, match="latents must be a tensor of at least two finite values"):
        scale_factor(torch.tensor([float("nan"), 1.0]))


def test_decode_latents_undoes_the_scale_and_clips():
    ae, z = model(), torch.randn(2, 4, 7, 7, generator=gen())
    images = decode_latents(ae, 0.5 * z, 0.5)
    torch.testing.assert_close(images, ae.eval().decode(z).clamp(-1, 1).detach())
    with pytest.raises(ValueError, match="scale must be positive"):
        decode_latents(ae, z, 0.0)


@pytest.mark.parametrize(("shape", "expected"), [((2, 1, 32, 32), "x must be images of shape \\(B, 1, 28, 28\\)"),
                                                 ((2, 3, 28, 28), "x must be images of shape \\(B, 1, 28, 28\\)"),
                                                 ((1, 28, 28), "got shape \\(1, 28, 28\\)")])
def test_encoding_an_image_of_the_wrong_size_or_channels_is_refused(shape, expected):
    with pytest.raises(ValueError, match=expected):
        model().encode(torch.zeros(shape))


def test_decoding_a_latent_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="z must be latents of shape \\(B, 4, 7, 7\\), got shape \\(2, 4, 8, 8\\)"):
        model().decode(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="z must be a float tensor"):
        model().decode(torch.zeros(2, 4, 7, 7, dtype=torch.int64))


def test_bad_configs_name_the_argument():
    with pytest.raises(ValueError, match="groups=8 must divide every width"):
        AutoencoderConfig(widths=(12, 24))
    with pytest.raises(ValueError, match="latent_channels must be a positive integer"):
        AutoencoderConfig(latent_channels=0)
    with pytest.raises(ValueError, match="widths must be a non-empty tuple"):
        AutoencoderConfig(widths=())
    with pytest.raises(ValueError, match="kl_weight must be >= 0"):
        AutoencoderTrainConfig(kl_weight=-1.0)


def test_weights_load_hash_checked_and_only_into_their_own_shape(tmp_path):
    path = tmp_path / "ae.pt"
    torch.save({k: v.half() for k, v in model().state_dict().items()}, path)
    digest = files.sha256(path)
    loaded = load_autoencoder(path, digest, TINY)
    assert not loaded.training and all(p.dtype == torch.float32 for p in loaded.parameters())
    with pytest.raises(ValueError, match="do not fit an Autoencoder with AutoencoderConfig\\(latent_channels=2"):
        load_autoencoder(path, digest, AutoencoderConfig(latent_channels=2, widths=(8, 16, 16), groups=4))
    with pytest.raises(ValueError, match="altered or corrupted"):
        load_autoencoder(path, "0" * 64, TINY)
    with pytest.raises(FileNotFoundError, match="python -m diffnotes.train_autoencoder"):
        load_autoencoder(tmp_path / "missing.pt", digest, TINY)


def tiny_run(**overrides) -> AutoencoderTrainConfig:
    settings = {"steps": 30, "batch_size": 8, "lr": 3e-3, "warmup_steps": 5, "log_every": 5, "checkpoint_every": 10,
                "mixed_precision": "fp32", "ema_decay": 0.9}
    return AutoencoderTrainConfig(**{**settings, **overrides})


def test_a_short_run_lowers_the_loss():
    images = load_mnist_5k()[0][:64]
    state = fit_autoencoder(model(), images, tiny_run(), progress=False)
    loss = state.history["loss"]
    assert len(loss) == 6 and loss[-1] < 0.7 * loss[0]
    assert state.history["step"] == [5, 10, 15, 20, 25, 30] and not state.ema.training


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    images = load_mnist_5k()[0][:64]
    whole = fit_autoencoder(model(), images, tiny_run(steps=20), progress=False)
    checkpoint = tmp_path / "ae.pt"
    fit_autoencoder(model(), images, tiny_run(steps=10), checkpoint=checkpoint, progress=False)
    resumed = fit_autoencoder(model(seed=1), images, tiny_run(steps=20), checkpoint=checkpoint, progress=False)
    assert resumed.step == 20 and resumed.history == whole.history
    assert resumed.machines == [perfnotes.machine()]  # kept by the checkpoint, this machine once
    for a, b in zip(whole.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="other settings \\(kl_weight=1e-06\\)"):
        fit_autoencoder(model(), images, tiny_run(steps=30, kl_weight=0.1), checkpoint=checkpoint, progress=False)


def test_training_refuses_images_of_another_shape():
    with pytest.raises(ValueError, match="images must be images of shape \\(B, 1, 28, 28\\)"):
        fit_autoencoder(model(), torch.zeros(8, 1, 32, 32), tiny_run(), progress=False)
