# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""One query front over several index folders (shards of one catalogue): each query goes to
every shard and the per-shard top-k are merged by score (``faiss.ResultHeap``).

A catalogue too big for one machine is indexed in shards by track (``prepare --shard`` gives
each machine its share; ``index build --large`` indexes each share). Every shard ranks its own
tracks exactly as a single index would (a large shard re-ranks against its own exact vectors), so
the merged top-k equals the top-k of one index over all the tracks. The shards must come from the
same encoder, layer, dimension, rate and hop, and no track id may be in two of them.

:class:`ShardedIndex` offers what :class:`~audioclr.search.query.Querier` uses of a
:class:`~audioclr.search.index.TrackIndex` (``table``, ``search``, ``vector_of``), with ids
``shard << SHIFT | id`` across the shards, so ``audioclr query A B C --track t1`` answers over
all three. Here the shards are folders this process loads (memory-mapped with ``--mmap``); across
machines, the same merge runs over the answers each machine's ``audioclr query --json`` returns.

Example:
    >>> front = ShardedIndex.load(["shard0/", "shard1/"], mmap=True)
    >>> [h.track_id for h in Querier(front).query("t123", k=3).results]
    ['t9', 't512', 't77']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from audioclr.errors import RetrievalError
from audioclr.search import faisshelpers as fh
from audioclr.search.index import TrackIndex

SHIFT = 40  # ids below 2**40 (1.1e12 tracks a shard); the shard number above
MASK = (1 << SHIFT) - 1
SAME = ("dim", "encoder_id", "layer", "sample_rate", "hop_samples")  # must agree across shards


class ShardedTable:
    """The side tables of the shards seen as one: ids ``shard << SHIFT | id``."""

    def __init__(self, shards: Sequence[TrackIndex]) -> None:
        self.shards = list(shards)
        first = self.shards[0].table
        for key in (*SAME, "encoder_path"):
            setattr(self, key, getattr(first, key))

    def __len__(self) -> int:
        return sum(len(s.table) for s in self.shards)

    def _shard_of(self, track_id: str) -> int | None:
        return next((n for n, s in enumerate(self.shards) if s.table.has(track_id)), None)

    def has(self, track_id: str) -> bool:
        """Whether any shard holds ``track_id``."""
        return self._shard_of(track_id) is not None

    def id_of(self, track_id: str) -> int:
        """The front's id of ``track_id``; ``RetrievalError`` naming it when no shard has it."""
        n = self._shard_of(track_id)
        if n is None:
            raise RetrievalError(
                f"unknown track id {track_id!r} (the {len(self.shards)} shards have "
                f"{len(self)} tracks)",
                hint="list the ids with: audioclr index info SHARD --ids",
            )
        return n << SHIFT | self.shards[n].table.id_of(track_id)

    def track_of(self, i: int) -> str:
        """The track id behind the front's id ``i``."""
        return self.shards[int(i) >> SHIFT].table.track_of(int(i) & MASK)

    def source_of(self, i: int) -> str:
        """The source path behind the front's id ``i``."""
        return self.shards[int(i) >> SHIFT].table.source_of(int(i) & MASK)


class ShardedIndex:
    """Several :class:`TrackIndex` shards answering as one (see the module docstring)."""

    def __init__(self, shards: Sequence[TrackIndex], names: Sequence[str] | None = None) -> None:
        if not shards:
            raise RetrievalError("no shards given", hint="name one or more index folders")
        names = list(names or [f"shard {n}" for n in range(len(shards))])
        for name, shard in zip(names[1:], shards[1:], strict=True):
            for key in SAME:
                ours, theirs = getattr(shards[0].table, key), getattr(shard.table, key)
                if ours != theirs:
                    raise RetrievalError(
                        f"{name} has {key} {theirs!r} but {names[0]} has {ours!r}",
                        hint="query shards built from the same encoder, layer and settings",
                    )
        self.shards = list(shards)
        self.table = ShardedTable(self.shards)

    @classmethod
    def load(
        cls, folders: Sequence[str | Path], verify: bool = True, mmap: bool = False
    ) -> ShardedIndex:
        """Load every index folder in ``folders`` (as :meth:`TrackIndex.load`)."""
        return cls(
            [TrackIndex.load(f, verify=verify, mmap=mmap) for f in folders],
            [str(f) for f in folders],
        )

    @property
    def params(self) -> fh.SearchParams:
        """The first shard's search parameters (:meth:`set_params` sets every shard's)."""
        return self.shards[0].params

    def set_params(self, params: fh.SearchParams) -> None:
        """Set the search parameters of every shard."""
        for shard in self.shards:
            shard.set_params(params)

    def vector_of(self, track_id: str) -> np.ndarray:
        """The stored vector of ``track_id``, from the shard that holds it."""
        i = self.table.id_of(track_id)
        return self.shards[i >> SHIFT].vector_of(track_id)

    def search(
        self, xq: np.ndarray, k: int, exclude: list[int | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` over all shards: each shard's top-``k`` (``exclude`` passed to the shard
        that holds the id), merged by score. Same contract as :meth:`TrackIndex.search`."""
        xq = np.atleast_2d(np.asarray(xq, dtype=np.float32))
        heap = faiss.ResultHeap(len(xq), k, keep_max=True)
        for n, shard in enumerate(self.shards):
            if len(shard.table) == 0:
                continue
            mine = (
                None
                if exclude is None
                else [e & MASK if e is not None and e >> SHIFT == n else None for e in exclude]
            )
            D, I = shard.search(xq, min(k, len(shard.table)), mine)
            heap.add_result(D, np.where(I >= 0, (n << SHIFT) | I, -1))
        heap.finalize()
        heap.D[heap.I < 0] = -np.inf  # FAISS pads with -FLT_MAX; TrackIndex.search says -inf
        return heap.D, heap.I
