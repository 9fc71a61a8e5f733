"""Algorithm 1's loss (diffnotes.objective)."""

import pytest
import torch

from diffnotes import schedules
from diffnotes.objective import sample_timesteps, simple_loss


def test_timesteps_are_uniform_on_1_to_T():
    t = sample_timesteps(100_000, 10, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(t, minlength=11)
    assert counts[0] == 0 and int(t.max()) == 10
    # Each count is Binomial(1e5, 0.1): standard deviation about 95, so 5 sd is about 475.
    assert torch.all((counts[1:] - 10_000).abs() < 475)


def test_loss_is_zero_for_the_oracle_and_matches_the_formula():
    s = schedules.linear(T=100)
    x0 = torch.randn(8, 2, dtype=torch.float64)
    eps = torch.randn(8, 2, dtype=torch.float64)
    t = torch.randint(1, 101, (8,), generator=torch.Generator().manual_seed(0))

    def oracle(x_t, t_, cond=None):
        ab = s.at(s.alpha_bar, t_, 2)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    assert float(simple_loss(oracle, s, x0, t, eps)) < 1e-20
    zero = simple_loss(lambda x_t, t_, cond=None: torch.zeros_like(x_t), s, x0, t, eps)
    assert torch.isclose(zero, (eps**2).mean())


def test_bad_input():
    s = schedules.linear(T=10)
    x0 = torch.zeros(4, 2)
    identity = lambda x_t, t, cond=None: x_t  # noqa: E731
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        simple_loss(identity, s, x0, torch.ones(3, dtype=torch.int64), x0)
    with pytest.raises(ValueError, match="t must lie in 1..T=10"):
        simple_loss(identity, s, x0, torch.zeros(4, dtype=torch.int64), x0)
    with pytest.raises(ValueError, match="must return the shape of x_t"):
        simple_loss(lambda x_t, t, cond=None: x_t[:, :1], s, x0, torch.ones(4, dtype=torch.int64), x0)
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        sample_timesteps(0, 10)


def test_min_snr_gamma_weights_each_example_by_its_capped_snr():
    s = schedules.linear(T=1000)
    x0 = torch.randn(6, 3, dtype=torch.float64)
    eps = torch.randn(6, 3, dtype=torch.float64)
    t = torch.tensor([1, 10, 100, 300, 600, 1000])
    zero = lambda x_t, t_, cond=None: torch.zeros_like(x_t)  # noqa: E731  (error = eps, so each term is known)
    # By hand, one example at a time: weight min(SNR, 5) / SNR, SNR = alpha_bar / (1 - alpha_bar).
    expected = 0.0
    for i in range(6):
        ab = float(s.alpha_bar[t[i]])
        snr = ab / (1 - ab)
        expected += min(snr, 5.0) / snr * float((eps[i] ** 2).mean()) / 6
    assert torch.isclose(simple_loss(zero, s, x0, t, eps, snr_gamma=5.0), torch.tensor(expected, dtype=torch.float64))
    # The cap binds only at small t: there the weight is far below one, at t = T it is exactly one.
    assert float(s.snr[1]) > 5 > float(s.snr[1000])
    # A gamma above every SNR is L_simple itself.
    big = float(s.snr[1:].max()) * 2
    assert torch.isclose(simple_loss(zero, s, x0, t, eps, snr_gamma=big), simple_loss(zero, s, x0, t, eps))
    with pytest.raises(ValueError, match="snr_gamma must be 0"):
        simple_loss(zero, s, x0, t, eps, snr_gamma=-1.0)
