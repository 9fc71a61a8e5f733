"""Chapter 14's and 15's measurements: prompt obedience, diversity, img2img's trade-off, cross-attention maps, and
the stroke drawings they start from."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_pipeline import TINY

from diffnotes.captions import ATTRIBUTE_WORDS
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation.classifier import classify
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.text import TextUNet, Tokenizer, cross_attention_maps
from diffnotes.pipeline import TextToDigitPipeline
from diffnotes.plotting.text import plot_attention_maps, plot_guidance_sweep, plot_strength_tradeoff
from diffnotes.prompt_quality import (
    attribute_values,
    best_scale,
    prompt_report,
    read_shares,
    real_reference,
    strength_report,
    stroke_drawings,
    within_class_spread,
)


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    model = TextUNet(TINY)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.05)
    return TextToDigitPipeline(model, Autoencoder(), scale=1.0)


@pytest.fixture(scope="module")
def reference():
    images, labels = load_mnist_5k()
    keep = torch.cat([torch.nonzero(labels == c)[:20, 0] for c in range(10)])
    return real_reference(images[keep], labels[keep])


def test_stroke_drawings_are_digits_the_classifier_reads():
    x = stroke_drawings()
    assert x.shape == (10, 1, 28, 28) and x.min() == -1 and x.max() == 1
    assert (classify(x).argmax(dim=1) == torch.arange(10)).all()
    thick = stroke_drawings([1], width=3.0)
    assert (thick > 0).sum() > (stroke_drawings([1]) > 0).sum()
    with pytest.raises(ValueError, match="digits must be integers in 0..9"):
        stroke_drawings([10])


def test_read_shares_count_hits_and_confident_hits():
    x = stroke_drawings([3, 7])
    assert read_shares(x, torch.tensor([3, 7])) == {"read": 1.0, "confident": 1.0}
    assert read_shares(x, torch.tensor([3, 1]))["read"] == 0.5


def test_within_class_spread_is_the_mean_distance_between_members():
    feats = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [10.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert within_class_spread(feats, labels) == pytest.approx((5.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="at least two members"):
        within_class_spread(feats[:2], torch.tensor([0, 1]))


def test_attribute_values_measure_width_relative_to_the_class():
    x = stroke_drawings([0, 0])
    values = attribute_values(x, torch.tensor([0, 0]), {0: 6.0})
    assert set(values) == set(ATTRIBUTE_WORDS)
    assert np.allclose(values["width"], values["width"][0]) and values["width"][0] > 1.5  # 12-13 px wide vs 6


def test_prompt_report_measures_every_word_and_shares_lie_in_0_1(pipe, reference):
    thresholds = {"thickness": (1.5, 2.5), "slant": (0.1, 0.3), "width": (0.9, 1.1)}
    r = prompt_report(pipe, 2.0, reference, thresholds, per_digit=2, per_attribute=1, steps=2)
    assert r["samples"] == 20 and set(r["attributes"]) == {w for pair in ATTRIBUTE_WORDS.values() for w in pair}
    for key in ("read", "confident", "attribute_read", "attribute_mean", *(f"a:{w}" for w in r["attributes"])):
        value = r["attributes"][key[2:]] if key.startswith("a:") else r[key]
        assert 0.0 <= value <= 1.0
    assert r["fd"] > 0 and r["spread"] > 0
    with pytest.raises(ValueError, match="per_digit must be an integer >= 2"):
        prompt_report(pipe, 2.0, reference, thresholds, per_digit=1)


def test_strength_report_measures_each_altered_drawing(pipe, reference):
    """(That a small strength stays faithful is checked on the shipped model, whose decoder reconstructs.)"""
    drawings = stroke_drawings([1, 7])
    r = strength_report(pipe, 0.3, drawings, torch.tensor([1, 7]), reference, repeats=2, steps=10)
    assert r["samples"] == 4 and r["strength"] == 0.3 and 0 <= r["read"] <= 1 and r["rms_distance"] > 0
    with pytest.raises(ValueError, match="one prompted digit per drawing"):
        strength_report(pipe, 0.5, drawings, torch.tensor([1]), reference)


def test_best_scale_takes_the_most_obeyed_and_the_smallest_on_ties():
    records = [{"guidance_scale": 1.0, "read": 0.9}, {"guidance_scale": 3.0, "read": 0.98},
               {"guidance_scale": 5.0, "read": 0.98}]
    assert best_scale(records)["guidance_scale"] == 3.0
    with pytest.raises(ValueError, match="at least one"):
        best_scale([])


def test_cross_attention_maps_are_the_attention_the_layer_applies(pipe):
    """The recorded probabilities, applied to the values, give the layer's own output (scaled_dot_product_attention)."""
    model = pipe.model
    ids = Tokenizer(max_length=TINY.encoder.max_length)(["a thick seven", "a one"])
    x, t = torch.randn(2, 4, 7, 7), torch.tensor([500, 20])
    maps = cross_attention_maps(model, x, t, ids)
    assert len(maps) >= 1 and all(m.shape[-1] == ids.shape[1] for m in maps)
    assert all(torch.allclose(m.sum(-1), torch.ones(())) for m in maps)
    layer = next(b.cross_attn for b in model.unet.modules() if getattr(b, "cross_attn", None) is not None)
    seen = {}
    handle = layer.register_forward_hook(lambda m, args, out: seen.update(args=args, out=out))
    model(x, t, ids)
    handle.remove()
    h, context = seen["args"]
    b, c, height, width = h.shape
    q = layer.q(layer.norm(h).flatten(2).transpose(1, 2)).view(b, -1, layer.heads, c // layer.heads).transpose(1, 2)
    k, v = layer.kv(context).view(b, context.shape[1], 2, layer.heads, -1).permute(2, 0, 3, 1, 4)
    p = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)
    torch.testing.assert_close(p, F.softmax(q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5), dim=-1))
    y = layer.out((p @ v).transpose(1, 2).reshape(b, height * width, c))
    torch.testing.assert_close(h + y.transpose(1, 2).reshape(b, c, height, width), seen["out"])
    torch.testing.assert_close(maps[0], p.mean(1).view(b, height, width, -1))


def test_the_figures_draw():
    records = [{"guidance_scale": w, "read": 0.9, "confident": 0.8, "attribute_mean": 0.6, "spread": 0.9, "fd": 3.0}
               for w in (1.0, 3.0)]
    assert len(plot_guidance_sweep(records).axes) == 3
    assert len(plot_attention_maps(torch.zeros(1, 28, 28), torch.rand(7, 7, 5), ["a", "b"]).axes) == 3
    s = [{"strength": 0.5, "rms_distance": 0.3, "confident": 0.5}]
    assert len(plot_strength_tradeoff({"own digit": s}).axes) == 2
