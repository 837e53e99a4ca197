# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""Large index (search/build.py, search/rerank.py): the memory-mapped chunked build equals an
in-RAM build, re-ranking recovers exact neighbours, ``mmap`` loads answer alike."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from audioclr.cli import main
from audioclr.errors import RetrievalError
from audioclr.evaluate.store import EmbeddingSet, save_embeddings
from audioclr.search import faisshelpers as fh
from audioclr.search.build import build_large, large_factory
from audioclr.search.index import TrackIndex

pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # conftest.py
FACTORY = "IVF16,PQ8np"  # 4-byte codes for 32-d: coarse enough that re-ranking matters


def clustered(n: int, dim: int, seed: int, centres: int = 40) -> np.ndarray:
    """Seeded Gaussian clusters, ``(n, dim)`` float32, norms varied (cosine must ignore them)."""
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(0).standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x * rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32)


def emb_folder(tmp_path: Path, x: np.ndarray) -> Path:
    ids = [f"t{i}" for i in range(len(x))]
    return save_embeddings(tmp_path / "emb", x, ids, [f"/m/{t}.wav" for t in ids], {"layer": "x"})


def exact(x: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
    """Cosine top-k rows by brute force in numpy (float64)."""
    b = x / np.linalg.norm(x, axis=1, keepdims=True)
    q = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    return np.argsort(-(q.astype(np.float64) @ b.T.astype(np.float64)), axis=1)[:, :k]


def recall(I: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(np.intersect1d(a, b)) / truth.shape[1] for a, b in zip(I, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, TrackIndex]:
    tmp = tmp_path_factory.mktemp("large")
    x = clustered(3000, 32, seed=1)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    tix = build_large(emb_folder(tmp, x), tmp / "idx", FACTORY, chunk=700, max_train=3000)
    faiss.omp_set_num_threads(before)
    return tmp, x, tix


def test_chunked_memmap_build_equals_in_ram_build(built: tuple) -> None:
    tmp, x, big = built
    ids = [f"t{i}" for i in range(len(x))]
    ram = TrackIndex.build(EmbeddingSet(x, ids, ids, {}), FACTORY, max_train=3000)
    xq = clustered(100, 32, seed=2)
    q = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    D_ram, I_ram = ram.index.search(q, 10)
    D_big, I_big = big.index.search(q, 10)
    np.testing.assert_array_equal(I_big, I_ram)
    np.testing.assert_allclose(D_big, D_ram, atol=1e-6)
    # the vectors beside the index are the normalised embeddings, row = id
    np.testing.assert_allclose(big.rerank, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6)


def test_reranking_recovers_exact_neighbours(built: tuple) -> None:
    _, x, big = built
    xq = clustered(200, 32, seed=3)
    truth = exact(x, xq, 10)
    q = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    pq_alone = recall(big.index.search(q, 10)[1], truth)
    D, I = big.search(xq, 10)
    assert recall(I, truth) >= 0.97 > pq_alone + 0.1
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(D, np.einsum("qkd,qd->qk", xn[I], q), atol=1e-5)  # exact scores
    assert (np.diff(D, axis=1) <= 0).all()  # best first


def test_rerank_is_the_exact_top_k_of_its_candidates(tmp_path: Path) -> None:
    """Against numpy over the same rows: ids, scores, order; -1 tails (fewer candidates than k)."""
    from audioclr.search import rerank

    rng = np.random.default_rng(4)
    store = rerank.create_store(tmp_path / "v.npy", 500, 24)
    store[:] = rng.standard_normal((500, 24)).astype(np.float32)
    store.flush()
    mapped = rerank.open_store(tmp_path / "v.npy", 24)
    xq = rng.standard_normal((40, 24)).astype(np.float32)
    cand = np.stack([rng.choice(500, 30, replace=False) for _ in range(40)])
    cand[5, 12:] = -1  # 12 candidates only
    cand[6, :] = -1  # none
    D, I = rerank.rerank(mapped, xq, cand, k=16)
    for q in range(40):
        c = cand[q][cand[q] >= 0]
        s = np.asarray(store[c], np.float64) @ xq[q].astype(np.float64)
        want = c[np.argsort(-s)][:16]
        n = len(want)
        np.testing.assert_array_equal(I[q, :n], want)
        np.testing.assert_allclose(D[q, :n], np.sort(s)[::-1][:16], rtol=1e-5, atol=1e-5)
        assert (I[q, n:] == -1).all() and np.isneginf(D[q, n:]).all()


def test_mmap_load_answers_like_a_normal_load(built: tuple) -> None:
    tmp, _, big = built
    mapped, loaded = TrackIndex.load(tmp / "idx", mmap=True), TrackIndex.load(tmp / "idx")
    lists = faiss.extract_index_ivf(mapped.index).invlists
    assert isinstance(faiss.downcast_InvertedLists(lists), faiss.OnDiskInvertedLists)
    xq = clustered(50, 32, seed=4)
    for other in (loaded, big):
        for a, b in zip(mapped.search(xq, 7), other.search(xq, 7), strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mapped.vector_of("t5"), big.rerank[5])


def test_rebuild_replaces_the_vectors_and_add_is_refused(tmp_path: Path) -> None:
    x = clustered(600, 16, seed=5)
    emb = emb_folder(tmp_path, x)
    build_large(emb, tmp_path / "idx", "IVF8,PQ4np")
    tix = build_large(emb, tmp_path / "idx", "IVF8,PQ4np")
    assert sorted(p.name for p in (tmp_path / "idx").glob("vectors-*.npy")) == [tix.table.rerank]
    with pytest.raises(RetrievalError, match="cannot be added to"):
        tix.add(EmbeddingSet(x[:2], ["new1", "new2"], ["", ""], {}))
    assert tix.remove(["t3"]) == 1
    assert 3 not in tix.search(x[3:4], 10)[1]


def test_cli_large_build_and_mmap_query(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    x = clustered(1200, 16, seed=6)
    emb, idx = emb_folder(tmp_path, x), tmp_path / "idx"
    assert large_factory(1200, 16) == "IVF64,PQ16x4fsr"
    assert main(["index", "build", str(emb), str(idx), "--large", "--k-factor", "16"]) == 0
    capsys.readouterr()
    assert main(["query", str(idx), "--track", "t7", "-k", "5", "--mmap", "--json"]) == 0
    got = [r["track_id"] for r in json.loads(capsys.readouterr().out)[0]["results"]]
    want = [f"t{i}" for i in exact(x, x[7:8], 6)[0] if i != 7][:5]
    assert got == want


def test_many_lists_get_two_level_centroids_behind_hnsw(tmp_path: Path) -> None:
    """Past ``TWO_LEVEL_MIN`` lists the coarse centroids come from two-level k-means: unit norm,
    closer to the data than as many data rows drawn at random (what k-means must beat), and the
    HNSW quantizer still finds each query's neighbours (recall against numpy's exact top-10)."""
    x = clustered(40_000, 64, seed=7, centres=400)
    tix = build_large(emb_folder(tmp_path, x), tmp_path / "idx", "IVF4096_HNSW32,PQ16np")
    ivf = faiss.extract_index_ivf(tix.index)
    cents = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    np.testing.assert_allclose(np.linalg.norm(cents, axis=1), 1.0, atol=1e-4)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    drawn = xn[np.random.default_rng(0).choice(len(xn), ivf.nlist, replace=False)]
    fit = float(np.mean(np.max(xn @ cents.T, axis=1)))
    assert fit > float(np.mean(np.max(xn @ drawn.T, axis=1)))
    xq = clustered(200, 64, seed=8, centres=400)
    tix.set_params(fh.SearchParams(nprobe=16, k_factor=8))
    assert recall(tix.search(xq, 10)[1], exact(x, xq, 10)) >= 0.9


def lists_of(index: faiss.Index) -> np.ndarray:
    """The inverted list of each stored vector, in the order of their external ids, read back
    from FAISS's lists."""
    ivf = faiss.extract_index_ivf(index)
    id_map = faiss.vector_to_array(faiss.downcast_index(index).id_map)
    ext, lists = [], []
    for lst in range(ivf.nlist):
        size = ivf.invlists.list_size(lst)
        if size:
            ext.append(id_map[faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), size)])
            lists.append(np.full(size, lst))
    return np.concatenate(lists)[np.argsort(np.concatenate(ext))]


def test_large_factory_has_32_byte_residual_codes_and_a_nested_quantizer_past_65536() -> None:
    """About 128 vectors a list (at least 2 sqrt(n)), a power of two; 4-bit codes of the
    residuals, at most 32 bytes; a flat coarse quantizer up to 65,536 lists, then an IVF with
    sqrt(nlist) lists of centroids."""
    assert large_factory(1200, 16) == "IVF64,PQ16x4fsr"  # 2 sqrt(1200) = 69 > 1200 / 128
    assert large_factory(1_000_000, 256) == "IVF8192,PQ64x4fsr"  # 1e6 / 128 = 7,812
    assert large_factory(10_000_000, 256) == "IVF65536,PQ64x4fsr"
    assert large_factory(10_000_000, 96) == "IVF65536,PQ48x4fsr"
    assert large_factory(20_000_000, 256) == "IVF131072(IVF256,Flat),PQ64x4fsr"
    index = faiss.index_factory(256, "IVF64,PQ64x4fsr", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    assert ivf.code_size == 32 and ivf.by_residual  # as FAISS stores it ("x4fs": not residual)


def test_large_build_defaults_to_the_measured_k_factor(tmp_path: Path) -> None:
    """4-bit codes need more candidates: a large build keeps K_FACTOR unless told otherwise,
    and the re-ranked recall with it beats the library-wide default of 8 on the same index."""
    from audioclr.search.build import K_FACTOR, large_params

    x = clustered(6000, 32, seed=11, centres=60)
    tix = build_large(emb_folder(tmp_path, x), tmp_path / "idx", "IVF64,PQ16x4fs")
    assert tix.params.k_factor == K_FACTOR == large_params().k_factor
    assert TrackIndex.load(tmp_path / "idx").params.k_factor == K_FACTOR
    assert large_params(k_factor=8.0, nprobe=3).k_factor == 8.0
    xq = clustered(300, 32, seed=12, centres=60)
    truth = exact(x, xq, 10)
    tix.set_params(fh.SearchParams(nprobe=64, k_factor=K_FACTOR))
    ours = recall(tix.search(xq, 10)[1], truth)
    tix.set_params(fh.SearchParams(nprobe=64, k_factor=8))
    assert ours > recall(tix.search(xq, 10)[1], truth) + 0.02


def test_nested_quantizer_files_every_vector_in_its_nearest_list(tmp_path: Path) -> None:
    """``IVFn(IVFm,Flat)``: while adding, each vector goes to its exactly nearest centroid (numpy
    argmax over the centroids), though the nested quantizer visits only some of its lists; the
    search visits ``quantizer_nprobe`` of them (more: better recall), and an mmap load answers
    as the built index does. In RAM too, and after a removal."""
    x = clustered(12_000, 32, seed=9, centres=300)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    tix = build_large(emb_folder(tmp_path, x), tmp_path / "idx", "IVF512(IVF16,Flat),PQ8np")
    ivf = faiss.extract_index_ivf(tix.index)
    cents = faiss.downcast_index(ivf.quantizer).reconstruct_n(0, ivf.nlist)
    np.testing.assert_array_equal(lists_of(tix.index), np.argmax(xn @ cents.T, axis=1))
    xq, truth = x[:300] + 0.05, exact(x, x[:300] + 0.05, 10)
    got = {}
    for qnp in (1, 16):
        tix.set_params(fh.SearchParams(nprobe=4, k_factor=8, quantizer_nprobe=qnp))
        got[qnp] = recall(tix.search(xq, 10)[1], truth)
    assert got[16] >= 0.95 and got[1] < got[16] - 0.05, got
    tix.save(tmp_path / "idx")
    mapped = TrackIndex.load(tmp_path / "idx", mmap=True)
    for a, b in zip(mapped.search(xq, 10), tix.search(xq, 10), strict=True):
        np.testing.assert_array_equal(a, b)

    ram = TrackIndex.build(
        EmbeddingSet(x, [f"t{i}" for i in range(len(x))], [""] * len(x), {}),
        "IVF256(IVF16,Flat),Flat",
    )
    ram.remove(["t0", "t1"])
    ivf = faiss.extract_index_ivf(ram.index)
    cents = faiss.downcast_index(ivf.quantizer).reconstruct_n(0, ivf.nlist)
    where = lists_of(ram.index)
    np.testing.assert_array_equal(where, np.argmax(xn[2:] @ cents.T, axis=1))


def test_reranking_store_reads_only_the_rows_it_needs(tmp_path: Path, monkeypatch) -> None:
    """``open_store`` tells the kernel its rows are read at random: 200 random rows of a 64 MiB
    store evicted from the page cache fetch about 200 pages from disk (``/proc/self/io``), where
    default read-ahead fetches the whole file (what filled 11 GiB of RAM at 1e7)."""
    import mmap
    import os
    import types

    from audioclr.search import rerank

    if not Path("/proc/self/io").is_file() or not hasattr(os, "posix_fadvise"):
        pytest.skip("needs /proc/self/io and posix_fadvise")
    path = tmp_path / "store.npy"
    store = rerank.create_store(path, 65_536, 256)
    store[:] = 1.0
    store.flush()
    del store

    def disk_kib_for_random_rows() -> int:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # evict: the next reads hit the disk
        os.close(fd)
        io = Path("/proc/self/io")
        before = int(io.read_text().split("read_bytes:")[1].split()[0])
        mapped = rerank.open_store(path, 256)
        rows = np.random.default_rng(0).choice(65_536, 200, replace=False)
        assert float(np.asarray(mapped[rows]).sum()) == 200 * 256
        return (int(io.read_text().split("read_bytes:")[1].split()[0]) - before) // 1024

    monkeypatch.setattr(rerank, "mmap", types.SimpleNamespace())  # no hint: default read-ahead
    default = disk_kib_for_random_rows()
    if default == 0:
        pytest.skip("this filesystem reads nothing from a disk (tmpfs?)")
    monkeypatch.setattr(rerank, "mmap", mmap)
    hinted = disk_kib_for_random_rows()
    assert hinted <= 200 * 16 and hinted * 8 < default, (hinted, default)


def test_tuning_picks_the_cheapest_setting_that_reaches_the_target(tmp_path: Path) -> None:
    """``tune_search`` on data where nprobe 8 falls short (structureless 24-d Gaussian): the
    setting it picks reaches the target on other tracks (recall against numpy's exact top-10,
    itself excluded), the one below it on the ladder does not, and the index keeps its own
    parameters until told."""
    from audioclr.search.tune import ladder, tune_search

    x = np.random.default_rng(11).standard_normal((12_000, 24)).astype(np.float32)
    tix = build_large(emb_folder(tmp_path, x), tmp_path / "idx", "IVF256,PQ8np")
    params, recall = tune_search(tix, target=0.85, queries=200, seed=1)
    assert tix.params.nprobe == fh.SearchParams().nprobe  # unchanged until set_params
    steps = ladder(tix.index, tix.params.k_factor)
    at = steps.index((params.nprobe, params.quantizer_nprobe, params.k_factor))
    assert recall >= 0.85 and at > 0, (params, recall)
    others = np.random.default_rng(2).choice(len(x), 200, replace=False)
    truth = exact(x, x[others], 11)
    truth = [t[t != o][:10] for t, o in zip(truth, others, strict=True)]

    def measured(nprobe: int, qnp: int, kf: float) -> float:
        tix.set_params(fh.SearchParams(nprobe=nprobe, quantizer_nprobe=qnp, k_factor=kf))
        found = tix.search(x[others], 10, others.tolist())[1]
        return float(
            np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(found, truth, strict=True)])
        )

    assert measured(*steps[at]) >= 0.82
    assert measured(*steps[at - 1]) < 0.85


