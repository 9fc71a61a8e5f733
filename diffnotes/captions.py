"""Captions made from the digits themselves: the label and attributes measured on the pixels (chapter "Text guidance").

The measurements follow Morpho-MNIST (Castro et al., 2019), on digits (N, 1, 28, 28) or (N, 28, 28) in [-1, 1]:

- the digit is upsampled ``scale`` times (bilinear) and binarised at the middle of the range (pixel > 0);
- ``area``: the number of digit pixels, in original pixels squared;
- ``thickness``: twice the median distance from the skeleton to the background, in original pixels. The skeleton is the
  Zhang-Suen thinning of the binary digit (:func:`~diffnotes.captions.skeletonize`); the distance is the Euclidean
  distance transform (from a pixel's centre to the nearest background pixel's centre), less a quarter of an upsampled
  pixel on each side, so that a bar k pixels wide measures k to within 1 / (2 ``scale``) pixel;
- ``slant``: the shear angle from the second moments, arctan(-mu_xy / mu_yy) with x the column and y the row
  (pointing down): positive when the top of the digit leans right; exact for a parallelogram;
- ``height`` and ``width``: the extent of the binary digit's rows and columns, in original pixels.

Captions (:func:`~diffnotes.captions.caption`) name the digit (:data:`~diffnotes.captions.NUMBER_WORDS`) and at most
three attributes, each one only when the digit lies in the outer third of the data's distribution of that attribute
(:func:`~diffnotes.captions.attribute_thresholds`): "thin" or "thick" (thickness), "upright" or "slanted" (slant),
"narrow" or "wide" (width divided by the class's median width, since a one is always narrower than a zero). Several
phrasings (:data:`~diffnotes.captions.PHRASINGS`) say the same thing; :data:`~diffnotes.captions.VOCABULARY` lists
every word that a caption can hold.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

#: The words for the digits 0..9.
NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: The word for the low third and the word for the high third of each measured attribute's distribution.
ATTRIBUTE_WORDS: dict[str, tuple[str, str]] = {"thickness": ("thin", "thick"), "slant": ("upright", "slanted"),
                                               "width": ("narrow", "wide")}
#: The phrasings, with the number word as ``{digit}``, the attribute words joined by commas as ``{adjectives}`` and
#: by "and" as ``{joined}``; a caption without attributes is "a {digit}".
PHRASINGS: tuple[str, ...] = ("a {adjectives} {digit}", "{digit}, {joined}", "a {digit} that is {joined}")
#: Every word a caption can hold (lower case; commas are not words).
VOCABULARY: tuple[str, ...] = ("a", "that", "is", "and", *NUMBER_WORDS,
                               *(word for pair in ATTRIBUTE_WORDS.values() for word in pair))
#: The measurements that :func:`~diffnotes.captions.measure` returns, in its column order.
MEASUREMENTS: tuple[str, ...] = ("area", "thickness", "slant", "height", "width")

_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))  # P2..P9, clockwise from north


def binarise(images: torch.Tensor | np.ndarray, scale: int = 4) -> np.ndarray:
    """Digits in [-1, 1], (N, 1, H, W) or (N, H, W), as a boolean array (N, scale H, scale W): upsampled, > 0."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"images must have shape (N, 1, H, W) or (N, H, W), got {x.shape}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if scale > 1:
        x = ndimage.zoom(x, (1, scale, scale), order=1, mode="nearest", grid_mode=True)
    return x > 0.0


