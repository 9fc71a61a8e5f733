"""Files that are never half-written, and weights that are checked before they load.

Every file the package writes goes through :func:`write_atomically`. Whoever opens the path afterwards, a resumed
training run or a reader of the performance notes, finds either the old complete file or the new complete one, even
if the writer crashed, was interrupted, or the machine lost power in the middle (the appendix on the package's
engineering explains how).
Every shipped weights file is read through :func:`load_checked`, which refuses a file whose SHA-256 differs from
the one recorded in the code, and loads it with ``weights_only=True`` so that no code in the file can run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


def write_atomically(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Replace the file at ``path`` by what ``write(f)`` writes to the binary file ``f``, all or nothing.

    ``write`` fills a temporary file in the same folder (a rename is atomic only within one file system), which is
    flushed and ``fsync``-ed so that its bytes are on the disk, then renamed over ``path`` with ``os.replace``. If
    ``write`` raises, or the process is interrupted, the temporary file is removed and ``path`` keeps its old
    content. Missing parent folders are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (UTF-8, a final newline) to ``path`` with :func:`write_atomically`."""
    text = json.dumps(obj, indent=2) + "\n"  # serialise first: an unserialisable object leaves no trace at all
    return write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def sha256(path: str | Path) -> str:
    """The SHA-256 hex digest of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_checked(path: str | Path, expected_sha256: str | None, how_to_make: str) -> Any:
    """Load a weights file on the CPU after checking its SHA-256 (skipped when ``expected_sha256`` is None), with
    ``torch.load(weights_only=True)``: no code in the file can run.

    Raises:
        FileNotFoundError: if the file is missing; the message says ``how_to_make`` it.
        ValueError: if its digest differs from ``expected_sha256`` (altered, corrupted or replaced), or it does not
            load as a PyTorch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}; reinstall diffnotes, or {how_to_make}")
    digest = sha256(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ValueError(
            f"{path} has SHA-256 {digest[:16]}..., expected {expected_sha256[:16]}...: the file is altered or corrupted"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several kinds for a damaged file
        raise ValueError(f"weights {path} do not load ({type(error).__name__}: {error})") from error
