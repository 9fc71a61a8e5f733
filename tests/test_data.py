"""The offline digit loaders and the torchvision loader's errors."""

import builtins

import pytest
import torch

from diffnotes import data


def test_mnist_5k_is_real_balanced_and_scaled():
    images, labels = data.load_mnist_5k()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (5000,) and labels.dtype == torch.int64
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert torch.equal(torch.bincount(labels), torch.full((10,), 500))
    # Real MNIST digits have a mostly black background: about 80 % of pixels are exactly 0 (here -1).
    assert 0.7 < float((images == -1).float().mean()) < 0.9


def test_digits_8x8_is_real_and_scaled():
    images, labels = data.load_digits_8x8()
    assert images.shape == (1797, 1, 8, 8)
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert sorted(torch.unique(labels).tolist()) == list(range(10))


def test_ranges_round_trip():
    pixels = torch.tensor([0.0, 127.5, 255.0])
    x = data.to_model_range(pixels, 255.0)
    assert torch.allclose(x, torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(data.to_unit_range(x), pixels / 255.0)
    assert torch.equal(data.to_unit_range(torch.tensor([-3.0, 3.0])), torch.tensor([0.0, 1.0]))


def test_unknown_torchvision_dataset():
    with pytest.raises(ValueError, match=r"name='svhn'.*mnist, fashion_mnist, cifar10"):
        data.load_torchvision("svhn")


def test_missing_torchvision_gives_advice(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torchvision":
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RuntimeError, match="needs torchvision.*load_mnist_5k"):
        data.load_torchvision("mnist")


def test_offline_download_gives_advice(monkeypatch, tmp_path):
    import sys
    import types

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(MNIST=offline, FashionMNIST=offline, CIFAR10=offline)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    with pytest.raises(RuntimeError, match="could not download 'cifar10'.*offline"):
        data.load_torchvision("cifar10", root=tmp_path)
