"""How well the text-to-digit model obeys its prompts, and what guidance and img2img cost (chapters "Text guidance"
and "Ways to use it").

Digit prompts ("a seven"): the share of samples that the chapter 7 classifier reads as the requested digit (its most
probable class), and the share it reads so with confidence above 0.9.

Attribute prompts ("a thick seven"): each sample's attribute is measured as the captions were
(:func:`diffnotes.captions.measure`), and it obeys when it falls in the requested outer third of the training digits'
distribution (the thresholds recorded with the model). By construction a third of the real digits lie in each
outer third, so chance is 1/3. A width is measured relative to the median width of the real digits of the requested
class, as in the captions.

Diversity: the Frechet classifier distance of all samples of one scale against the real digits, and the
within-class spread: the mean distance between the classifier features of two samples of the same prompt, divided by
the same mean over real digits of that class (1 = as varied as the data; lower = less varied).

img2img's trade-off (:func:`~diffnotes.prompt_quality.strength_report`): crude stroke drawings of the digits
(:func:`~diffnotes.prompt_quality.stroke_drawings`) are altered at each strength with the prompt of their digit;
faithfulness is the root-mean-square pixel distance of the result to the drawing, realism the share read as the
digit with confidence and the FD against real digits.
"""

from __future__ import annotations

import numpy as np
import torch

from diffnotes.captions import ATTRIBUTE_WORDS, NUMBER_WORDS, measure
from diffnotes.checks import positive_int
from diffnotes.evaluation.classifier import DigitClassifier, classify, features
from diffnotes.evaluation.quality import CONFIDENCE_THRESHOLD, frechet_distance
from diffnotes.pipeline import TextToDigitPipeline

#: The guidance scales of the chapter's sweep.
GUIDANCE_SCALES: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0)
#: The strengths of img2img's trade-off.
STRENGTHS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# Stroke drawings of the ten digits: polylines in a 28x28 box, (column, row) points.
_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(14, 5), (9, 8), (8, 14), (9, 20), (14, 23), (19, 20), (20, 14), (19, 8), (14, 5)]],
    1: [[(14, 5), (14, 23)]],
    2: [[(8, 9), (11, 5), (17, 5), (20, 9), (8, 23), (21, 23)]],
    3: [[(8, 6), (19, 6), (13, 13), (20, 17), (18, 22), (8, 22)]],
    4: [[(17, 23), (17, 5), (7, 17), (21, 17)]],
    5: [[(20, 5), (9, 5), (8, 13), (17, 12), (20, 17), (17, 22), (8, 22)]],
    6: [[(18, 5), (10, 13), (9, 19), (13, 23), (19, 20), (18, 14), (10, 15)]],
    7: [[(7, 5), (21, 5), (12, 23)]],
    8: [[(14, 14), (9, 10), (14, 5), (19, 10), (14, 14), (8, 19), (14, 23), (20, 19), (14, 14)]],
    9: [[(19, 12), (14, 14), (9, 10), (13, 5), (19, 8), (19, 12), (16, 23)]],
}


def stroke_drawings(digits: list[int] | range = range(10), width: float = 1.2) -> torch.Tensor:
    """Crude drawings of ``digits`` (0..9) as straight strokes ``width`` pixels from their centre line: (N, 1, 28,
    28) in [-1, 1], white strokes on black, as MNIST."""
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    out = []
    for d in digits:
        if isinstance(d, bool) or int(d) not in _STROKES:
            raise ValueError(f"digits must be integers in 0..9, got {d!r}")
        distance = torch.full((28, 28), float("inf"))
        for line in _STROKES[int(d)]:
            for (x0, y0), (x1, y1) in zip(line[:-1], line[1:]):
                dx, dy = x1 - x0, y1 - y0
                s = (((cols - x0) * dx + (rows - y0) * dy) / max(dx * dx + dy * dy, 1e-9)).clamp(0, 1)
                distance = torch.minimum(distance, torch.hypot(cols - x0 - s * dx, rows - y0 - s * dy))
        out.append((width + 0.5 - distance).clamp(0, 1) * 2 - 1)
    return torch.stack(out)[:, None]


def generate(pipe: TextToDigitPipeline, prompts: list[str], guidance_scale: float, steps: int = 50, seed: int = 0,
             batch_size: int = 200, image: torch.Tensor | None = None, **kwargs: object) -> torch.Tensor:
    """``pipe`` run on ``prompts`` in batches with one seeded generator: images (N, 1, 28, 28); ``image``, one per
    prompt (N, 1, 28, 28), is batched with them (img2img)."""
    positive_int("batch_size", batch_size)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(prompts), batch_size):
        extra = kwargs if image is None else {**kwargs, "image": image[i:i + batch_size]}
        out.append(pipe(prompts[i:i + batch_size], num_inference_steps=steps, guidance_scale=guidance_scale,
                        generator=generator, **extra).images)
    return torch.cat(out)


def read_shares(images: torch.Tensor, digits: torch.Tensor, classifier: DigitClassifier | None = None) -> dict:
    """The share of ``images`` read as their requested ``digits`` (argmax), and read so with confidence > 0.9."""
    probabilities = classify(images, classifier)
    confidence, predicted = probabilities.max(dim=1)
    hit = predicted == digits
    return {"read": hit.float().mean().item(),
            "confident": (hit & (confidence > CONFIDENCE_THRESHOLD)).float().mean().item()}


