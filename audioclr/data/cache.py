"""Random access to prepared audio: every read is a memmap slice, no decoding.

Example:
    >>> cache = ClipCache("cache/")
    >>> x = cache.read(cache.index_of("piano/a.wav"), start=22050, length=66150)  # (66150,)
    >>> cache.sample_rate
    22050
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audioclr.data.manifest import DTYPES, dequantize, read_manifest, shard_name, tracks_of
from audioclr.data.scan import absolute
from audioclr.errors import CacheError


class ClipCache:
    """A prepared clip cache opened read-only.

    Raises ``CacheError`` if the folder is missing, damaged (a shard shorter than its tracks) or
    of another format version. Picklable (memmaps reopen lazily): DataLoader workers can share it.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = absolute(root)
        manifest = read_manifest(self.root)
        self.sample_rate: int = manifest["sample_rate"]
        self.dtype: str = manifest["dtype"]
        self.tracks = tracks_of(manifest, self.root)
        self._index = {t.track_id: i for i, t in enumerate(self.tracks)}
        self._maps: dict[int, np.memmap] = {}
        self._check_shards()

    def _check_shards(self) -> None:
        itemsize = np.dtype(DTYPES[self.dtype][0]).itemsize
        needed: dict[int, int] = {}
        for t in self.tracks:
            needed[t.shard] = max(needed.get(t.shard, 0), t.offset + t.num_samples)
        for shard, samples in needed.items():
            path = self.root / shard_name(shard, self.dtype)
            have = path.stat().st_size // itemsize if path.is_file() else -1
            if have < samples:
                raise CacheError(
                    f"clip cache {self.root} is damaged: {path.name} holds {max(have, 0)} samples, "
                    f"tracks need {samples}",
                    hint="rerun prepare into a fresh cache folder",
                )

    def __len__(self) -> int:
        return len(self.tracks)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_maps"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._maps = {}

    def index_of(self, track_id: str) -> int:
        """Index of ``track_id`` (source path relative to the prepared root, posix)."""
        try:
            return self._index[track_id]
        except KeyError:
            raise CacheError(
                f"track {track_id!r} is not in clip cache {self.root}",
                hint="ids are paths relative to the folder given to prepare",
            ) from None

    def duration(self, i: int) -> float:
        """Length of track ``i`` in seconds."""
        return self.tracks[i].num_samples / self.sample_rate

    def _shard(self, shard: int) -> np.memmap:
        m = self._maps.get(shard)
        if m is None:
            m = np.memmap(
                self.root / shard_name(shard, self.dtype), dtype=DTYPES[self.dtype][0], mode="r"
            )
            self._maps[shard] = m
        return m

    def read(self, i: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Samples ``[start, start + length)`` of track ``i`` as float32 ``(length,)``.

        ``length=None`` reads to the end. A window outside the track raises ``ValueError``.
        """
        t = self.tracks[i]
        if length is None:
            length = t.num_samples - start
        if start < 0 or length < 0 or start + length > t.num_samples:
            raise ValueError(
                f"window [{start}, {start + length}) is outside track {t.track_id!r} "
                f"of {t.num_samples} samples"
            )
        begin = t.offset + start
        return dequantize(self._shard(t.shard)[begin : begin + length])


from audioclr.data.prepare import PrepareSummary, prepare_cache  # noqa: E402  (re-export: the contract's home)

__all__ = ["ClipCache", "PrepareSummary", "TrackInfo", "prepare_cache"]
from audioclr.data.manifest import TrackInfo  # noqa: E402