def skeletonize(binary: np.ndarray) -> np.ndarray:
    """The Zhang-Suen thinning (Zhang and Suen, 1984) of boolean images (N, H, W), all at once: a one-pixel-wide
    skeleton (N, H, W) that keeps each stroke's connectivity."""
    img = np.pad(np.asarray(binary, dtype=bool), ((0, 0), (1, 1), (1, 1)))
    h, w = img.shape[1] - 2, img.shape[2] - 2
    while True:
        changed = False
        for first in (True, False):
            p = [img[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in _NEIGHBOURS]
            count = sum(q.astype(np.uint8) for q in p)
            transitions = sum((~p[i] & p[(i + 1) % 8]).astype(np.uint8) for i in range(8))
            p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
            rule = ~(p2 & p4 & p6) & ~(p4 & p6 & p8) if first else ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            centre = img[:, 1:-1, 1:-1]
            remove = centre & (count >= 2) & (count <= 6) & (transitions == 1) & rule
            if remove.any():
                centre[remove] = False
                changed = True
        if not changed:
            return img[:, 1:-1, 1:-1].copy()


def measure(images: torch.Tensor | np.ndarray, scale: int = 4) -> dict[str, np.ndarray]:
    """The attributes of each digit (see the module's docstring): a dict of (N,) float64 arrays, keyed by
    :data:`~diffnotes.captions.MEASUREMENTS`, in original pixels (``slant`` in radians). An empty image measures 0
    everywhere."""
    binary = binarise(images, scale)
    skeleton = skeletonize(binary)
    n = binary.shape[0]
    out = {name: np.zeros(n) for name in MEASUREMENTS}
    for i in range(n):
        b = binary[i]
        if not b.any():
            continue
        rows, cols = np.nonzero(b)
        out["area"][i] = rows.size / scale**2
        out["height"][i] = (rows.max() - rows.min() + 1) / scale
        out["width"][i] = (cols.max() - cols.min() + 1) / scale
        distance = ndimage.distance_transform_edt(np.pad(b, 1))[1:-1, 1:-1]
        out["thickness"][i] = (2.0 * np.median(distance[skeleton[i]]) - 0.5) / scale
        y, x = rows - rows.mean(), cols - cols.mean()
        mu_yy = (y * y).mean()
        out["slant"][i] = np.arctan(-(x * y).mean() / mu_yy) if mu_yy > 0 else 0.0
    return out


def relative_width(width: np.ndarray, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """Each digit's width divided by the median width of its class in the same data."""
    labels = np.asarray(labels)
    medians = {c: np.median(width[labels == c]) for c in np.unique(labels)}
    return np.array([w / medians[c] if medians[c] > 0 else 1.0 for w, c in zip(width, labels)])


def attribute_thresholds(measured: dict[str, np.ndarray], labels: torch.Tensor | np.ndarray,
                         share: float = 1 / 3) -> dict[str, tuple[float, float]]:
    """For each attribute of :data:`~diffnotes.captions.ATTRIBUTE_WORDS`, the ``share`` and 1 - ``share`` quantiles of
    its values in the data: below the first a digit gets the low word, above the second the high word. The slant is
    measured as its absolute value (a digit leaning left is "slanted" too); the width relative to its class
    (:func:`~diffnotes.captions.relative_width`)."""
    if not 0.0 < share < 0.5:
        raise ValueError(f"share must lie in (0, 0.5), got {share!r}")
    values = _attribute_values(measured, labels)
    return {name: (float(np.quantile(v, share)), float(np.quantile(v, 1 - share))) for name, v in values.items()}


def _attribute_values(measured: dict[str, np.ndarray], labels: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    return {"thickness": measured["thickness"], "slant": np.abs(measured["slant"]),
            "width": relative_width(measured["width"], labels)}


def attribute_words(measured: dict[str, np.ndarray], labels: torch.Tensor | np.ndarray,
                    thresholds: dict[str, tuple[float, float]]) -> list[list[str]]:
    """The attribute words of each digit, in the order of :data:`~diffnotes.captions.ATTRIBUTE_WORDS` (possibly
    none)."""
    values = _attribute_values(measured, labels)
    words = [[] for _ in range(len(values["thickness"]))]
    for name, (low_word, high_word) in ATTRIBUTE_WORDS.items():
        low, high = thresholds[name]
        for i, v in enumerate(values[name]):
            if v < low:
                words[i].append(low_word)
            elif v > high:
                words[i].append(high_word)
    return words


def caption(digit: int, words: list[str], phrasing: int = 0) -> str:
    """The caption of a ``digit`` (0..9) with attribute ``words`` in phrasing number ``phrasing`` of
    :data:`~diffnotes.captions.PHRASINGS`, e.g. ``caption(7, ["thick", "slanted"])`` is "a thick, slanted seven"."""
    if isinstance(digit, bool) or not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be an integer in 0..9, got {digit!r}")
    name = NUMBER_WORDS[int(digit)]
    if not words:
        return f"a {name}"
    if not 0 <= phrasing < len(PHRASINGS):
        raise ValueError(f"phrasing must be an index into PHRASINGS, 0..{len(PHRASINGS) - 1}; got {phrasing!r}")
    joined = " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"
    return PHRASINGS[phrasing].format(digit=name, adjectives=", ".join(words), joined=joined)


def caption_digits(images: torch.Tensor, labels: torch.Tensor,
                   thresholds: dict[str, tuple[float, float]] | None = None, seed: int = 0,
                   scale: int = 4) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """A caption for each digit, in a phrasing drawn at random (``seed``), and the thresholds used (computed from
    these digits by :func:`~diffnotes.captions.attribute_thresholds` unless given)."""
    measured = measure(images, scale)
    thresholds = thresholds or attribute_thresholds(measured, labels)
    rng = np.random.default_rng(seed)
    phrasings = rng.integers(0, len(PHRASINGS), size=len(labels))
    words = attribute_words(measured, labels, thresholds)
    captions = [caption(int(c), w, int(p)) for c, w, p in zip(np.asarray(labels), words, phrasings)]
    return captions, thresholds
