"""Retrieval metrics against hand-computed values and an independent numpy ranking."""

from __future__ import annotations

import numpy as np
import pytest

from audioclr.errors import LabelError, RetrievalError
from audioclr.evaluate.retrieval import (
    Judge,
    Segment,
    evaluate_retrieval,
    map_at_k,
    precision_at_k,
    read_labels,
    read_segments,
    recall_at_k,
)
from audioclr.evaluate.store import EmbeddingSet
from audioclr.search.index import TrackIndex

pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # conftest.py


def test_metrics_equal_hand_computed_values() -> None:
    rel = np.array([[True, False, True, False], [False, True, False, False]])
    n_rel = np.array([3, 1])
    # q1: P = 2/4, R = 2/3, AP = (1/1 + 2/3) / min(4, 3);  q2: P = 1/4, R = 1, AP = (1/2) / 1
    assert precision_at_k(rel) == pytest.approx((0.5 + 0.25) / 2)
    assert recall_at_k(rel, n_rel) == pytest.approx((2 / 3 + 1) / 2)
    assert map_at_k(rel, n_rel) == pytest.approx(((1 + 2 / 3) / 3 + 0.5) / 2)


def at_angles(degrees: list[float]) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.stack([np.cos(a), np.sin(a)], 1).astype(np.float32)


def test_segment_mode_ignores_overlaps_and_matches_hand_values() -> None:
    names = ["s0", "s1", "s2", "s3", "s4"]
    x = at_angles([0, 5, 30, 14, 70])
    segs = {
        "s0": Segment("A", 0, 10),
        "s1": Segment("A", 5, 15),
        "s2": Segment("A", 20, 30),
        "s3": Segment("B", 0, 10),
        "s4": Segment("B", 10, 20),
    }
    tix = TrackIndex.build(EmbeddingSet(x, names, names, {}))
    report = evaluate_retrieval(tix, Judge(segments=segs), k=2)
    # rankings (overlapping same-source segments dropped): s0 -> s3,s2 | s1 -> s3,s2 | s2 -> s3,s1
    # | s3 -> s1,s0 | s4 -> s2,s3 ; relevant counts 1,1,2,1,1
    assert report["precision@2"] == pytest.approx((0.5 + 0.5 + 0.5 + 0 + 0.5) / 5)
    assert report["recall@2"] == pytest.approx((1 + 1 + 0.5 + 0 + 1) / 5)
    assert report["map@2"] == pytest.approx((0.5 + 0.5 + 0.25 + 0 + 0.5) / 5)
    assert report["recall@2_vs_exact"] == 1.0


def reference_label_metrics(x: np.ndarray, labels: list[str], k: int) -> tuple[float, float, float]:
    """Loop-by-loop reference: cosine ranking without self, relevant = same label."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    p, r, ap = [], [], []
    for q in range(len(x)):
        order = [j for j in np.argsort(-(xn @ xn[q]), kind="stable") if j != q][:k]
        hits = [labels[j] == labels[q] for j in order]
        total = sum(lab == labels[q] for lab in labels) - 1
        p.append(sum(hits) / k)
        r.append(sum(hits) / total)
        ap.append(sum(sum(hits[: i + 1]) / (i + 1) for i in range(k) if hits[i]) / min(k, total))
    return float(np.mean(p)), float(np.mean(r)), float(np.mean(ap))


def test_label_mode_matches_loop_reference(tmp_path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 8))
    labels = [f"c{i % 4}" for i in range(60)]
    x = (centres[[i % 4 for i in range(60)]] + 0.9 * rng.standard_normal((60, 8))).astype(
        np.float32
    )
    names = [f"t{i}" for i in range(60)]
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "track_id,label\n" + "".join(f"{n},{lab}\n" for n, lab in zip(names, labels, strict=True))
    )
    tix = TrackIndex.build(EmbeddingSet(x, names, names, {}))
    report = evaluate_retrieval(tix, Judge(labels=read_labels(csv)), k=5)
    p, r, ap = reference_label_metrics(x, labels, 5)
    assert report["queries"] == 60
    assert (report["precision@5"], report["recall@5"], report["map@5"]) == pytest.approx((p, r, ap))


def test_csv_errors_name_file_and_row(tmp_path) -> None:
    bad = tmp_path / "segs.csv"
    bad.write_text("track_id,source,start_s,end_s\na,src,0\n")
    with pytest.raises(LabelError, match="segs.csv data row 1 has 3 columns"):
        read_segments(bad)
    bad.write_text("a,src,zero,1\n")
    with pytest.raises(LabelError, match="numbers in seconds"):
        read_segments(bad)
    with pytest.raises(LabelError, match="not found"):
        read_labels(tmp_path / "missing.csv")


def test_labels_csv_paths_are_matched_to_track_ids_by_suffix(tmp_path) -> None:
    csv = tmp_path / "labels.csv"  # the project's labels CSV: paths relative to the CSV's folder
    csv.write_text(
        "path,label\naudio/bell/b0.wav,bell\naudio/bell/b1.wav,bell\naudio/horn/h0.wav,horn\n"
    )
    names = ["bell/b0.wav", "bell/b1.wav", "horn/h0.wav"]
    tix = TrackIndex.build(EmbeddingSet(at_angles([0, 10, 5]), names, names, {}))
    report = evaluate_retrieval(tix, Judge(labels=read_labels(csv)), k=1)
    # b0 -> h0 (5 deg, miss), b1 -> h0 (5 deg, miss), h0 -> b0 (5 deg; h0 has no relevant track)
    assert report["queries"] == 3 and report["queries_without_relevant"] == 1
    assert report["precision@1"] == 0.0
    with pytest.raises(RetrievalError, match="no index track has a label"):
        evaluate_retrieval(tix, Judge(labels={"other/x.wav": "a"}), k=1)
