"""Sample quality, offline: Frechet classifier distance, class histogram, nearest training digit.

The chapters that train and sample a digit model ask three questions of its samples:

1. Do they look like real digits, as a population? The Frechet distance (Heusel et al., 2017) between Gaussians
   fitted to features of real (r) and generated (g) images,
   ``FD = ||mu_r - mu_g||^2 + Tr(Sigma_r + Sigma_g - 2 (Sigma_r Sigma_g)^(1/2))``, taken in the feature layer of
   :class:`~diffnotes.evaluation.classifier.DigitClassifier`, a small CNN trained on the 5,000 offline digits. Inception features mean little for
   28x28 grey digits, hence a "Frechet classifier distance"; its values compare only within this extractor and at
   equal sample sizes (the estimate is biased upwards at small n).
2. Are all ten digits there, in the right proportions (mode coverage)? The classifier's class histogram.
3. Does the model copy its training digits? The L2 pixel distance from each sample to its nearest training image.

Read them together: like any softmax classifier, this one is confidently wrong on some non-digits (it calls 99 % of
uniform-noise images an 8 with probability above 0.9), which the class histogram and the FD expose.

The weights ship in ``diffnotes/weights/digit_classifier.pt`` (SHA-256 checked before loading) with their
provenance and reference numbers in ``digit_classifier.json``; retrain with
``python -m diffnotes.evaluation.quality train --out diffnotes/weights/digit_classifier.pt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffnotes.evaluation.classifier import (
    WEIGHTS_PATH,
    ClassifierConfig,
    DigitClassifier,
    check_images,
    classify,
    features,
    holdout_split,
    load_classifier,
    train_classifier,
)

# The quality bar (:func:`meets_bar`), stated for 1,000 samples.
#: A sample is classified with confidence when its most probable class has probability above this.
CONFIDENCE_THRESHOLD = 0.9
#: The bar asks at least this share of the samples to be classified with confidence ...
MIN_CONFIDENT_FRACTION = 0.9
#: ... and the share of every class to lie in this closed interval (10 % each for balanced digits).
CLASS_FRACTION_RANGE = (0.07, 0.13)


def gaussian_frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance of N(mu_a, cov_a) and N(mu_b, cov_b):
    ``||mu_a - mu_b||^2 + Tr(cov_a) + Tr(cov_b) - 2 Tr((cov_a cov_b)^(1/2))``, means (d,), covariances (d, d).

    Tr((A B)^(1/2)) is the sum of the square roots of the eigenvalues of A B, which are those of the symmetric
    positive semi-definite A^(1/2) B A^(1/2); symmetric eigendecompositions therefore give it without the tiny
    imaginary parts of a general matrix square root (``scipy.linalg.sqrtm``). Eigenvalues that rounding makes
    slightly negative (singular covariances) are set to 0, and the result is clipped at 0 for the same reason.
    """
    eig_a, vec_a = np.linalg.eigh((cov_a + cov_a.T) / 2)
    sqrt_a = (vec_a * np.sqrt(eig_a.clip(min=0.0))) @ vec_a.T
    middle = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0.0)).sum()
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def frechet_distance(feats_a: torch.Tensor | np.ndarray, feats_b: torch.Tensor | np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted (sample mean, unbiased covariance) to two feature sets
    (N_a, d) and (N_b, d), in float64; see :func:`gaussian_frechet_distance`. Symmetric and non-negative.

    Raises:
        ValueError: naming the argument, unless both are 2-D with at least 2 rows, finite and of equal width d.
    """
    fitted = []
    for name, feats in (("feats_a", feats_a), ("feats_b", feats_b)):
        x = np.asarray(feats.detach().cpu() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2 or not np.isfinite(x).all():
            raise ValueError(f"{name} must be a finite (N, d) array with N >= 2, got shape {x.shape}")
        fitted.append((x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))))
    if fitted[0][0].shape != fitted[1][0].shape:
        raise ValueError(f"feats_a and feats_b must have equal widths d, got {fitted[0][0].size}, {fitted[1][0].size}")
    return gaussian_frechet_distance(*fitted[0], *fitted[1])


def class_histogram(probabilities: torch.Tensor) -> torch.Tensor:
    """The fraction of samples whose most probable class is k, for k = 0..K-1: probabilities (N, K) -> (K,)."""
    p = probabilities
    if not isinstance(p, torch.Tensor) or p.dim() != 2 or p.shape[0] < 1:
        raise ValueError(f"probabilities must be a tensor of shape (N, K), got {getattr(p, 'shape', type(p))}")
    if bool((p < 0).any()) or not torch.allclose(p.sum(dim=1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise ValueError("probabilities must be non-negative with rows summing to 1 (apply softmax to logits)")
    return torch.bincount(p.argmax(dim=1), minlength=p.shape[1]).double() / len(p)


def nearest_training_distance(
    samples: torch.Tensor, train_images: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, min_j ||x_i - y_j||_2 over the training images in pixel space, and the minimising j.

    samples (N, 1, 28, 28) and train_images (M, 1, 28, 28) in [-1, 1] -> distances (N,) float64, indices (N,)
    int64. The argmin uses ||x||^2 + ||y||^2 - 2 x.y in float64, in blocks of ``batch_size`` samples (memory
    batch_size x M); the winner's distance is then recomputed directly, so an exact copy is at distance 0.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    x = check_images(samples, "samples").flatten(1).double()
    y = check_images(train_images, "train_images").flatten(1).double().to(x.device)
    y_sq = (y * y).sum(dim=1)
    indices = torch.cat([(y_sq - 2.0 * b @ y.T).argmin(dim=1) for b in x.split(batch_size)])  # ||x||^2 is constant
    return (x - y[indices]).norm(dim=1).cpu(), indices.cpu()


@dataclass(frozen=True)
class QualityReport:
    """What :func:`evaluate` measures on n samples.

    Attributes:
        n: the number of samples.
        confident_fraction: the share of samples with max_k p(k | x) > :data:`CONFIDENCE_THRESHOLD`.
        mean_confidence: the mean of max_k p(k | x).
        class_fractions: ``class_fractions[k]`` is the share of samples classified as digit k.
        frechet_distance: the FD of the samples' and the reference images' classifier features.
        nn_distance_min: the smallest, over samples, L2 pixel distance to the nearest reference image.
        nn_distance_median: the median of the same distances.
        nn_index_of_min: the index, among the reference images, of the closest match overall.
    """

    n: int
    confident_fraction: float
    mean_confidence: float
    class_fractions: tuple[float, ...]
    frechet_distance: float
    nn_distance_min: float
    nn_distance_median: float
    nn_index_of_min: int

    def __str__(self) -> str:
        lo, hi = min(self.class_fractions), max(self.class_fractions)
        return (
            f"n={self.n}: confident {self.confident_fraction:.3f}, classes {lo:.3f}..{hi:.3f}, "
            f"FD {self.frechet_distance:.2f}, nearest-training L2 min {self.nn_distance_min:.2f} "
            f"median {self.nn_distance_median:.2f}, meets bar: {meets_bar(self)}"
        )


def evaluate(
    samples: torch.Tensor, reference_images: torch.Tensor, classifier: DigitClassifier | None = None
) -> QualityReport:
    """Measure samples (N, 1, 28, 28) in [-1, 1] against real reference images (M, 1, 28, 28), normally the
    training digits: confidence and class histogram of the classifier, FD of their features, nearest-image distances.

    Compare FDs only at equal N and M: 1,000 real digits against 4,000 others give about 5, the floor at that size
    (``reference`` in ``digit_classifier.json``).
    """
    samples, reference_images = check_images(samples, "samples"), check_images(reference_images, "reference_images")
    p = classify(samples, classifier)
    confidence = p.max(dim=1).values
    fd = frechet_distance(features(samples, classifier), features(reference_images, classifier))
    distances, indices = nearest_training_distance(samples, reference_images)
    return QualityReport(
        n=len(samples),
        confident_fraction=float((confidence > CONFIDENCE_THRESHOLD).double().mean()),
        mean_confidence=float(confidence.double().mean()),
        class_fractions=tuple(float(f) for f in class_histogram(p)),
        frechet_distance=fd,
        nn_distance_min=float(distances.min()),
        nn_distance_median=float(np.median(distances.numpy())),
        nn_index_of_min=int(indices[distances.argmin()]),
    )


def real_fd_spread(
    images: torch.Tensor, n: int, draws: int, generator: torch.Generator, classifier: DigitClassifier | None = None
) -> list[float]:
    """The Frechet distance of ``n`` real images (N, 1, 28, 28) against the other N - n, for ``draws`` random splits.

    This is the yardstick of a sampler measured with ``n`` samples, the distance that real data would score, and its
    spread over the draws is how much an FD of that size varies by chance alone. The split of draw k is
    ``torch.randperm(N, generator=generator)``, the k-th call; the first draw with a generator seeded ``s`` is
    therefore the yardstick that ``benchmarks/ddim_table.py --seed s-1`` records.

    Raises:
        ValueError: naming the argument, unless 2 <= n <= N - 2 and draws >= 1.
    """
    images = check_images(images, "images")
    if not 2 <= n <= len(images) - 2:
        raise ValueError(f"n must lie in 2..N-2={len(images) - 2} (both sides need two images), got {n}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    feats = features(images, classifier)
    orders = [torch.randperm(len(images), generator=generator) for _ in range(draws)]
    return [frechet_distance(feats[order[:n]], feats[order[n:]]) for order in orders]


def meets_bar(report: QualityReport) -> bool:
    """The quality bar: confident_fraction >= MIN_CONFIDENT_FRACTION and every class in CLASS_FRACTION_RANGE."""
    lo, hi = CLASS_FRACTION_RANGE
    return report.confident_fraction >= MIN_CONFIDENT_FRACTION and all(lo <= f <= hi for f in report.class_fractions)



def reference_numbers(classifier: DigitClassifier, images: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> dict:
    """The scale of the measures on real, blurred and noise images (recorded in ``digit_classifier.json``)."""
    train_idx, held_idx = holdout_split(labels, ClassifierConfig.holdout_per_class, seed)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(images), generator=g)
    feats = features(images, classifier)
    blurred = images[perm[:1000]]
    for _ in range(2):  # two 3x3 box blurs, about a Gaussian blur of 1.2 pixels
        blurred = F.avg_pool2d(blurred, 3, stride=1, padding=1, count_include_pad=False)
    noise = torch.rand(1000, 1, 28, 28, generator=g) * 2 - 1
    reports = {
        "heldout_500_vs_train_4500": evaluate(images[held_idx], images[train_idx], classifier),
        "blurred_1000_vs_all_5000": evaluate(blurred, images, classifier),
        "uniform_noise_1000_vs_all_5000": evaluate(noise, images, classifier),
    }
    predicted = classify(images[held_idx], classifier).argmax(dim=1)
    return {
        "heldout_accuracy": float((predicted == labels[held_idx]).double().mean()),
        "fd_real_vs_real_disjoint": {
            f"{a} vs {b}": round(frechet_distance(feats[perm[:a]], feats[perm[a : a + b]]), 3)
            for a, b in ((500, 500), (1000, 1000), (2500, 2500), (1000, 4000))
        },
        **{
            name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(r).items()}
            | {"class_fractions": [round(f, 4) for f in r.class_fractions], "meets_bar": meets_bar(r)}
            for name, r in reports.items()
        },
    }


def _main(argv: list[str] | None = None) -> None:
    from diffnotes.data import load_mnist_5k
    from diffnotes.files import write_atomically, write_json
    from diffnotes.perfnotes import machine

    parser = argparse.ArgumentParser(prog="python -m diffnotes.evaluation.quality", description="Train the digit classifier.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="where to write the weights (and the .json)")
    args = parser.parse_args(argv)
    config = ClassifierConfig()
    images, labels = load_mnist_5k()
    train_idx, _ = holdout_split(labels, config.holdout_per_class, config.seed)
    load, start = os.getloadavg()[0], time.perf_counter()
    model = train_classifier(images[train_idx], labels[train_idx], config)
    seconds = time.perf_counter() - start
    weights = {k: v.half() for k, v in model.state_dict().items()}  # float16: half the size
    write_atomically(args.out, lambda f: torch.save(weights, f))
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    shipped = load_classifier(args.out, sha256=digest)  # every number below is measured on the shipped weights
    record = {
        "command": f"python -m diffnotes.evaluation.quality train --out {args.out}",
        "config": asdict(config),
        "data": "diffnotes.data.load_mnist_5k(): 4,500 training / 500 held-out digits (holdout_split, seed 0)",
        "sha256": digest,
        "bytes": args.out.stat().st_size,
        "training_seconds": round(seconds, 1),
        "machine": f"{machine()}, load average {load:.1f} at the start (a shared machine runs slower)",
        "torch": torch.__version__,
        "date": date.today().isoformat(),
        "reference": reference_numbers(shipped, images, labels, config.seed),
    }
    write_json(args.out.with_suffix(".json"), record)
    print(json.dumps(record["reference"], indent=2))
    print(f"trained in {seconds:.0f} s; set WEIGHTS_SHA256 = {digest!r} in diffnotes/evaluation/classifier.py")



if __name__ == "__main__":
    _main()
