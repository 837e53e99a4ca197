"""The side table of a track index: int64 FAISS ids -> track ids, sources and provenance.

An index folder holds ``table.json``, the FAISS file it names (``index-<generation>.faiss``) and
``manifest.json`` (size and sha256 of both; ``audioclr/commit.py``). A save writes the new FAISS
file under a fresh name, then replaces ``table.json`` atomically, then writes the manifest and
deletes the old FAISS file, so a reader never pairs a table with the wrong index. Reading checks
the fields (a hand-edited table is one clear error). JSON only: loading never runs code.

Example:
    >>> t = SideTable(dim=2, factory="Flat", encoder_id="ab12", encoder_path="enc.pt", layer="last")
    >>> t.append(["piano/a.wav"], ["/x/piano/a.wav"]).tolist()
    [0]
    >>> t.track_of(0)
    'piano/a.wav'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.errors import RetrievalError
from audioclr.jsonfile import read_versioned_json

FORMAT_VERSION = 1
TABLE = "table.json"


@dataclass
class SideTable:
    """What an index's vectors are: ids, track ids, sources, and the encoder that made them."""

    dim: int
    factory: str
    encoder_id: str | None = None
    encoder_path: str | None = None
    layer: str | None = None
    sample_rate: int | None = None
    hop_samples: int | None = None
    params: dict[str, float] = field(default_factory=dict)  # nprobe / efSearch / k_factor_rf
    rerank: str | None = None  # large index: exact vectors file for re-ranking (search/rerank.py)
    ids: list[int] | np.ndarray = field(default_factory=list)  # int64 array once constructed
    track_ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    next_id: int = 0
    generation: int = 0
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        # ids rise with the rows (append gives increasing ids, drop keeps the order), so a row is
        # a binary search away; the track -> id map is built on first need (a build, not a
        # query: at 1e7 tracks the two dicts this replaces took about 2 GB)
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self._by_track: dict[str, int] | None = None

    def _track_map(self) -> dict[str, int]:
        if self._by_track is None:
            self._by_track = dict(zip(self.track_ids, self.ids.tolist(), strict=True))
        return self._by_track

    def _row(self, i: int) -> int:
        r = int(np.searchsorted(self.ids, i))
        if r == len(self.ids) or self.ids[r] != i:
            raise RetrievalError(f"id {i} is not in the index ({len(self)} tracks)")
        return r

    def _row_of_track(self, track_id: str) -> int | None:
        if self._by_track is not None:
            i = self._by_track.get(track_id)
            return None if i is None else self._row(i)
        try:  # one lookup: a scan in C beats building the map
            return self.track_ids.index(track_id)
        except ValueError:
            return None

    @classmethod
    def for_embeddings(
        cls,
        meta: dict[str, Any],
        dim: int,
        factory: str,
        params: dict[str, Any],
        rerank: str | None = None,
    ) -> SideTable:
        """An empty table for vectors of ``dim`` embedded as ``meta`` says (encoder, layer,
        rate, hop), indexed by ``factory`` with search ``params``."""
        return cls(
            dim=dim,
            factory=factory,
            encoder_id=meta.get("encoder_id"),
            encoder_path=meta.get("encoder_path"),
            layer=meta.get("layer"),
            sample_rate=meta.get("sample_rate"),
            hop_samples=meta.get("hop_samples"),
            params=params,
            rerank=rerank,
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index_file(self) -> str:
        """Name of the FAISS file this table goes with."""
        return f"index-{self.generation:06d}.faiss"

    def append(self, track_ids: list[str], sources: list[str]) -> np.ndarray:
        """Give new tracks fresh int64 ids, returned ``(n,)``; duplicate track ids are errors."""
        known = self._track_map()
        dup = [t for t in track_ids if t in known] or _duplicates(track_ids)
        if dup:
            raise RetrievalError(
                f"track id {dup[0]!r} is already in the index ({len(dup)} duplicates)",
                hint="remove it first (audioclr index remove) or add only new tracks",
            )
        new = np.arange(self.next_id, self.next_id + len(track_ids), dtype=np.int64)
        known.update(zip(track_ids, new.tolist(), strict=True))
        self.ids = np.concatenate([self.ids, new])
        self.track_ids.extend(track_ids)
        self.sources.extend(sources)
        self.next_id += len(track_ids)
        return new

    def drop(self, ids: np.ndarray) -> None:
        """Forget the given int64 ids (already removed from the FAISS index)."""
        keep = np.flatnonzero(~np.isin(self.ids, np.asarray(ids, dtype=np.int64)))
        self.ids = self.ids[keep]
        self.track_ids = [self.track_ids[r] for r in keep.tolist()]
        self.sources = [self.sources[r] for r in keep.tolist()]
        self._by_track = None

    def has(self, track_id: str) -> bool:
        """Whether ``track_id`` is in the index."""
        return self._row_of_track(track_id) is not None

    def id_of(self, track_id: str) -> int:
        """The int64 id of ``track_id``; ``RetrievalError`` naming it when unknown."""
        row = self._row_of_track(track_id)
        if row is None:
            raise RetrievalError(
                f"unknown track id {track_id!r} (index has {len(self)} tracks)",
                hint="list the ids with: audioclr index info INDEX --ids",
            )
        return int(self.ids[row])

    def track_of(self, i: int) -> str:
        """The track id behind int64 id ``i``."""
        return self.track_ids[self._row(int(i))]

    def source_of(self, i: int) -> str:
        """The source path behind int64 id ``i``."""
        return self.sources[self._row(int(i))]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the columns are not copied, save ``ids`` to a list)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ids"] = self.ids.tolist()
        return out


