"""Latent diffusion's entry points: the autoencoder and the latent model train, resume and export with provenance,
and the latent model is the digit model's U-Net, loop and sampler on latents."""

import json

import pytest
import torch
from conftest import gen

from diffnotes import files, latent, pretrained, schedules, train_autoencoder, train_latent
from diffnotes.data import load_mnist_5k
from diffnotes.latent import LATENT_UNET
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.unet import UNet, UNetConfig, count_parameters
from diffnotes.samplers.ddim import ddim_sample
from diffnotes.samplers.ddpm import ddpm_sample

TINY_LATENT_UNET = UNetConfig(in_channels=4, widths=(8, 16), attention=(False, True), groups=4, heads=2)


def test_the_latent_unet_models_7x7x4_latents_with_the_samplers_of_the_pixel_model():
    torch.manual_seed(0)
    model = UNet(LATENT_UNET).eval()
    assert 0.9 < count_parameters(model) / count_parameters(UNet(pretrained.DIGITS_UNET)) < 1.1
    schedule = pretrained.digits_schedule()
    z_T = torch.randn(2, 4, 7, 7, generator=gen())
    with torch.no_grad():
        assert model(z_T, torch.tensor([1, 1000])).shape == (2, 4, 7, 7)
        assert ddim_sample(model, schedule, z_T, 3).shape == (2, 4, 7, 7)
    tiny = UNet(TINY_LATENT_UNET).eval()
    with torch.no_grad():
        assert ddpm_sample(tiny, schedules.linear(T=20), z_T, generator=gen(1)).shape == (2, 4, 7, 7)


def test_the_held_out_digits_are_the_classifiers_500_balanced_ones():
    _, labels = load_mnist_5k()
    train_idx, held = train_autoencoder.heldout_split(labels)
    assert len(held) == 500 and len(train_idx) == 4500 and set(train_idx.tolist()).isdisjoint(held.tolist())
    assert torch.bincount(labels[held], minlength=10).tolist() == [50] * 10


def test_reconstruction_quality_of_a_perfect_and_of_a_useless_autoencoder():
    images, labels = load_mnist_5k()
    images, labels = images[::50], labels[::50]  # 100 digits, 10 of each class

    class Identity(Autoencoder):  # decodes the image it was given: the errors are 0 and the reads the originals'
        def encode(self, x):
            return type("Posterior", (), {"mean": x})()

        def decode(self, z):
            return z

    perfect = train_autoencoder.measure_reconstruction(Identity(), images, labels)
    assert perfect["mse"] == 0.0 and perfect["psnr_db"] is None
    assert perfect["correct_confident_reconstructions"] == perfect["correct_confident_originals"]
    assert perfect["correct_confident_originals"] > 0.9
    torch.manual_seed(0)
    useless = train_autoencoder.measure_reconstruction(Autoencoder(), images, labels)
    assert useless["mse"] > 0.1 and useless["correct_confident_reconstructions"] < 0.3 and useless["n"] == 100


@pytest.fixture
def few_digits(monkeypatch):
    """The entry points on 200 real digits (20 per class), 150 for training and 50 held out, and a tiny U-Net."""
    images, labels = load_mnist_5k()
    images, labels = images[::25], labels[::25]
    for module in (train_autoencoder, train_latent):
        monkeypatch.setattr(module, "load_mnist_5k", lambda: (images, labels))
    monkeypatch.setattr(train_autoencoder, "heldout_split", lambda labels: (torch.arange(150), torch.arange(150, 200)))
    monkeypatch.setattr(train_latent, "LATENT_UNET", TINY_LATENT_UNET)
    return images


def test_both_entry_points_train_resume_and_export(tmp_path, few_digits):
    ae_checkpoint, ae_out = tmp_path / "ae_run.pt", tmp_path / "ae.pt"
    common = ["--batch-size", "4", "--log-every", "1", "--checkpoint-every", "2", "--device", "cpu",
              "--warmup-steps", "1", "--mixed-precision", "fp32"]
    assert train_autoencoder.main(["--checkpoint", str(ae_checkpoint), "--steps", "2", *common]) == 0
    assert train_autoencoder.main(["--checkpoint", str(ae_checkpoint), "--steps", "3", "--export", str(ae_out),
                                   "--seconds", "5", *common]) == 0
    record = json.loads(ae_out.with_suffix(".json").read_text())
    assert record["steps"] == 3 and record["sha256"] == files.sha256(ae_out) and record["seconds"] >= 5
    assert record["latent_shape"] == [4, 7, 7] and record["train_config"]["kl_weight"] == 1e-6
    assert record["quality"]["n"] == 50 and 0 <= record["quality"]["correct_confident_reconstructions"] <= 1
    assert len(record["loss_history"]["kl"]) == 3 and "train_autoencoder" in record["command"]

    checkpoint, out = tmp_path / "latent_run.pt", tmp_path / "latent.pt"
    args = ["--autoencoder", str(ae_out), "--checkpoint", str(checkpoint), *common]
    assert train_latent.main([*args, "--steps", "2"]) == 0
    quality = ["--quality-samples", "12", "--quality-steps", "2"]
    assert train_latent.main([*args, "--steps", "4", "--export", str(out), *quality]) == 0
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["steps"] == 4 and provenance["sha256"] == files.sha256(out)
    assert provenance["autoencoder"]["sha256"] == record["sha256"] and provenance["scale_factor"] > 0
    assert provenance["quality"]["n"] == 12 and provenance["quality"]["meets_bar"] is False
    assert provenance["model_config"]["in_channels"] == 4 and 0 < provenance["posterior_std_over_latent_std"] < 10
    model = latent.load_latent_model(out, provenance["sha256"], TINY_LATENT_UNET)
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(ValueError, match="do not fit a UNet with UNetConfig\\(in_channels=4, widths=\\(64, 64\\)"):
        latent.load_latent_model(out, provenance["sha256"], LATENT_UNET)
    with pytest.raises(ValueError, match="altered or corrupted"):
        latent.load_latent_model(out, "0" * 64, TINY_LATENT_UNET)


def test_the_latent_entry_point_refuses_an_autoencoder_without_its_record_or_hash(tmp_path, few_digits):
    weights = tmp_path / "ae.pt"
    torch.save(Autoencoder().state_dict(), weights)
    args = ["--autoencoder", str(weights), "--checkpoint", str(tmp_path / "run.pt"), "--steps", "1"]
    with pytest.raises(FileNotFoundError, match="no provenance record"):
        train_latent.main(args)
    record = {"sha256": "0" * 64, "model_config": {"latent_channels": 4, "widths": [16, 32, 64], "res_blocks": 1,
                                                    "groups": 8, "image_size": 28, "image_channels": 1}}
    weights.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="altered or corrupted"):
        train_latent.main(args)
