"""The forward (diffusion) process q (chapter "The forward process and the diffusion kernel").

One step, t = 1..T (book eqs. ``ch2-eq-step``, ``ch2-eq-transition``)::

    x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t
    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)

t steps at once, the diffusion kernel (book eqs. ``ch2-eq-kernel-sample``, ``ch2-eq-kernel``; the lecture's slide
writes the standard deviation where the covariance belongs, see the errata)::

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)

and the density of a whole path, q(x_{1:t} | x_0) = prod_s q(x_s | x_{s-1}) (book eq. ``ch2-eq-joint``).

Randomness enters as an argument (``eps`` or ``generator``). Log densities sum over all but the batch dimension.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffnotes.checks import same_shape
from diffnotes.runtime import by_profile
from diffnotes.schedules import Schedule, check_timestep

LOG_2PI = math.log(2.0 * math.pi)
Callback = Callable[[int, torch.Tensor], None]  # called as callback(s, x_s) after step s


@dataclass(frozen=True)
class ForwardConfig:
    """Sample sizes of the chapter's checks, per method (chain and kernel); :meth:`for_profile` picks them.

    ``n_scalars`` numbers for the moments and the KS test; ``n_images`` digits, compared at step ``t_images`` by
    :func:`~diffnotes.evaluation.statistics.mmd_test` with ``n_permutations`` permutations (so its smallest p-value is 1/(n_permutations + 1)).
    """

    n_scalars: int = 20_000
    n_images: int = 200
    t_images: int = 200
    n_permutations: int = 200

    @classmethod
    def for_profile(cls, profile: str | None = None) -> ForwardConfig:
        """The quick profile's sizes (seconds on a laptop CPU), or 10 to 20 times more samples in the full one."""
        full = cls(n_scalars=400_000, n_images=2_000, n_permutations=1_000)
        return by_profile(quick=cls(), full=full, profile=profile)


def _as_step(t: int, low: int, T: int) -> int:  # noqa: N803
    """Return ``t`` as a Python int after checking that it is an integer in low..T."""
    try:
        if isinstance(t, bool):
            raise TypeError
        step = operator.index(t)
    except TypeError:
        raise ValueError(f"t must be an integer in {low}..T={T}, got {t!r}") from None
    if not low <= step <= T:
        raise ValueError(f"t must lie in {low}..T={T}, got {step}")
    return step


def q_step(schedule: Schedule, x_prev: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """One forward step x_{t-1} -> x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps (book eq. ``ch2-eq-step``).

    Args:
        schedule: the noise schedule.
        x_prev: (B, ...) the batch x_{t-1}.
        t: an int in 1..T, or a (B,) integer tensor of them.
        eps: (B, ...) standard normal noise, the shape of ``x_prev``.

    Returns:
        (B, ...) the batch x_t.

    Raises:
        ValueError: if ``eps`` has another shape, or ``t`` holds a non-integer or a value outside 1..T.
    """
    same_shape("eps", eps, "x_prev", x_prev)
    t_checked = check_timestep(t, schedule.T)
    if t_checked.numel() and int(t_checked.min()) < 1:
        raise ValueError(f"t must lie in 1..T={schedule.T} for a forward step, got {t!r}")
    alpha = schedule.at(schedule.alpha, t_checked, x_prev.dim()).to(x_prev)
    beta = schedule.at(schedule.beta, t_checked, x_prev.dim()).to(x_prev)
    return alpha.sqrt() * x_prev + beta.sqrt() * eps


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """Sample the kernel: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (book eq. ``ch2-eq-kernel-sample``).

    Args:
        schedule: the noise schedule.
        x0: (B, ...) clean data.
        t: an int in 0..T, or a (B,) tensor of them (t = 0 returns ``x0``).
        eps: (B, ...) standard normal noise, the shape of ``x0``: the compound noise eps-bar_t.

    Returns:
        (B, ...) the batch x_t.
    """
    same_shape("eps", eps, "x0", x0)
    alpha_bar = schedule.at(schedule.alpha_bar, t, x0.dim()).to(x0)
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * eps


def q_sample_as_on_slide(schedule: Schedule, x0: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
    """The lecture slide's kernel taken literally, N(sqrt(alpha_bar_t) x_0, sqrt(1 - alpha_bar_t) I): WRONG on purpose.

    Its standard deviation is (1 - alpha_bar_t)^(1/4); the book uses it to show that the checks reject it (the
    erratum of chapter 2). Shapes as in :func:`q_sample`.
    """
    same_shape("eps", eps, "x0", x0)
    alpha_bar = schedule.at(schedule.alpha_bar, t, x0.dim()).to(x0)
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar) ** 0.25 * eps


def iterate_chain(
    schedule: Schedule, x0: torch.Tensor, t: int, generator: torch.Generator, callback: Callback | None = None
) -> torch.Tensor:
    """Run the chain x_0 -> ... -> x_t: ``t`` calls of :func:`q_step`, each with fresh noise (book eq. ``ch2-eq-step``).

    Args:
        schedule: the noise schedule.
        x0: (B, ...) the starting batch.
        t: the number of steps, an integer in 0..T (t = 0 returns ``x0``).
        generator: draws the noise eps_1, ..., eps_t (on its own device, then moved to that of ``x0``).
        callback: if given, called as ``callback(s, x_s)`` after each step s = 1..t, e.g. to keep snapshots.

    Returns:
        (B, ...) the batch x_t.
    """
    steps = _as_step(t, 0, schedule.T)
    x = x0
    for s in range(1, steps + 1):
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=generator.device).to(x0.device)
        x = q_step(schedule, x, s, eps)
        if callback is not None:
            callback(s, x)
    return x


