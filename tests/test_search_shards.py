# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""One query front over shards (search/shards.py): the merged top-k equals one index's over all
tracks, by vector and by track id (itself excluded), in the API and on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audioclr.cli import main
from audioclr.errors import RetrievalError
from audioclr.evaluate.store import EmbeddingSet, save_embeddings
from audioclr.search.build import build_large
from audioclr.search.index import TrackIndex
from audioclr.search.query import Querier
from audioclr.search.shards import ShardedIndex

pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # conftest.py


def data(n: int = 900, dim: int = 16) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    c = rng.standard_normal((30, dim))
    x = (c[rng.integers(0, 30, n)] + 0.4 * rng.standard_normal((n, dim))).astype(np.float32)
    return x, [f"t{i:04d}" for i in range(n)]


def emb(x: np.ndarray, ids: list[str], meta: dict | None = None) -> EmbeddingSet:
    return EmbeddingSet(x, ids, [f"/m/{t}.wav" for t in ids], meta or {"encoder_id": "e1"})


def shards_of(tmp_path: Path, x: np.ndarray, ids: list[str], parts: int = 3) -> list[Path]:
    """Index folders over a seeded split of the tracks (as prepare --shard would deal them)."""
    which = np.random.default_rng(0).integers(0, parts, len(ids))
    out = []
    for n in range(parts):
        rows = np.flatnonzero(which == n)
        folder = tmp_path / f"shard{n}"
        TrackIndex.build(emb(x[rows], [ids[r] for r in rows]), "Flat").save(folder)
        out.append(folder)
    return out


def test_merged_top_k_equals_one_index_over_all_tracks(tmp_path: Path) -> None:
    x, ids = data()
    whole = TrackIndex.build(emb(x, ids), "Flat")
    front = ShardedIndex.load(shards_of(tmp_path, x, ids))
    assert len(front.table) == len(ids)
    xq = x[:50] + 0.1
    D1, I1 = whole.search(xq, 10)
    D2, I2 = front.search(xq, 10)
    np.testing.assert_allclose(D2, D1, atol=1e-5)
    assert [[front.table.track_of(i) for i in row] for row in I2] == [
        [whole.table.track_of(i) for i in row] for row in I1
    ]
    one, many = Querier(whole), Querier(front)
    for q in ("t0007", "t0450"):  # a track's neighbours, itself excluded, from any shard
        a, b = one.query(q, k=8), many.query(q, k=8)
        assert [h.track_id for h in b.results] == [h.track_id for h in a.results]
        assert q not in [h.track_id for h in b.results]
        assert [h.source for h in b.results] == [h.source for h in a.results]
    with pytest.raises(RetrievalError, match="unknown track id 'nope'"):
        front.table.id_of("nope")
    D, I = front.search(xq[:2], len(ids) + 5)  # more than there are: -1 ids, -inf scores
    assert (I[:, -5:] == -1).all() and np.isneginf(D[:, -5:]).all()


def test_shards_of_other_encoders_are_refused(tmp_path: Path) -> None:
    x, ids = data(60)
    TrackIndex.build(emb(x[:30], ids[:30]), "Flat").save(tmp_path / "a")
    TrackIndex.build(emb(x[30:], ids[30:], {"encoder_id": "e2"}), "Flat").save(tmp_path / "b")
    with pytest.raises(RetrievalError, match="has encoder_id 'e2' but .*a has 'e1'"):
        ShardedIndex.load([tmp_path / "a", tmp_path / "b"])


def test_cli_query_over_large_shards_matches_one_index(tmp_path: Path, capsys) -> None:
    x, ids = data(1500)
    which = np.arange(len(ids)) % 2
    folders = []
    for n in range(2):
        rows = np.flatnonzero(which == n)
        e = save_embeddings(
            tmp_path / f"e{n}", x[rows], [ids[r] for r in rows], [""] * len(rows), {}
        )
        build_large(e, tmp_path / f"s{n}", "IVF8,PQ8np")
        folders.append(str(tmp_path / f"s{n}"))
    e = save_embeddings(tmp_path / "eall", x, ids, [""] * len(ids), {})
    build_large(e, tmp_path / "all", "IVF8,PQ8np")
    answers = []
    for index in (folders, [str(tmp_path / "all")]):
        flags = ["--mmap", "--nprobe", "8", "--k-factor", "50"]  # every list, exact re-rank
        assert main(["query", *index, "--track", "t0011", "-k", "6", "--json", *flags]) == 0
        answers.append([r["track_id"] for r in json.loads(capsys.readouterr().out)[0]["results"]])
    assert answers[0] == answers[1] and "t0011" not in answers[0]
