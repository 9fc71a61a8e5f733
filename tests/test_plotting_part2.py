"""Smoke tests of the figures of chapters 7 and 8 (diffnotes.plotting.training, diffnotes.plotting.sampling): each
draws what it promises on small inputs, and refuses bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffnotes import schedules  # noqa: E402
from diffnotes.plotting import sampling as sampling_plots  # noqa: E402
from diffnotes.plotting import training as training_plots  # noqa: E402
from diffnotes.posterior import posterior_variance  # noqa: E402
from diffnotes.training import TrainConfig, learning_rate  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def images(n, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_warmup_and_ema_draws_the_learning_rate_the_decay_and_one_curve_per_decay():
    config = TrainConfig(warmup_steps=10, ema_decay=0.9)
    fig = training_plots.plot_warmup_and_ema(config, decays=[0.999, 0.9])  # the repeated 0.9 is drawn once
    ax_lr, ax_decay, ax_ema = fig.axes[:3]
    x, y = ax_lr.lines[0].get_data()
    assert len(x) == 30 and y[0] == pytest.approx(learning_rate(config, 0)) and max(y) == pytest.approx(config.lr)
    assert len(ax_decay.lines) == len(ax_ema.lines) == 2  # sorted by decay: 0.9, then 0.999
    k, one_minus_decay = ax_decay.lines[0].get_data()
    assert one_minus_decay[0] == pytest.approx(0.9)  # step 0: d_0 = (1 + 0) / (10 + 0)
    assert 1 - one_minus_decay == pytest.approx([min(0.9, k_ / (9 + k_)) for k_ in k])  # step k - 1: k / (9 + k)
    ages, share = ax_ema.lines[0].get_data()
    assert share == pytest.approx(1 - 0.9**ages)  # the share 1 - d^k of the last k steps
    with pytest.raises(ValueError, match="steps"):
        training_plots.plot_warmup_and_ema(config, steps=-1)


def test_loss_curve_with_and_without_a_reference():
    history = {"step": [5, 10, 15], "loss": [1.0, 0.5, 0.3]}
    fig = training_plots.plot_loss_curve(history)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert list(ax.lines[0].get_ydata()) == [1.0, 0.5, 0.3]
    fig = training_plots.plot_loss_curve(history, reference={"step": [50, 100], "loss": [0.2, 0.1]})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["this run", "reference run"]
    with pytest.raises(ValueError, match="history"):
        training_plots.plot_loss_curve({"step": [1, 2], "loss": [1.0]})
    with pytest.raises(ValueError, match="history"):
        training_plots.plot_loss_curve({"step": [], "loss": []})


def test_snapshots_one_labelled_row_per_step_in_order():
    fig = training_plots.plot_snapshots({20: images(4), 10: images(4, 1)})
    assert [ax.get_ylabel() for ax in fig.axes] == ["step 10", "step 20"]
    with pytest.raises(ValueError, match="at least one"):
        training_plots.plot_snapshots({})
    with pytest.raises(ValueError, match="same shape"):
        training_plots.plot_snapshots({1: images(4), 2: images(3)})


def test_sample_grids_one_titled_panel_per_entry():
    fig = training_plots.plot_sample_grids({"a": images(6), "b": images(6, 1)}, nrow=3)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    # 6 images of 8x8, 3 per row, 1-pixel padding: a (2 * 9 + 1) x (3 * 9 + 1) grid
    assert fig.axes[0].images[0].get_array().shape == (19, 28)
    with pytest.raises(ValueError, match="nrow"):
        training_plots.plot_sample_grids({"a": images(2)}, nrow=0)
    with pytest.raises(ValueError, match="at least one"):
        training_plots.plot_sample_grids({})


def test_sigma_choices_draws_both_variances_and_their_ratio():
    s = schedules.linear(T=50)
    fig = sampling_plots.plot_sigma_choices(s)
    ax_var, ax_ratio = fig.axes
    t, ratio = ax_ratio.lines[0].get_data()
    assert list(t) == list(range(1, 51))
    expected = posterior_variance(s, torch.arange(1, 51)) / s.beta[1:]
    assert torch.allclose(torch.as_tensor(ratio), expected.double())
    assert ratio[0] == 0 and ratio[-1] <= 1


def test_reverse_variance_lines_and_markers():
    exact = {"a": (range(10, -1, -1), [1.0] * 11), "b": ([10, 5, 0], [1.0, 0.9, 0.8])}
    fig = sampling_plots.plot_reverse_variance(exact, sampled={"a": (range(10, -1, -1), [1.01] * 11)}, markers=5)
    ax = fig.axes[0]
    assert ax.get_xlim() == (10, 0)  # t runs from T down to 0
    markers = [line for line in ax.lines if line.get_marker() == "o" and len(line.get_xdata())]
    assert len(markers) == 1 and len(markers[0].get_xdata()) == 6  # every second of 11 points
    with pytest.raises(ValueError, match="exact curve"):
        sampling_plots.plot_reverse_variance(exact, sampled={"c": ([1], [1.0])})
    with pytest.raises(ValueError, match="same length"):
        sampling_plots.plot_reverse_variance({"a": ([1, 2], [1.0])})
    with pytest.raises(ValueError, match="at least one"):
        sampling_plots.plot_reverse_variance({})


def test_trajectory_rows_and_nearest_recorded_steps():
    path = {t: (images(3, t), images(3, 100 + t)) for t in (1, 21, 41)}
    fig = sampling_plots.plot_trajectory(path, times=[40, 20, 2], images=(0, 2), final=images(3))
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == ["$t = 41$", "$t = 21$", "$t = 1$", "sample $x_0$"]
    assert len(fig.axes) == 4 * 4  # 2 images x (x_t row, x0_hat row), 3 steps + the final column
    with pytest.raises(ValueError, match="non-empty"):
        sampling_plots.plot_trajectory(path, times=[])


def test_class_histogram_bars_and_band():
    fractions = {"samples": [0.1] * 10, "real": [0.2, 0.0] * 5}
    fig = sampling_plots.plot_class_histogram(fractions, band=(0.07, 0.13))
    ax = fig.axes[0]
    assert len(ax.patches) >= 20  # ten bars per set (and the shaded band)
    heights = sorted(p.get_height() for p in ax.patches if p.get_width() < 0.5)
    assert heights.count(0.2) == 5 and heights.count(0.1) == 10
    with pytest.raises(ValueError, match="same number"):
        sampling_plots.plot_class_histogram({"a": [0.5, 0.5], "b": [1.0]})
    with pytest.raises(ValueError, match="at least one"):
        sampling_plots.plot_class_histogram({})
