"""File-level logic of the data-set builders on synthetic data: MIDI written, clips fitted,
tracks filtered, sanity checks, cache folder choice. No Debian package, no network.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_audio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import check, common, digits, music_pool, render  # noqa: E402


def test_midi_read_back_has_one_rendering_per_slot(tmp_path: Path) -> None:
    mido = pytest.importorskip("mido", reason="mido not installed: pip install mido")
    plan = render.plan_renderings(33, (31, 38, 45))
    path = render.write_midi(tmp_path / "p.mid", 33, plan)
    midi = mido.MidiFile(str(path))
    t, ons, offs, programs, sound_off = 0.0, [], [], [], []
    for msg in midi:  # iterating a MidiFile yields delta times in seconds
        t += msg.time
        if msg.type == "program_change":
            programs.append(msg.program)
        elif msg.type == "note_on" and msg.velocity > 0:
            ons.append((t, msg.note, msg.velocity))
        elif msg.type == "note_off":
            offs.append(t)
        elif msg.type == "control_change" and msg.control == 120:
            sound_off.append(t)
    assert programs == [33]
    assert all(getattr(m, "channel", 0) == 0 for m in midi.tracks[0])
    assert len(ons) == len(offs) == 3 * (1 + 4)  # a note and a four-note phrase per pitch
    for k, r in enumerate(plan):
        slot = [o for o in ons if k * render.SLOT_S - 1e-3 <= o[0] < (k + 1) * render.SLOT_S - 1e-3]
        assert slot[0][0] == pytest.approx(k * render.SLOT_S, abs=2e-3)
        assert slot[0][1] == r.pitch and all(v == r.velocity for _, _, v in slot)
        expected = [r.pitch] if r.style == "note" else [r.pitch + d for d in (0, 4, 7, 12)]
        assert [n for _, n, _ in slot] == expected
        assert sound_off[k] == pytest.approx(k * render.SLOT_S + render.CLIP_S, abs=2e-3)
    assert max(offs) <= (len(plan) - 1) * render.SLOT_S + render.CLIP_S + 1e-3  # releases fit


def test_fit_clip_trims_normalises_and_centres() -> None:
    sr = 22050
    word = tone(440.0, sr, 0.4, amplitude=0.2)
    x = np.concatenate([np.zeros(sr // 10, np.float32), word, np.zeros(sr // 2, np.float32)])
    out = digits.fit_clip(x, sr, clip_s=1.5)
    assert len(out) == int(1.5 * sr)
    assert np.max(np.abs(out)) == pytest.approx(digits.PEAK, rel=1e-3)
    loud = np.flatnonzero(np.abs(out) > 0.01)
    centre = (loud[0] + loud[-1]) / 2 / sr
    assert centre == pytest.approx(0.75, abs=0.01)
    assert (loud[-1] - loud[0]) / sr == pytest.approx(0.4, abs=0.01)
    long_word = tone(300.0, sr, 2.0)
    fitted = digits.fit_clip(long_word, sr, clip_s=1.5)
    assert len(fitted) == len(long_word) - 1  # never cut: only the sine's zero first sample goes
    with pytest.raises(ValueError, match="silent"):
        digits.fit_clip(np.zeros(100, np.float32), sr)


def test_find_tracks_keeps_music_and_drops_effects(tmp_path: Path) -> None:
    sr = 8000
    write_audio(tmp_path / "music" / "b.ogg", tone(220.0, sr, 31.0), sr)
    write_audio(tmp_path / "music" / "a.ogg", tone(330.0, sr, 40.0), sr)
    write_audio(tmp_path / "snd" / "coin.ogg", tone(880.0, sr, 2.0), sr)
    write_audio(tmp_path / "snd" / "long.wav", tone(880.0, sr, 40.0), sr)  # decodable: kept
    found = music_pool.find_tracks(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p, _ in found] == [
        "music/a.ogg",
        "music/b.ogg",
        "snd/long.wav",
    ]
    assert [round(s, 1) for _, s in found] == [40.0, 31.0, 40.0]
    assert music_pool.track_id("audio/heldout/xmoto/menu.ogg") == "xmoto/menu"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_scan_package_filters_formats_archives_raw_and_links(tmp_path: Path) -> None:
    sr = 8000
    pkg = tmp_path / "pkg"
    write_audio(pkg / "m" / "a.flac", tone(330.0, sr, 35.0), sr)
    write_audio(pkg / "m" / "short.wav", tone(330.0, sr, 3.0), sr)
    (pkg / "m" / "tune.xm").write_bytes(b"Extended Module: fake")  # tracker: counted, skipped
    (pkg / "m" / "tune.mod").write_bytes(b"M.K. fake")
    (pkg / "m" / "broken.ogg").write_bytes(b"not audio at all")
    (pkg / "m" / "notes.txt").write_text("ignored")
    (pkg / "m" / "link.flac").symlink_to(pkg / "m" / "a.flac")
    inner = write_audio(tmp_path / "x" / "in.ogg", tone(440.0, sr, 33.0), sr).read_bytes()
    members = {"sound/cd/t1.ogg": inner, "readme.txt": b"x", "../e.ogg": b""}  # no escape
    _zip(pkg / "data" / "music.pk3", members)
    u8 = np.full((31 * 100, 2), 128, np.uint8)
    u8[::2] = 140  # 31 s of stereo unsigned 8-bit PCM at 100 Hz
    (pkg / "s" / "song.raw").parent.mkdir(parents=True)
    (pkg / "s" / "song.raw").write_bytes(u8.tobytes())
    scan = music_pool.scan_package(pkg)
    rel = [p.relative_to(pkg).as_posix() for p, _ in scan.tracks]
    assert rel == ["data/music.pk3.d/sound/cd/t1.ogg", "m/a.flac"]  # .raw needs a format
    assert scan.short == 1 and scan.links == 1 and dict(scan.tracker) == {".mod": 1, ".xm": 1}
    assert len(scan.unreadable) == 1 and "broken.ogg" in scan.unreadable[0]
    assert "1 tracker .xm (not decodable)" in scan.skipped_line()
    assert not (pkg / "e.ogg").exists() and not (pkg / "data" / "e.ogg").exists()
    raw = music_pool.RawFormat(100, 2, "PCM_U8")
    with_raw = music_pool.scan_package(pkg, raw)  # archive already unpacked: marker reused
    assert [p.name for p, _ in with_raw.tracks] == ["t1.ogg", "a.flac", "song.raw"]
    assert with_raw.tracks[-1][1] == pytest.approx(31.0)
    assert music_pool.pool_suffix(pkg / "s" / "song.raw", raw) == ".flac"
    assert music_pool.pool_suffix(Path("x/t.opus")) == ".ogg"  # Opus in Ogg: libsndfile reads it
    assert music_pool.pool_suffix(Path("x/t.MP3")) == ".mp3"


def _fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two fake soundtracks (5 and 8 tracks, one byte-identical copy across them) served by a
    patched fetch_package; returns the cache root."""
    sr = 8000
    root = tmp_path / "cache"
    for i in range(5):
        write_audio(
            root / "debian" / "alpha-data" / "music" / f"a{i}.ogg",
            tone(200.0 + 40 * i, sr, 31.0 + i),
            sr,
        )
    for i in range(8):
        write_audio(
            root / "debian" / "beta-music" / "ost" / f"b{i}.flac",
            tone(500.0 + 40 * i, sr, 32.0 + i),
            sr,
        )
    dup = (root / "debian" / "alpha-data" / "music" / "a0.ogg").read_bytes()
    (root / "debian" / "beta-music" / "ost" / "copy.ogg").write_bytes(dup)
    monkeypatch.setattr(music_pool, "PACKAGES", ("alpha-data", "beta-music"))
    monkeypatch.setattr(common, "fetch_package", lambda pkg, r: r / "debian" / pkg)
    return root


