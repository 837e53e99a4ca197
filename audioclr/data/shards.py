"""Append-only shard files and the cache's writer lock.

Example:
    >>> with cache_lock(root):
    ...     w = ShardWriter(root, "int16", max_shard_bytes=1 << 30)
    ...     shard, offset = w.append(np.zeros(100, "<i2"))
    ...     w.close()
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from audioclr.data.manifest import DTYPES, shard_name
from audioclr.errors import CacheError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def cache_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` (released by the OS even if the process is killed)."""
    with open(root / ".lock", "a") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CacheError(
                    f"another prepare is writing to {root}",
                    hint="wait for it to finish, or use another cache folder",
                ) from None
        yield


class ShardWriter:
    """Appends sample arrays to the newest shard; never rewrites a byte already written.

    Bytes left by a killed run after the last manifest are simply skipped over (the new data
    starts at the aligned end of the file), so old offsets stay valid.
    """

    def __init__(self, root: Path, dtype: str, max_shard_bytes: int) -> None:
        self.root, self.dtype, self.max_bytes = root, dtype, max_shard_bytes
        self.itemsize = np.dtype(DTYPES[dtype][0]).itemsize
        pattern = re.compile(r"shard-(\d{5})" + re.escape(DTYPES[dtype][1]) + "$")
        indices = [int(m.group(1)) for p in root.iterdir() if (m := pattern.match(p.name))]
        self.index = max(indices, default=0)
        self._open()

    def _open(self) -> None:
        self.fh = open(self.root / shard_name(self.index, self.dtype), "ab")
        size = self.fh.tell()
        pad = (-size) % self.itemsize
        if pad:  # a killed run left half a sample: skip to the next whole one
            self.fh.write(b"\0" * pad)
        self.size = size + pad

    def append(self, samples: np.ndarray) -> tuple[int, int]:
        """Append ``samples`` (in the shard dtype); returns ``(shard, offset in samples)``."""
        data = np.ascontiguousarray(samples, dtype=DTYPES[self.dtype][0])
        if self.size > 0 and self.size + data.nbytes > self.max_bytes:
            self.close()
            self.index += 1
            self._open()
        offset = self.size // self.itemsize
        self.fh.write(data.tobytes())
        self.size += data.nbytes
        return self.index, offset

    def sync(self) -> None:
        """Make everything appended so far durable before a manifest points at it."""
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        """Flush, fsync and close the current shard."""
        if not self.fh.closed:
            self.sync()
            self.fh.close()
