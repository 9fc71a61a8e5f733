"""Where and how big the book's computations run: the execution profile, the device and the seed.

Defined in the front matter, "How to use this book". Every notebook starts with::

    rt = diffnotes.setup(seed=0)

which reads two environment variables, once:

``DIFFNOTES_PROFILE``
    ``quick`` sizes every computation to run in seconds on a laptop CPU (the tests and CI use it);
    ``full`` is the real thing (long training runs, large sample counts). Unset, it is ``full`` when a
    CUDA GPU is present and ``quick`` otherwise.
``DIFFNOTES_DEVICE``
    ``auto`` (the default: CUDA, then Apple MPS, then CPU), ``cuda``, ``mps`` or ``cpu``.

Chapters never hard-code sizes in a notebook: each chapter's config dataclass has a ``for_profile``
constructor built on :func:`by_profile`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from diffnotes.checks import one_of

#: The execution profiles, from the lightest to the real thing.
PROFILES: tuple[str, ...] = ("quick", "full")
#: The device names that ``DIFFNOTES_DEVICE`` and :func:`get_device` accept.
DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
#: The precisions of a training run, ``auto`` (bfloat16 where the device has it natively, else float32), ``bf16`` and
#: ``fp32``.
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")
#: The memory formats of a training run's network, ``auto`` (channels-last for a float32 run on a CPU, where it was
#: measured faster, the default layout elsewhere), ``channels_last`` and ``contiguous``.
MEMORY_FORMATS: tuple[str, ...] = ("auto", "channels_last", "contiguous")
#: The allowed values of a training config's named settings, for the command lines that fill one in.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {"mixed_precision": PRECISIONS, "memory_format": MEMORY_FORMATS}
PROFILE_ENV = "DIFFNOTES_PROFILE"
DEVICE_ENV = "DIFFNOTES_DEVICE"

T = TypeVar("T")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_profile(profile: str | None = None) -> str:
    """Return the execution profile: the argument, else ``$DIFFNOTES_PROFILE``, else the default.

    The default is ``"full"`` when a CUDA GPU is present and ``"quick"`` otherwise.

    Raises:
        ValueError: if the profile is not one of :data:`PROFILES`; the message lists the valid ones.
    """
    source = "profile"
    if profile is None:
        profile = os.environ.get(PROFILE_ENV, "").strip()
        source = PROFILE_ENV
        if not profile:
            return "full" if torch.cuda.is_available() else "quick"
    name = profile.strip().lower()
    if name not in PROFILES:
        raise ValueError(f"{source}={profile!r} is not a profile; valid profiles are: {', '.join(PROFILES)}")
    return name


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on: the argument, else ``$DIFFNOTES_DEVICE``, else ``auto``.

    ``auto`` picks CUDA, then Apple MPS, then the CPU. Asking for a device that is not present is an
    error rather than a silent fall-back to the CPU.

    Raises:
        ValueError: for an unknown device name (the message lists the valid ones) or an absent device.
    """
    if isinstance(device, torch.device):
        return device
    source = "device"
    if device is None:
        device = os.environ.get(DEVICE_ENV, "").strip() or "auto"
        source = DEVICE_ENV
    name = device.strip().lower()
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"{source}={device!r} is not a device; valid devices are: {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}={device!r}, but no CUDA GPU is available; use 'auto' or 'cpu'")
    if kind == "mps" and not _mps_available():
        raise ValueError(f"{source}={device!r}, but Apple MPS is not available; use 'auto' or 'cpu'")
    return torch.device(name)


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` has bfloat16 matrix units: a CUDA GPU of compute capability 8.0 or newer (tensor cores), or
    a CPU with Intel AMX (the ``amx_bf16`` flag). On these, bfloat16 autocast trains the digit U-Net about twice as
    fast as float32 (the performance notes); elsewhere bfloat16 is emulated or only a little faster, so ``auto``
    stays in float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and _cpu_has_amx()


@functools.cache
def _cpu_has_amx() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        return "amx_bf16" in cpuinfo.read_text().split()
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # other systems: PyTorch's own CPU probe
    return bool(probe is not None and probe())


def autocast_dtype(precision: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype of a run in ``precision`` (one of :data:`PRECISIONS`) on ``device``: ``torch.bfloat16``
    for ``bf16``, and for ``auto`` where :func:`native_bf16`; ``None`` (float32, no autocast) otherwise."""
    one_of("precision", precision, PRECISIONS, "a precision")
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def memory_format(choice: str, precision: str, device: str | torch.device) -> torch.memory_format:
    """The memory format of a network trained in ``precision`` on ``device``, for ``choice`` in :data:`MEMORY_FORMATS`.

    ``auto`` is channels-last (each pixel's channels side by side) for a float32 run on a CPU: oneDNN's convolutions
    run faster on that layout, 1.12x the images per second for the digit U-Net's training step in float32; in
    bfloat16 the step was slower that way (0.88x; PyTorch's group norm is slow on channels-last bfloat16), and on a
    GPU it is unmeasured, so ``auto`` keeps the default layout there (the performance notes,
    ``benchmarks/train_options.py``).
    """
    one_of("memory_format", choice, MEMORY_FORMATS, "a memory format")
    if choice == "auto":
        fp32_on_cpu = torch.device(device).type == "cpu" and autocast_dtype(precision, device) is None
        choice = "channels_last" if fp32_on_cpu else "contiguous"
    return torch.channels_last if choice == "channels_last" else torch.contiguous_format


def memory_format_name(choice: str, precision: str, device: str | torch.device) -> str:
    """The name of :func:`memory_format`'s answer, as records keep it: ``"channels_last"`` or ``"contiguous_format"``."""
    return str(memory_format(choice, precision, device)).removeprefix("torch.")


def autocast(device: str | torch.device, dtype: torch.dtype | None) -> contextlib.ExitStack:
    """A context that runs its block under ``torch.autocast(dtype=dtype)`` on ``device`` (nothing for ``None``).

    On a CPU in bfloat16 it also selects PyTorch's plain ("math") attention kernel: the CPU's fused flash-attention
    backward pass is several times slower in bfloat16 than the plain matrix products, which AMX runs natively.
    """
    device, stack = torch.device(device), contextlib.ExitStack()
    if dtype is not None:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=dtype))
        if device.type == "cpu":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
    return stack


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's random generators so that a CPU run repeats exactly.

    Returns a CPU ``torch.Generator`` seeded with ``seed``, for functions that take a ``generator``.

    Raises:
        ValueError: if ``seed`` is not a non-negative integer below 2**32.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    return torch.Generator().manual_seed(seed)


def by_profile(quick: T, full: T, profile: str | None = None) -> T:
    """Pick the value that belongs to the current profile (see :func:`get_profile`)."""
    return quick if get_profile(profile) == "quick" else full


@dataclass(frozen=True)
class Runtime:
    """The choices a notebook runs under: profile, device, seed and a generator seeded with it."""

    profile: str
    device: torch.device
    seed: int
    generator: torch.Generator

    def __str__(self) -> str:
        return f"diffnotes runtime: profile={self.profile}, device={self.device.type}, seed={self.seed}"


def setup(seed: int = 0, profile: str | None = None, device: str | torch.device | None = None) -> Runtime:
    """Choose the profile and the device, seed every generator, and return the choices.

    The first cell of every notebook calls this once; arguments override the environment variables.
    """
    chosen_profile = get_profile(profile)
    chosen_device = get_device(device)
    generator = seed_everything(seed)
    return Runtime(profile=chosen_profile, device=chosen_device, seed=seed, generator=generator)


class _NoProgress:
    def update(self, n: int) -> None: ...

    def set_postfix(self, **kwargs: object) -> None: ...

    def close(self) -> None: ...


def progress_bar(total: int, initial: int = 0, enabled: bool = True, desc: str = "", unit: str = "it"):  # noqa: ANN201
    """A plain-text tqdm bar (it reads the same in a terminal, a notebook and the rendered book), or a silent
    stand-in with the same methods (``update``, ``set_postfix``, ``close``) when ``enabled`` is false."""
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm  # the text bar: tqdm.auto would want ipywidgets in a notebook

    # At most about 20 refreshes: in a rendered notebook every refresh becomes a line of its own.
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=1.0, miniters=max(1, total // 20))
