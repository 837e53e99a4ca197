"""Probe inputs: embeddings aligned with labels and splits, and stratified label fractions.

``ProbeData`` holds rows (tracks, or windows of tracks) and per-track targets and splits;
``row_track`` maps each row to its track, so window predictions can be averaged per track.
``readable_labelled`` drops the labelled files that cannot be read before anything else reads
them (as ``prepare`` skips a bad file), listing each with its reason; losing more than a set
share of the test files is an error listing them.

Example:
    >>> data = align(load_embeddings("emb/"), load_labelled_set("labels.csv"))
    >>> train = sample_fraction(data.targets, data.split_indices("train"), 0.1, 0, False)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from audioclr.atomic import atomic_write_text
from audioclr.data.splits import parse_fold
from audioclr.errors import LabelError
from audioclr.evaluate.store import EmbeddingSet


@dataclass
class ProbeData:
    """Rows ``x`` ``(rows, dim)``, ``row_track`` ``(rows,)``; per track: ``targets`` ``(tracks,)``
    or ``(tracks, classes)`` and ``splits`` ``(tracks,)``."""

    x: np.ndarray
    row_track: np.ndarray
    targets: np.ndarray
    splits: np.ndarray
    classes: list[str]
    multilabel: bool
    # robustness: the same labelled set with each corruption's test rows (``"noise:10"`` -> rows
    # of the corrupted test audio only); a probe trained on this one is also scored on those
    corrupted: dict[str, ProbeData] = field(default_factory=dict)
    # per track: its group (a labels CSV's ``group`` column: program, speaker...), or None;
    # intervals then resample whole groups (``intervals.resampled_tracks``)
    groups: np.ndarray | None = None

    def split_indices(self, name: str) -> np.ndarray:
        """Track indices of split ``name`` ("train", "valid", "test")."""
        return np.flatnonzero(self.splits == name)

    def rows_of(self, tracks: np.ndarray) -> np.ndarray:
        """Row indices belonging to the given track indices."""
        return np.flatnonzero(np.isin(self.row_track, tracks))


def check_draws(draws: list[ProbeData]) -> None:
    """Several init draws of a method must embed the same labelled set (targets, splits)."""
    if not draws:
        raise LabelError("no embeddings to probe", hint="pass one ProbeData or a list of draws")
    first = draws[0]
    for d, other in enumerate(draws[1:], start=1):
        same = (
            np.array_equal(first.targets, other.targets)
            and np.array_equal(first.splits, other.splits)
            and first.classes == other.classes
            and first.multilabel == other.multilabel
        )
        if not same:
            raise LabelError(
                f"init draw {d} does not embed the same labelled tracks as draw 0",
                hint="align every draw's embeddings with the same labelled set",
            )


def _key(p: Any) -> str:
    return str(Path(p).resolve())


def align(emb: EmbeddingSet, labelled: Any, windows: EmbeddingSet | None = None) -> ProbeData:
    """Match labelled tracks to embeddings by source path (then by id); per-window rows if given."""
    by_source = {_key(s): i for i, s in enumerate(emb.sources)}
    by_id = {t: i for i, t in enumerate(emb.ids)}
    rows = []
    for p in labelled.paths:
        i = by_source.get(_key(p))
        if i is None:
            parts = Path(_key(p)).parts
            i = next(
                (
                    by_id[k]
                    for k in ("/".join(parts[j:]) for j in range(1, len(parts)))
                    if k in by_id
                ),
                None,
            )
        if i is None:
            raise LabelError(
                f"labelled track {p} has no embedding", hint="embed the same data you probe with"
            )
        rows.append(i)
    idx = np.asarray(rows, dtype=np.int64)
    splits = np.asarray(labelled.splits)
    folded = len(splits) and parse_fold(str(splits[0])) is not None  # cross-validated: folds
    for name in () if folded else ("train", "test"):
        if not np.any(splits == name):
            raise LabelError(
                f"labelled set has no '{name}' tracks", hint="give a split column or more tracks"
            )
    if windows is None:
        x, row_track = emb.vectors[idx], np.arange(len(idx))
    else:
        owner = np.asarray(windows.meta["track_index"], dtype=np.int64)
        emb_to_label = np.full(len(emb.ids), -1, dtype=np.int64)
        emb_to_label[idx] = np.arange(len(idx))
        keep = emb_to_label[owner] >= 0
        x, row_track = windows.vectors[keep], emb_to_label[owner[keep]]
    groups = getattr(labelled, "groups", None)
    return ProbeData(
        np.asarray(x, np.float32),
        row_track,
        labelled.targets(),
        splits,
        list(labelled.classes),
        bool(labelled.multilabel),
        groups=None if groups is None else np.asarray(groups, dtype=str),
    )


class ProbeWarning(UserWarning):
    """A probe set-up that runs but whose numbers mean less (recorded in the report too)."""


def check_classes(data: ProbeData) -> None:
    """Refuse a labelled set a probe cannot learn from: one class (or, multi-label, no tag that
    is on for some training tracks and off for others)."""
    train = data.split_indices("train")
    if data.multilabel:
        y = np.asarray(data.targets)[train]
        if not np.any((y.max(axis=0) > 0) & (y.min(axis=0) == 0)):
            raise LabelError(
                "the training split has one class: every tag is on for all tracks or for none",
                hint="give tags that differ between training tracks",
            )
        return
    everything = np.arange(len(data.targets))
    for where, tracks in (("labelled set", everything), ("training split", train)):
        present = np.unique(np.asarray(data.targets)[tracks])
        if len(present) < 2:
            name = data.classes[int(present[0])] if len(present) else "none"
            raise LabelError(
                f"the {where} has one class ({name!r}); a probe needs at least two",
                hint="label tracks of two or more classes in every split",
            )


def missing_in_train(data: ProbeData, train_tracks: np.ndarray) -> list[str]:
    """Classes with test tracks (positives, for multi-label) but none among ``train_tracks``."""
    y = np.asarray(data.targets)
    test = data.split_indices("test")
    if data.multilabel:
        absent = (y[test].sum(axis=0) > 0) & (y[train_tracks].sum(axis=0) == 0)
        return [data.classes[c] for c in np.flatnonzero(absent)]
    gone = np.setdiff1d(np.unique(y[test]), y[train_tracks])
    return [data.classes[int(c)] for c in gone]


def _per_class(targets: np.ndarray, multilabel: bool) -> list[np.ndarray]:
    if multilabel:
        return [np.flatnonzero(targets[:, c] > 0) for c in range(targets.shape[1])]
    return [np.flatnonzero(targets == c) for c in np.unique(targets)]


def sample_fraction(
    targets: np.ndarray, train: np.ndarray, fraction: float, seed: int, multilabel: bool
) -> np.ndarray:
    """A stratified ``fraction`` of the ``train`` track indices, at least one per class, sorted.

    Deterministic for a given seed. Single-label: ``max(1, round(fraction * n_c))`` of each class.
    Multi-label: one positive of each class, then random tracks up to ``round(fraction * n)``.
    """
    if not 0 < fraction <= 1:
        raise LabelError(
            f"label fraction must be in (0, 1], got {fraction}", hint="e.g. fractions: [0.1, 1.0]"
        )
    if fraction == 1:
        return np.sort(train)
    rng = np.random.default_rng(seed)
    local = _per_class(targets[train], multilabel)
    if not multilabel:
        picks = [rng.permutation(m)[: max(1, round(fraction * len(m)))] for m in local]
        return np.sort(train[np.concatenate(picks)])
    chosen = {int(rng.choice(m)) for m in local if len(m)}
    rest = [i for i in rng.permutation(len(train)) if i not in chosen]
    need = max(0, round(fraction * len(train)) - len(chosen))
    return np.sort(train[np.asarray(sorted(chosen) + rest[:need], dtype=np.int64)])


READABLE = "readable.json"  # files found readable, by size and mtime: not decoded again


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def readable_labelled(
    labelled: Any,
    sample_rate: int,
    cache_dir: Path,
    max_unreadable: float,
    progress: bool = True,
    write: bool = True,
) -> tuple[Any, list[dict[str, str]]]:
    """``labelled`` without the files that cannot be decoded, and those files
    (``{"source", "split", "reason"}``), so every method, head and baseline sees the same tracks.

    Each file is decoded once; files found readable are remembered in ``cache_dir/readable.json``
    by size and mtime (unreadable ones are tried again next time: a permission may be fixed).
    More than ``max_unreadable`` of the test files lost is an ``AudioReadError`` listing them.

    Example:
        >>> labelled = load_labelled_set("labels.csv")
        >>> kept, lost = readable_labelled(labelled, 22050, Path("out/emb"), 0.05)
        >>> [(x["source"], x["reason"]) for x in lost]
        [('/data/bad.ogg', 'corrupt or unsupported audio (Format not recognised.)')]
    """
    from audioclr.evaluate.chunks import check_unreadable
    from audioclr.evaluate.tracks import TrackReadError, tracks_of_files

    cache_file = cache_dir / READABLE
    try:
        known = json.loads(cache_file.read_text()).get(str(sample_rate), {})
    except (OSError, ValueError, AttributeError):
        known = {}
    ok: dict[str, list[int]] = {}
    lost: list[dict[str, str]] = []
    tracks = tracks_of_files(list(labelled.paths), sample_rate)
    for t, split in tqdm(
        list(zip(tracks, labelled.splits, strict=True)), "check audio", disable=not progress
    ):
        stamp = _stamp(Path(t.source))
        if stamp is not None and known.get(t.source) == stamp:
            ok[t.source] = stamp
            continue
        try:
            t.read()
        except TrackReadError as exc:
            lost.append({"source": t.source, "split": split, "reason": exc.reason})
            continue
        if stamp is not None:
            ok[t.source] = stamp
    if write and ok != known:
        atomic_write_text(cache_file, json.dumps({str(sample_rate): ok}), durable=False)

    # a fold set tests every track once (its own fold, or its fold's test-only stand-in)
    def tested(split: str) -> bool:
        return split == "test" or parse_fold(split) is not None

    n_test = sum(1 for s in labelled.splits if tested(s))
    lost_test = [x for x in lost if tested(x["split"])]
    check_unreadable(lost_test, n_test, max_unreadable, "max_unreadable=SHARE")
    gone = {x["source"] for x in lost}
    keep = [i for i, t in enumerate(tracks) if t.source not in gone]
    return (
        replace(
            labelled,
            paths=[labelled.paths[i] for i in keep],
            labels=[labelled.labels[i] for i in keep],
            splits=[labelled.splits[i] for i in keep],
            groups=None if labelled.groups is None else [labelled.groups[i] for i in keep],
        ),
        lost,
    )


def unreadable_warnings(lost: list[dict[str, str]]) -> list[str]:
    """One report warning per unreadable labelled file (its split and the reason)."""
    from audioclr.evaluate.tracks import shown

    return [
        f"skipped unreadable {x['split']} file {shown(x['source'])}: {x['reason']}" for x in lost
    ]