def test_tuning_raises_k_factor_where_visiting_more_lists_cannot_help(tmp_path: Path) -> None:
    """Coarse 4-bit codes (``PQ8x4fs`` at 32-d) built with k_factor 2: even with every list
    visited, recall stays far below the target; the tuning raises k_factor, and its choice
    reaches the target on other tracks (numpy's exact top-10, itself excluded)."""
    from audioclr.search.build import large_params
    from audioclr.search.tune import tune_search

    x = clustered(8000, 32, seed=13, centres=80)
    tix = build_large(
        emb_folder(tmp_path, x), tmp_path / "idx", "IVF16,PQ8x4fs", params=large_params(k_factor=2)
    )
    params, recall_own = tune_search(tix, target=0.9, queries=200, seed=1)
    assert params.k_factor > 2 and recall_own >= 0.9, (params, recall_own)
    others = np.random.default_rng(5).choice(len(x), 300, replace=False)
    truth = exact(x, x[others], 11)
    truth = np.array([t[t != o][:10] for t, o in zip(truth, others, strict=True)])

    def measured(p: fh.SearchParams) -> float:
        tix.set_params(p)
        return recall(tix.search(x[others], 10, others.tolist())[1], truth)

    assert measured(params) >= 0.88
    assert measured(fh.SearchParams(nprobe=16, k_factor=2)) < 0.6  # all 16 lists, own k_factor


