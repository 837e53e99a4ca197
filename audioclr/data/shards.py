"""Append-only shard files and the cache's writer lock.

The lock is ``audioclr.lock.folder_lock`` on the cache folder: the OS releases it when its
holder dies (prepare's workers die with it, ``workers.py``), so a killed prepare never blocks
the next one.

Example:
    >>> with cache_lock(root):
    ...     w = ShardWriter(root, "int16", max_shard_bytes=1 << 30, live=previous_tracks)
    ...     shard, offset = w.append(np.zeros(100, "<i2"))
    ...     w.close()
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np

from audioclr.data.manifest import DTYPES, TrackInfo, shard_name
from audioclr.errors import CacheError
from audioclr.lock import folder_lock


def cache_lock(root: Path, command: str = "prepare") -> contextlib.AbstractContextManager[None]:
    """Hold the writer lock of the cache ``root`` (``audioclr.lock.folder_lock``: released by
    the OS when its holder dies); ``CacheError`` naming the holder when another process has it."""
    return folder_lock(root, command, CacheError)


class ShardWriter:
    """Appends sample arrays to the newest shard; never rewrites a byte a track uses.

    ``live``: the tracks of the manifest on disk. Bytes past the last of them in each shard
    (what a killed run wrote before its next manifest) are cut off first, and shards past the
    last one they use are deleted; ``reclaimed`` counts the bytes freed.
    """

    def __init__(self, root: Path, dtype: str, max_shard_bytes: int, live: list[TrackInfo]) -> None:
        self.root, self.dtype, self.max_bytes = root, dtype, max_shard_bytes
        self.itemsize = np.dtype(DTYPES[dtype][0]).itemsize
        self.reclaimed = 0
        ends: dict[int, int] = {}
        for t in live:
            ends[t.shard] = max(ends.get(t.shard, 0), (t.offset + t.num_samples) * self.itemsize)
        self.index = max(ends, default=0)
        pattern = re.compile(r"shard-(\d{5})" + re.escape(DTYPES[dtype][1]) + "$")
        for path in root.iterdir():
            if m := pattern.match(path.name):
                self._reclaim(path, int(m.group(1)), ends.get(int(m.group(1)), 0))
        self._open()

    def _reclaim(self, path: Path, index: int, live_end: int) -> None:
        size = path.stat().st_size
        if size <= live_end:
            return
        self.reclaimed += size - live_end
        if index > self.index:
            path.unlink()
        else:
            os.truncate(path, live_end)

    def _open(self) -> None:
        self.fh = open(self.root / shard_name(self.index, self.dtype), "ab")
        self.size = self.fh.tell()

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
