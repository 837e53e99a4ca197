# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""A track index: FAISS vectors (cosine) plus a side table of track ids and provenance.

Build from an embeddings folder, add more folders, remove tracks, search, save and load.
Approximate types are trained on a seeded sample. Removal is native for ``Flat`` and a
re-add of the remaining exact vectors (no retraining) for other exact-storage types.

Example:
    >>> emb = load_embeddings("emb/")                       # vectors (tracks, dim)
    >>> tix = TrackIndex.build(emb)                         # "Flat" for a small catalogue
    >>> q = tix.table.id_of("piano/a.wav")
    >>> D, I = tix.search(tix.vector_of("piano/a.wav")[None], k=5, exclude=[q])
    >>> tix.save("my_index/"); TrackIndex.load("my_index/").table.track_of(int(I[0, 0]))
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from audioclr.commit import invalidate, verify_manifest, write_manifest
from audioclr.errors import RetrievalError
from audioclr.evaluate.store import EmbeddingSet
from audioclr.lock import folder_lock
from audioclr.search import faisshelpers as fh
from audioclr.search.rerank import open_store, rerank
from audioclr.search.sidetable import TABLE, SideTable, read_table, write_table

ADD_CHUNK = 65_536
KIND = "index"
REBUILD = "rebuild with: audioclr index build"