def test_pool_writes_release_labels_and_prunes_strays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fake_packages(tmp_path, monkeypatch)
    stray = root / "music_pool" / "audio" / "pretrain" / "alpha" / "old.ogg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"from an earlier build")
    out = music_pool.build(root)
    assert not stray.exists()
    tracks = common.read_csv(out / "tracks.csv")
    assert len(tracks) == 5 + 8  # the copy is dropped
    assert {t["source_package"] for t in tracks} == {"alpha-data", "beta-music"}
    for pkg, n, folder in (("alpha-data", 5, "alpha"), ("beta-music", 8, "beta-music")):
        rows = [t for t in tracks if t["source_package"] == pkg]
        assert len(rows) == n and all(t["path"].split("/")[2] == folder for t in rows)
        assert sum(t["split"] == "heldout" for t in rows) == round(n / 4)
        assert all(t["path"].split("/")[1] == t["split"] for t in rows)
        assert all((out / t["path"]).is_file() for t in rows)
    by_track = common.read_csv(out / "segments_labels.csv")
    by_release = common.read_csv(out / "segments_release_labels.csv")
    assert [r["path"] for r in by_release] == [r["path"] for r in by_track] and by_track
    package_of = {music_pool.track_id(t["path"]): t["source_package"] for t in tracks}
    held = {music_pool.track_id(t["path"]) for t in tracks if t["split"] == "heldout"}
    for r, t in zip(by_release, by_track, strict=True):
        assert t["label"] in held and r["label"] == package_of[t["label"]]
        assert r["path"].startswith(f"segments/{t['label']}/seg")
    counts = Counter(t["label"] for t in by_track)
    assert all(2 <= n <= music_pool.MAX_SEGMENTS for n in counts.values())
    assert check.check_release_labels(out).problems == []
    again = music_pool.build(root)  # idempotent: nothing rewritten differently
    assert common.read_csv(again / "segments_release_labels.csv") == by_release
    wrong = [(r["path"], "alpha-data") for r in by_release]
    common.write_csv(out / "segments_release_labels.csv", ("path", "label"), wrong)
    problems = check.check_release_labels(out).problems
    assert problems and all("beta-music" in p for p in problems)


