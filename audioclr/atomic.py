"""Atomic file writes: a temp file in the same folder, fsync, then one rename over the target.

A reader (or a job killed mid-write) sees either the old file or the new one, never half a
file. One module for every writer in audioclr: text (JSON, CSV, markdown), raw bytes through a
callback, numpy arrays (``.npy``, never pickled) and torch objects (tensors and plain types).

Example:
    >>> atomic_write_text(Path("report.json"), "{}")
    >>> atomic_save_numpy(Path("x.npy"), np.zeros(3, "float32"))
    >>> atomic_torch_save({"w": torch.zeros(2)}, "enc.pt")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any], durable: bool = True) -> Path:
    """Call ``write(fh)`` on a temp binary file beside ``path``, then rename it over ``path``.

    ``durable`` fsyncs before the rename (the file survives a power cut once this returns).
    The temp file is removed when ``write`` raises. The file gets the mode ``open`` would give
    a new one (0666 less the umask; a temp file starts at 0600), or the replaced file's mode.
    Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _mode_for(path: Path) -> int:
    """The replaced file's permission bits, else 0666 less the process umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask: from ``/proc`` where it is shown (no change), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o22)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | Path, text: str, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), durable)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(data), durable)


def atomic_save_numpy(path: str | Path, array: np.ndarray, durable: bool = True) -> Path:
    """``np.save`` (no pickle) to ``path`` atomically; ``path`` keeps its own name."""
    return atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False), durable)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` of tensors and plain types to ``path`` atomically (durable)."""
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))