def within_class_spread(feats: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean distance between two different members of the same class in feature space, averaged over classes."""
    spreads = []
    for c in labels.unique():
        f = feats[labels == c]
        if len(f) > 1:
            spreads.append((torch.cdist(f, f).sum() / (len(f) * (len(f) - 1))).item())
    if not spreads:
        raise ValueError("within_class_spread needs a class with at least two members")
    return float(np.mean(spreads))


def attribute_values(images: torch.Tensor, digits: torch.Tensor, class_widths: dict[int, float]) -> dict[str, np.ndarray]:
    """The captions' three attribute values of each image (thickness, absolute slant, width relative to the median
    width ``class_widths`` of real digits of its requested class)."""
    m = measure(images)
    width = np.array([w / class_widths[int(d)] for w, d in zip(m["width"], digits)])
    return {"thickness": m["thickness"], "slant": np.abs(m["slant"]), "width": width}


def real_reference(images: torch.Tensor, labels: torch.Tensor, classifier: DigitClassifier | None = None) -> dict:
    """What the measures compare with: real digits' features, their within-class spread, median width per class."""
    feats = features(images, classifier)
    widths = measure(images)["width"]
    return {"features": feats, "spread": within_class_spread(feats, labels),
            "class_widths": {int(c): float(np.median(widths[(labels == c).numpy()])) for c in labels.unique()}}


def prompt_report(pipe: TextToDigitPipeline, guidance_scale: float, reference: dict,
                  thresholds: dict[str, tuple[float, float]], per_digit: int = 100, per_attribute: int = 10,
                  steps: int = 50, seed: int = 0, classifier: DigitClassifier | None = None) -> dict:
    """Every measure of the module's docstring at one guidance scale.

    Args:
        pipe: the text-to-digit pipeline.
        guidance_scale: w.
        reference: :func:`real_reference` of the real digits.
        thresholds: the captions' attribute thresholds (the model's record's ``caption_thresholds``).
        per_digit: samples of each digit prompt "a {digit}".
        per_attribute: samples of each prompt "a {word} {digit}", for each of the six attribute words and ten digits.
        steps: DDIM steps.
        seed: the generator's seed.
        classifier: the judge (default the shipped one).
    """
    positive_int("per_attribute", per_attribute)
    if isinstance(per_digit, bool) or not isinstance(per_digit, int) or per_digit < 2:
        raise ValueError(f"per_digit must be an integer >= 2 (the spread compares two samples), got {per_digit!r}")
    digits = torch.arange(10).repeat_interleave(per_digit)
    images = generate(pipe, [f"a {NUMBER_WORDS[d]}" for d in digits], guidance_scale, steps, seed)
    feats = features(images, classifier)
    report = {"guidance_scale": guidance_scale, "samples": len(images), **read_shares(images, digits, classifier),
              "fd": frechet_distance(feats, reference["features"]),
              "spread": within_class_spread(feats, digits) / reference["spread"], "attributes": {}}
    prompts, wanted = [], []
    for name, pair in ATTRIBUTE_WORDS.items():
        for side, word in enumerate(pair):
            for d in range(10):
                prompts += [f"a {word} {NUMBER_WORDS[d]}"] * per_attribute
                wanted += [(name, side, d)] * per_attribute
    images = generate(pipe, prompts, guidance_scale, steps, seed + 1)
    asked = torch.tensor([d for _, _, d in wanted])
    values = attribute_values(images, asked, reference["class_widths"])
    for name, pair in ATTRIBUTE_WORDS.items():
        low, high = thresholds[name]
        for side, word in enumerate(pair):
            rows = np.array([n == name and s == side for n, s, _ in wanted])
            v = values[name][rows]
            report["attributes"][word] = float(np.mean(v < low if side == 0 else v > high))
    report["attribute_read"] = read_shares(images, asked, classifier)["read"]
    report["attribute_mean"] = float(np.mean(list(report["attributes"].values())))
    return report


def strength_report(pipe: TextToDigitPipeline, strength: float, drawings: torch.Tensor, digits: torch.Tensor,
                    reference: dict, repeats: int = 10, guidance_scale: float = 3.0, steps: int = 50, seed: int = 0,
                    classifier: DigitClassifier | None = None) -> dict:
    """img2img at one ``strength``: each drawing altered ``repeats`` times with the prompt of the digit ``digits``
    asks for (its own digit, or another one to turn it into); the root-mean-square pixel distance to the drawing,
    the share read as the prompted digit (with confidence), the FD against the real digits."""
    positive_int("repeats", repeats)
    if len(digits) != len(drawings):
        raise ValueError(f"digits must give one prompted digit per drawing ({len(drawings)}), got {len(digits)}")
    inputs = drawings.repeat_interleave(repeats, dim=0)
    asked = digits.repeat_interleave(repeats)
    prompts = [f"a {NUMBER_WORDS[int(d)]}" for d in asked]
    images = generate(pipe, prompts, guidance_scale, steps, seed, image=inputs, strength=strength)
    rms = ((images - inputs) ** 2).mean(dim=(1, 2, 3)).sqrt().mean().item()
    return {"strength": strength, "samples": len(images), "rms_distance": rms, **read_shares(images, asked, classifier),
            "fd": frechet_distance(features(images, classifier), reference["features"])}


def best_scale(records: list[dict]) -> dict:
    """The record of the sweep whose digit prompts are read correctly most often (the smallest w on ties)."""
    if not records:
        raise ValueError("records must hold at least one guidance scale's report")
    return max(records, key=lambda r: (r["read"], -r["guidance_scale"]))
