"""The cost of sampling (diffnotes.evaluation.timing): timers driven by a fake clock, the extrapolation N * t_eval(B), and
the number of network evaluations each sampler makes."""

import pytest
import torch

from diffnotes import schedules
from diffnotes.evaluation.timing import (
    CountCalls,
    EvalTiming,
    SamplingBudget,
    cost_table,
    flops_per_image,
    parameters_without_gradient,
    time_call,
    time_evaluations,
    timed,
)
from diffnotes.samplers.ddpm import ddpm_sample, strided_sample


class FakeClock:
    """A clock that only moves when told to: every timed quantity is then exact."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class CostlyModel:
    """A stand-in network whose evaluation 'takes' fixed + per_image * B seconds of the fake clock; predicts 0."""

    def __init__(self, clock, fixed=0.01, per_image=0.001):
        self.clock, self.fixed, self.per_image = clock, fixed, per_image

    def __call__(self, x_t, t, cond=None):
        self.clock.advance(self.fixed + self.per_image * x_t.shape[0])
        return torch.zeros_like(x_t)


def test_timed_returns_the_result_and_the_elapsed_time():
    clock = FakeClock()
    result, seconds = timed(lambda: clock.advance(0.25) or "done", clock=clock)
    assert result == "done" and seconds == 0.25


def test_time_call_repeats_until_min_seconds_and_takes_the_median():
    clock = FakeClock()
    durations = iter([5.0, 0.1, 0.3, 0.2, 0.4, 0.2])  # the first call is the warm-up and is not timed

    def fn():
        clock.advance(next(durations))

    median, repeats = time_call(fn, min_seconds=1.0, warmup=1, clock=clock)
    # timed calls 0.1, 0.3, 0.2, 0.4 add up to 1.0 >= min_seconds: four repeats, median of them (0.25)
    assert repeats == 4 and median == pytest.approx(0.25)


def test_time_call_runs_at_least_once_and_at_most_max_repeats():
    clock = FakeClock()
    assert time_call(lambda: clock.advance(1.0), min_seconds=0.0, clock=clock) == (1.0, 1)
    assert time_call(lambda: None, min_seconds=1.0, clock=clock, max_repeats=7) == (0.0, 7)


def test_time_evaluations_measures_the_cost_of_one_evaluation_per_batch_size():
    clock = FakeClock()
    model = CostlyModel(clock)
    timings = time_evaluations(model, (1, 4, 4), [1, 16, 256], T=1000, min_seconds=0.05, warmup=1, clock=clock)
    assert [e.batch_size for e in timings] == [1, 16, 256]
    for e in timings:
        assert e.seconds == pytest.approx(0.01 + 0.001 * e.batch_size)
        assert e.per_image == pytest.approx((0.01 + 0.001 * e.batch_size) / e.batch_size)
    # the fixed cost per call is shared by the batch: an image costs less in a larger batch
    assert timings[0].per_image > timings[1].per_image > timings[2].per_image


def test_the_extrapolation_predicts_a_sampler_run_exactly_when_only_the_network_costs_time():
    """Eq. ch8-eq-cost: seconds(sampler, B) = N * t_eval(B); with a fake clock that only the model moves it is exact."""
    clock = FakeClock()
    model = CostlyModel(clock)
    s = schedules.linear(T=40)
    x_T = torch.zeros(8, 1, 4, 4)
    (timing,) = time_evaluations(model, (1, 4, 4), [8], T=s.T, min_seconds=0.0, clock=clock)
    _, full = timed(lambda: ddpm_sample(model, s, x_T, generator=torch.Generator().manual_seed(0)), clock=clock)
    z = torch.Generator().manual_seed(0)
    _, strided = timed(lambda: strided_sample(model, s, x_T, 10, generator=z), clock=clock)
    assert full == pytest.approx(timing.sampler_seconds(s.T))
    assert strided == pytest.approx(timing.sampler_seconds(10))
    assert timing.sampler_seconds_per_image(s.T) == pytest.approx(full / 8)


def test_algorithm_2_evaluates_the_network_T_times_and_a_strided_sampler_S_times():
    s = schedules.linear(T=100)
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    counter = CountCalls(lambda x_t, t, cond=None: torch.zeros_like(x_t))
    ddpm_sample(counter, s, x_T, generator=torch.Generator().manual_seed(1))
    assert counter.calls == 100
    for steps in (1, 7, 25, 100):
        counter = CountCalls(lambda x_t, t, cond=None: torch.zeros_like(x_t))
        strided_sample(counter, s, x_T, steps, generator=torch.Generator().manual_seed(1))
        assert counter.calls == steps


def test_count_calls_passes_arguments_and_results_through():
    seen = []

    def model(x_t, t, cond=None):
        seen.append((t.tolist(), cond))
        return x_t + 1

    counter = CountCalls(model)
    out = counter(torch.zeros(2, 3), torch.tensor([5, 5]), "label")
    assert torch.equal(out, torch.ones(2, 3)) and seen == [([5, 5], "label")] and counter.calls == 1


def test_cost_table_lists_one_row_per_batch_size_with_the_extrapolations():
    timings = [EvalTiming(1, 0.02, 5), EvalTiming(16, 0.16, 5)]
    table = cost_table(timings, T=1000, steps=50).splitlines()
    assert len(table) == 3 and "T=1000" in table[0] and "S=50" in table[0]
    # batch 16: 0.16 s per evaluation, 0.01 s per image; T = 1000 steps -> 10 s per image; S = 50 -> 0.5 s per image
    assert table[2].split() == ["16", "0.1600", "0.01000", "10.000", "0.500"]


def test_budget_for_profile():
    quick, full = SamplingBudget.for_profile("quick"), SamplingBudget.for_profile("full")
    assert quick.steps == 25 and full.steps is None  # the full profile samples with all T steps
    assert quick.n_samples < full.n_samples and quick.batch_sizes == full.batch_sizes == (1, 16, 256)
    assert full.n_samples + full.n_reference == 5000  # the full profile uses every offline digit


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(steps=0),
        dict(n_samples=0),
        dict(n_reference=0),
        dict(snapshot_steps=0),
        dict(snapshot_images=0),
        dict(strided_steps=0),
        dict(batch_sizes=()),
        dict(batch_sizes=(1, 0)),
        dict(batch_sizes=(1.5,)),
        dict(min_seconds=-1.0),
        dict(warmup=-1),
    ],
)
def test_budget_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        SamplingBudget(**kwargs)


def test_bad_input_is_refused():
    clock = FakeClock()
    model = CostlyModel(clock)
    with pytest.raises(ValueError, match="batch_sizes"):
        time_evaluations(model, (1, 4, 4), [], T=10, min_seconds=0.0, clock=clock)
    with pytest.raises(ValueError, match="T must be"):
        time_evaluations(model, (1, 4, 4), [1], T=0, min_seconds=0.0, clock=clock)
    with pytest.raises(ValueError, match="min_seconds"):
        time_call(lambda: None, min_seconds=-1.0)
    with pytest.raises(ValueError, match="evaluations"):
        EvalTiming(1, 0.1, 1).sampler_seconds(-1)
    with pytest.raises(ValueError, match="timings"):
        cost_table([], T=10, steps=5)


class Linear(torch.nn.Module):
    """eps_theta(x_t, t) = W x_t on flattened inputs: 2 * d * d operations per image forward (one d x d product)."""

    def __init__(self, d):
        super().__init__()
        self.layer = torch.nn.Linear(d, d, bias=False)

    def forward(self, x_t, t, cond=None):
        return self.layer(x_t.flatten(1)).view_as(x_t)


def test_flops_per_image_of_a_linear_map():
    d = 16
    model = Linear(d)
    assert flops_per_image(model, (1, 4, 4)) == 2 * d * d
    # a training step adds the weight's gradient g x^T, as costly as the forward (the input needs no gradient)
    assert flops_per_image(model, (1, 4, 4), backward=True) == 2 * 2 * d * d
    assert all(p.grad is None for p in model.parameters())  # the gradients are not left behind
    frozen = Linear(d).requires_grad_(False)  # e.g. an EMA copy: its training step still costs the same
    assert flops_per_image(frozen, (1, 4, 4), backward=True) == 2 * 2 * d * d
    assert not any(p.requires_grad for p in frozen.parameters())
    assert flops_per_image(model, (1, 4, 4), batch_size=5) == 2 * d * d  # per image, whatever the batch
    with pytest.raises(ValueError, match="batch_size"):
        flops_per_image(model, (1, 4, 4), batch_size=0)
    with pytest.raises(ValueError, match="nn.Module"):
        flops_per_image(lambda x_t, t, cond=None: x_t, (1, 4, 4), backward=True)


def test_parameters_without_gradient_names_those_the_backward_pass_missed():
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"used": torch.nn.Linear(3, 3), "zeroed": torch.nn.Linear(3, 3),
                               "unused": torch.nn.Linear(3, 3), "frozen": torch.nn.Linear(3, 3).requires_grad_(False)})
    x = torch.randn(4, 3)
    (net["used"](x).sum() + 0.0 * net["zeroed"](x).sum() + net["frozen"](x).sum()).backward()
    assert parameters_without_gradient(net) == ["zeroed.weight", "zeroed.bias", "unused.weight", "unused.bias"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_training_step_trains_every_weight_of_the_unet(precision):
    """The check the benchmarks make of every variant they time, on the package's own step in both precisions."""
    from conftest import TINY_UNET

    from diffnotes.nets.unet import UNet
    from diffnotes.training import TrainConfig, new_state, train_step

    torch.manual_seed(0)
    config = TrainConfig(steps=3, batch_size=4, warmup_steps=1, lr=1e-3, mixed_precision=precision)
    state = new_state(UNet(TINY_UNET), config)
    images = torch.rand(8, 1, 8, 8) * 2 - 1
    for _ in range(2):  # the first step moves the zero-initialised head, which the second's gradients then cross
        train_step(state, images, schedules.linear(T=50), config, torch.device("cpu"))
    assert parameters_without_gradient(state.model) == []