def test_heldout_split_is_whole_tracks_seeded_and_a_quarter() -> None:
    names = [f"music/t{i:02d}.ogg" for i in range(20)]
    held = music_pool.heldout_names(names)
    assert len(held) == 5 and held <= set(names)
    assert held == music_pool.heldout_names(list(reversed(names)))  # order-free
    assert held != music_pool.heldout_names(names, seed=1)
    assert music_pool.heldout_names(["one.ogg"]) == set()  # a lone track stays in pretraining
    assert len(music_pool.heldout_names(["a.ogg", "b.ogg"])) == 1


def _labelled(tmp_path: Path, rows: list[tuple[str, np.ndarray, int, str]]) -> Path:
    for rel, x, sr, _ in rows:
        write_audio(tmp_path / rel, x, sr, subtype="PCM_16")
    lines = ["path,label,split"] + [f"{rel},{Path(rel).parent.name},{s}" for rel, _, _, s in rows]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "labels.csv"


def test_check_labelled_finds_silence_wrong_rate_and_leaky_groups(tmp_path: Path) -> None:
    sr = 22050
    ok = tone(440.0, sr, 1.5)
    good = _labelled(
        tmp_path / "good",
        [("audio/spk1/a.wav", ok, sr, "train"), ("audio/spk2/a.wav", ok, sr, "test")],
    )
    report = check.check_labelled(good, check.digit_speaker)
    assert report.problems == [] and report.clips == 2
    assert report.seconds == pytest.approx(3.0)
    assert report.rms_db[0] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    bad = _labelled(
        tmp_path / "bad",
        [
            ("audio/spk1/a.wav", ok, sr, "train"),
            ("audio/spk1/b.wav", ok, sr, "test"),  # speaker in two splits
            ("audio/spk2/c.wav", ok * 1e-4, sr, "test"),  # silent
            ("audio/spk3/d.wav", tone(440.0, 16000, 1.5), 16000, "valid"),  # wrong rate
        ],
    )
    problems = check.check_labelled(bad, check.digit_speaker).problems
    assert any("spk1" in p and "splits" in p for p in problems)
    assert any("c.wav" in p and "silent" in p for p in problems)
    assert any("d.wav" in p and "16000 Hz" in p for p in problems)
    assert len(problems) == 3
    with pytest.raises(common.BuildError, match="none.csv not found"):
        check.check_labelled(tmp_path / "none.csv", check.digit_speaker)


