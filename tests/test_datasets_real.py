"""The builders on real tools and the built cache: skipped with a reason when they are absent.

These never download: they use fluidsynth/espeak-ng if installed and the soundfont or sets that
``python benchmarks/datasets/build_all.py`` left in the cache ($AUDIOCLR_DATA or ~/.cache).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import (  # noqa: E402
    check,
    common,
    digits,
    freepats,
    instruments,
    music_pool,
    render,
)

pytestmark = pytest.mark.realdata
BUILD = "run python benchmarks/datasets/build_all.py"
SR = 22050


def _need_tool(cmd: str) -> None:
    if shutil.which(cmd) is None:
        pytest.skip(f"{cmd} not installed: {BUILD}")


def _need_built(rel: str) -> Path:
    path = common.data_root(None) / rel
    if not path.exists():
        pytest.skip(f"{path} not built: {BUILD}")
    return path


def _peak_hz(x: np.ndarray, lo: float = 50.0) -> float:
    """Frequency of the largest spectral peak above ``lo`` Hz (Hann window, zero-padded)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1 / SR)
    spec[freqs < lo] = 0
    return float(freqs[np.argmax(spec)])


def _f0(x: np.ndarray, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median autocorrelation F0 over the loud 40 ms frames of ``x``."""
    n, hop = int(0.04 * SR), int(0.01 * SR)
    frames = [x[i : i + n] for i in range(0, len(x) - n, hop)]
    level = max(float(np.sqrt(np.mean(f**2))) for f in frames)
    out = []
    for f in frames:
        if np.sqrt(np.mean(f**2)) < 0.3 * level:
            continue
        ac = np.correlate(f, f, "full")[n - 1 :]
        lags = np.arange(int(SR / fmax), int(SR / fmin))
        out.append(SR / lags[np.argmax(ac[lags])])
    return float(np.median(out))


def test_fluidsynth_renders_the_planned_notes() -> None:
    _need_tool("fluidsynth")
    sf2 = _need_built("debian/fluid-soundfont-gm/usr/share/sounds/sf2/FluidR3_GM.sf2")
    plan = render.plan_renderings(73, (67, 74, 81))  # flute: a clean fundamental
    with tempfile.TemporaryDirectory() as tmp:
        clips = render.render_program(sf2, 73, plan, SR, Path(tmp))
    assert len(clips) == 6 and all(len(c) == int(render.CLIP_S * SR) for c in clips)
    for r, clip in zip(plan, clips, strict=True):
        assert np.max(np.abs(clip)) == pytest.approx(render.PEAK, rel=1e-3)
        hz = 440.0 * 2 ** ((r.pitch - 69) / 12)
        if r.style == "note":
            assert _peak_hz(clip[int(0.3 * SR) : int(1.5 * SR)]) == pytest.approx(hz, rel=0.03)
        else:  # four notes, 0.5 s apart: root, major third, fifth, octave
            for k, step in enumerate((0, 4, 7, 12)):
                t0 = k * render.PHRASE_STEP_S
                seg = clip[int((t0 + 0.1) * SR) : int((t0 + 0.45) * SR)]
                assert _peak_hz(seg) == pytest.approx(hz * 2 ** (step / 12), rel=0.03)
        tail = clip[int((render.CLIP_S - 0.05) * SR) :]
        assert np.max(np.abs(tail)) < 0.05  # the release ends inside the clip


def test_espeak_voices_differ_in_pitch_and_fit_the_clip() -> None:
    _need_tool("espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        male = digits.fit_clip(digits.speak("en-us+m1", "seven", 130, 50, Path(tmp)), SR)
        female = digits.fit_clip(digits.speak("en-us+f1", "seven", 130, 50, Path(tmp)), SR)
    for clip in (male, female):
        assert len(clip) == int(digits.CLIP_S * SR)
        loud = np.flatnonzero(np.abs(clip) > 0.01)
        assert 0.25 < (loud[-1] - loud[0]) / SR < digits.CLIP_S
    assert _f0(female) > 1.3 * _f0(male)


def test_built_sets_pass_the_sanity_checks() -> None:
    root = _need_built("digits/labels.csv").parents[1]
    _need_built("instruments/labels.csv")
    _need_built("music_pool/segments_release_labels.csv")
    _need_built("instruments_freepats/labels.csv")
    reports = check.check_all(root)
    assert [r.problems for r in reports] == [[]] * 9
    folds = common.read_csv(root / "instruments" / "folds.csv")
    # every program in one fold, its soundfont-B renders that fold's stand-ins
    fold_of: dict[str, set[str]] = {}
    for r in folds:
        fold_of.setdefault(r["group"], set()).add(r["split"].removesuffix("-test"))
        font = r["path"].split("/")[1]
        assert (font == "timgm6mb") == r["split"].endswith("-test")
    assert len(fold_of) == 104 and all(len(f) == 1 for f in fold_of.values())
    rows = common.read_csv(root / "instruments" / "labels.csv")
    assert len({r["label"] for r in rows}) == 13
    assert {r["path"].split("/")[1] for r in rows if r["split"] == "test"} == {"timgm6mb"}
    assert {r["path"].split("/")[1] for r in rows if r["split"] != "test"} == {"fluidr3"}
    cross = common.read_csv(root / "instruments" / "cross_soundfont_test.csv")
    assert cross == [r for r in rows if r["split"] == "test"]
    tracks = common.read_csv(root / "music_pool" / "tracks.csv")
    assert len(tracks) >= 50 and min(float(t["duration"]) for t in tracks) >= 30.0
    segs = common.read_csv(root / "music_pool" / "segments.csv")
    by_track: dict[str, list[tuple[float, float]]] = {}
    for s in segs:
        by_track.setdefault(s["track"], []).append((float(s["start_s"]), float(s["duration_s"])))
    assert all(len(v) >= 2 for v in by_track.values())
    held = {music_pool.track_id(t["path"]) for t in tracks if t["split"] == "heldout"}
    pretrain = {music_pool.track_id(t["path"]) for t in tracks if t["split"] == "pretrain"}
    assert held and not held & pretrain and set(by_track) <= held  # retrieval never pretrained
    for spans in by_track.values():
        for (a, da), (b, _) in zip(spans, spans[1:], strict=False):
            assert b >= a + da  # non-overlapping
    assert instruments.SOUNDFONT_A == "fluidr3"


def test_built_labels_load_with_the_data_package() -> None:
    labels_mod = pytest.importorskip(
        "audioclr.data.labels", reason="audioclr.data.labels not written yet"
    )
    root = _need_built("digits/labels.csv").parents[1]
    _need_built("instruments/labels.csv")
    for rel, n_classes in (("digits/labels.csv", 10), ("instruments/labels.csv", 13)):
        ls = labels_mod.load_labelled_set(root / rel)
        assert len(ls.classes) == n_classes
        assert set(ls.splits) == {"train", "valid", "test"}
        assert all(Path(p).is_file() for p in ls.paths)


def test_timidity_renders_freepats_notes_at_the_planned_pitch() -> None:
    _need_tool("timidity")
    cfg = _need_built("instruments_freepats/timidity_freepats.cfg")
    # piano: its fundamental is the strongest partial here (freepats' low flute note is not)
    plan = render.plan_renderings(0, (48, 60, 72))
    with tempfile.TemporaryDirectory() as tmp:
        clips = freepats.render_program(cfg, 0, plan, SR, Path(tmp))
    assert len(clips) == 6 and all(len(c) == int(render.CLIP_S * SR) for c in clips)
    for r, clip in zip(plan, clips, strict=True):
        assert np.max(np.abs(clip)) == pytest.approx(render.PEAK, rel=1e-3)
        loud = np.flatnonzero(np.abs(clip) > 0.05)
        assert loud[0] < int(0.05 * SR)  # each slot starts on its note: nothing shifted
        if r.style == "note":
            hz = 440.0 * 2 ** ((r.pitch - 69) / 12)
            assert _peak_hz(clip[int(0.3 * SR) : int(1.5 * SR)]) == pytest.approx(hz, rel=0.03)


def test_music_pool_is_ten_hours_of_releases_with_heldout_whole_tracks() -> None:
    pool = _need_built("music_pool/segments_release_labels.csv").parent
    tracks = common.read_csv(pool / "tracks.csv")
    assert sum(float(t["duration"]) for t in tracks) >= 10 * 3600
    assert min(float(t["duration"]) for t in tracks) >= music_pool.MIN_TRACK_S
    releases = {t["source_package"] for t in tracks}
    assert releases <= set(music_pool.PACKAGES) and len(releases) >= 10
    held = {music_pool.track_id(t["path"]) for t in tracks if t["split"] == "heldout"}
    pretrain = {music_pool.track_id(t["path"]) for t in tracks if t["split"] == "pretrain"}
    assert held and pretrain and not held & pretrain
    assert len({t["source_file"] + t["source_package"] for t in tracks}) == len(tracks)
    for pkg in releases:
        n = sum(t["source_package"] == pkg for t in tracks)
        n_held = sum(t["source_package"] == pkg and t["split"] == "heldout" for t in tracks)
        assert n_held == (max(1, round(n / 4)) if n > 1 else 0), pkg  # a quarter, whole tracks
    for t in tracks:  # each file sits in its split's folder, nowhere else
        other = "pretrain" if t["split"] == "heldout" else "heldout"
        assert t["path"].split("/")[1] == t["split"]
        assert not (pool / t["path"].replace(f"/{t['split']}/", f"/{other}/", 1)).exists()
    on_disk = {p.relative_to(pool).as_posix() for p in (pool / "audio").rglob("*") if p.is_file()}
    assert on_disk == {t["path"] for t in tracks}  # no stray file in the pretraining folder
    assert check.check_release_labels(pool).problems == []
    by_release = common.read_csv(pool / "segments_release_labels.csv")
    assert 100 <= len(by_release) <= 500  # a few hundred: retrieval stays quick
    tracks_of: dict[str, set[str]] = {}
    for r, t in zip(by_release, common.read_csv(pool / "segments_labels.csv"), strict=True):
        tracks_of.setdefault(r["label"], set()).add(t["label"])
    assert sum(len(v) >= 2 for v in tracks_of.values()) >= 8  # same-release answers exist


def test_freepats_set_loads_with_whole_programs_per_split() -> None:
    labels_mod = pytest.importorskip(
        "audioclr.data.labels", reason="audioclr.data.labels not written yet"
    )
    csv_path = _need_built("instruments_freepats/labels.csv")
    ls = labels_mod.load_labelled_set(csv_path)
    assert len(ls.classes) >= 5 and set(ls.splits) == {"train", "valid", "test"}
    assert all(Path(p).is_file() for p in ls.paths)
    split_of: dict[str, set[str]] = {}
    for p, s in zip(ls.paths, ls.splits, strict=True):
        split_of.setdefault(check.instrument_program(str(p)), set()).add(s)
    assert all(len(s) == 1 for s in split_of.values())
    for family in ls.classes:  # every kept family has whole programs in each split
        rows = [s for s, lab in zip(ls.splits, ls.labels, strict=True) if lab[0] == family]
        assert set(rows) == {"train", "valid", "test"}
    programs = common.read_csv(csv_path.parent / "programs.csv")
    kept = {int(r["program"]) for r in programs if r["split"] != "dropped"}
    assert {int(k[1:]) for k in split_of} == kept