def test_cli_large_build_tunes_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    x = np.random.default_rng(12).standard_normal((6000, 16)).astype(np.float32)
    emb = emb_folder(tmp_path, x)
    assert (
        main(["index", "build", str(emb), str(tmp_path / "a"), "--large", "--target-recall", "0.9"])
        == 0
    )
    said = capsys.readouterr().err
    table = json.loads((tmp_path / "a" / "table.json").read_text())
    assert f"nprobe {table['params']['nprobe']}," in said and table["params"]["nprobe"] > 16, said
    assert main(["index", "build", str(emb), str(tmp_path / "b"), "--large", "--nprobe", "3"]) == 0
    assert "recall@10" not in capsys.readouterr().err
    assert json.loads((tmp_path / "b" / "table.json").read_text())["params"]["nprobe"] == 3


def test_pca_pretransform_keeps_inner_product_ranking() -> None:
    """Vectors with a large common mean, all inside a 12-d subspace of 32-d: a 12-d PCA loses
    nothing, so a flat search behind it must rank as exact cosine does (numpy). FAISS's own PCA
    centres (``A (x - mean)``), which adds a per-vector bias to every score and reorders."""
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.standard_normal((32, 12)))[0].T  # 12 orthonormal rows
    coef = rng.standard_normal((2000, 12)) * np.linspace(2.0, 0.2, 12) + 3.0  # a mean in-span
    x = fh.normalize((coef @ basis).astype(np.float32))
    xq = fh.normalize((rng.standard_normal((100, 12)) + 3.0) @ basis)
    truth = exact(x, xq, 10)
    index = fh.make_index("PCAR12,Flat", 32)
    fh.train_index(index, x)
    vt = faiss.downcast_VectorTransform(fh.inner_index(index).chain.at(0))
    np.testing.assert_allclose(faiss.vector_to_array(vt.b), 0.0)  # a pure projection
    index.add_with_ids(x, np.arange(len(x)))
    assert recall(index.search(xq, 10)[1], truth) == 1.0
    centred = fh.make_index("PCAR12,Flat", 32)
    centred.train(x)  # FAISS alone: A (x - mean)
    centred.add_with_ids(x, np.arange(len(x)))
    assert recall(centred.search(xq, 10)[1], truth) < 0.9


def test_residual_codes_rank_better_than_codes_of_the_vectors(tmp_path: Path) -> None:
    """The default codes the residual to each vector's list centroid (``x4fsr``): at the same
    bytes, its PQ ranking alone (before re-ranking) finds more true neighbours than FAISS's
    plain ``x4fs``, which codes the vectors themselves (measured at 1e6: 32-byte residual codes
    as good as 64-byte plain ones)."""
    x = clustered(8000, 32, seed=21, centres=80)
    xq = clustered(300, 32, seed=22, centres=80)
    truth = exact(x, xq, 10)
    got = {}
    for factory in ("IVF64,PQ32x4fs", "IVF64,PQ32x4fsr"):
        tix = build_large(emb_folder(tmp_path / factory, x), tmp_path / f"i{factory}", factory)
        tix.set_params(fh.SearchParams(nprobe=8))
        got[factory] = recall(tix.index.search(fh.normalize(xq), 10)[1], truth)
    assert got["IVF64,PQ32x4fsr"] > got["IVF64,PQ32x4fs"] + 0.15, got  # 0.63 vs 0.36
