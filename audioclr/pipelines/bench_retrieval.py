"""Same-track retrieval for the benchmark: embed segments per method, exact index, p@k / mAP@k.

Every segment is a query; the relevant items are the other segments of its track (its label).
Methods come from the registry (``evaluate/methods``); those trained on labels are skipped
(here a label is the answer). Embeddings are cached per method in ``OUT/<method>/`` (resumable).
A method with several init draws (random-init) is scored once per draw: ``results`` holds the
mean over draws and ``draws`` every draw's values. Retrieval has no split, so a random-init
encoder's BatchNorm statistics come from every segment's audio (labels unread).

Example:
    >>> res = retrieval_benchmark("music_pool/segments_labels.csv", "enc.pt", "out/retrieval",
    ...                           ["encoder", "mfcc"], ks=[1, 5], sample_rate=22050)
    >>> res["results"]["encoder"]["5"]["precision@5"]
    0.41
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.errors import AudioclrError, SampleRateMismatch
from audioclr.evaluate.methods import MethodSettings, Source, TrackSet, get_method
from audioclr.evaluate.store import EmbeddingSet


def segment_labels(labels_csv: str | Path) -> dict[str, str]:
    """``{track id: label}`` with ids as the embedders name tracks of that CSV."""
    from audioclr.data.labels import load_labelled_set
    from audioclr.evaluate.tracks import common_root

    labelled = load_labelled_set(labels_csv)
    ids = labelled.track_ids(common_root(labelled.paths))
    return {t: ls[0] for t, ls in zip(ids, labelled.labels, strict=True)}


def segment_tracks(labels_csv: str | Path, source: Source, sample_rate: int | None) -> TrackSet:
    """Every segment of ``labels_csv`` at the source's rate (``sample_rate`` checked against it)."""
    from audioclr.evaluate.tracks import open_tracks

    if sample_rate is not None and int(sample_rate) != source.sample_rate:
        raise SampleRateMismatch(
            f"retrieval at {sample_rate} Hz but {source.path} is at {source.sample_rate} Hz",
            hint="use the encoder's sample rate",
        )
    tracks = open_tracks(labels_csv, source.sample_rate)
    return TrackSet(tracks=tracks, key=str(Path(labels_csv).resolve()), train=tracks)


def embed_method(
    method: str, data: TrackSet, source: Source, out: Path, settings: MethodSettings
) -> list[EmbeddingSet]:
    """Vectors ``(segments, dim)`` of every segment, one set per draw, cached in ``out/<name>``."""
    found = get_method(method)
    return [d.emb for d in found.embed(source, data, settings, out / found.folder)]


