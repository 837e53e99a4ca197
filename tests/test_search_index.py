# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""Track index: exact search vs numpy, approximate recall, ids through save/load/add/remove."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from audioclr.errors import RetrievalError
from audioclr.evaluate.store import EmbeddingSet
from audioclr.search import faisshelpers as fh
from audioclr.search.index import TrackIndex

pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # conftest.py


def clustered(n: int, dim: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """Seeded Gaussian clusters around random centres, ``(n, dim)`` float32 (not normalised)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    pts = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    return (pts * rng.uniform(0.5, 3.0, (n, 1))).astype(
        np.float32
    )  # norms vary: cosine must ignore them


def emb_set(x: np.ndarray, start: int = 0, meta: dict | None = None) -> EmbeddingSet:
    ids = [f"t{i:05d}" for i in range(start, start + len(x))]
    return EmbeddingSet(
        x, ids, [f"/music/{t}.wav" for t in ids], meta or {"encoder_id": "e1", "layer": "last"}
    )


def brute_force(xb: np.ndarray, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-k in numpy: scores and row indices, ``(nq, k)``."""
    b = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    q = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    s = q.astype(np.float64) @ b.T.astype(np.float64)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), order


def test_exact_index_equals_numpy_brute_force() -> None:
    x = clustered(500, 24, 20, 0.3, seed=0)
    xq = clustered(30, 24, 20, 0.3, seed=1)
    tix = TrackIndex.build(emb_set(x))
    assert tix.table.factory == "Flat"
    D, I = tix.search(xq, k=7)
    ref_d, ref_i = brute_force(x, xq, 7)
    np.testing.assert_allclose(D, ref_d, atol=1e-5)
    assert [[tix.table.track_of(i) for i in row] for row in I] == [
        [f"t{j:05d}" for j in row] for row in ref_i
    ]


@pytest.mark.parametrize(
    "factory,params",
    [
        ("IVF64,PQ16x4fs,RFlat", fh.SearchParams(nprobe=32, k_factor=16)),
        ("HNSW32,Flat", fh.SearchParams(ef_search=128)),
        ("IVF64_HNSW32,PQ16x4fs,RFlat", fh.SearchParams(nprobe=32, k_factor=16)),
    ],
)
def test_approximate_recall_at_10_vs_exact(factory: str, params: fh.SearchParams) -> None:
    x = clustered(8000, 32, 80, 0.15, seed=2)
    xq = clustered(200, 32, 80, 0.15, seed=3)
    tix = TrackIndex.build(emb_set(x), factory, params, seed=0)
    _, I = tix.search(xq, 10)
    _, ref = brute_force(x, xq, 10)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(I.tolist(), ref.tolist(), strict=True)]
    )
    assert recall >= 0.95


@pytest.mark.parametrize("factory", ["Flat", "HNSW16,Flat", "IVF16,PQ8x4fs,RFlat", "IVF16,Flat"])
def test_ids_survive_save_load_add_remove(tmp_path, factory: str) -> None:
    x = clustered(1200, 16, 30, 0.2, seed=4)
    tix = TrackIndex.build(
        emb_set(x[:800]), factory, fh.SearchParams(nprobe=16, k_factor=50, ef_search=200)
    )
    tix.save(tmp_path / "idx")
    tix = TrackIndex.load(tmp_path / "idx")
    tix.add(emb_set(x[800:], start=800))
    tix.remove(["t00003", "t00900"])
    tix.save(tmp_path / "idx")
    tix = TrackIndex.load(tmp_path / "idx")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        ".lock",
        "index-000002.faiss",
        "manifest.json",
        "table.json",
    ]
    assert tix.index.ntotal == len(tix.table) == 1198
    keep = [i for i in range(1200) if i not in (3, 900)]
    D, I = tix.search(x[keep], 1)  # every remaining vector finds itself, under its own track id
    assert [tix.table.track_of(i) for i in I[:, 0]] == [f"t{i:05d}" for i in keep]
    np.testing.assert_allclose(D[:, 0], 1.0, atol=1e-4)
    assert tix.table.source_of(I[-1, 0]) == "/music/t01199.wav"
    with pytest.raises(RetrievalError, match="unknown track id 't00003'"):
        tix.vector_of("t00003")


