"""Training on several processes with DistributedDataParallel, under ``torchrun`` (chapter "Training").

    torchrun --nproc_per_node=2 -m diffnotes.train_digits --checkpoint runs/digits.pt --steps 8000

``torchrun`` starts N copies of the program and tells each its rank and the world size through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`train_distributed` joins the
process group (gloo on the CPU, nccl on CUDA, one GPU per process), wraps the network in
:class:`torch.nn.parallel.DistributedDataParallel`, and runs :func:`diffnotes.training.train`:

- ``config.batch_size`` is the **whole** batch of a step: every process draws the same batch, timesteps and noise
  from the run's generator (seeded alike everywhere) and trains on its own part, 1/N of it (its data shard);
- DDP averages the gradients of the N parts, so a step is the step one process would take on the whole batch, up to
  the order of floating-point sums; the clipping, AdamW and the EMA then run identically on every rank;
- rank 0 alone writes the checkpoint, which holds the bare network and is the same file one process writes: it
  resumes under any N, or in a single process.

Without ``WORLD_SIZE`` (a plain ``python`` run) it is :func:`diffnotes.training.train` itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from diffnotes.runtime import get_device
from diffnotes.schedules import Schedule
from diffnotes.training import TrainConfig, TrainState, train


@dataclass(frozen=True)
class Processes:
    """This process's place in a run: its ``rank`` among ``world`` processes, and the device it computes on."""

    rank: int
    world: int
    device: torch.device


def under_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher that sets ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ


def join(device: str | torch.device | None = None, timeout_s: float = 300.0) -> Processes:
    """Join the process group that ``torchrun`` set up (once per process) and return this process's place in it.

    The backend is nccl when the device is a CUDA GPU (process ``LOCAL_RANK`` takes GPU ``LOCAL_RANK``) and gloo
    otherwise. Without ``WORLD_SIZE`` in the environment it joins nothing: rank 0 of 1.

    Raises:
        ValueError: for an MPS device (no DDP backend) or an unknown device name (see
            :func:`diffnotes.runtime.get_device`).
    """
    device = get_device(device)
    if not under_torchrun():
        return Processes(0, 1, device)
    if device.type == "mps":
        raise ValueError("device='mps' cannot run DistributedDataParallel; use device='cpu' under torchrun")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return Processes(dist.get_rank(), dist.get_world_size(), device)


def train_distributed(
    model: nn.Module,
    images: torch.Tensor,
    schedule: Schedule,
    config: TrainConfig,
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
) -> TrainState:
    """:func:`diffnotes.training.train` on this process's part of every batch, its gradients averaged over all the
    processes by DDP (see the module's docstring); a plain :func:`~diffnotes.training.train` outside ``torchrun``.

    Every process must call it with the same model (it is broadcast from rank 0 anyway), examples and config.
    Returns this process's final state (the same weights on every rank; ``state.model`` is the bare network).

    Raises:
        ValueError: if ``config.batch_size`` is not divisible by the number of processes.
    """
    where = join(device)
    if config.batch_size % where.world:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of processes, {where.world}")
    if where.world == 1:
        return train(model, images, schedule, config, where.device, checkpoint=checkpoint, progress=progress)
    ids = [where.device.index] if where.device.type == "cuda" else None

    def wrap(net: nn.Module) -> nn.Module:
        return nn.parallel.DistributedDataParallel(net, device_ids=ids)

    state = train(model, images, schedule, config, where.device, checkpoint=checkpoint, progress=progress,
                  shard=(where.rank, where.world), wrap=wrap)
    dist.barrier()  # the last checkpoint is on disk before any process goes on to read it
    return state


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
