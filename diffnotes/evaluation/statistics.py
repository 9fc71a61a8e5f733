"""Two-sample statistics: do two sets of samples come from the same distribution? (chapters 2 and 5).

:func:`mmd_test` is a permutation test on the maximum mean discrepancy (Gretton et al. 2012); :func:`energy_distance`
(Szekely and Rizzo 2013) measures how close generated points lie to the data; :func:`nearest_distance` is the
distance from each point to its nearest neighbour in another set.
"""

from __future__ import annotations

import torch

from diffnotes.checks import positive_int


def mmd_test(x: torch.Tensor, y: torch.Tensor, n_permutations: int, generator: torch.Generator) -> tuple[float, float]:
    """Kernel two-sample test of Gretton et al. (2012): the unbiased MMD^2 and its permutation p-value.

    The kernel is Gaussian, ``exp(-|a - b|^2 / (2 h^2))``, with h the median distance between pooled points (the
    median heuristic). The p-value is (1 + #{permuted MMD^2 >= observed}) / (1 + n_permutations).

    Args:
        x: (m, ...) one sample, e.g. images; each row is flattened to a vector.
        y: (n, ...) the other sample, with rows of the same shape.
        n_permutations: how many random relabellings of the pooled sample to compare against (>= 1).
        generator: draws the permutations.

    Returns:
        (MMD^2, p-value).
    """
    if x.shape[1:] != y.shape[1:] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"x and y need >= 2 rows of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    positive_int("n_permutations", n_permutations)
    m, n = len(x), len(y)
    pooled = torch.cat([x.reshape(m, -1), y.reshape(n, -1)]).double()
    dist2 = torch.cdist(pooled, pooled).pow(2)
    off_diagonal = ~torch.eye(m + n, dtype=torch.bool)
    kernel = torch.exp(-dist2 / (2.0 * dist2[off_diagonal].median()))  # h^2 = median of the squared distances
    # Row 0 is the observed split; each other row marks a random m-subset as "x".
    in_x = torch.rand(n_permutations, m + n, generator=generator).argsort(dim=1) < m
    in_x = torch.cat([(torch.arange(m + n) < m).unsqueeze(0), in_x]).double()  # (1 + P, m + n)
    k_in_x = in_x @ kernel
    sum_xx = (k_in_x * in_x).sum(dim=1)
    sum_xy = (k_in_x * (1.0 - in_x)).sum(dim=1)
    sum_yy = kernel.sum() - sum_xx - 2.0 * sum_xy
    mmd2 = (sum_xx - m) / (m * (m - 1)) + (sum_yy - n) / (n * (n - 1)) - 2.0 * sum_xy / (m * n)  # diagonal is 1
    p_value = (1 + int((mmd2[1:] >= mmd2[0]).sum())) / (1 + n_permutations)
    return float(mmd2[0]), p_value


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (m, D) and (n, D) with one D, got {tuple(x.shape)} and {tuple(y.shape)}")


def _row_chunks(x: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    """Split the rows of x so that each chunk against n points makes at most 2**22 distances (memory stays small)."""
    return torch.split(x, max(1, 2**22 // max(1, n)))


def _mean_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    total = sum(float(torch.cdist(rows, y).sum()) for rows in _row_chunks(x, y.shape[0]))
    return total / (x.shape[0] * y.shape[0])


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| of two samples (book eq. ``ch5-eq-energy``).

    Székely's statistic over every pair (the V-statistic): x (m, D), y (n, D), computed in float64 and in chunks of
    rows. It is >= 0, it is 0 when the two samples are the same points, and as the samples grow it tends to 0 exactly
    when the distributions agree.
    """
    _check_pair(x, y)
    x, y = x.double(), y.double()
    return 2 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y)


def nearest_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(m,) the distance from each point of x (m, D) to its nearest neighbour among the points y (n, D)."""
    _check_pair(x, y)
    return torch.cat([torch.cdist(rows, y).min(dim=1).values for rows in _row_chunks(x, y.shape[0])])
