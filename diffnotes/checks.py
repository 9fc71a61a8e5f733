"""Argument checks shared by the whole package: each raises a ValueError that names the argument and says what is
allowed, so that bad input fails at the call that made it, with a message a reader can act on.

It comes first in the package's order (it imports nothing from the package), so every module can use it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def positive_int(name: str, value: object, what: str = "") -> int:
    """``value`` if it is an int >= 1 (not a bool); else ValueError "``name`` must be a positive integer``what``"."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer{what}, got {value!r}")
    return value


def positive_ints(**values: object) -> None:
    """:func:`positive_int` for each keyword: ``positive_ints(steps=steps, batch_size=batch_size)``."""
    for name, value in values.items():
        positive_int(name, value)


def same_shape(name: str, value: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """ValueError unless ``value`` has the shape of ``ref``; the message names both arguments."""
    if value.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name}, {tuple(ref.shape)}; got {tuple(value.shape)}")


def one_of(name: str, value: object, choices: Iterable[object], what: str = "") -> object:
    """``value`` if it is among ``choices``; else ValueError listing the valid choices."""
    choices = tuple(choices)
    if value not in choices:
        valid = ", ".join(str(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not {what or 'a valid choice'}; valid choices are: {valid}")
    return value


def positive_variance(name: str, value: torch.Tensor | float) -> torch.Tensor:
    """``value`` as float64 if every entry is finite and > 0; else ValueError naming it as a variance."""
    value = torch.as_tensor(value, dtype=torch.float64)
    if not bool((value > 0).all() & torch.isfinite(value).all()):
        raise ValueError(f"{name} is a variance and must be finite and > 0; got minimum {float(value.min()):.4g}")
    return value
