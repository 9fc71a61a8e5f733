"""Checkpoints of a training run: written atomically, loaded safely, resumed exactly (chapter "Training").

Nothing a reader trains is lost:

- checkpoints are written atomically (to a temporary file in the same folder, flushed, then renamed over the old
  one), so an interruption mid-write leaves the previous checkpoint intact;
- they hold everything the loop needs to continue (model, EMA, optimiser, step, random-generator states, loss
  history, and the machines that trained the run, for its provenance), so ``train(..., checkpoint=path)`` resumes
  where it stopped, and on a CPU a resumed run reproduces the uninterrupted one exactly;
- they are loaded with ``torch.load(weights_only=True)`` (no code runs from the file), and a corrupted or mismatched
  file gets a clear error instead of a half-loaded model.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from diffnotes.files import write_atomically
from diffnotes.perfnotes import machine

if TYPE_CHECKING:  # the training loop imports this module; its types are only annotations here
    from diffnotes.training import TrainConfig, TrainState

CHECKPOINT_FORMAT = "diffnotes-checkpoint-v1"


def save_checkpoint(path: str | Path, state: TrainState, config: TrainConfig) -> None:
    """Write a checkpoint atomically (:func:`diffnotes.files.write_atomically`): all of it, or nothing."""
    model = _bare(state.model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": _model_config(model),
        "train_config": asdict(config),
        "step": state.step,
        "model": model.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": state.history,
        "machines": state.machines,
    }
    write_atomically(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file safely (``weights_only=True``) and check that it is a diffnotes checkpoint.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is corrupted, truncated, or not a diffnotes checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several kinds for a damaged file
        # torch's unpickling message runs to many lines and suggests weights_only=False: keep the line that says
        # what was refused (torch's "WeightsUnpickler error: ..."), else the first line.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        refused = [line.split("WeightsUnpickler error:", 1)[1].strip() for line in lines if "WeightsUnpickler error:" in line]
        reason = refused[0] if refused else lines[0]
        raise ValueError(f"checkpoint {path} is corrupted or not a PyTorch file ({type(error).__name__}: {reason})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a diffnotes checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return payload


def load_checkpoint(path: str | Path, state: TrainState, config: TrainConfig) -> None:
    """Restore ``state`` from a checkpoint written by :func:`save_checkpoint` for the same model and config.

    Raises:
        ValueError: if the checkpoint is damaged, or was written for another model shape or training config
            (the message names the fields that differ).
    """
    payload = read_checkpoint(path)
    model = _bare(state.model)
    model_config = _model_config(model)
    if payload["model_config"] != model_config:
        raise ValueError(f"checkpoint {path} is for a model with config {payload['model_config']}, not {model_config}")
    ours, defaults = asdict(config), asdict(type(config)())
    # A setting added since the checkpoint was written has its default; the config class reads older values
    # (e.g. mixed_precision=True) as it reads new ones.
    stored = {k: v for k, v in payload["train_config"].items() if k in defaults}
    theirs = asdict(type(config)(**{**defaults, **stored}))
    # The run's length, and the decay that ends it, may change: a run goes on, or is brought to an end; and so may
    # the network's layout in memory, which changes no number but float rounding.
    free = ("steps", "lr_decay_steps", "memory_format")
    differ = sorted(k for k in ours if k not in free and theirs[k] != ours[k])
    if differ:
        theirs = ", ".join(f"{k}={theirs[k]!r}" for k in differ)
        raise ValueError(
            f"checkpoint {path} was trained with other settings ({theirs}); resume with the same config,"
            " or start a new checkpoint file"
        )
    model.load_state_dict(payload["model"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    state.step = int(payload["step"])
    state.history = {k: list(v) for k, v in payload["history"].items()}
    state.machines = list(payload.get("machines", []))  # (older checkpoints did not keep them)


def note_machine(state: TrainState, steps: int, world: int = 1, device_type: str = "cpu") -> None:
    """Add the machine this process runs on (with ``world`` processes) to ``state.machines``, which the checkpoint
    keeps, if the run has steps left to train: a provenance names the machines that trained the run, not the one that
    only resumed it to export."""
    here = machine() if world == 1 else f"{world} processes ({device_type}) on {machine()}"
    if state.step < steps and here not in state.machines:
        state.machines.append(here)


def trained_on(state: TrainState) -> str:
    """The machines that trained the run, for a provenance's ``device`` (this one, for a checkpoint from before they
    were kept)."""
    return "; ".join(state.machines) or machine()


def _bare(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (its checkpoint is the network's), else ``model``."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _model_config(model: nn.Module) -> dict:
    config = getattr(model, "config", None)
    return asdict(config) if config is not None and hasattr(config, "__dataclass_fields__") else {"class": type(model).__name__}


def export_weights(payload: dict, out: str | Path) -> dict:
    """Write a checkpoint's EMA weights in float16 to ``out`` (atomically), the form the package ships them in, and
    return the state dict written.

    ``payload`` is a checkpoint as :func:`read_checkpoint` returns it.
    """
    # in the default layout, so that the file's bytes do not depend on the memory format the run trained in
    weights = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in payload["ema"].items()}
    write_atomically(out, lambda f: torch.save(weights, f))
    return weights


def shared_provenance(payload: dict, out: str | Path, digest: str) -> dict:
    """The fields of a provenance record that every exported model shares: the weights' file name and SHA-256
    ``digest``, the model and training configurations, the steps, the final loss, the loss history thinned to about
    100 entries (rounded to 5 digits) and the torch version."""
    history = payload["history"]
    every = max(1, len(history["step"]) // 100)
    return {
        "weights": Path(out).name,
        "sha256": digest,
        "model_config": payload["model_config"],
        "train_config": payload["train_config"],
        "steps": payload["step"],
        "final_loss": history["loss"][-1] if history["loss"] else None,
        "loss_history": {key: [round(x, 5) for x in values[::every]] for key, values in history.items()},
        "torch": torch.__version__,
    }
