"""The step-count against quality table of a sampler (chapter "DDIM").

:func:`quality_table` samples ``n`` images for every (eta, S) cell with one seed and batch, measures them with
:func:`diffnotes.evaluation.quality.evaluate` and times them; :class:`QualityCell` is one cell, and
:func:`cell_from_dict` reads one back from a benchmark record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffnotes.evaluation.quality import QualityReport, evaluate
from diffnotes.nets import NoisePredictor
from diffnotes.samplers.ddim import check_eta, ddim_sample
from diffnotes.samplers.timesteps import subsequence
from diffnotes.schedules import Schedule


@dataclass(frozen=True)
class QualityCell:
    """One cell of :func:`quality_table`: S steps at one eta, the samples' quality report and the time per image."""

    steps: int
    eta: float
    report: QualityReport
    seconds_per_image: float


@torch.no_grad()
def quality_table(
    model: NoisePredictor,
    schedule: Schedule,
    steps_list: Sequence[int],
    etas: Sequence[float],
    n_samples: int,
    reference_images: torch.Tensor,
    generator: torch.Generator,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    spacing: str = "linear",
) -> list[QualityCell]:
    """Sample quality against the number of steps S and eta, the shape of Table 1 of Song et al. (2021).

    Every cell starts from the same ``n_samples`` noises x_T and, where eta > 0, draws its z from a generator with the
    same seed (common random numbers), so that differences between cells are the sampler's, not chance's. Samples
    are clipped to [-1, 1] and measured by :func:`diffnotes.evaluation.quality.evaluate` against ``reference_images``; the
    time per image is wall-clock on ``device``, after one untimed network evaluation has warmed it up (the first
    call of a network pays for loading and planning its kernels, which would otherwise count against the first
    cell). Returns one :class:`QualityCell` per (eta, S), eta-major.
    """
    for S in steps_list:
        subsequence(schedule.T, S, spacing)  # checks S and the spacing before any work
    for eta in etas:
        check_eta(eta)
    device = torch.device(device)
    schedule = schedule.to(device=device, dtype=torch.float32)
    x_T, noise_seed = common_noise(n_samples, reference_images.shape[1:], generator)  # noqa: N806
    ddim_sample(model, schedule, x_T[:batch_size].to(device), 1)  # warm-up, untimed; eta = 0 draws no noise
    cells = []
    for eta in etas:
        for S in steps_list:
            z_generator = torch.Generator(device).manual_seed(noise_seed)
            start = time.perf_counter()
            samples = torch.cat([
                ddim_sample(model, schedule, batch.to(device), S, eta, spacing, z_generator).cpu()
                for batch in x_T.split(batch_size)
            ])
            seconds = (time.perf_counter() - start) / n_samples
            report = evaluate(samples.clamp(-1.0, 1.0), reference_images)
            cells.append(QualityCell(steps=S, eta=float(eta), report=report, seconds_per_image=seconds))
    return cells


def common_noise(n: int, shape: Sequence[int], generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """The common random numbers of a quality measurement, drawn in this order from ``generator``: the starts x_T,
    ``(n, *shape)``, and the seed of the generator of every step's noise z."""
    x_T = torch.randn((n, *shape), generator=generator)  # noqa: N806
    return x_T, int(torch.randint(0, 2**62, (1,), generator=generator))


def cell_from_dict(d: dict) -> QualityCell:
    """The :class:`QualityCell` that ``dataclasses.asdict(cell)`` made ``d`` from (a record read back from JSON)."""
    report = QualityReport(**{**d["report"], "class_fractions": tuple(d["report"]["class_fractions"])})
    return QualityCell(steps=d["steps"], eta=d["eta"], report=report, seconds_per_image=d["seconds_per_image"])
