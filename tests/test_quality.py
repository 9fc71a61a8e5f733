"""The sample-quality measures: the Frechet distance's closed forms, the shipped classifier, the quality bar."""

import json
import shutil

import numpy as np
import pytest
import scipy.linalg
import torch

from diffnotes.data import load_mnist_5k
from diffnotes.evaluation import classifier, quality


@pytest.fixture(scope="module")
def digits():
    return load_mnist_5k()


@pytest.fixture(scope="module")
def split(digits):
    _, labels = digits
    return classifier.holdout_split(labels, per_class=50, seed=0)


def random_spd(d, rng):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --- The Frechet distance -------------------------------------------------------------------------------------------


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    mu, cov = rng.standard_normal(20), random_spd(20, rng)
    # Tr(cov) is about 20: rounding in the eigendecompositions leaves errors near 1e-12 of it.
    assert quality.gaussian_frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    x = rng.standard_normal((300, 20))
    assert quality.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_covariances_match_the_closed_form():
    # For commuting (diagonal) covariances FD = ||mu_a - mu_b||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(1)
    mu_a, mu_b = rng.standard_normal(8), rng.standard_normal(8)
    a, b = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = quality.gaussian_frechet_distance(mu_a, np.diag(a), mu_b, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_full_covariances_match_scipy_sqrtm_and_are_symmetric():
    rng = np.random.default_rng(2)
    mu_a, mu_b = rng.standard_normal(16), rng.standard_normal(16)
    cov_a, cov_b = random_spd(16, rng), random_spd(16, rng)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    ab = quality.gaussian_frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert ab == pytest.approx(expected, rel=1e-8)
    assert ab == pytest.approx(quality.gaussian_frechet_distance(mu_b, cov_b, mu_a, cov_a), rel=1e-10)
    x, y = rng.standard_normal((200, 16)), rng.standard_normal((300, 16)) * 1.5 + 0.2
    assert quality.frechet_distance(x, y) == pytest.approx(quality.frechet_distance(y, x), rel=1e-10)
    assert quality.frechet_distance(x, y) > 0


def test_singular_covariances_give_the_exact_value():
    # N(0, diag(1, 0)) against N(0, diag(0, 1)): (Sigma_a Sigma_b)^(1/2) = 0, so FD = Tr(Sigma_a) + Tr(Sigma_b) = 2.
    fd = quality.gaussian_frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 1.0]))
    assert fd == pytest.approx(2.0, rel=1e-12)
    # More dimensions than samples (rank-deficient sample covariances): still finite, real and non-negative.
    rng = np.random.default_rng(3)
    fd = quality.frechet_distance(rng.standard_normal((10, 50)), rng.standard_normal((10, 50)))
    assert np.isfinite(fd) and fd >= 0


def test_sample_estimate_approaches_the_gaussian_value():
    # N(0, I) against N(m, diag(4, 1)) with m = (1, 0.5): FD = ||m||^2 + (2 - 1)^2 + (1 - 1)^2 = 2.25. Standard error at
    # n = 200,000 per side, by the delta method: the mean term 2 m_i * sqrt((1 + s_i^2)/n) gives 0.0100 and 0.0032,
    # the first variance term 2 (2 - 1) * sqrt(2^2/(2n) + 1/(2n)) gives 0.0071: together 0.0127; 0.065 is 5 of them.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 2, generator=g)
    b = torch.randn(200_000, 2, generator=g) * torch.tensor([2.0, 1.0]) + torch.tensor([1.0, 0.5])
    assert quality.frechet_distance(a, b) == pytest.approx(2.25, abs=0.065)


# --- The shipped classifier -----------------------------------------------------------------------------------------


def test_shipped_weights_match_hash_provenance_and_size():
    record = json.loads(classifier.WEIGHTS_PATH.with_suffix(".json").read_text())
    assert record["sha256"] == classifier.WEIGHTS_SHA256
    assert record["bytes"] == classifier.WEIGHTS_PATH.stat().st_size < 1_000_000
    assert isinstance(classifier.load_classifier(), classifier.DigitClassifier)