def score_method(
    emb: EmbeddingSet,
    labels: dict[str, str],
    ks: list[int],
    factory: str = "Flat",
    ignore_groups: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """``{k: metrics}`` of :func:`evaluate_retrieval` for each ``k`` over one embeddings set
    (``ignore_groups``: candidates of the query's own group are dropped from its ranking)."""
    from audioclr.evaluate.retrieval import Judge, evaluate_retrieval
    from audioclr.search.index import TrackIndex

    tix = TrackIndex.build(emb, factory=factory)
    judge = Judge(labels=labels, ignore_groups=ignore_groups)
    return {str(k): evaluate_retrieval(tix, judge, k=k, per_query=True) for k in ks}


def add_intervals(
    per_draw: dict[str, list[dict[str, Any]]],
    tracks_of: dict[str, str],
    ks: list[int],
    results: dict[str, Any],
    n_boot: int = 1000,
) -> None:
    """Per k: ``ci95`` of precision@k for every method, and the encoder's paired
    ``vs_best_baseline``, by a bootstrap over whole held-out tracks (a query's segments share
    its track) and over draws; written into ``results[method][k]``."""
    from audioclr.evaluate.intervals import query_intervals
    from audioclr.evaluate.methods import ENCODER, is_baseline

    for k in map(str, ks):
        key = f"precision@{k}"
        queries = per_draw[next(iter(per_draw))][0][k]["_per_query"]["queries"]
        values = {}
        for m, draws in per_draw.items():
            for d in draws:
                if d[k]["_per_query"]["queries"] != queries:
                    raise ValueError(f"method {m} was scored on other queries")
            values[m] = np.stack([d[k]["_per_query"][key] for d in draws])
        iv = query_intervals(
            values,
            [tracks_of[q] for q in queries],
            ENCODER,
            [m for m in values if is_baseline(m)],
            n_boot,
        )
        for m in values:
            results[m][k][f"{key}_ci95"] = iv["ci95"][m]
        if iv["vs_best_baseline"] is not None:
            results[ENCODER][k]["vs_best_baseline"] = {"metric": key, **iv["vs_best_baseline"]}


def save_per_query(
    per_draw: dict[str, list[dict[str, Any]]],
    tracks_of: dict[str, str],
    ks: list[int],
    path: str | Path,
) -> Path:
    """Save ``queries``, their tracks (``clusters``: resampled whole) and ``<method>/precision@k``
    ``(draws, queries)`` for every method and k to ``path`` (``.npz``, no pickle)."""
    from audioclr.atomic import atomic_write_bytes

    first = per_draw[next(iter(per_draw))][0]
    queries = first[str(ks[0])]["_per_query"]["queries"]
    arrays = {
        "queries": np.asarray(queries),
        "clusters": np.asarray([tracks_of[q] for q in queries]),
    }
    for m, draws in per_draw.items():
        for k in map(str, ks):
            arrays[f"{m}/precision@{k}"] = np.stack(
                [d[k]["_per_query"][f"precision@{k}"] for d in draws]
            )
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_per_query(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays :func:`save_per_query` wrote (``AudioclrError`` naming a missing or bad file)."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise AudioclrError(
            f"{path}: not a saved per-query retrieval file ({exc})",
            hint="rerun the retrieval stage that writes it",
        ) from exc


def mean_scores(per_draw: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``{k: metrics}`` averaged over draws (float metrics; counts as they are)."""
    first = per_draw[0]
    return {
        k: {
            m: (float(np.mean([d[k][m] for d in per_draw])) if isinstance(v, float) else v)
            for m, v in metrics.items()
            if not m.startswith("_")
        }
        for k, metrics in first.items()
    }


def retrieval_benchmark(
    labels_csv: str | Path,
    encoder: str | Path,
    out_dir: str | Path,
    methods: list[str],
    ks: list[int],
    sample_rate: int | None = None,
    random_init_seed: int = 0,
    device: str = "auto",
    factory: str = "Flat",
    random_init_draws: int = 1,
    relevance_csv: str | Path | None = None,
    per_query_path: str | Path | None = None,
    encoder_bn: str = "pretraining",
) -> dict[str, Any]:
    """Per method, ``{k: {precision@k, map@k, recall@k, ...}}`` for same-track retrieval.

    ``labels_csv`` labels each segment with its track. ``relevance_csv`` (same paths, e.g. the
    release of each segment) makes relevance "same label there, other track": the query's own
    track is dropped from its ranking. Methods with several draws also get ``draws[method]``:
    one ``{k: metrics}`` per draw. ``per_query_path``: where to save every method's per-query
    precision@k (:func:`save_per_query`), for paired comparisons between reports later.
    ``encoder_bn="task"``: the encoder's BatchNorm statistics re-estimated on the segments (no
    labels), as random-init's are.
    """
    labels_csv, out = Path(labels_csv), Path(out_dir)
    tracks_of = segment_labels(labels_csv)
    labels = segment_labels(relevance_csv) if relevance_csv else tracks_of
    if set(labels) != set(tracks_of):
        raise AudioclrError(
            f"{relevance_csv} does not list the same segments as {labels_csv}",
            hint="build both with benchmarks/datasets/music_pool.py",
        )
    ignore = tracks_of if relevance_csv else None
    source = Source.open(encoder)
    data = segment_tracks(labels_csv, source, sample_rate)
    settings = MethodSettings(
        device=device, seed=random_init_seed, draws=random_init_draws, encoder_bn=encoder_bn
    )
    results: dict[str, Any] = {}
    draws: dict[str, Any] = {}
    scored: dict[str, list[dict[str, Any]]] = {}
    records: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for method in methods:
        if get_method(method).needs_labels:
            skipped[method] = "trains on labels (here the labels are the answers)"
            continue
        per_draw = [
            score_method(emb, labels, ks, factory, ignore)
            for emb in embed_method(method, data, source, out / "emb", settings)
        ]
        results[method] = mean_scores(per_draw)
        scored[method] = per_draw
        records[method] = get_method(method).record(settings)
        if len(per_draw) > 1:
            draws[method] = [mean_scores([d]) for d in per_draw]
    if scored:
        add_intervals(scored, tracks_of, ks, results)
        if per_query_path is not None:
            save_per_query(scored, tracks_of, ks, per_query_path)
    return {
        "segments": len(labels),
        "tracks": len(set(tracks_of.values())),
        "groups": len(set(labels.values())),
        "factory": factory,
        "relevance": "same release, other track" if relevance_csv else "same track",
        "results": results,
        "draws": draws,
        "methods": records,
        "skipped": skipped,
    }