def two_step_coefficients(beta_1: float, beta_2: float) -> tuple[float, float]:
    """Two steps in one: x_2 = a x_0 + sqrt(v) eps-bar_2; returns (a, v) (book eq. ``ch2-eq-two-step``).

    a = sqrt((1 - beta_1)(1 - beta_2)) scales the signal; v = (1 - beta_2) beta_1 + beta_2 is the variance of
    the sum of the two independent noise terms sqrt(1 - beta_2) sqrt(beta_1) eps_1 and sqrt(beta_2) eps_2
    (variances of independent Gaussians add, chapter 1). The book shows v = 1 - (1 - beta_1)(1 - beta_2).

    Raises:
        ValueError: if a beta lies outside [0, 1].
    """
    for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return math.sqrt((1.0 - beta_1) * (1.0 - beta_2)), (1.0 - beta_2) * beta_1 + beta_2


def noise_contributions(schedule: Schedule, t: int) -> torch.Tensor:
    """(t,) the variance that each step's noise contributes to x_t: beta_s alpha_bar_t / alpha_bar_s, s = 1..t.

    The noise sqrt(beta_s) eps_s of step s is scaled by every later step, by sqrt(alpha_{s+1} ... alpha_t); the
    contributions add up to 1 - alpha_bar_t, the variance of the compound noise (book eq. ``ch2-eq-compound``).
    """
    steps = _as_step(t, 0, schedule.T)
    s = torch.arange(1, steps + 1)
    return schedule.beta[s] * schedule.alpha_bar[steps] / schedule.alpha_bar[s]


