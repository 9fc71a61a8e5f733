"""The offline digit classifier: a small CNN trained on the 5,000 offline digits, the feature extractor and judge
of the quality protocol (:mod:`diffnotes.evaluation.quality`).

The weights ship in ``diffnotes/weights/digit_classifier.pt`` (SHA-256 checked before loading, by
:func:`diffnotes.files.load_checked`) with their provenance and reference numbers in ``digit_classifier.json``;
retrain with ``python -m diffnotes.evaluation.quality train --out diffnotes/weights/digit_classifier.pt``.
Images are (N, 1, 28, 28) floats in the model range [-1, 1].
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffnotes.files import load_checked

WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "weights" / "digit_classifier.pt"
#: SHA-256 of the shipped weights; :func:`load_classifier` refuses a file with another digest.
WEIGHTS_SHA256 = "b6f06d47fcd8114a34ff155ebe23c01d9ea8e822f48e4b568aa68c4a545d1d0a"
#: The digits 0..9.
NUM_CLASSES = 10


class DigitClassifier(nn.Module):
    """Three 3x3 conv layers (16, 32, 64 channels, each with ReLU and 2x2 max-pooling: 28 -> 14 -> 7 -> 3), a
    128-unit feature layer and a 10-way read-out; about 98k parameters. Input (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, feature_dim: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((1, 16), (16, 32), (32, 64)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 3 * 3, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer phi(x): (B, 1, 28, 28) -> (B, feature_dim), after its ReLU."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits: (B, 1, 28, 28) -> (B, 10)."""
        return self.head(self.body(x))


def check_images(images: torch.Tensor, name: str) -> torch.Tensor:
    """Accept (N, 1, 28, 28) float images in [-1, 1] (1e-3 of slack, then clipped); raise ValueError otherwise."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape (N, 1, 28, 28), got {type(images).__name__}")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28) or images.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, 1, 28, 28) with N >= 1, got {tuple(images.shape)}")
    lo, hi = float(images.min()), float(images.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1.001 or hi > 1.001:
        raise ValueError(
            f"{name} must lie in the model range [-1, 1], got values in [{lo:.3g}, {hi:.3g}];"
            " clip samples with x.clamp(-1, 1), map [0, 1] pixels with 2 * x - 1"
        )
    return images.clamp(-1.0, 1.0)


def load_classifier(path: str | Path = WEIGHTS_PATH, sha256: str | None = WEIGHTS_SHA256) -> DigitClassifier:
    """Load the digit classifier in eval mode, on the CPU, after checking the file's SHA-256 (skipped for None).

    Raises:
        FileNotFoundError: if the weights file is missing (the message says how to retrain it).
        ValueError: if the file's digest differs from ``sha256`` (altered or corrupted) or it does not load.
    """
    state = load_checked(path, sha256, f"retrain them with `python -m diffnotes.evaluation.quality train --out {path}`")
    try:
        model = DigitClassifier()
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except Exception as error:  # noqa: BLE001 - a state dict of another network
        raise ValueError(f"classifier weights {path} do not fit the classifier ({type(error).__name__}: {error})") from error
    return model.eval()


@functools.lru_cache(maxsize=1)
def default_classifier() -> DigitClassifier:
    """The shipped classifier, loaded once per process."""
    return load_classifier()


@torch.no_grad()
def _apply(images: torch.Tensor, classifier: DigitClassifier | None, head: bool) -> torch.Tensor:
    """Run the classifier (the shipped one for None) on its device in batches of 500; return float32 on the CPU."""
    model = default_classifier() if classifier is None else classifier
    device = next(model.parameters()).device
    batches = [b.to(device) for b in check_images(images, "images").split(500)]
    return torch.cat([model(b) if head else model.features(b) for b in batches]).float().cpu()


def features(images: torch.Tensor, classifier: DigitClassifier | None = None) -> torch.Tensor:
    """The classifier's penultimate-layer features phi(x): images (N, 1, 28, 28) in [-1, 1] -> (N, 128)."""
    return _apply(images, classifier, head=False)


def classify(images: torch.Tensor, classifier: DigitClassifier | None = None) -> torch.Tensor:
    """Class probabilities softmax(logits): images (N, 1, 28, 28) in [-1, 1] -> (N, 10), rows summing to 1."""
    return _apply(images, classifier, head=True).softmax(dim=1)


@dataclass(frozen=True)
class ClassifierConfig:
    """How the shipped classifier is trained: Adam with cosine decay, random shifts, a stratified held-out split."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    max_shift: int = 2  # pixels, in each direction
    holdout_per_class: int = 50  # 10 x 50 = 500 held-out digits, 4,500 for training
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1), ("holdout_per_class", 1), ("max_shift", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def holdout_split(labels: torch.Tensor, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified split by a seeded permutation: (train indices, held-out indices), ``per_class`` per label held out."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    held = torch.cat([perm[labels[perm] == k][:per_class] for k in range(NUM_CLASSES)]).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[held] = False
    return keep.nonzero().squeeze(1), held


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image (B, 1, H, W) by up to ``max_shift`` pixels along each axis, filling with background -1."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(offsets)])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, config: ClassifierConfig) -> DigitClassifier:
    """Minimise the cross-entropy of the labels on randomly shifted images; deterministic on a CPU for a seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = DigitClassifier()
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batches = -(-len(images) // config.batch_size)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * batches)
    model.train()
    for _ in range(config.epochs):
        for index in torch.randperm(len(images), generator=generator).split(config.batch_size):
            x = random_shift(images[index], config.max_shift, generator)
            loss = F.cross_entropy(model(x), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            decay.step()
    return model.eval()
