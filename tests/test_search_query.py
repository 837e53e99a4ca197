"""Queries through the real encoder + embed path, and through the ``audioclr`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.errors import RetrievalError
from audioclr.evaluate.embed import embed_meta, embed_waveform
from audioclr.evaluate.store import save_embeddings
from audioclr.search.index import TrackIndex
from audioclr.search.query import Querier
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import load_encoder, save_encoder

SR = 8000
TINY = {"widths": [8, 16], "n_fft": 256, "hop_length": 128, "n_mels": 16, "input_samples": 4000}


def tiny_encoder(path, seed: int):  # noqa: ANN001, ANN201
    """An exported tiny melcnn with weights drawn from ``seed`` (load_encoder's random init)."""
    draft = save_encoder(build_encoder("melcnn", SR, **TINY), path)
    return save_encoder(load_encoder(draft, random_init_seed=seed).encoder, path)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):  # noqa: ANN001, ANN201
    """Six tone tracks embedded by a tiny random melcnn and indexed: (root, index dir, files)."""
    root = tmp_path_factory.mktemp("cat")
    enc = tiny_encoder(root / "enc.pt", seed=0)
    loaded = load_encoder(enc)
    rng = np.random.default_rng(0)
    files, vecs = [], []
    for i, f in enumerate([220, 330, 440, 660, 880, 1320]):
        x = tone(f, SR, 1.0) + 0.05 * rng.standard_normal(SR).astype(np.float32)
        files.append(write_audio(root / "audio" / f"t{i}.wav", x, SR))
        vecs.append(embed_waveform(loaded, x))
    ids = [f"t{i}.wav" for i in range(6)]
    meta = embed_meta(loaded, "last", loaded.input_samples, str(enc))
    save_embeddings(root / "emb", np.stack(vecs), ids, [str(p) for p in files], meta)
    assert main(["index", "build", str(root / "emb"), str(root / "idx")]) == 0
    return root, root / "idx", files


def test_file_query_returns_that_track_first(catalogue) -> None:  # noqa: ANN001
    _, idx, files = catalogue
    res = Querier(TrackIndex.load(idx)).query(str(files[3]), k=3)
    assert res.kind == "file" and res.results[0].track_id == "t3.wav"
    assert res.results[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.rank for h in res.results] == [1, 2, 3]


def test_cli_query_json_track_and_list(catalogue, capsys, tmp_path) -> None:  # noqa: ANN001
    _, idx, files = catalogue
    capsys.readouterr()
    assert main(["query", str(idx), "--track", "t2.wav", "-k", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    hits = out[0]["results"]
    assert len(hits) == 5 and "t2.wav" not in [h["track_id"] for h in hits]  # itself excluded
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:], strict=False))
    tix = TrackIndex.load(idx)
    v = tix.vector_of("t2.wav")
    expect = sorted(
        (t for t in tix.table.track_ids if t != "t2.wav"),
        key=lambda t: -float(tix.vector_of(t) @ v),
    )
    assert [h["track_id"] for h in hits] == expect
    lst = tmp_path / "queries.txt"
    lst.write_text(f"# two queries\nt0.wav\n\n{files[5]}\n")
    assert main(["query", str(idx), "--list", str(lst), "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["kind"] for o in out] == ["track", "file"] and out[1]["results"][0][
        "track_id"
    ] == "t5.wav"


def test_encoder_mismatch_and_unknown_query_are_errors(catalogue, capsys) -> None:  # noqa: ANN001
    root, idx, files = catalogue
    other = tiny_encoder(root / "other.pt", seed=1)
    with pytest.raises(RetrievalError, match="encoder_id"):
        Querier(TrackIndex.load(idx), encoder=other).query(str(files[0]))
    assert main(["query", str(idx), "--track", "nope.wav"]) == 2
    assert "unknown track id 'nope.wav'" in capsys.readouterr().err


def test_cli_index_add_remove_info(catalogue, tmp_path, capsys) -> None:  # noqa: ANN001
    root, _, _ = catalogue
    idx = tmp_path / "idx"
    assert (
        main(
            [
                "index",
                "build",
                str(root / "emb"),
                str(idx),
                "--factory",
                "HNSW8,Flat",
                "--ef-search",
                "20",
            ]
        )
        == 0
    )
    assert main(["index", "remove", str(idx), "t1.wav", "t4.wav"]) == 0
    capsys.readouterr()
    assert main(["index", "info", str(idx), "--ids", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tracks"] == 4 and info["track_ids"] == ["t0.wav", "t2.wav", "t3.wav", "t5.wav"]
    assert info["factory"] == "HNSW8,Flat" and info["params"]["ef_search"] == 20
    assert main(["index", "add", str(idx), str(root / "emb")]) == 2  # duplicates refused
    assert "already in the index" in capsys.readouterr().err
