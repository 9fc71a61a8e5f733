"""What sampling costs: seconds per network evaluation, measured, and extrapolated to whole samplers (chapter
"Sampling").

Algorithm 2 calls the network once per step and does little else, so a sampler's wall-clock is, to a good
approximation, the number of network evaluations N times the seconds one evaluation takes at the batch size B used
(book eq. ``ch8-eq-cost``)::

    seconds(sampler, B) ~= N * t_eval(B),    seconds per image ~= N * t_eval(B) / B

with N = T for Algorithm 2 and N = S for a strided sampler of S steps. :func:`time_evaluations` measures t_eval(B)
for a few batch sizes, :class:`EvalTiming` extrapolates, :func:`timed` times one real sampler run to check the
extrapolation, :class:`CountCalls` counts the evaluations a sampler makes, and :func:`flops_per_image` counts the
floating-point operations of one evaluation (or one training step); :func:`parameters_without_gradient` checks that
a faster training step still trains every weight. :class:`SamplingBudget` sizes the sampling of the digit chapters
("Training", "Sampling") for each profile, since that cost is what decides them.

Every timer takes a ``clock`` (default ``time.perf_counter``) so that tests can drive it, and waits for a CUDA
device to finish (:func:`synchronize`) before reading it.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from diffnotes.checks import positive_int
from diffnotes.nets import NoisePredictor
from diffnotes.runtime import by_profile

Clock = Callable[[], float]


@dataclass(frozen=True)
class SamplingBudget:
    """How much sampling the digit chapters afford in a profile, and how they time it.

    Attributes:
        steps: steps of the chapters' sample figures; ``None`` means all T steps (Algorithm 2 itself); a number
            S < T means the strided sampler :func:`diffnotes.samplers.ddpm.strided_sample` with S steps.
        n_samples: images sampled for each figure and quality report.
        n_reference: real digits that the samples' quality is measured against (real digits held out from them
            give the yardstick at the same sizes).
        snapshot_steps: steps of the quick strided samples drawn while a model trains.
        snapshot_images: images in each of those samples (one row of a figure).
        batch_sizes: the batch sizes at which :func:`time_evaluations` measures one network evaluation.
        min_seconds: each batch size is timed for at least this long (and at least once).
        warmup: untimed evaluations before the timed ones, per batch size.
        strided_steps: the S of the strided sampler that the cost table compares with Algorithm 2.
    """

    steps: int | None = None
    n_samples: int = 1000
    n_reference: int = 4000
    snapshot_steps: int = 100
    snapshot_images: int = 8
    batch_sizes: tuple[int, ...] = (1, 16, 256)
    min_seconds: float = 2.0
    warmup: int = 2
    strided_steps: int = 50

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be None (all T steps) or >= 1, got {self.steps}")
        for name in ("n_samples", "n_reference", "snapshot_steps", "snapshot_images", "strided_steps"):
            positive_int(name, getattr(self, name))
        _check_batch_sizes(self.batch_sizes)
        if self.min_seconds < 0 or self.warmup < 0:
            raise ValueError(f"min_seconds and warmup must be >= 0, got {self.min_seconds} and {self.warmup}")

    @classmethod
    def for_profile(cls, profile: str | None = None) -> SamplingBudget:
        """Quick: 16 images from a strided chain of 25 steps, 1,000 reference digits, a short timing; full: 1,000 images
        with all T steps against 4,000 reference digits (the sizes of the classifier's recorded Frechet floor)."""
        sizes = by_profile(
            quick=dict(steps=25, n_samples=16, n_reference=1000, snapshot_steps=10, min_seconds=0.3, warmup=0),
            full=dict(steps=None, n_samples=1000, n_reference=4000, snapshot_steps=100, min_seconds=2.0, warmup=2),
            profile=profile,
        )
        return cls(**sizes)


@dataclass(frozen=True)
class EvalTiming:
    """One network evaluation on a batch of ``batch_size`` images took ``seconds`` (the median of ``repeats``)."""

    batch_size: int
    seconds: float
    repeats: int

    @property
    def per_image(self) -> float:
        """The seconds of one evaluation divided by the batch size."""
        return self.seconds / self.batch_size

    def sampler_seconds(self, evaluations: int) -> float:
        """Predicted wall-clock of a sampler making ``evaluations`` calls at this batch size (eq. ``ch8-eq-cost``)."""
        if evaluations < 0:
            raise ValueError(f"evaluations must be >= 0, got {evaluations}")
        return evaluations * self.seconds

    def sampler_seconds_per_image(self, evaluations: int) -> float:
        """Predicted wall-clock per image of a sampler making ``evaluations`` calls at this batch size."""
        return self.sampler_seconds(evaluations) / self.batch_size


def _check_batch_sizes(batch_sizes: Sequence[int]) -> None:
    if not batch_sizes:
        raise ValueError(f"batch_sizes must be a non-empty sequence of positive integers, got {batch_sizes!r}")
    for b in batch_sizes:
        positive_int("batch_sizes", b, " (each entry)")


def synchronize(device: torch.device | str | None) -> None:
    """Wait until every queued kernel on ``device`` has finished (CUDA runs asynchronously); no-op elsewhere."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    fn: Callable[[], object], device: torch.device | str | None = None, clock: Clock = time.perf_counter
) -> tuple[object, float]:
    """Call ``fn()`` once; return its result and the wall-clock seconds it took (device work included)."""
    synchronize(device)
    start = clock()
    result = fn()
    synchronize(device)
    return result, clock() - start


def time_call(
    fn: Callable[[], object],
    min_seconds: float,
    warmup: int = 0,
    device: torch.device | str | None = None,
    clock: Clock = time.perf_counter,
    max_repeats: int = 1000,
) -> tuple[float, int]:
    """The median wall-clock seconds of ``fn()``, and how many timed calls it took.

    ``warmup`` untimed calls come first; then ``fn`` is timed call by call until the timed calls add up to at least
    ``min_seconds`` (at least one call, at most ``max_repeats``). The median ignores the odd slow call.
    """
    if min_seconds < 0 or warmup < 0 or max_repeats < 1:
        raise ValueError(
            f"need min_seconds >= 0, warmup >= 0, max_repeats >= 1; got {min_seconds}, {warmup}, {max_repeats}"
        )
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while not times or (sum(times) < min_seconds and len(times) < max_repeats):
        times.append(timed(fn, device, clock)[1])
    return statistics.median(times), len(times)


@torch.no_grad()
def time_evaluations(
    model: NoisePredictor,
    image_shape: Sequence[int],
    batch_sizes: Sequence[int],
    T: int,  # noqa: N803
    min_seconds: float,
    warmup: int = 0,
    device: torch.device | str = "cpu",
    clock: Clock = time.perf_counter,
) -> list[EvalTiming]:
    """Time one evaluation ``model(x_t, t)`` on random inputs of shape ``(B, *image_shape)`` at each batch size B.

    The timestep is T // 2 + 1 for every image (the network's cost does not depend on t); the inputs are created on
    ``device`` before the clock starts. See :func:`time_call` for ``min_seconds`` and ``warmup``.

    Returns:
        one :class:`EvalTiming` per batch size, in the order given.
    """
    _check_batch_sizes(batch_sizes)
    positive_int("T", T)
    results = []
    for b in batch_sizes:
        x_t = torch.randn((b, *image_shape), device=device)
        t = torch.full((b,), T // 2 + 1, dtype=torch.int64, device=device)
        seconds, repeats = time_call(lambda: model(x_t, t), min_seconds, warmup, device, clock)  # noqa: B023
        results.append(EvalTiming(batch_size=b, seconds=seconds, repeats=repeats))
    return results


def cost_table(timings: Sequence[EvalTiming], T: int, steps: int) -> str:  # noqa: N803
    """A plain-text table: per batch size, the seconds of one evaluation and the predicted seconds per image of
    Algorithm 2 (T evaluations) and of a strided sampler (``steps`` evaluations)."""
    if not timings:
        raise ValueError("timings must hold at least one EvalTiming")
    header = ("batch", "s/eval", "s/image/eval", f"T={T}: s/image", f"S={steps}: s/image")
    widths = (6, 9, 13, 16, 14)
    lines = [" ".join(f"{h:>{w}}" for h, w in zip(header, widths))]
    for e in timings:
        row = (f"{e.batch_size}", f"{e.seconds:.4f}", f"{e.per_image:.5f}",
               f"{e.sampler_seconds_per_image(T):.3f}", f"{e.sampler_seconds_per_image(steps):.3f}")
        lines.append(" ".join(f"{v:>{w}}" for v, w in zip(row, widths)))
    return "\n".join(lines)


def flops_per_image(
    model: NoisePredictor, image_shape: Sequence[int], backward: bool = False, batch_size: int = 2
) -> float:
    """Floating-point operations per image of one evaluation ``model(x_t, t)``, or, when ``backward`` is True, of
    one training step's forward and backward pass (the gradients of all parameters, as training needs them), counted
    by :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and convolutions, a multiply-add counted as
    2) on a batch of ``batch_size`` random images, created on the device of the model's parameters (the CPU for a
    plain function). The backward pass runs on a copy of the model, so frozen weights (an EMA copy) count as trainable
    and the model's own ``.grad`` are left alone.

    Raises:
        ValueError: if ``batch_size`` < 1, or ``backward`` is True and ``model`` is not an ``nn.Module``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    positive_int("batch_size", batch_size)
    if backward:
        if not isinstance(model, nn.Module):
            raise ValueError(f"backward=True needs model to be an nn.Module, got {type(model).__name__}")
        model = copy.deepcopy(model).requires_grad_(True)
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    device = params[0].device if params else torch.device("cpu")
    x_t = torch.randn((batch_size, *image_shape), device=device)
    t = torch.full((batch_size,), 1, dtype=torch.int64, device=device)
    with torch.set_grad_enabled(backward), FlopCounterMode(display=False) as counter:
        out = model(x_t, t)
        if backward:
            out.square().mean().backward()
    return counter.get_total_flops() / batch_size


def parameters_without_gradient(model: nn.Module) -> list[str]:
    """The names of ``model``'s trainable parameters that the last backward pass left without a gradient (None, or
    all zeros). After a training step of a network whose every weight learns, the list is empty; a speed-up that
    leaves it non-empty computed another step (in PyTorch 2.13, ``torch.compile`` on a CPU under bfloat16 autocast
    gave no gradient to the digit U-Net's weights below 28 x 28, nor to those of ``diffusers``' ``UNet2DModel``: the
    performance notes). The benchmarks record it beside every speed they measure."""
    return [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]


class CountCalls:
    """Wraps a noise predictor and counts its evaluations: ``CountCalls(model)(x_t, t, cond)`` calls ``model``."""

    def __init__(self, model: NoisePredictor) -> None:
        self.model = model
        self.calls = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Evaluate the wrapped model once, counting the call."""
        self.calls += 1
        return self.model(x_t, t, cond)