def test_query_excludes_itself_and_is_next_best() -> None:
    x = clustered(300, 16, 10, 0.2, seed=5)
    tix = TrackIndex.build(emb_set(x))
    q = tix.table.id_of("t00042")
    D, I = tix.search(tix.vector_of("t00042")[None], 5, exclude=[q])
    assert q not in I[0]
    ref_d, ref_i = brute_force(x, x[42:43], 6)
    assert ref_i[0, 0] == 42 and I[0].tolist() == [tix.table.ids[j] for j in ref_i[0, 1:]]
    np.testing.assert_allclose(D[0], ref_d[0, 1:], atol=1e-5)


def test_errors_dim_unknown_empty_encoder_duplicate(tmp_path) -> None:
    x = clustered(50, 8, 4, 0.2, seed=6)
    tix = TrackIndex.build(emb_set(x))
    with pytest.raises(RetrievalError, match="dim 5 but the index has dim 8"):
        tix.search(np.ones((1, 5), np.float32), 3)
    with pytest.raises(RetrievalError, match="dim 5 but the index has dim 8"):
        tix.add(emb_set(np.ones((2, 5), np.float32), start=100))
    with pytest.raises(RetrievalError, match="unknown track id 'nope'"):
        tix.remove(["nope"])
    with pytest.raises(RetrievalError, match="encoder_id 'other' differs"):
        tix.add(emb_set(x[:2], start=100, meta={"encoder_id": "other"}))
    with pytest.raises(RetrievalError, match="already in the index"):
        tix.add(emb_set(x[:2]))
    with pytest.raises(RetrievalError, match="empty embeddings set"):
        TrackIndex.build(emb_set(np.zeros((0, 8), np.float32)))
    with pytest.raises(RetrievalError, match="row 1 is zero"):
        tix.add(emb_set(np.array([[1] * 8, [0] * 8], np.float32), start=100))
    tix.remove(tix.table.track_ids[:])
    with pytest.raises(RetrievalError, match="index is empty"):
        tix.search(x[:1], 3)
    with pytest.raises(RetrievalError, match="bad index factory"):
        TrackIndex.build(emb_set(x), "NotAnIndex")
    with pytest.raises(RetrievalError, match="keeps no exact vectors"):
        TrackIndex.build(emb_set(clustered(400, 8, 4, 0.2, 7)), "IVF4,SQ8").remove(["t00001"])


def test_load_refuses_other_version_and_mismatched_files(tmp_path) -> None:
    tix = TrackIndex.build(emb_set(clustered(20, 8, 2, 0.2, seed=8)))
    folder = tix.save(tmp_path / "idx")
    table = json.loads((folder / "table.json").read_text())
    table["ids"], table["track_ids"], table["sources"] = (
        table["ids"][:5],
        table["track_ids"][:5],
        table["sources"][:5],
    )
    (folder / "table.json").write_text(json.dumps(table))
    with pytest.raises(RetrievalError, match="does not match"):
        TrackIndex.load(folder)
    table["format_version"] = 99
    (folder / "table.json").write_text(json.dumps(table))
    with pytest.raises(RetrievalError, match="format_version 99"):
        TrackIndex.load(folder)
    with pytest.raises(RetrievalError, match="not an index folder"):
        TrackIndex.load(tmp_path / "missing")


@pytest.mark.parametrize("factory", ["Flat", "HNSW16,Flat", "IVF16,PQ16x4fs,RFlat"])
def test_memory_estimate_close_to_serialized_size(factory: str) -> None:
    n, d = 2000, 32
    tix = TrackIndex.build(emb_set(clustered(n, d, 40, 0.2, seed=9)), factory)
    actual = len(faiss.serialize_index(tix.index))  # file size ~ RAM, minus the id hash map
    est = fh.estimate_memory_bytes(factory, n, d)
    assert actual <= est <= 1.6 * actual + 48 * n


def test_default_factory_by_size() -> None:
    assert fh.default_factory(10_000, 128) == "Flat"
    assert fh.default_factory(200_000, 128).startswith("HNSW")
    f = fh.default_factory(2_000_000, 256)
    assert f.startswith("IVF") and f.endswith("x4fs,RFlat")
    fh.make_index(f, 256)  # a valid factory string
