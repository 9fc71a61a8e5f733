"""Stable Diffusion at digit scale, the package half: attributes measured on drawn shapes, captions, the tokenizer,
the text encoder, guidance on the text model, the training entry point and the pipeline."""

import numpy as np
import pytest
import torch
from conftest import gen

from diffnotes import captions
from diffnotes.nets.guidance import guided
from diffnotes.nets.text import TextEncoder, TextEncoderConfig, TextUNet, TextUNetConfig, Tokenizer
from diffnotes.nets.unet import UNet, UNetConfig
from diffnotes.pipeline import load_text_pipeline


def parallelogram(thickness: float, shear: float = 0.0, length: float = 18.0, supersample: int = 8) -> np.ndarray:
    """A 28x28 stroke in [-1, 1] drawn by its pixel coverage: ``thickness`` pixels wide along the rows, ``length``
    tall, its top leaning right by ``shear`` pixels per row (so its slant is arctan(shear))."""
    g = (np.arange(28 * supersample) + 0.5) / supersample
    y, x = np.meshgrid(g, g, indexing="ij")
    inside = (np.abs(x - 14 + shear * (y - 14)) < thickness / 2) & (np.abs(y - 14) < length / 2)
    return inside.reshape(28, supersample, 28, supersample).mean((1, 3)) * 2 - 1


def test_upright_bars_measure_their_thickness_height_and_width():
    bars = np.stack([parallelogram(k) for k in (1.5, 2, 3, 4, 5)])
    m = captions.measure(bars[:, None])
    np.testing.assert_allclose(m["thickness"], [1.5, 2, 3, 4, 5], atol=0.2)
    np.testing.assert_allclose(m["slant"], 0, atol=1e-6)
    np.testing.assert_allclose(m["width"], [1.5, 2, 3, 4, 5], atol=0.3)
    np.testing.assert_allclose(m["height"], 18, atol=0.6)
    np.testing.assert_allclose(m["area"], 18 * np.array([1.5, 2, 3, 4, 5]), rtol=0.05)


@pytest.mark.parametrize("shear", [0.3, -0.5, 0.8])
def test_parallelograms_measure_their_slant_and_their_thickness_across_the_stroke(shear):
    strokes = np.stack([parallelogram(k, shear) for k in (2, 3, 4)])
    m = captions.measure(strokes)
    np.testing.assert_allclose(np.tan(m["slant"]), shear, atol=0.02)
    across = np.array([2, 3, 4]) / np.sqrt(1 + shear**2)  # the width perpendicular to the stroke
    np.testing.assert_allclose(m["thickness"], across, atol=0.4)
    assert np.all(np.diff(m["thickness"]) > 0)


def test_the_skeleton_of_a_bar_is_one_pixel_wide_and_an_empty_image_measures_zero():
    bar = captions.binarise(parallelogram(4)[None], scale=1)
    skeleton = captions.skeletonize(bar)
    assert skeleton.sum(axis=2).max() == 1 and skeleton.sum() >= 14
    m = captions.measure(-np.ones((1, 28, 28)))
    assert all(m[name][0] == 0 for name in captions.MEASUREMENTS)
    with pytest.raises(ValueError, match="images must have shape"):
        captions.measure(np.zeros(28))


def test_captions_name_the_digit_and_only_the_outer_thirds_of_each_attribute():
    assert captions.caption(7, ["thick", "slanted"]) == "a thick, slanted seven"
    assert captions.caption(7, ["thick", "slanted"], 1) == "seven, thick and slanted"
    assert captions.caption(3, ["thin", "upright", "wide"], 2) == "a three that is thin, upright and wide"
    assert captions.caption(0, [], 2) == "a zero"
    measured = {"thickness": np.array([1.0, 2.0, 3.0]), "slant": np.array([0.0, -0.2, 0.5]),
                "width": np.array([9.0, 10.0, 14.0])}
    labels = np.array([0, 0, 0])
    thresholds = captions.attribute_thresholds(measured, labels)
    words = captions.attribute_words(measured, labels, thresholds)
    assert words == [["thin", "upright", "narrow"], [], ["thick", "slanted", "wide"]]
    with pytest.raises(ValueError, match="digit"):
        captions.caption(10, [])


def test_every_caption_word_is_in_the_vocabulary():
    for digit in range(10):
        for phrasing in range(len(captions.PHRASINGS)):
            text = captions.caption(digit, ["thin", "slanted", "wide"], phrasing)
            assert set(text.replace(",", "").split()) <= set(captions.VOCABULARY)


def test_the_tokenizer_round_trips_pads_and_marks_the_empty_prompt():
    tok = Tokenizer()
    ids = tok(["a thick, slanted seven", "", "7"])
    assert ids.shape == (3, tok.max_length) and ids.dtype == torch.int64
    assert tok.decode(ids[0]) == "a thick slanted seven"
    assert tok.decode(ids[2]) == "seven"
    assert ids[1].tolist() == [1] + [0] * (tok.max_length - 1) and torch.equal(tok.null(), ids[1:2])
    assert tok("   ").equal(tok.null())
    for text in ("seven, thick and slanted", "a three that is thin, upright and wide"):
        assert tok.decode(tok(text)[0]) == " ".join(tok.words(text))


def test_the_tokenizer_rejects_unknown_words_and_overlong_prompts_clearly():
    tok = Tokenizer()
    with pytest.raises(ValueError, match="outside the vocabulary: purple.*vocabulary is: a, that"):
        tok("a purple seven")
    with pytest.raises(ValueError, match="at most max_length - 1 = 11"):
        tok(" ".join(["seven"] * 12))
    with pytest.raises(TypeError, match="prompt must be a string"):
        tok([7])