def test_check_labelled_keeps_a_group_in_one_fold_and_its_stand_ins_with_it(tmp_path: Path) -> None:
    sr, ok = 22050, tone(440.0, 22050, 1.5)
    folds = _labelled(
        tmp_path / "folds",
        [
            ("audio/spk1/a.wav", ok, sr, "fold0"),
            ("audio/spk1/b.wav", ok, sr, "fold0-test"),  # its fold's stand-in: fine
            ("audio/spk2/c.wav", ok, sr, "fold1"),
            ("audio/spk2/d.wav", ok, sr, "fold2-test"),  # speaker 2 in folds 1 and 2: leaky
        ],
    )
    problems = check.check_labelled(folds, check.digit_speaker).problems
    assert problems == ["group spk2 in splits ['fold1', 'fold2']"]


def test_group_keys_parse_the_paths_the_builders_write() -> None:
    plan = render.plan_renderings(3, (48, 60, 72))
    from benchmarks.datasets import instruments

    assert check.instrument_program(instruments.clip_path("timgm6mb", 3, 5, plan[5])) == "p003"
    assert (
        check.digit_speaker(f"audio/{digits.speaker_id('en-us+m1')}/one_s130_p35.wav") == "en-us_m1"
    )


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(common.ENV_VAR, str(tmp_path / "env"))
    assert common.data_root(tmp_path / "cli") == tmp_path / "cli"
    assert common.data_root(None) == tmp_path / "env"
    monkeypatch.delenv(common.ENV_VAR)
    assert common.data_root(None) == Path("~/.cache/audioclr-data").expanduser().resolve()


def test_missing_tool_without_root_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.shutil, "which", lambda cmd: None)
    monkeypatch.setattr(common.os, "geteuid", lambda: 1000)
    with pytest.raises(common.BuildError) as err:
        common.ensure_tool("fluidsynth", "fluidsynth")
    assert "apt-get install fluidsynth" in (err.value.hint or "")


def test_unpacked_package_is_not_fetched_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dest = tmp_path / "debian" / "xmoto-data"
    dest.mkdir(parents=True)
    (dest / ".unpacked").write_text("xmoto-data_1_all.deb\n")

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not call apt-get or dpkg")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert common.fetch_package("xmoto-data", tmp_path) == dest


def test_write_csv_and_wav_are_atomic_and_read_back(tmp_path: Path) -> None:
    path = common.write_csv(tmp_path / "x.csv", ("path", "label"), [("a.wav", "one")])
    assert common.read_csv(path) == [{"path": "a.wav", "label": "one"}]
    x = tone(1000.0, 22050, 0.5, amplitude=1.5)  # clips rather than wraps
    wav = common.write_wav(tmp_path / "a.wav", x, 22050)
    y, sr = sf.read(str(wav), dtype="float32")
    assert sr == 22050 and sf.info(str(wav)).subtype == "PCM_16"
    assert np.max(y) == pytest.approx(1.0, abs=1e-3) and np.min(y) == pytest.approx(-1.0, abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "x.csv"]