def test_heldout_split_is_stratified_and_disjoint(digits, split):
    _, labels = digits
    train_idx, held_idx = split
    assert len(train_idx) == 4500 and len(held_idx) == 500
    assert set(train_idx.tolist()).isdisjoint(held_idx.tolist())
    assert torch.equal(torch.bincount(labels[held_idx]), torch.full((10,), 50))


def test_heldout_accuracy_and_quality_bar(digits, split):
    images, labels = digits
    train_idx, held_idx = split
    p = classifier.classify(images[held_idx])
    accuracy = float((p.argmax(dim=1) == labels[held_idx]).double().mean())
    recorded = json.loads(classifier.WEIGHTS_PATH.with_suffix(".json").read_text())["reference"]["heldout_accuracy"]
    assert accuracy > 0.95 and accuracy == pytest.approx(recorded, abs=1e-12)
    report = quality.evaluate(images[held_idx], images[train_idx])
    assert quality.meets_bar(report), report
    assert report.n == 500 and sum(report.class_fractions) == pytest.approx(1.0)
    # Held-out digits are new handwriting: none is a copy of a training digit.
    assert report.nn_distance_min > 1.0
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise_report = quality.evaluate(noise, images[train_idx[:1000]])
    assert not quality.meets_bar(noise_report)
    assert noise_report.frechet_distance > 100 * report.frechet_distance


def test_real_halves_are_far_closer_than_real_and_noise(digits):
    images, _ = digits
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(1))
    real_a, real_b = classifier.features(images[perm[:1000]]), classifier.features(images[perm[1000:2000]])
    noise = classifier.features(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    assert real_a.shape == (1000, 128)
    # The recorded floor at 1000 vs 1000 is about 10 and noise about 1200 (digit_classifier.json).
    assert quality.frechet_distance(real_a, real_b) < 30
    assert quality.frechet_distance(real_a, noise) > 30 * quality.frechet_distance(real_a, real_b)


def test_real_fd_spread_is_the_benchmark_yardstick_and_varies_by_chance(digits):
    images, _ = digits
    images = images[:800]
    fds = quality.real_fd_spread(images, 100, 4, torch.Generator().manual_seed(3))
    order = torch.randperm(800, generator=torch.Generator().manual_seed(3))  # the first draw's split
    first = quality.evaluate(images[order[:100]], images[order[100:]]).frechet_distance
    assert len(fds) == 4 and fds[0] == pytest.approx(first, rel=1e-5)
    assert len(set(fds)) == 4 and all(f > 0 for f in fds)  # every draw another split, another distance
    with pytest.raises(ValueError, match=r"n must lie in 2..N-2=798"):
        quality.real_fd_spread(images, 799, 1, torch.Generator())
    with pytest.raises(ValueError, match="draws must be at least 1"):
        quality.real_fd_spread(images, 100, 0, torch.Generator())


def test_meets_bar_thresholds():
    def report(confident, fractions):
        return quality.QualityReport(1000, confident, 0.95, tuple(fractions), 5.0, 3.0, 9.0, 0)

    even = [0.1] * 10
    assert quality.meets_bar(report(0.9, even)) and not quality.meets_bar(report(0.899, even))
    assert quality.meets_bar(report(0.95, [0.07, 0.13] + [0.1] * 8))
    assert not quality.meets_bar(report(0.95, [0.069, 0.131] + [0.1] * 8))
    assert not quality.meets_bar(report(0.99, [1.0] + [0.0] * 9))  # one mode only: the GAN failure


def test_class_histogram_counts_the_most_probable_class():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    hist = quality.class_histogram(p)
    assert torch.allclose(hist, torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))
    assert float(hist.sum()) == pytest.approx(1.0)


