"""One writer per output folder: an exclusive advisory lock on ``FOLDER/.lock``.

The lock is an ``fcntl.flock`` on an open file, so the OS releases it the moment its holder
exits, however it dies (SIGKILL included): a killed command never blocks the next one. A second
writer fails at once with one line naming the holder (its pid and command, written into the lock
file). The lock is reentrant within a process (a command that locks a folder may call a function
that locks it again).

Example:
    >>> with folder_lock("emb/", "embed"):
    ...     save_embeddings("emb/", vectors, ids, sources, meta)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from audioclr.errors import AudioclrError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
_held: dict[Path, int] = {}  # folders this process holds -> nesting depth


@contextlib.contextmanager
def folder_lock(
    folder: str | Path, command: str, error: type[AudioclrError] = AudioclrError
) -> Iterator[None]:
    """Hold the writer lock of ``folder`` (created if missing); ``error`` if another holds it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = folder.resolve()
    except OSError as exc:
        raise error(f"cannot create output folder {folder} ({exc.strerror})") from exc
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        fh = open(folder / LOCK, "a+")
    except OSError as exc:
        raise error(
            f"cannot write to {folder} ({exc.strerror})", hint="choose a writable output folder"
        ) from exc
    with fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise error(
                    f"{folder} is being written by another audioclr command ({holder})",
                    hint="wait for it to finish, or write to another folder",
                ) from None
        fh.truncate(0)
        fh.write(f"pid {os.getpid()}: {command}\n")
        fh.flush()
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
