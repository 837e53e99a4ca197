# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""Retrieval evaluation: precision@k, mAP@k, recall@k, recall against exact search, queries/s.

Relevance is ``rel (queries, k)`` bool over each ranked list, plus ``n_relevant (queries,)``,
the number of relevant catalogue items per query. A track is relevant to a query when it has
the same label, or (segment mode) when it is another segment of the same source that does not
overlap the query; overlapping segments of the same source are dropped from the ranking.
Queries without any relevant item are left out of the means (their count is reported).

Example:
    >>> rel = np.array([[True, False, True]]); n_rel = np.array([2])
    >>> precision_at_k(rel), recall_at_k(rel, n_rel), map_at_k(rel, n_rel)
    (0.6666666666666666, 1.0, 0.8333333333333333)
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

from audioclr.errors import LabelError, RetrievalError
from audioclr.evaluate.intervals import query_intervals
from audioclr.search import faisshelpers as fh
from audioclr.search.index import TrackIndex

V = TypeVar("V")


def precision_at_k(rel: np.ndarray) -> float:
    """Mean over queries of (relevant in the top k) / k, for ``rel (queries, k)``."""
    return float(rel.sum(1).mean() / rel.shape[1])


def recall_at_k(rel: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over queries of (relevant in the top k) / (relevant in the catalogue)."""
    return float(np.mean(rel.sum(1) / n_relevant))


def map_at_k(rel: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean average precision at k: sum of precision@i at each hit, over min(k, relevant)."""
    ranks = np.arange(1, rel.shape[1] + 1)
    prec_at_i = np.cumsum(rel, axis=1) / ranks
    ap = (prec_at_i * rel).sum(1) / np.minimum(rel.shape[1], n_relevant)
    return float(ap.mean())


@dataclass
class Segment:
    """Where a track (segment) comes from: its source and span in seconds."""

    source: str
    start: float
    end: float


def _read_csv(path: str | Path, columns: int) -> list[list[str]]:
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path} not found", hint="give a CSV file")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if rows and rows[0][0].strip().lower() in ("track_id", "id", "path"):
        rows = rows[1:]
    for i, r in enumerate(rows, 1):
        if len(r) < columns:
            raise LabelError(f"{path} data row {i} has {len(r)} columns, needs {columns}: {r}")
    if not rows:
        raise LabelError(f"{path} has no rows")
    return rows


def read_labels(path: str | Path) -> dict[str, str]:
    """``track_id,label`` CSV (optional header) -> {track_id: label}."""
    return {r[0].strip(): r[1].strip() for r in _read_csv(path, 2)}


def read_segments(path: str | Path) -> dict[str, Segment]:
    """``track_id,source,start_s,end_s`` CSV (optional header) -> {track_id: Segment}."""
    try:
        return {
            r[0].strip(): Segment(r[1].strip(), float(r[2]), float(r[3]))
            for r in _read_csv(path, 4)
        }
    except ValueError as exc:
        raise LabelError(f"{path}: start/end must be numbers in seconds ({exc})") from exc


def align_keys(table: dict[str, V], track_ids: list[str]) -> dict[str, V]:
    """Re-key ``table`` by index track ids: exact match, else a unique path-suffix match.

    Lets a labels CSV with paths (``audio/bell/b0.wav``) label tracks ``bell/b0.wav``.

    Example:
        >>> align_keys({"audio/bell/b0.wav": "bell"}, ["bell/b0.wav"])
        {'bell/b0.wav': 'bell'}
    """
    by_suffix: dict[str, list[str]] = {}
    for key in table:
        parts = key.replace("\\", "/").split("/")
        for i in range(len(parts)):
            by_suffix.setdefault("/".join(parts[i:]), []).append(key)
    out = {}
    for t in track_ids:
        if t in table:
            out[t] = table[t]
        elif len(by_suffix.get(t, [])) == 1:
            out[t] = table[by_suffix[t][0]]
    return out


