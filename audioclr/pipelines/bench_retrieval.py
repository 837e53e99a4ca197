"""Same-track retrieval for the benchmark: embed segments per method, exact index, p@k / mAP@k.

Every segment is a query; the relevant items are the other segments of its track (its label).
Methods: ``encoder`` (the pretrained encoder), ``random_init`` (same architecture, fresh
weights) and ``mfcc`` (MFCC statistics). Embeddings are cached per method (resumable).

Example:
    >>> res = retrieval_benchmark("music_pool/segments_labels.csv", "enc.pt", "out/retrieval",
    ...                           ["encoder", "mfcc"], ks=[1, 5])
    >>> res["encoder"]["5"]["precision@5"]
    0.41
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audioclr.evaluate.store import EmbeddingSet


def segment_labels(labels_csv: str | Path) -> dict[str, str]:
    """``{track id: label}`` with ids as the embedders name tracks of that CSV."""
    from audioclr.data.labels import load_labelled_set
    from audioclr.evaluate.tracks import common_root

    labelled = load_labelled_set(labels_csv)
    ids = labelled.track_ids(common_root(labelled.paths))
    return {t: ls[0] for t, ls in zip(ids, labelled.labels, strict=True)}


def embed_method(method: str, labels_csv: Path, encoder: Path, out: Path, sample_rate: int,
                 random_init_seed: int = 0, device: str = "auto",
                 hop_seconds: float | None = None, batch_size: int = 64) -> EmbeddingSet:
    """Vectors ``(segments, dim)`` of every segment for one method, cached in ``out/<method>``."""
    dest = out / method
    if method == "mfcc":
        from audioclr.evaluate.baselines import mfcc_embed_tracks

        return mfcc_embed_tracks(labels_csv, dest, sample_rate)
    from audioclr.evaluate.embed import embed_tracks
    from audioclr.ssl.export import load_encoder

    seed = random_init_seed if method == "random_init" else None
    loaded = load_encoder(encoder, random_init_seed=seed)
    return embed_tracks(loaded, labels_csv, dest, hop_seconds=hop_seconds,
                        batch_size=batch_size, device=device)


def score_method(emb: EmbeddingSet, labels: dict[str, str], ks: list[int],
                 factory: str = "Flat") -> dict[str, dict[str, float]]:
    """``{k: metrics}`` of :func:`evaluate_retrieval` for each ``k`` over one embeddings set."""
    from audioclr.evaluate.retrieval import Judge, evaluate_retrieval
    from audioclr.search.index import TrackIndex

    tix = TrackIndex.build(emb, factory=factory)
    judge = Judge(labels=labels)
    return {str(k): evaluate_retrieval(tix, judge, k=k) for k in ks}


def retrieval_benchmark(labels_csv: str | Path, encoder: str | Path, out_dir: str | Path,
                        methods: list[str], ks: list[int], sample_rate: int,
                        random_init_seed: int = 0, device: str = "auto",
                        factory: str = "Flat") -> dict[str, Any]:
    """Per method, ``{k: {precision@k, map@k, recall@k, ...}}`` for same-track retrieval."""
    labels_csv, out = Path(labels_csv), Path(out_dir)
    labels = segment_labels(labels_csv)
    results: dict[str, Any] = {}
    for method in methods:
        emb = embed_method(method, labels_csv, Path(encoder), out / "emb", sample_rate,
                           random_init_seed, device)
        results[method] = score_method(emb, labels, ks, factory)
    return {"segments": len(labels), "tracks": len(set(labels.values())), "factory": factory,
            "results": results}
