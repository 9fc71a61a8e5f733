"""Files that are never half-written: the book's checkpoints, shipped weights, provenance files and records.

Every file the package writes goes through :func:`write_atomically`. Whoever opens the path afterwards, a resumed
training run or a reader of the performance notes, finds either the old complete file or the new complete one, even
if the writer crashed, was interrupted, or the machine lost power in the middle (chapter 7 explains how).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


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
