"""The shipped text-to-digit model of chapters "Text guidance" and "Ways to use it": hash-checked weights with their
provenance, the recorded guidance sweep that meets the issue's bar, and a fresh measurement that agrees with it."""

import pytest
import torch

from diffnotes import files, perfnotes, pipeline, pretrained
from diffnotes.captions import NUMBER_WORDS
from diffnotes.prompt_quality import GUIDANCE_SCALES, STRENGTHS, best_scale, generate, read_shares, stroke_drawings

BAR = 0.97  # the issue's: at least 97 % of samples read as the requested digit at the best guidance scale


@pytest.fixture(scope="module")
def pipe():
    return pipeline.load_shipped_pipeline()


@pytest.fixture(scope="module")
def made():
    return pipeline.text_provenance()


def test_the_shipped_weights_are_the_recorded_ones_trained_on_the_shipped_autoencoder(made):
    assert files.sha256(pipeline.TEXT_WEIGHTS) == pipeline.TEXT_SHA256 == made["sha256"]
    assert made["autoencoder"]["sha256"] == pretrained.LDM_AUTOENCODER_SHA256
    for key in ("command", "train_config", "seconds", "device", "quality", "caption_thresholds"):
        assert key in made, key
    assert made["train_config"]["seed"] == 0
    assert made["seconds"] <= 90 * 60  # the budget for training on the CPU
    assert made["train_config"]["cond_dropout"] == 0.1


def test_a_tampered_file_is_refused(tmp_path, made):
    bad = tmp_path / "text_digits.pt"
    data = bytearray(pipeline.TEXT_WEIGHTS.read_bytes())
    data[-10] ^= 1
    bad.write_bytes(bytes(data))
    files.write_json(bad.with_suffix(".json"), made)
    with pytest.raises(ValueError, match="SHA-256"):
        pipeline.load_text_pipeline(bad, pretrained.LDM_AUTOENCODER_WEIGHTS)


def test_the_recorded_sweep_is_of_the_shipped_model_and_meets_the_bar(made):
    (record,) = perfnotes.load_records("guidance_sweep")
    results = record["results"]
    assert results["model_sha256"] == made["sha256"]
    assert [r["guidance_scale"] for r in results["scales"]] == list(GUIDANCE_SCALES)
    best = best_scale(results["scales"])
    assert best["read"] >= BAR and best["samples"] >= 1000
    assert best["attribute_mean"] > 1 / 3 + 0.15  # attributes obeyed well above chance
    by_w = {r["guidance_scale"]: r for r in results["scales"]}
    assert by_w[10.0]["spread"] < by_w[1.0]["spread"]  # guidance costs diversity


def test_a_fresh_sample_is_read_as_the_prompt_as_recorded(pipe):
    """50 new samples (seed 123, not the sweep's) at the best recorded scale: a share within sampling error."""
    (record,) = perfnotes.load_records("guidance_sweep")
    w = record["results"]["best_guidance_scale"]
    digits = torch.arange(10).repeat_interleave(5)
    images = generate(pipe, [f"a {NUMBER_WORDS[d]}" for d in digits], w, steps=50, seed=123)
    assert read_shares(images, digits)["read"] >= 0.88  # 97 % recorded; 44 of 50 is 4 standard errors below


def test_img2img_keeps_the_drawing_at_low_strength_and_redraws_it_at_high(pipe):
    drawings = stroke_drawings([1, 4, 7])
    prompts = ["a one", "a four", "a seven"]
    distance = {}
    for strength in (STRENGTHS[0], STRENGTHS[-1]):
        out = pipe(prompts, image=drawings, strength=strength, guidance_scale=3.0,
                   generator=torch.Generator().manual_seed(0)).images
        distance[strength] = ((out - drawings) ** 2).mean().sqrt().item()
    assert distance[STRENGTHS[0]] < 0.5 * distance[STRENGTHS[-1]]
