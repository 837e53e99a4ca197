"""Labelled sets: folder-per-class, CSV ``path,label[,split]``, multi-label CSV ``path,tags``.

Relative paths resolve against the CSV's folder. Without a split column, a deterministic
stratified train/valid/test split is drawn from ``seed`` (see :mod:`audioclr.data.splits`).
The split column may name folds instead (``fold0``, ``fold1``, ..., ``foldK-test``): the probe
then cross-validates (:mod:`audioclr.evaluate.folds`). A header with a ``group`` column
(``path,label,split,group``) names each track's group (the preset a clip was rendered from,
the speaker of an utterance): probe intervals then resample whole groups, and a split drawn for
a CSV without a split column keeps every group whole.

Example:
    >>> ds = load_labelled_set("demo/labels.csv", seed=0)
    >>> ds.classes[:2], ds.targets().shape, ds.splits[:3]
    (['bell', 'brass'], (160,), ['train', 'test', 'train'])
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioclr.data.scan import absolute, scan_audio
from audioclr.data.splits import (
    FOLD_HINT,
    check_split_kinds,
    normalise_split,
    parse_fold,
    stratified_split,
)
from audioclr.errors import LabelError


@dataclass
class LabelledSet:
    """Tracks with their labels (one per track, or several when ``multilabel``) and split names."""

    paths: list[Path]
    labels: list[list[str]]
    classes: list[str]
    multilabel: bool
    splits: list[str]  # "train" | "valid" | "test", or fold names ("fold0", "fold0-test", ...)
    groups: list[str] | None = None  # per track (a ``group`` column), or None

    def targets(self) -> np.ndarray:
        """``(n,)`` int64 class index, or ``(n, classes)`` float32 multi-hot when ``multilabel``."""
        index = {c: i for i, c in enumerate(self.classes)}
        if not self.multilabel:
            return np.array([index[ls[0]] for ls in self.labels], dtype=np.int64)
        y = np.zeros((len(self.labels), len(self.classes)), dtype=np.float32)
        for row, ls in enumerate(self.labels):
            y[row, [index[c] for c in ls]] = 1.0
        return y

    def track_ids(self, root: str | Path) -> list[str]:
        """Paths relative to ``root``, posix, to match ``ClipCache`` track ids."""
        root = absolute(root)
        try:
            return [p.relative_to(root).as_posix() for p in self.paths]
        except ValueError as exc:
            raise LabelError(
                f"a labelled path is not under {root}: {exc}",
                hint="pass the folder that was given to prepare",
            ) from exc

    @property
    def folded(self) -> bool:
        """Whether the split column names folds (cross-validation) rather than train/valid/test."""
        return bool(self.splits) and parse_fold(self.splits[0]) is not None

    def indices(self, split: str) -> np.ndarray:
        """Row indices of ``split`` ("train", "valid" or "test")."""
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=np.int64)


def load_labelled_set(
    spec: str | Path,
    multilabel: bool = False,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> LabelledSet:
    """Load a folder-per-class tree or a labels CSV; ``LabelError`` naming file and row."""
    spec = absolute(spec)
    if spec.is_dir():
        paths, labels = _from_folders(spec)
        given: list[str | None] = [None] * len(paths)
        groups = None
    elif spec.is_file():
        paths, labels, given, multilabel, groups = _from_csv(spec, multilabel)
    else:
        raise LabelError(
            f"labelled set {spec} does not exist", hint="give a folder of class folders or a CSV"
        )
    classes = sorted({c for ls in labels for c in ls})
    if not classes:
        raise LabelError(f"{spec}: no labels found", hint="each track needs at least one label")
    if any(s is None for s in given):
        splits = stratified_split(labels, seed, fractions, groups)  # whole groups, if given
    else:
        splits = [str(s) for s in given]
        check_split_kinds(splits, str(spec))
    return LabelledSet(paths, labels, classes, multilabel, splits, groups)


def _from_folders(root: Path) -> tuple[list[Path], list[list[str]]]:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise LabelError(
            f"{root}: no class folders", hint="put each class's audio in its own subfolder"
        )
    loose = scan_audio(root).files
    top = [p for p in loose if p.parent == root]
    if top:
        raise LabelError(
            f"{top[0]}: audio file outside any class folder", hint="move it into a class folder"
        )
    paths, labels = [], []
    for d in class_dirs:
        files = scan_audio(d).files
        if not files:
            raise LabelError(
                f"class folder {d} holds no audio files", hint="remove it or add audio to it"
            )
        paths += files
        labels += [[d.name]] * len(files)
    return paths, labels


def _from_csv(
    path: Path, multilabel: bool
) -> tuple[list[Path], list[list[str]], list[str | None], bool, list[str] | None]:
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"cannot read labels CSV {path}: {exc}") from exc
    header = [c.strip().lower() for c in rows[0]] if rows else []
    start = 1 if header and header[0] == "path" else 0
    if start and "tags" in header:
        multilabel = True
    if start and not ({"label", "tags"} & set(header)):
        raise LabelError(f"{path} row 1: header {rows[0]} needs a 'label' or 'tags' column")
    at = header.index("group") if start and "group" in header else None
    paths, labels, splits, seen, groups = [], [], [], {}, []
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or all(not c.strip() for c in row):
            continue
        if at is not None:
            if len(row) != len(header) or not row[at].strip():
                raise LabelError(
                    f"{path} row {number}: no group (the header {rows[0]} has a 'group' column)",
                    hint="give every row its group, or drop the column",
                )
            groups.append(row.pop(at).strip())
        p, ls, split = _parse_row(path, number, row, multilabel)
        if p in seen:
            raise LabelError(f"{path} row {number}: {p} is listed twice (first at row {seen[p]})")
        seen[p] = number
        paths.append(p)
        labels.append(ls)
        splits.append(split)
    if not paths:
        raise LabelError(
            f"{path}: no rows", hint="expected lines of path,label[,split] or path,tags"
        )
    if any(s is None for s in splits) and any(s is not None for s in splits):
        row = start + 1 + [s is None for s in splits].index(True)
        raise LabelError(f"{path} row {row}: no split while other rows have one", hint=FOLD_HINT)
    return paths, labels, splits, multilabel, groups if at is not None else None


def _parse_row(
    path: Path, number: int, row: list[str], multilabel: bool
) -> tuple[Path, list[str], str | None]:
    where = f"{path} row {number}"
    if len(row) not in (2, 3):
        raise LabelError(
            f"{where}: expected 2 or 3 columns (path,label[,split]), got {len(row)}: {row}"
        )
    rel, label = row[0].strip(), row[1].strip()
    if not rel:
        raise LabelError(f"{where}: empty path")
    tags = [t.strip() for t in label.split(";") if t.strip()] if multilabel else [label]
    if not multilabel and not label:
        raise LabelError(f"{where}: empty label for {rel}")
    target = absolute(path.parent / rel)
    if not target.is_file():
        raise LabelError(
            f"{where}: audio file {rel} not found (looked for {target})",
            hint="paths are relative to the CSV's folder",
        )
    split = normalise_split(row[2], where) if len(row) == 3 and row[2].strip() else None
    return target, tags, split
