"""A small MLP noise predictor, trained with Algorithm 1 on 2-D toy data (chapter "The noise predictor").

The network eps_theta(x_t, t) predicts the compound noise eps-bar_t of x_t = sqrt(alpha_bar_t) x_0 +
sqrt(1 - alpha_bar_t) eps-bar_t. The kernel can be solved for x_0, so a noise prediction is a prediction of the
clean data and back (:func:`diffnotes.sampling.predict_x0`, :func:`diffnotes.sampling.eps_from_x0`). The model follows the book's
contract ``eps_theta = model(x_t, t, cond=None)`` and is trained by :func:`diffnotes.training.train`, the loop that
also trains the digit U-Net.

Two yardsticks tell how good a predictor is: the zero predictor, whose loss is E||eps||^2 / D = 1, and the best
affine predictor of eps from x_t (:func:`affine_eps`), whose loss has a closed form (:func:`affine_eps_loss`).
:func:`energy_distance` measures how close generated samples lie to the data.

Points are (B, D) tensors; timesteps are (B,) int64 tensors in 1..T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from diffnotes import toy
from diffnotes.forward import q_sample
from diffnotes.runtime import by_profile
from diffnotes.schedules import Schedule, make_schedule
from diffnotes.training import TrainConfig, TrainState, train
from diffnotes.unet import timestep_embedding

#: The standard deviation of the jitter added to the two moons.
MOONS_NOISE = 0.05


@dataclass(frozen=True)
class MLPConfig:
    """The MLP's shape.

    Attributes:
        dim: D, the dimension of a data point (and of the output).
        T: the number of diffusion steps; the model accepts t in 1..T.
        hidden: width of every hidden layer.
        layers: number of hidden layers (each Linear then SiLU).
        emb_dim: width of the sinusoidal embedding of t; 0 gives a model blind to t (an exercise).
    """

    dim: int = 2
    T: int = 100
    hidden: int = 128
    layers: int = 3
    emb_dim: int = 32

    def __post_init__(self) -> None:
        for name in ("dim", "T", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.emb_dim < 0 or self.emb_dim % 2:
            raise ValueError(f"emb_dim must be an even number >= 0, got {self.emb_dim}")


class MLP(nn.Module):
    """eps_theta(x_t, t) (book eq. ``ch5-eq-mlp``): [x_t, embedding(t)] -> (Linear, SiLU) x layers -> Linear.

    The last layer starts at zero, so the untrained model is the zero predictor, whose loss is E||eps||^2 / D = 1.
    """

    def __init__(self, config: MLPConfig = MLPConfig()) -> None:
        super().__init__()
        self.config = config
        widths = [config.dim + config.emb_dim] + [config.hidden] * config.layers
        self.body = nn.Sequential(*(m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.SiLU())))
        self.out = nn.Linear(config.hidden, config.dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, D) and t (B,) integers in 1..T -> eps_theta (B, D). ``cond`` must be None (unconditional).

        Raises:
            ValueError: naming ``x_t``, ``t`` or ``cond`` when a shape, a dtype or a value is not allowed.
        """
        d, T = self.config.dim, self.config.T  # noqa: N806
        if x_t.dim() != 2 or x_t.shape[1] != d:
            raise ValueError(f"x_t must have shape (B, {d}), got {tuple(x_t.shape)}")
        if t.shape != x_t.shape[:1] or t.is_floating_point() or t.dtype == torch.bool:
            got = f"{t.dtype} {tuple(t.shape)}"
            raise ValueError(f"t must be an integer tensor of shape (B,) = ({x_t.shape[0]},), got {got}")
        if t.numel() and (int(t.min()) < 1 or int(t.max()) > T):
            raise ValueError(f"t must lie in 1..T={T}, got values from {int(t.min())} to {int(t.max())}")
        if cond is not None:
            raise ValueError("cond must be None: this MLP is unconditional")
        width = self.config.emb_dim
        emb = timestep_embedding(t, width).to(x_t) if width else x_t.new_zeros(x_t.shape[0], 0)  # (B, emb_dim)
        return self.out(self.body(torch.cat([x_t, emb], dim=1)))  # (B, D)


def moons_moments() -> tuple[torch.Tensor, torch.Tensor]:
    """The exact mean (2,) and covariance (2, 2) of :func:`diffnotes.toy.two_moons` (book eq. ``ch5-eq-moons``).

    With a uniform on [0, pi]: E cos a = 0, E sin a = 2/pi, E cos^2 a = E sin^2 a = 1/2, E cos a sin a = 0, so the
    mean is (1/2, 1/4) and the covariance [[3/4, 1/8 - 1/pi], [1/8 - 1/pi, 9/16 - 1/pi]] + noise^2 I.
    """
    mean = torch.tensor([0.5, 0.25], dtype=torch.float64)
    c = 0.125 - 1 / math.pi
    cov = torch.tensor([[0.75, c], [c, 0.5625 - 1 / math.pi]], dtype=torch.float64) + MOONS_NOISE**2 * torch.eye(2)
    return mean, cov


def moons(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2) float32 draws of the chapter's data: :func:`diffnotes.toy.two_moons`, shifted to mean zero."""
    return (toy.two_moons(n, generator, noise=MOONS_NOISE) - moons_moments()[0]).float()