class TrackIndex:
    """A FAISS ``IndexIDMap2`` (cosine) and its :class:`SideTable`, kept in step.

    ``rerank``: a large index's exact vectors (row = id, memory-mapped; ``search/build.py``),
    which re-rank ``k * k_factor`` approximate candidates in :meth:`search`.
    """

    def __init__(
        self, index: faiss.Index, table: SideTable, rerank: np.ndarray | None = None
    ) -> None:
        self.index = index
        self.table = table
        self.rerank = rerank
        fh.set_search_params(index, self.params)

    @property
    def params(self) -> fh.SearchParams:
        """Search parameters recorded in the side table."""
        return fh.SearchParams(**self.table.params)

    def set_params(self, params: fh.SearchParams) -> None:
        """Change nprobe / ef_search / k_factor / quantizer_nprobe (recorded on the next save)."""
        self.table.params = asdict(params)
        fh.set_search_params(self.index, params)

    @classmethod
    def build(
        cls,
        emb: EmbeddingSet,
        factory: str | None = None,
        params: fh.SearchParams | None = None,
        seed: int = 0,
        max_train: int = 65_536,
        progress: bool = False,
    ) -> TrackIndex:
        """A new index over ``emb`` (``factory`` defaults by size); trains on a seeded sample."""
        if len(emb.ids) == 0:
            raise RetrievalError(
                "cannot build an index from an empty embeddings set", hint="embed some tracks first"
            )
        factory = factory or fh.default_factory(len(emb.ids), emb.dim)
        table = SideTable.for_embeddings(
            emb.meta, emb.dim, factory, asdict(params or fh.SearchParams())
        )
        tix = cls(fh.make_index(factory, emb.dim), table)
        xb = fh.normalize(emb.vectors, "embeddings")
        if not tix.index.is_trained:
            rng = np.random.default_rng(seed)
            sample = rng.choice(len(xb), size=min(len(xb), max_train), replace=False)
            fh.train_index(tix.index, xb[np.sort(sample)], seed)
        tix._add_normalized(xb, emb.ids, emb.sources, progress)
        return tix

    def add(self, emb: EmbeddingSet, progress: bool = False) -> np.ndarray:
        """Add another embeddings set from the same encoder and layer; returns the new int64 ids."""
        if self.rerank is not None:
            raise RetrievalError(
                "a large index (exact vectors on disk for re-ranking) cannot be added to",
                hint="rebuild it over all embeddings with: audioclr index build --large",
            )
        self._check_compatible(emb)
        return self._add_normalized(
            fh.normalize(emb.vectors, "embeddings"), emb.ids, emb.sources, progress
        )

    def _add_normalized(
        self, xb: np.ndarray, track_ids: list[str], sources: list[str], progress: bool
    ) -> np.ndarray:
        ids = self.table.append(list(track_ids), list(sources))
        with fh.exact_assignment(self.index):
            for start in tqdm(
                range(0, len(xb), ADD_CHUNK), desc="adding", unit="chunk", disable=not progress
            ):
                chunk = slice(start, start + ADD_CHUNK)
                self.index.add_with_ids(xb[chunk], ids[chunk])
        return ids

    def _check_compatible(self, emb: EmbeddingSet) -> None:
        if emb.dim != self.table.dim:
            raise RetrievalError(
                f"embeddings have dim {emb.dim} but the index has dim {self.table.dim}",
                hint="use embeddings from the encoder and layer the index was built with",
            )
        for key in ("encoder_id", "layer"):
            theirs, ours = emb.meta.get(key), getattr(self.table, key)
            if theirs is not None and ours is not None and theirs != ours:
                raise RetrievalError(
                    f"embeddings {key} {theirs!r} differs from the index's {ours!r}",
                    hint="embed with the same encoder and layer, or build a new index",
                )

    def remove(self, track_ids: list[str]) -> int:
        """Remove tracks by track id (unknown ids are errors); returns how many were removed."""
        ids = np.unique(np.array([self.table.id_of(t) for t in track_ids], dtype=np.int64))
        if isinstance(fh.inner_index(self.index), faiss.IndexFlat) or self.rerank is not None:
            self.index.remove_ids(ids)  # a large index's vectors file keeps the unused rows
        elif fh.stores_exact(self.index):
            xb, all_ids = fh.reconstruct_all(self.index)
            keep = ~np.isin(all_ids, ids)
            xb, all_ids = xb[keep], all_ids[keep]
            self.index.reset()  # keeps the trained quantizers: no retraining
            with fh.exact_assignment(self.index):
                for start in range(0, len(xb), ADD_CHUNK):
                    stop = start + ADD_CHUNK
                    self.index.add_with_ids(xb[start:stop], all_ids[start:stop])
        else:
            raise RetrievalError(
                f"index type {self.table.factory!r} keeps no exact vectors to remove tracks",
                hint="rebuild with audioclr index build, or use a type with Flat/RFlat storage",
            )
        self.table.drop(ids)
        return len(ids)

    def vector_of(self, track_id: str) -> np.ndarray:
        """The stored (normalised) vector of ``track_id``, ``(dim,)``."""
        if self.rerank is not None:
            return np.array(self.rerank[self.table.id_of(track_id)])
        return self.index.reconstruct(self.table.id_of(track_id))

    def search(
        self, xq: np.ndarray, k: int, exclude: list[int | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine neighbours of ``xq (nq, dim)``: ``D (nq, k)`` scores, ``I (nq, k)`` ids.

        ``exclude[q]`` is an id never returned for query ``q`` (the query track itself). Missing
        results are ``-1`` ids with ``-inf`` scores.
        """
        if k < 1:
            raise RetrievalError(f"k must be >= 1, got {k}", hint="e.g. -k 10")
        if self.index.ntotal == 0:
            raise RetrievalError(
                "the index is empty", hint="add tracks with: audioclr index add INDEX EMBEDDINGS"
            )
        xq = np.atleast_2d(xq)
        if xq.shape[1] != self.table.dim:
            raise RetrievalError(
                f"query vectors have dim {xq.shape[1]} but the index has dim {self.table.dim}",
                hint="embed queries with the encoder and layer the index was built with",
            )
        xq = fh.normalize(xq, "query vectors")
        extra = 1 if exclude is not None else 0
        want = min(k + extra, self.index.ntotal)
        if self.rerank is None:
            D, I = self.index.search(xq, want)
        else:
            candidates = min(math.ceil(want * self.params.k_factor), self.index.ntotal)
            D, I = rerank(self.rerank, xq, self.index.search(xq, candidates)[1], want)
        return _drop_excluded(D, I, k, exclude)

    def save(self, folder: str | Path) -> Path:
        """Commit the index to ``folder`` under its writer lock; returns the folder.

        Removes ``manifest.json``, writes ``index-<gen>.faiss`` under a fresh name, replaces
        ``table.json`` (the switch to the new generation), writes ``manifest.json`` (sizes and
        sha256 of both), then deletes older FAISS files: a save killed at any point leaves the
        old index or the new one, never a table paired with the wrong vectors.
        """
        folder = Path(folder)
        with folder_lock(folder, "index save", RetrievalError):
            if (folder / TABLE).is_file():  # continue after whatever index is there now
                with contextlib.suppress(RetrievalError):
                    gen = read_table(folder).generation
                    self.table.generation = max(self.table.generation, gen)
            self.table.generation += 1
            invalidate(folder, [])
            path = folder / self.table.index_file
            tmp = folder / f".{path.name}.tmp{os.getpid()}"
            faiss.write_index(self.index, str(tmp))
            with open(tmp, "rb+") as fh_tmp:
                os.fsync(fh_tmp.fileno())
            tmp.replace(path)
            store = [self.table.rerank] if self.rerank is not None else []
            if store and not (folder / store[0]).exists():  # saved to another folder
                shutil.copyfile(self.rerank.filename, folder / store[0])
            write_table(folder, self.table)
            write_manifest(folder, [TABLE, path.name, *store], KIND)
            for stale in [*folder.glob("index-*.faiss"), *folder.glob(".index-*.tmp*")]:
                if stale != path:
                    stale.unlink(missing_ok=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path, verify: bool = True, mmap: bool = False) -> TrackIndex:
        """Read an index folder written by :meth:`save`; errors name the folder.

        Checks the files against ``manifest.json`` (sizes; sha256 unless ``verify`` is false),
        the side table's fields, and the FAISS id map against the table's ids, in order.
        ``mmap``: IVF inverted lists are memory-mapped from the file (``faiss.IO_FLAG_MMAP``),
        not read into RAM (FAISS still reads fast-scan's blocked lists into RAM), and the
        manifest check is by size only (hashing would read it all);
        a large index's exact vectors are memory-mapped either way.
        """
        folder = Path(folder)
        table = read_table(folder)
        verify_manifest(folder, KIND, RetrievalError, REBUILD, hashes=verify and not mmap)
        path = folder / table.index_file
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
        except RuntimeError as exc:
            raise RetrievalError(f"cannot read FAISS index {path}", hint=REBUILD) from exc
        if (
            not isinstance(index, faiss.IndexIDMap2)
            or index.ntotal != len(table)
            or index.d != table.dim
        ):
            raise RetrievalError(
                f"{path} does not match {folder / TABLE} "
                f"({index.ntotal} vectors of dim {index.d}; table {len(table)} of dim {table.dim})",
                hint=REBUILD,
            )
        _check_id_map(index, table, path)
        try:
            store = open_store(folder / table.rerank, table.dim) if table.rerank else None
            return cls(index, table, store)
        except (TypeError, ValueError) as exc:
            raise RetrievalError(f"{folder / TABLE}: bad params ({exc})", hint=REBUILD) from exc


def _check_id_map(index: faiss.IndexIDMap2, table: SideTable, path: Path) -> None:
    """The FAISS id of every stored vector must be the table's id of that row."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    wrong = np.flatnonzero(ids != np.asarray(table.ids, dtype=np.int64))
    if len(wrong):
        r = int(wrong[0])
        raise RetrievalError(
            f"{path}: the FAISS id map does not match {TABLE} ({len(wrong)} rows differ; row {r} "
            f"is id {int(ids[r])} in FAISS, {table.ids[r]} ({table.track_ids[r]!r}) in the table)",
            hint=REBUILD,
        )


def _drop_excluded(
    D: np.ndarray, I: np.ndarray, k: int, exclude: list[int | None] | None
) -> tuple[np.ndarray, np.ndarray]:
    nq = len(I)
    out_d = np.full((nq, k), -np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    for q in range(nq):
        keep = I[q] >= 0
        if exclude is not None and exclude[q] is not None:
            keep &= I[q] != exclude[q]
        n = min(k, int(keep.sum()))
        out_d[q, :n] = D[q][keep][:n]
        out_i[q, :n] = I[q][keep][:n]
    return out_d, out_i
