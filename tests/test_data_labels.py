"""Labelled sets: three formats, malformed rows named by number, stratified deterministic splits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import tone, write_audio

from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.labels import load_labelled_set
from audioclr.data.splits import SPLITS, stratified_split
from audioclr.errors import LabelError


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "set"
    for c, n in {"bell": 3, "organ": 4}.items():
        for i in range(n):
            write_audio(root / c / f"{c}{i}.wav", tone(300 + 50 * i, 8000, 0.2), 8000)
    return root


def test_folder_per_class(tree) -> None:
    ds = load_labelled_set(tree)
    assert ds.classes == ["bell", "organ"] and not ds.multilabel
    assert [p.parent.name for p in ds.paths] == [ds.classes[k] for k in ds.targets()]
    assert ds.targets().dtype == np.int64 and list(np.bincount(ds.targets())) == [3, 4]
    (tree / "empty").mkdir()
    with pytest.raises(LabelError, match="empty.*no audio"):
        load_labelled_set(tree)


def test_folder_rejects_loose_audio(tree) -> None:
    write_audio(tree / "loose.wav", tone(300, 8000, 0.2), 8000)
    with pytest.raises(LabelError, match="loose.wav.*outside any class"):
        load_labelled_set(tree)


def test_csv_with_split_and_relative_paths(tree) -> None:
    csv = tree / "labels.csv"
    csv.write_text(
        "path,label,split\nbell/bell0.wav,bell,train\norgan/organ1.wav,organ,val\nbell/bell2.wav,bell,test\n"
    )
    ds = load_labelled_set(csv)
    assert ds.paths == [tree / "bell/bell0.wav", tree / "organ/organ1.wav", tree / "bell/bell2.wav"]
    assert ds.splits == ["train", "valid", "test"]
    assert list(ds.targets()) == [0, 1, 0]
    assert ds.track_ids(tree) == ["bell/bell0.wav", "organ/organ1.wav", "bell/bell2.wav"]


def test_csv_without_header(tree) -> None:
    (tree / "l.csv").write_text(
        "bell/bell0.wav,bell\norgan/organ0.wav,organ\norgan/organ1.wav,organ\n"
    )
    ds = load_labelled_set(tree / "l.csv")
    assert ds.classes == ["bell", "organ"] and len(ds.paths) == 3


def test_multilabel_tags(tree) -> None:
    (tree / "tags.csv").write_text(
        "path,tags\nbell/bell0.wav,guitar;slow\norgan/organ0.wav,slow\n"
        "organ/organ1.wav,\norgan/organ2.wav,fast;guitar\n"
    )
    ds = load_labelled_set(tree / "tags.csv")
    assert ds.multilabel and ds.classes == ["fast", "guitar", "slow"]
    expected = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=np.float32)
    np.testing.assert_array_equal(ds.targets(), expected)
    (tree / "semi.csv").write_text("path,label\nbell/bell0.wav,a;b\n")
    assert load_labelled_set(tree / "semi.csv", multilabel=True).labels == [["a", "b"]]


@pytest.mark.parametrize(
    "body,match",
    [
        (
            "path,label\nbell/bell0.wav,bell\nbell/bell1.wav,bell,train,extra\n",
            "row 3: expected 2 or 3 columns",
        ),
        (
            "path,label\nbell/bell0.wav,bell\nbell/nothere.wav,bell\n",
            "row 3: audio file bell/nothere.wav not found",
        ),
        ("path,label\nbell/bell0.wav,\n", "row 2: empty label"),
        ("path,label\nbell/bell0.wav,bell\nbell/bell0.wav,bell\n", "row 3: .*listed twice .*row 2"),
        ("path,label,split\nbell/bell0.wav,bell,holdout\n", "row 2: unknown split 'holdout'"),
        ("path,label,split\nbell/bell0.wav,bell,train\nbell/bell1.wav,bell,\n", "row 3: no split"),
        ("path,genre\nbell/bell0.wav,bell\n", "row 1: header"),
    ],
)
def test_malformed_rows_name_the_row(tree, body: str, match: str) -> None:
    (tree / "bad.csv").write_text(body)
    with pytest.raises(LabelError, match=match) as err:
        load_labelled_set(tree / "bad.csv")
    assert "bad.csv" in str(err.value)


def test_stratified_split_proportions_and_determinism() -> None:
    labels = [[c] for c in "abcde" for _ in range(20)]
    s0 = stratified_split(labels, seed=0, fractions=(0.7, 0.15, 0.15))
    for c in "abcde":
        counts = Counter(s for s, lab in zip(s0, labels, strict=True) if lab == [c])
        assert counts == {"train": 14, "valid": 3, "test": 3}
    assert stratified_split(labels, seed=0) == s0
    assert stratified_split(labels, seed=1) != s0
    tiny = stratified_split([["x"]] * 3, seed=0)
    assert sorted(tiny) == [
        "test",
        "train",
        "valid",
    ]  # every split gets one even when rounding says 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multilabel_split_keeps_every_tag_in_proportion(seed: int) -> None:
    """Iterative stratification: each tag (Zipf frequencies, 1-4 tags per track) lands in each
    split within ~2 tracks of its share (per-track rarest-tag stratification missed by 3-7)."""
    rng = np.random.default_rng(seed)
    p = 1 / np.arange(1, 13)
    tags = [f"t{i}" for i in range(12)]
    labels = [
        sorted(set(rng.choice(tags, size=rng.integers(1, 5), p=p / p.sum()))) for _ in range(300)
    ]
    fractions = (0.7, 0.15, 0.15)
    splits = stratified_split(labels, seed=0, fractions=fractions)
    assert stratified_split(labels, seed=0, fractions=fractions) == splits
    sizes = Counter(splits)  # tags come first: split sizes are met to within 4 % of the set
    assert all(abs(sizes[n] - f * 300) <= 12 for n, f in zip(SPLITS, fractions, strict=True))
    for tag in tags:
        members = [s for s, lab in zip(splits, labels, strict=True) if tag in lab]
        if len(members) >= 20:
            counts = Counter(members)
            for name, share in zip(SPLITS, fractions, strict=True):
                assert abs(counts[name] - share * len(members)) <= 2.5, (tag, name, counts)


def test_multilabel_split_is_stratified_by_rarest_tag() -> None:
    labels = [["common", "rare"]] * 20 + [["common"]] * 80
    s = stratified_split(labels, seed=3, fractions=(0.5, 0.25, 0.25))
    rare = Counter(x for x, lab in zip(s, labels, strict=True) if "rare" in lab)
    assert rare == {"train": 10, "valid": 5, "test": 5}


def test_track_ids_match_the_clip_cache(tree, tmp_path) -> None:
    ds = load_labelled_set(tree, seed=0)
    prepare_cache(
        tree, tmp_path / "cache", sample_rate=8000, min_duration=0.1, workers=1, progress=False
    )
    cache = ClipCache(tmp_path / "cache")
    idx = [cache.index_of(t) for t in ds.track_ids(tree)]
    assert sorted(idx) == list(range(len(cache)))
    with pytest.raises(LabelError, match="not under"):
        ds.track_ids(tmp_path / "elsewhere")


def test_drawn_split_keeps_every_group_whole(tmp_path) -> None:
    """A CSV with a group column and no split column: every group's tracks share one split,
    groups stratified by class (a per-track split put clips of one preset on both sides)."""
    rows = ["path,label,group"]
    for c in "ab":
        for g in range(20):  # 20 presets per class, 4 renders each
            rows += [f"{c}{g}_{k}.wav,{c},{c}{g}" for k in range(4)]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    for row in rows[1:]:
        (tmp_path / row.split(",")[0]).touch()
    ds = load_labelled_set(csv_path, seed=0)
    by_group: dict[str, set[str]] = {}
    for g, s in zip(ds.groups, ds.splits, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in by_group.values())
    for c in "ab":  # 14 / 3 / 3 presets of each class, as a per-group stratified cut
        counts = Counter(next(iter(v)) for g, v in by_group.items() if g.startswith(c))
        assert counts == {"train": 14, "valid": 3, "test": 3}
    assert load_labelled_set(csv_path, seed=0).splits == ds.splits
    assert load_labelled_set(csv_path, seed=1).splits != ds.splits
    pairs = [f"g{i // 2}" for i in range(24)]  # multi-label: 12 groups of 2 tracks, whole
    tags = stratified_split([["x", "y"], ["x"], ["y"], ["x"]] * 6, 0, groups=pairs)
    assert tags[0::2] == tags[1::2] and len(set(tags)) == 3