def test_the_text_encoder_feeds_the_unets_cross_attention_and_ignores_padding():
    torch.manual_seed(0)
    tok = Tokenizer()
    encoder = TextEncoder(TextEncoderConfig(width=16, heads=2)).eval()
    ids = tok(["a thick seven", "a thin one"])
    tau = encoder(ids)
    assert tau.shape == (2, tok.max_length, 16)
    short = encoder(ids[:, :5])  # the real tokens need no padding after them
    torch.testing.assert_close(short[:, :4], tau[:, :4], atol=1e-5, rtol=1e-5)
    unet = UNet(UNetConfig(in_channels=4, widths=(8, 16), attention=(False, True), groups=4, heads=2, context_dim=16))
    with torch.no_grad():
        assert unet(torch.randn(2, 4, 7, 7), torch.tensor([1, 500]), tau).shape == (2, 4, 7, 7)
    with pytest.raises(ValueError, match="ids must be"):
        encoder(torch.zeros(2, 13, dtype=torch.int64))


TINY_TEXT_UNET = TextUNetConfig(TextEncoderConfig(width=16, heads=2),
                                UNetConfig(in_channels=4, widths=(8, 16), attention=(False, True), groups=4, heads=2,
                                           context_dim=16))


def test_guidance_on_the_text_model_at_w_0_is_the_null_prediction_and_at_w_1_the_conditional():
    torch.manual_seed(0)
    model = TextUNet(TINY_TEXT_UNET).eval()
    tok = Tokenizer()
    z, t, ids = torch.randn(2, 4, 7, 7, generator=gen()), torch.tensor([10, 900]), tok(["a seven", "a thick one"])
    with torch.no_grad():
        torch.testing.assert_close(guided(model, tok.null(), 0.0)(z, t, ids), model(z, t, tok.null().expand(2, -1)))
        torch.testing.assert_close(guided(model, tok.null(), 1.0)(z, t, ids), model(z, t, ids))
    with pytest.raises(ValueError, match="cond .token ids. is required"):
        model(z, t)
    with pytest.raises(ValueError, match="context_dim"):
        TextUNetConfig(TextEncoderConfig(width=32))


@pytest.fixture
def few_captioned_digits(monkeypatch, tmp_path):
    """The entry point on 100 real digits and a tiny model, with a random autoencoder and its provenance record."""
    from dataclasses import asdict

    from diffnotes import files, train_latent, train_text
    from diffnotes.data import load_mnist_5k
    from diffnotes.nets.autoencoder import Autoencoder

    images, labels = load_mnist_5k()
    images, labels = images[::50], labels[::50]
    for module in (train_text, train_latent):
        monkeypatch.setattr(module, "load_mnist_5k", lambda: (images, labels))
    monkeypatch.setattr(train_text, "TEXT_UNET", TINY_TEXT_UNET)
    torch.manual_seed(0)
    autoencoder = Autoencoder()
    path = tmp_path / "ae.pt"
    torch.save(autoencoder.state_dict(), path)
    files.write_json(path.with_suffix(".json"), {"weights": path.name, "sha256": files.sha256(path),
                                                 "model_config": asdict(autoencoder.config), "latent_shape": [4, 7, 7]})
    return path


def test_the_text_entry_point_trains_resumes_and_exports_with_provenance(tmp_path, few_captioned_digits):
    import json

    from diffnotes import files, train_text

    checkpoint, out = tmp_path / "text_run.pt", tmp_path / "text.pt"
    args = ["--autoencoder", str(few_captioned_digits), "--checkpoint", str(checkpoint), "--batch-size", "4",
            "--log-every", "1", "--checkpoint-every", "2", "--device", "cpu", "--warmup-steps", "1",
            "--mixed-precision", "fp32"]
    assert train_text.main([*args, "--steps", "2"]) == 0
    assert train_text.main([*args, "--steps", "3", "--export", str(out), "--quality-per-digit", "2"]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["steps"] == 3 and record["sha256"] == files.sha256(out)
    assert record["quality"]["samples_per_scale"] == 20 and 0 <= record["quality"]["w=3"]["read"] <= 1
    assert record["train_config"]["cond_dropout"] == 0.1 and record["scale_factor"] > 0
    assert set(record["caption_thresholds"]) == {"thickness", "slant", "width"}
    assert record["model_config"]["encoder"]["width"] == 16 and record["model_config"]["unet"]["context_dim"] == 16
    tok = Tokenizer()
    assert all(tok(c).shape == (1, 12) for c in record["example_captions"])
    pipe = load_text_pipeline(out, few_captioned_digits)
    assert pipe.model.config == TINY_TEXT_UNET and pipe.scale == record["scale_factor"]
    assert pipe("a thick seven", num_inference_steps=2, generator=gen(0)).images.shape == (1, 1, 28, 28)
    other = tmp_path / "other_ae.pt"
    torch.save({k: v + 1 for k, v in torch.load(few_captioned_digits, weights_only=True).items()}, other)
    other_record = json.loads(few_captioned_digits.with_suffix(".json").read_text())
    files.write_json(other.with_suffix(".json"), {**other_record, "weights": other.name, "sha256": files.sha256(other)})
    with pytest.raises(ValueError, match="is not the one the model was trained on"):
        load_text_pipeline(out, other)