def test_nearest_training_image(digits):
    images, _ = digits
    train = images[:400]
    delta = torch.zeros(1, 1, 28, 28)
    delta[0, 0, 10:14, 10:14] = 0.05  # brightening 16 pixels by 0.05: distance sqrt(16) * 0.05 = 0.2
    samples = torch.cat([train[[3, 117]], (train[[5]] + delta).clamp(-1, 1), images[400:450]])
    distances, indices = quality.nearest_training_distance(samples, train, batch_size=7)
    assert distances[:2].tolist() == [0.0, 0.0] and indices[:2].tolist() == [3, 117]
    assert indices[2] == 5 and distances[2] <= 0.2 + 1e-6
    exact = "donot_use_mm_for_euclid_dist"
    brute = torch.cdist(samples.flatten(1).double(), train.flatten(1).double(), compute_mode=exact)
    assert torch.equal(indices, brute.argmin(dim=1))
    assert torch.allclose(distances, brute.min(dim=1).values, atol=1e-5)


def test_random_shift_moves_whole_digits():
    x = -torch.ones(8, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0  # an 8x8 block far from the border survives any 2-pixel shift
    shifted = classifier.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and torch.equal((shifted == 1).sum(dim=(1, 2, 3)), torch.full((8,), 64))
    assert torch.equal((shifted == -1).sum(dim=(1, 2, 3)), torch.full((8,), 28 * 28 - 64))  # filled with background
    assert not torch.equal(shifted, x)


def test_training_is_deterministic_and_leaves_the_global_rng_alone(digits):
    images, labels = digits
    config = classifier.ClassifierConfig(epochs=1, batch_size=50)
    state = torch.get_rng_state()
    a = classifier.train_classifier(images[:100], labels[:100], config)
    assert torch.equal(torch.get_rng_state(), state)
    b = classifier.train_classifier(images[:100], labels[:100], config)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


# --- Bad input and damaged files ------------------------------------------------------------------------------------


def test_altered_missing_or_damaged_weights_are_refused(tmp_path):
    altered = tmp_path / "altered.pt"
    data = bytearray(classifier.WEIGHTS_PATH.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256 .* the file is altered or corrupted"):
        classifier.load_classifier(altered)
    with pytest.raises(FileNotFoundError, match="retrain them with"):
        classifier.load_classifier(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(classifier.WEIGHTS_PATH.read_bytes()[:1000])
    with pytest.raises(ValueError, match="do not load"):
        classifier.load_classifier(truncated, sha256=None)
    copy = tmp_path / "copy.pt"
    shutil.copy(classifier.WEIGHTS_PATH, copy)
    assert isinstance(classifier.load_classifier(copy), classifier.DigitClassifier)


def test_bad_input_names_the_argument(digits):
    images, _ = digits
    good = images[:4]
    with pytest.raises(ValueError, match=r"images must have shape \(N, 1, 28, 28\)"):
        classifier.features(good[:, 0])
    with pytest.raises(ValueError, match=r"images must lie in the model range \[-1, 1\]"):
        classifier.classify((good + 1) * 127.5)
    with pytest.raises(ValueError, match="images must be a float tensor"):
        classifier.classify(good.to(torch.uint8))
    with pytest.raises(ValueError, match="reference_images must have shape"):
        quality.evaluate(good, images[:10, :, :14])
    with pytest.raises(ValueError, match="samples must lie in"):
        quality.evaluate(good * 2, images[:10])
    with pytest.raises(ValueError, match="train_images must lie in"):
        quality.nearest_training_distance(good, images[:10] * 3)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        classifier.ClassifierConfig(epochs=0)
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        classifier.ClassifierConfig(max_shift=-1)
    with pytest.raises(ValueError, match="lr must be positive"):
        classifier.ClassifierConfig(lr=0.0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        quality.nearest_training_distance(good, images[:10], batch_size=0)
    with pytest.raises(ValueError, match="feats_a must be a finite"):
        quality.frechet_distance(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="feats_b must be a finite"):
        quality.frechet_distance(np.zeros((5, 2)), np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="equal widths"):
        quality.frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="probabilities must be non-negative with rows summing to 1"):
        quality.class_histogram(torch.tensor([[2.0, -1.0]]))
    with pytest.raises(ValueError, match=r"probabilities must be a tensor of shape \(N, K\)"):
        quality.class_histogram(torch.ones(3))