def _duplicates(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [t for t in items if t in seen or seen.add(t)]  # type: ignore[func-returns-value]


def write_table(folder: Path, table: SideTable) -> None:
    """Replace ``folder/table.json`` atomically."""
    tmp = folder / f".{TABLE}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(table.to_dict(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(folder / TABLE)


def read_table(folder: Path) -> SideTable:
    """Read ``folder/table.json``; ``RetrievalError`` if missing, damaged or of another version."""
    path = folder / TABLE
    if not path.is_file():
        raise RetrievalError(
            f"{folder} is not an index folder (no {TABLE})",
            hint="build one with: audioclr index build",
        )
    data = read_versioned_json(
        path,
        FORMAT_VERSION,
        RetrievalError,
        damaged_hint="rebuild with: audioclr index build",
        version_hint="rebuild the index with this version of audioclr",
    )
    problem = _problem(data)
    if problem:
        raise RetrievalError(f"{path}: {problem}", hint="rebuild with: audioclr index build")
    try:
        return SideTable(**data)
    except TypeError as exc:
        raise RetrievalError(
            f"{path} has unexpected fields ({exc})", hint="rebuild the index"
        ) from exc


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a table read from disk (hand-edited or damaged), or ``None``."""
    columns = {k: data.get(k, []) for k in ("ids", "track_ids", "sources")}
    if not all(isinstance(c, list) for c in columns.values()):
        return "ids, track_ids and sources must be lists"
    lengths = {k: len(c) for k, c in columns.items()}
    if len(set(lengths.values())) > 1:
        return f"ids, track_ids and sources must be of equal length, not {lengths}"
    ids, track_ids = columns["ids"], columns["track_ids"]
    if not all(_is_int(i) and i >= 0 for i in ids):
        return "ids must be non-negative integers"
    if not all(isinstance(s, str) for s in track_ids + columns["sources"]):
        return "track_ids and sources must be strings"
    rising = all(a < b for a, b in zip(ids[:-1], ids[1:], strict=True))
    if not rising or len(set(track_ids)) < len(track_ids):
        return "ids must rise row by row and track_ids must be unique"
    dim, next_id, gen = (data.get(k, 0) for k in ("dim", "next_id", "generation"))
    if not (_is_int(dim) and dim > 0 and _is_int(next_id) and _is_int(gen)):
        return "dim, next_id and generation must be integers (dim > 0)"
    if ids and next_id <= max(ids):
        return f"next_id {next_id} must be above every id"
    if not isinstance(data.get("params", {}), dict):
        return "params must be an object"
    return None
