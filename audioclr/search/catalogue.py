# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""What the search page knows about a catalogue: names, neighbours, a 2-D map, safe audio paths.

Loaded once when the page starts: the index and side table (as ``audioclr query`` reads them),
a PCA of the stored vectors to two dimensions for the map, and the folders audio may be served
from. Audio is reached by FAISS id only, and a path is served only when it resolves (symlinks
followed) to a file inside one of those folders.

Example:
    >>> cat = Catalogue.load("my_index/")
    >>> [m["track_id"] for m in cat.find("piano", limit=2)]
    ['piano/a.wav', 'piano/b.wav']
    >>> cat.neighbours_of_track("piano/a.wav", k=3)["hits"][0]["score"]
    0.93
    >>> cat.audio_path(cat.tix.table.id_of("piano/a.wav"))
    PosixPath('/music/piano/a.wav')
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from audioclr.errors import RetrievalError
from audioclr.search import faisshelpers as fh
from audioclr.search.index import TrackIndex
from audioclr.search.query import Querier

MAX_K = 100
MAP_SAMPLE = 20_000  # the map is fitted on, and draws, at most this many tracks (seeded sample)


class UnknownTrack(RetrievalError):
    """A track id or FAISS id the catalogue does not hold (HTTP 404)."""


class OutsideSources(RetrievalError):
    """A track's audio resolves outside the folders the page may serve (HTTP 403)."""


@dataclass
class PcaMap:
    """A 2-D PCA: the projection, and ``xy (tracks, 2)`` of the tracks it was fitted on."""

    mean: np.ndarray  # (dim,)
    axes: np.ndarray  # (dim, 2)
    xy: np.ndarray  # (tracks, 2)

    @classmethod
    def fit(cls, x: np.ndarray) -> PcaMap:
        """Fit on ``x (tracks, dim)``: the two leading eigenvectors of the covariance.

        BLAS runs on one thread here: on a busy machine its threads made this 20x slower.
        """
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        with threadpool_limits(1):
            xc = x - mean
            _, vecs = np.linalg.eigh(xc.T @ xc)  # ascending eigenvalues
            axes = vecs[:, ::-1][:, :2]
            if axes.shape[1] < 2:  # dim 1: a flat second axis
                axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
            xy = xc @ axes
        return cls(mean, axes, xy.astype(np.float32))

    def project(self, v: np.ndarray) -> list[float]:
        """Map position of one vector ``(dim,)``."""
        return [float(c) for c in (np.asarray(v, np.float64) - self.mean) @ self.axes]


def source_roots(track_ids: list[str], sources: list[str]) -> list[Path]:
    """The folders each track's audio may come from: its source path minus its track id (the
    prepared root), else its source's folder; resolved, deduplicated.

    Example:
        >>> source_roots(["rock/a.wav"], ["/music/rock/a.wav"])
        [PosixPath('/music')]
    """
    roots = set()
    for tid, src in zip(track_ids, sources, strict=True):
        suffix = os.sep + tid.replace("/", os.sep)
        inside = tid and ".." not in tid.split("/") and src.endswith(suffix)
        roots.add(src[: -len(suffix)] if inside else os.path.dirname(src))
    return sorted({Path(r).resolve() for r in roots})  # resolve each distinct folder once


