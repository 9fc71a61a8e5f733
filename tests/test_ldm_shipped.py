"""The shipped latent diffusion model of chapter "Latent diffusion": its two hash-checked networks, the
reconstruction quality and scale factor they record, samples the classifier reads, and the measured saving."""

import pytest
import torch
from conftest import gen

from diffnotes import files, latent, perfnotes, pretrained
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation.classifier import classify
from diffnotes.evaluation.quality import CONFIDENCE_THRESHOLD
from diffnotes.nets.autoencoder import AutoencoderConfig
from diffnotes.train_autoencoder import heldout_split, measure_reconstruction
from diffnotes.train_latent import latent_samples


@pytest.fixture(scope="module")
def autoencoder():
    return pretrained.load_ldm_autoencoder()


@pytest.fixture(scope="module")
def made():
    return pretrained.ldm_provenance()


def test_the_shipped_weights_are_the_recorded_ones(made):
    for key, path, digest in (("autoencoder", pretrained.LDM_AUTOENCODER_WEIGHTS, pretrained.LDM_AUTOENCODER_SHA256),
                              ("model", pretrained.LDM_DIGITS_WEIGHTS, pretrained.LDM_DIGITS_SHA256)):
        assert files.sha256(path) == digest == made[key]["sha256"]
    assert made["model"]["autoencoder"]["sha256"] == pretrained.LDM_AUTOENCODER_SHA256
    for key in ("command", "train_config", "seconds", "device", "quality"):
        assert key in made["autoencoder"] and key in made["model"]


def test_the_autoencoder_reconstructs_held_out_digits_as_recorded(autoencoder, made):
    assert autoencoder.config == AutoencoderConfig() and not autoencoder.training
    images, labels = load_mnist_5k()
    _, held = heldout_split(labels)
    measured = measure_reconstruction(autoencoder, images[held], labels[held])
    recorded = made["autoencoder"]["quality"]
    assert measured["mse"] == pytest.approx(recorded["mse"], rel=1e-3)
    assert measured["mse"] < 0.05  # the bar of the chapter: well below the error of a blurred digit
    share = measured["correct_confident_reconstructions"]
    assert abs(share - recorded["correct_confident_reconstructions"]) <= 0.004  # two of the 500 digits
    assert share >= measured["correct_confident_originals"] - 0.05


def test_the_recorded_scale_factor_gives_latents_of_unit_variance(autoencoder, made):
    images, _ = load_mnist_5k()
    z = latent.encode_dataset(autoencoder, images)
    scale = made["model"]["scale_factor"]
    assert scale == pytest.approx(latent.scale_factor(z), rel=1e-4)
    assert (scale * z).var().item() == pytest.approx(1.0, abs=2e-3)


def test_latent_samples_decode_to_digits_the_classifier_reads(autoencoder, made):
    """32 samples of 25 DDIM steps: the recorded 1,000-sample protocol reads most of them confidently; below half
    would be a broken model (for a model that reads 80 %, fewer than 16 of 32 has a probability under 1e-5)."""
    model = pretrained.load_ldm_model()
    assert made["model"]["quality"]["confident_fraction"] >= 0.8
    samples = latent_samples(model, autoencoder, made["model"]["scale_factor"], n=32, steps=25, eta=1.0, seed=3)
    assert samples.shape == (32, 1, 28, 28) and samples.abs().max() <= 1.0
    confident = (classify(samples).max(1).values > CONFIDENCE_THRESHOLD).double().mean().item()
    assert confident >= 0.5


def test_a_latent_of_the_wrong_shape_is_refused_by_name(autoencoder):
    with pytest.raises(ValueError, match="z"):
        autoencoder.decode(torch.randn(1, 4, 8, 8, generator=gen()))


def test_the_measured_saving_per_training_step_is_at_least_threefold():
    (record,) = perfnotes.load_records("latent_cost")
    results = record["results"]
    assert not results["quick"] and results["ratio_pixel_over_latent"]["train_time"] >= 3.0
    assert results["ratio_pixel_over_latent"]["train_flops"] >= 3.0