def _covariance_of_x_t(alpha_bar_t: float, cov: torch.Tensor) -> torch.Tensor:
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must have shape (D, D), got {tuple(cov.shape)}")
    if not 0.0 <= float(alpha_bar_t) <= 1.0:
        raise ValueError(f"alpha_bar_t must lie in [0, 1], got {float(alpha_bar_t)}")
    return alpha_bar_t * cov + (1.0 - alpha_bar_t) * torch.eye(cov.shape[0], dtype=cov.dtype)  # S, (D, D)


def affine_eps(x_t: torch.Tensor, alpha_bar_t: float, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """The best affine predictor of eps from x_t, for data of mean m and covariance C (book eq. ``ch5-eq-affine``).

    eps_hat = sqrt(1 - a) S^{-1} (x_t - sqrt(a) m) with S = a C + (1 - a) I, the covariance of x_t, and a =
    alpha_bar_t. For Gaussian data it is E[eps | x_t], the best predictor of all. x_t: (B, D); mean: (D,); cov: (D, D).
    """
    a = float(alpha_bar_t)
    s = _covariance_of_x_t(a, cov)
    if mean.shape != (cov.shape[0],) or x_t.dim() != 2 or x_t.shape[1] != cov.shape[0]:
        got = f"{tuple(x_t.shape)} and {tuple(mean.shape)}"
        raise ValueError(f"x_t must be (B, D) and mean (D,) with D = {cov.shape[0]}, got {got}")
    centred = (x_t.to(cov) - math.sqrt(a) * mean.to(cov)).T  # (D, B)
    return (math.sqrt(1.0 - a) * torch.linalg.solve(s, centred).T).to(x_t)


def affine_eps_loss(alpha_bar_t: float, cov: torch.Tensor) -> float:
    """The loss per dimension of :func:`affine_eps`: tr(a C S^{-1}) / D (book eq. ``ch5-eq-affine-loss``).

    It depends on the data only through their covariance C (D, D). It is 1 at a = 1 (no noise in x_t, nothing to
    predict it from) and 0 at a = 0 (x_t is the noise).
    """
    a = float(alpha_bar_t)
    s = _covariance_of_x_t(a, cov)
    return float(torch.trace(a * torch.linalg.solve(s, cov))) / cov.shape[0]


@torch.no_grad()
def loss_at(model: nn.Module, schedule: Schedule, x0: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
    """Per-point squared errors ||eps - eps_theta(x_t, t)||^2 / D at one timestep t: x0, eps (B, D) -> (B,).

    Their mean is L_simple restricted to t; returning them all lets a caller attach a standard error.
    """
    t_batch = torch.full((x0.shape[0],), t, dtype=torch.int64)
    x_t = q_sample(schedule, x0, t_batch, eps)
    return ((eps - model(x_t, t_batch)) ** 2).mean(dim=1)


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


@dataclass(frozen=True)
class ToyTrainConfig:
    """The chapter's run: the cosine schedule with T steps, an MLP, ``n_data`` training points, the loop's settings.

    Attributes:
        T: diffusion steps (the cosine schedule of Nichol and Dhariwal).
        hidden: the MLP's width.
        n_data: size of the fixed training set of two-moons points.
        steps, batch_size, lr, ema_decay: the training loop's (see :class:`diffnotes.training.TrainConfig`).
        n_eval: points for evaluating the losses and for sampling.
        seed: seeds the training set, the initial weights and the loop.
    """

    T: int = 100
    hidden: int = 128
    n_data: int = 20_000
    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 3e-3
    ema_decay: float = 0.995
    n_eval: int = 10_000
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str | None = None) -> ToyTrainConfig:
        """Quick: seconds on a laptop CPU (a narrower MLP, 1,500 steps); full: a few minutes (10,000 steps)."""
        quick = cls(hidden=64, steps=1_500, batch_size=512, lr=5e-3, ema_decay=0.99, n_eval=2_000)
        return by_profile(quick=quick, full=cls(), profile=profile)

    def schedule(self) -> Schedule:
        """The cosine schedule with T steps."""
        return make_schedule("cosine", self.T)

    def model_config(self, **overrides: int) -> MLPConfig:
        """The MLP's shape for this run, with optional changes (e.g. ``emb_dim=0``)."""
        return replace(MLPConfig(T=self.T, hidden=self.hidden), **overrides)

    def loop_config(self) -> TrainConfig:
        """The settings of :func:`diffnotes.training.train`: a short warm-up, a constant lr, a log every 10 steps."""
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=100, ema_decay=self.ema_decay,
            mixed_precision=False, checkpoint_every=self.steps, log_every=10, seed=self.seed,
        )


def train_toy(config: ToyTrainConfig, model_config: MLPConfig | None = None) -> TrainState:
    """Train an :class:`MLP` on two moons with Algorithm 1 (:func:`diffnotes.training.train`), on the CPU.

    Returns the loop's state: ``state.ema`` is the model to use, ``state.history`` the loss curve.
    """
    model_config = model_config or config.model_config()
    if model_config.T != config.T:
        raise ValueError(f"model_config.T={model_config.T} must equal config.T={config.T}")
    data = moons(config.n_data, torch.Generator().manual_seed(config.seed))
    with torch.random.fork_rng(devices=[]):  # the initial weights depend on the seed alone, not on earlier draws
        torch.manual_seed(config.seed)
        model = MLP(model_config)
    return train(model, data, config.schedule(), config.loop_config(), device="cpu", progress=False)