@dataclass
class Judge:
    """Relevance between catalogue tracks, from labels or from segments."""

    labels: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    # label mode: candidates of the query's own group (e.g. its track, when relevance is "same
    # release") are dropped from its ranking, neither hits nor misses
    ignore_groups: dict[str, str] | None = None

    def aligned(self, track_ids: list[str]) -> Judge:
        """This judge with its keys matched to ``track_ids`` (see :func:`align_keys`)."""
        if self.labels is not None:
            groups = self.ignore_groups
            return Judge(
                labels=align_keys(self.labels, track_ids),
                ignore_groups=None if groups is None else align_keys(groups, track_ids),
            )
        return Judge(segments=align_keys(self.segments or {}, track_ids))

    def known(self, t: str) -> bool:
        """Whether ``t`` has a label / segment entry."""
        return t in (self.labels if self.labels is not None else self.segments or {})

    def relevant(self, q: str, t: str) -> bool:
        """``t`` counts as a hit for query ``q``."""
        if self.labels is not None:
            return not self.ignored(q, t) and t in self.labels and self.labels[t] == self.labels[q]
        a, b = self.segments[q], self.segments.get(t)  # type: ignore[index,union-attr]
        return (
            b is not None
            and t != q
            and a.source == b.source
            and (a.end <= b.start or b.end <= a.start)
        )

    def counts(self, queries: list[str], catalogue: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per query: relevant catalogue tracks ``(q,)``, ignored ones ``(q,)`` (incl. self)."""
        groups: dict[str, list[str]] = {}
        for t in catalogue:
            if self.known(t):
                key = self.labels[t] if self.labels is not None else self.segments[t].source  # type: ignore[index]
                groups.setdefault(key, []).append(t)
        n_rel, n_ign = [], []
        for q in queries:
            key = self.labels[q] if self.labels is not None else self.segments[q].source  # type: ignore[index]
            same = groups.get(key, [])
            n_rel.append(sum(self.relevant(q, t) for t in same))
            n_ign.append(max(1, sum(self.ignored(q, t) for t in same)))
        return np.array(n_rel), np.array(n_ign)

    def ignored(self, q: str, t: str) -> bool:
        """``t`` is dropped from ``q``'s ranking: the query itself, an overlapping segment, or a
        member of the query's ignored group."""
        if t == q:
            return True
        g = self.ignore_groups
        if g is not None and q in g and g.get(t) == g[q]:
            return True
        if self.segments is None or t not in self.segments:
            return False
        a, b = self.segments[q], self.segments[t]
        return a.source == b.source and not (a.end <= b.start or b.end <= a.start)


def _ranked(
    I: np.ndarray, queries: list[str], tix: TrackIndex, judge: Judge, k: int
) -> list[list[str]]:
    out = []
    for q, row in zip(queries, I, strict=True):
        names = [tix.table.track_of(i) for i in row if i >= 0]
        out.append([t for t in names if not judge.ignored(q, t)][:k])
    return out


def evaluate_retrieval(
    tix: TrackIndex,
    judge: Judge,
    k: int = 10,
    max_queries: int | None = None,
    seed: int = 0,
    per_query: bool = False,
) -> dict[str, Any]:
    """``tix``'s tracks as queries: precision/mAP/recall@k, recall vs exact search, q/s.

    ``per_query`` adds ``"_per_query": {"queries", f"precision@{k}"}`` (queries with a relevant
    item only; arrays, for intervals; keys starting with ``_`` are not for reports).
    """
    xb, ids = fh.reconstruct_all(tix.index)
    names = [tix.table.track_of(i) for i in ids]
    judge = judge.aligned(names)
    rows = [r for r, t in enumerate(names) if judge.known(t)]
    if not rows:
        raise RetrievalError(
            "no index track has a label/segment entry", hint="check the ids in the CSV"
        )
    if max_queries is not None and len(rows) > max_queries:
        rows = sorted(np.random.default_rng(seed).choice(rows, max_queries, replace=False).tolist())
    queries = [names[r] for r in rows]
    n_rel, n_ignored = judge.counts(queries, names)
    extra = int(n_ignored.max())
    depth = min(k + extra, len(ids))
    t0 = time.perf_counter()
    _, I = tix.index.search(xb[rows], depth)
    qps = len(rows) / (time.perf_counter() - t0)
    _, I_exact = faiss.knn(xb[rows], xb, depth, metric=faiss.METRIC_INNER_PRODUCT)
    found, exact = _ranked(I, queries, tix, judge, k), _ranked(ids[I_exact], queries, tix, judge, k)
    rel = np.array(
        [
            [judge.relevant(q, t) for t in f] + [False] * (k - len(f))
            for q, f in zip(queries, found, strict=True)
        ]
    )
    vs_exact = np.mean(
        [len(set(f) & set(e)) / max(1, len(e)) for f, e in zip(found, exact, strict=True)]
    )
    has = n_rel > 0
    if not has.any():
        raise RetrievalError(
            "no query has any relevant track in the index", hint="check the labels/segments CSV"
        )
    out: dict[str, Any] = {
        "k": k,
        "queries": len(rows),
        "queries_without_relevant": int((~has).sum()),
        f"precision@{k}": precision_at_k(rel[has]),
        f"map@{k}": map_at_k(rel[has], n_rel[has]),
        f"recall@{k}": recall_at_k(rel[has], n_rel[has]),
        f"recall@{k}_vs_exact": float(vs_exact),
        "queries_per_s": float(qps),
    }
    per_q = rel[has].sum(1) / k
    lo, hi = query_intervals({"p": per_q[None]}, np.arange(len(per_q)), "p", [])["ci95"]["p"]
    out[f"precision@{k}_ci95"] = [lo, hi]  # 95 % bootstrap over queries
    if per_query:
        out["_per_query"] = {
            "queries": [q for q, h in zip(queries, has, strict=True) if h],
            f"precision@{k}": per_q,
        }
    return out
