"""Random access to prepared audio: every read is a memmap slice, no decoding.

``open_cache`` is how commands open the ``data.cache`` they are given: one folder
(``ClipCache``), or a list of folders read as one (``MultiCache``: the shards of a
``prepare --shard i/n`` on several machines, or any caches at one sample rate).

Example:
    >>> cache = ClipCache("cache/")
    >>> x = cache.read(cache.index_of("piano/a.wav"), start=22050, length=66150)  # (66150,)
    >>> cache.sample_rate
    22050
    >>> len(open_cache(["cache-0/", "cache-1/"]))  # two shards: the tracks of both
    160
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.data.manifest import DTYPES, dequantize, read_manifest, shard_name, tracks_of
from audioclr.data.scan import absolute
from audioclr.errors import CacheError, SampleRateMismatch

CacheSpec = str | Path | Sequence[str | Path]


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
        held = manifest.get("shard")  # [i, n] for a cache of prepare --shard i/n
        self.shard: tuple[int, int] | None = (int(held[0]), int(held[1])) if held else None
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


def open_cache(spec: CacheSpec) -> ClipCache | MultiCache:
    """The clip cache at ``spec``: one folder, or a list of folders read as one.

    ``CacheError`` for an empty spec (or one naming a folder twice), ``SampleRateMismatch``
    when the caches differ in sample rate.

    Example:
        >>> open_cache("cache/").sample_rate, len(open_cache(["shard0/", "shard1/"]))
        (22050, 160)
    """
    paths = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not paths or not all(str(p) for p in paths):
        raise CacheError(
            f"no clip cache given ({spec!r})",
            hint="give a folder written by 'audioclr prepare', or a list: data.cache=[a,b]",
        )
    if len(paths) == 1:
        return ClipCache(paths[0])
    return MultiCache([ClipCache(p) for p in paths])


class MultiCache:
    """Several clip caches read as one, with ``ClipCache``'s reading interface.

    Track ids: when the caches are distinct shards of one source (``prepare --shard i/n``, the
    same ``n``), a track keeps its id (the relative path, unique across shards by construction)
    and tracks are in id order, so the shards read as one equal one full prepare. Otherwise
    each id is prefixed by the cache's position in the list (``"1:piano/a.wav"``), tracks in
    list order. ``tracks[i].shard`` and ``.offset`` refer to the member cache.

    Example:
        >>> both = MultiCache([ClipCache("shard0/"), ClipCache("shard1/")])
        >>> both.read(both.index_of("piano/a.wav"), 0, 100).shape
        (100,)
    """

    def __init__(self, caches: list[ClipCache]) -> None:
        roots = [c.root for c in caches]
        twice = {r for r in roots if roots.count(r) > 1}
        if twice:
            raise CacheError(f"clip cache {sorted(twice)[0]} is listed twice in data.cache")
        rates = sorted({c.sample_rate for c in caches})
        if len(rates) > 1:
            raise SampleRateMismatch(
                f"the clip caches {[str(r) for r in roots]} mix sample rates {rates}",
                hint="prepare them all with the same --sample-rate",
            )
        self.caches, self.roots, self.sample_rate = caches, roots, rates[0]
        shards = [c.shard for c in caches]
        sharded = (
            all(s is not None for s in shards)
            and len({s[1] for s in shards if s is not None}) == 1
            and len(set(shards)) == len(shards)
        )
        where = [(k, j) for k, c in enumerate(caches) for j in range(len(c))]
        ids = [
            caches[k].tracks[j].track_id if sharded else f"{k}:{caches[k].tracks[j].track_id}"
            for k, j in where
        ]
        order = sorted(range(len(where)), key=ids.__getitem__) if sharded else range(len(where))
        self._where = [where[i] for i in order]
        self.tracks = [
            dataclasses.replace(caches[k].tracks[j], track_id=ids[i])
            for i, (k, j) in zip(order, self._where, strict=True)
        ]
        self._index = {t.track_id: i for i, t in enumerate(self.tracks)}
        if len(self._index) < len(self.tracks):
            raise CacheError(f"the clip caches {[str(r) for r in roots]} share track ids")

    @property
    def root(self) -> Path:
        """No single folder: ``CacheError`` for what needs one (metadata groups ...)."""
        raise CacheError(
            f"data.cache lists {len(self.caches)} caches; this needs a single cache folder",
            hint="pass one cache, or prepare the source into one cache",
        )

    def __len__(self) -> int:
        return len(self.tracks)

    def member(self, i: int) -> int:
        """The position in the list of caches of the cache track ``i`` is read from."""
        return self._where[i][0]

    def index_of(self, track_id: str) -> int:
        """Index of ``track_id`` (an id of ``tracks``)."""
        try:
            return self._index[track_id]
        except KeyError:
            raise CacheError(
                f"track {track_id!r} is not in the clip caches {[str(r) for r in self.roots]}",
                hint="ids of caches other than shards of one source are prefixed 'k:'",
            ) from None

    def duration(self, i: int) -> float:
        """Length of track ``i`` in seconds."""
        return self.tracks[i].num_samples / self.sample_rate

    def read(self, i: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """``ClipCache.read`` of track ``i`` in its member cache."""
        k, j = self._where[i]
        return self.caches[k].read(j, start, length)


from audioclr.data.prepare import PrepareSummary, prepare_cache  # noqa: E402  (re-export: the contract's home)

__all__ = ["ClipCache", "PrepareSummary", "TrackInfo", "prepare_cache"]
from audioclr.data.manifest import TrackInfo  # noqa: E402