class Catalogue:
    """An index, its side table, its map and its querier, ready for the page's requests."""

    def __init__(
        self,
        tix: TrackIndex,
        querier: Querier,
        roots: list[Path] | None = None,
        map_sample: int = MAP_SAMPLE,
    ) -> None:
        self.tix = tix
        self.querier = querier
        table = tix.table
        self.roots = roots or source_roots(table.track_ids, table.sources)
        self._lower = [t.lower() for t in table.track_ids]
        self._embed_lock = threading.Lock()  # the encoder loads once, on the first upload
        self.map: PcaMap | None = None
        self._points: dict[str, Any] = {"ids": [], "track_ids": [], "x": [], "y": []}
        ids = fh.stored_ids(tix.index)
        rows = np.arange(len(ids))
        if len(rows) > map_sample:
            rows = np.sort(np.random.default_rng(0).choice(len(rows), map_sample, replace=False))
        try:  # only the sampled rows are read back, never a copy of the whole catalogue
            xb = fh.reconstruct_rows(tix.index, rows)
        except RuntimeError:  # an index type that keeps no vectors to read back
            return
        if len(rows):
            self.map = PcaMap.fit(xb)
            xy = np.round(self.map.xy, 5)
            drawn = ids[rows].tolist()
            self._points = {
                "ids": drawn,
                "track_ids": [table.track_of(i) for i in drawn],
                "x": xy[:, 0].tolist(),
                "y": xy[:, 1].tolist(),
            }

    @classmethod
    def load(
        cls,
        index: str | Path,
        encoder: str | Path | None = None,
        device: str = "cpu",
        roots: list[str | Path] | None = None,
    ) -> Catalogue:
        """Read ``index`` as ``audioclr query`` does; ``roots`` overrides :func:`source_roots`."""
        for root in roots or []:
            if not Path(root).is_dir():
                raise RetrievalError(
                    f"audio root {root} is not a folder", hint="name the folder of your audio"
                )
        tix = TrackIndex.load(index)
        resolved = [Path(r).resolve() for r in roots] if roots else None
        return cls(tix, Querier(tix, encoder, device), resolved)

    def find(self, text: str, limit: int = 50) -> list[dict[str, Any]]:
        """Tracks whose id contains ``text`` (case-insensitive), in catalogue order."""
        needle = text.strip().lower()
        table = self.tix.table
        out = []
        for row, low in enumerate(self._lower):
            if needle in low:
                out.append({"id": int(table.ids[row]), "track_id": table.track_ids[row]})
                if len(out) == limit:
                    break
        return out

    def map_points(self) -> dict[str, Any]:
        """The map's points: ``{"ids", "track_ids", "x", "y"}`` lists (a seeded sample of at
        most ``map_sample`` tracks; empty when the index keeps no vectors to read back)."""
        return self._points

    def neighbours_of_track(self, track_id: str, k: int) -> dict[str, Any]:
        """The ``k`` nearest tracks to a catalogue track (itself excluded)."""
        table = self.tix.table
        if not table.has(track_id):
            raise UnknownTrack(
                f"unknown track id {track_id!r} (the catalogue has {len(table)} tracks)",
                hint="search the catalogue by name and pick a track",
            )
        i = table.id_of(track_id)
        v = self.tix.vector_of(track_id)
        D, I = self.tix.search(v[None], _check_k(k), exclude=[i])
        query = {"kind": "track", "id": i, "track_id": track_id, "xy": self._xy(v)}
        return {"query": query, "hits": self._hits(D[0], I[0])}

    def neighbours_of_file(self, path: Path, name: str, k: int) -> dict[str, Any]:
        """The ``k`` nearest tracks to an audio file, embedded with the index's encoder."""
        k = _check_k(k)
        with self._embed_lock:
            v = fh.normalize(self.querier.embed_file(path)[None], "the uploaded file's vector")[0]
        D, I = self.tix.search(v[None], k)
        query = {"kind": "file", "id": None, "track_id": name, "xy": self._xy(v)}
        return {"query": query, "hits": self._hits(D[0], I[0])}

    def audio_path(self, i: int) -> Path:
        """The audio file of FAISS id ``i``, resolved; refused unless inside a source root."""
        table = self.tix.table
        try:
            path = Path(table.source_of(i)).resolve()
        except KeyError:
            raise UnknownTrack(
                f"no track with id {i}", hint="ids come from the page's search results"
            ) from None
        if not any(path.is_relative_to(root) for root in self.roots):
            raise OutsideSources(
                f"the audio of track {table.track_of(i)!r} lies outside the catalogue's sources",
                hint="serve it with --audio-root naming the folder that holds it",
            )
        if not path.is_file():
            raise UnknownTrack(
                f"the audio of track {table.track_of(i)!r} is missing ({path.name})",
                hint="the file moved since the index was built; rebuild or re-add it",
            )
        return path

    def _xy(self, v: np.ndarray) -> list[float] | None:
        return None if self.map is None else self.map.project(v)

    def _hits(self, d: np.ndarray, ids: np.ndarray) -> list[dict[str, Any]]:
        table = self.tix.table
        return [
            {
                "rank": r + 1,
                "id": int(j),
                "track_id": table.track_of(j),
                "score": float(s),
                "xy": self._xy(self.tix.index.reconstruct(int(j))),
            }
            for r, (s, j) in enumerate(zip(d, ids, strict=True))
            if j >= 0
        ]


def _check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise RetrievalError(f"k must be between 1 and {MAX_K}, got {k}", hint="e.g. k=10")
    return k