def log_normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(var)) for each row of a batch, (B, ...) -> (B,); ``mean`` and ``var`` broadcast."""
    terms = -0.5 * ((x - mean) ** 2 / var + torch.log(var) + LOG_2PI)
    return terms.expand_as(x).reshape(x.shape[0], -1).sum(dim=1)


def log_q_step(schedule: Schedule, x_t: torch.Tensor, x_prev: torch.Tensor, t: int) -> torch.Tensor:
    """log q(x_t | x_{t-1}) = log N(x_t; sqrt(alpha_t) x_{t-1}, beta_t I), t in 1..T (book eq. ``ch2-eq-transition``).

    ``x_t`` and ``x_prev`` are (B, ...); returns (B,).
    """
    step = _as_step(t, 1, schedule.T)
    if x_prev.shape != x_t.shape:
        raise ValueError(f"x_prev must have the shape of x_t, {tuple(x_t.shape)}; got {tuple(x_prev.shape)}")
    alpha, beta = schedule.alpha[step].to(x_t), schedule.beta[step].to(x_t)
    return log_normal(x_t, alpha.sqrt() * x_prev, beta)


def log_q_kernel(schedule: Schedule, x_t: torch.Tensor, x0: torch.Tensor, t: int) -> torch.Tensor:
    """log q(x_t | x_0) = log N(x_t; sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), t = 1..T (book eq. ``ch2-eq-kernel``).

    ``x_t`` and ``x0`` are (B, ...); returns (B,).
    """
    step = _as_step(t, 1, schedule.T)
    alpha_bar = schedule.alpha_bar[step].to(x_t)
    return log_normal(x_t, alpha_bar.sqrt() * x0, 1.0 - alpha_bar)


def log_q_joint(schedule: Schedule, x0: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """log q(x_{1:t} | x_0) = sum_{s=1}^t log q(x_s | x_{s-1}) for a whole path (book eq. ``ch2-eq-joint``).

    Args:
        schedule: the noise schedule.
        x0: (B, ...) the starting points.
        xs: (t, B, ...) the path x_1, ..., x_t, with 1 <= t <= T (t = T gives the lecture's q(x_{1:T} | x_0)).

    Returns:
        (B,) the log density of each path.
    """
    if xs.dim() < 2 or xs.shape[1:] != x0.shape or not 1 <= xs.shape[0] <= schedule.T:
        raise ValueError(
            f"xs must have shape (t, *x0.shape) = (t, {', '.join(map(str, x0.shape))}) with 1 <= t <= T={schedule.T};"
            f" got {tuple(xs.shape)}"
        )
    steps, batch = xs.shape[0], xs.shape[1]
    x_prev = torch.cat([x0.unsqueeze(0), xs[:-1]])  # (t, B, ...): x_0, ..., x_{t-1}
    shape = (steps,) + (1,) * (xs.dim() - 1)
    alpha = schedule.alpha[1 : steps + 1].to(xs).reshape(shape)
    beta = schedule.beta[1 : steps + 1].to(xs).reshape(shape)
    per_step = log_normal(xs.flatten(0, 1), (alpha.sqrt() * x_prev).flatten(0, 1), beta.expand_as(xs).flatten(0, 1))
    return per_step.reshape(steps, batch).sum(dim=0)


def marginalise_joint_1d(schedule: Schedule, x0: float, x_t: torch.Tensor, t: int, grid: torch.Tensor) -> torch.Tensor:
    """log q(x_t | x_0) for scalar data, by integrating the joint (eq. ``ch2-eq-joint``) over x_1..x_{t-1} on a grid.

    Every x_1, ..., x_{t-1} runs over the uniform ``grid`` (G,), so the sum has G^(t-1) terms: a Riemann sum that
    is accurate when the grid spacing is small against sqrt(beta_s) and the grid covers the mass of each x_s.

    Args:
        x0: the scalar starting point.
        x_t: (N,) the points at which to evaluate the marginal density.
        t: the step, 1..T, with G^(t-1) at most 4,000,000.
        grid: (G,) uniformly spaced values.

    Returns:
        (N,) the log density of each ``x_t``.
    """
    steps = _as_step(t, 1, schedule.T)
    spacing = grid.diff() if grid.dim() == 1 and grid.numel() >= 2 else None
    if spacing is None or not torch.allclose(spacing, spacing[0].expand_as(spacing)):
        raise ValueError("grid must be a 1-D tensor of at least 2 uniformly spaced values")
    if grid.numel() ** (steps - 1) > 4_000_000:
        raise ValueError(f"grid.numel()**(t - 1) must be at most 4,000,000, got {grid.numel()}**{steps - 1}")
    x_t = x_t.to(grid).reshape(-1)
    n = x_t.numel()
    inner = torch.cartesian_prod(*[grid] * (steps - 1)).reshape(-1, steps - 1)  # (P, t-1): x_1..x_{t-1}
    p = inner.shape[0]
    paths = torch.cat([inner.expand(n, p, steps - 1), x_t.reshape(n, 1, 1).expand(n, p, 1)], dim=2)  # (N, P, t)
    log_joint = log_q_joint(schedule, torch.full((n * p,), float(x0)).to(grid), paths.reshape(n * p, steps).T)
    return torch.logsumexp(log_joint.reshape(n, p), dim=1) + (steps - 1) * torch.log(spacing[0])
