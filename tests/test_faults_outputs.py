"""Fault matrix of the output side (issue 15): real processes, real kills, real bad files.

Concurrent writers (a real ``embed`` stopped while it holds its folder's lock), a real SIGKILL
between the renames of an embeddings folder and of an index, manifests against tampering,
the FAISS id map against the side table, unreadable audio in ``embed`` and ``probe``, and each
CLI command on a bad input: exit code, one line, no traceback.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.errors import AudioclrError, RetrievalError
from audioclr.evaluate.store import load_embeddings, save_embeddings
from audioclr.search.index import TrackIndex
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import save_encoder

SR = 8000
ROOT = Path(__file__).resolve().parents[1]


def _encoder(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    enc = build_encoder("melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16)
    return save_encoder(enc.eval(), path, {})


def _music(root: Path, n: int = 8) -> Path:
    for i in range(n):
        write_audio(root / f"t{i}.wav", tone(200 + 90 * i, SR, 1.0), SR)
    return root


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audioclr.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err


def _held(lock: Path) -> bool:
    """Whether some process holds the flock on ``lock`` (tested from this process)."""
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def _stopped_while_locked(argv: list[str], lock: Path) -> subprocess.Popen | None:
    """Start ``audioclr *argv`` and SIGSTOP it while it holds ``lock``; None if it finished
    first (the caller retries)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "audioclr.cli", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None:
        # the holder writes its pid once it has the lock: probing earlier could race it
        if lock.exists() and lock.read_text().startswith("pid") and _held(lock):
            proc.send_signal(signal.SIGSTOP)
            if _held(lock):
                return proc
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    return None


def test_concurrent_embed_second_fails_and_a_killed_holder_never_blocks(tmp_path, capsys) -> None:
    music = _music(tmp_path / "music", 24)
    enc_a, enc_b = _encoder(tmp_path / "a.pt", 1), _encoder(tmp_path / "b.pt", 2)
    for attempt in range(4):
        out = tmp_path / f"emb{attempt}"
        argv_a = ["embed", str(enc_a), str(music), str(out), "--device", "cpu", "--chunk-size", "1"]
        holder = _stopped_while_locked(argv_a, out / ".lock")
        if holder is not None:
            break
    assert holder is not None, "the first embed always finished before it could be stopped"
    try:
        second = _cli("embed", str(enc_b), str(music), str(out), "--device", "cpu")
        _one_line_error(second.returncode, second.stderr)
        assert "being written by another audioclr command" in second.stderr
        assert f"pid {holder.pid}: embed" in second.stderr
        assert "wrote" not in second.stdout
    finally:
        holder.send_signal(signal.SIGKILL)  # the holder dies holding the lock
        holder.communicate()
    capsys.readouterr()
    assert main(["embed", str(enc_b), str(music), str(out), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    emb = load_embeddings(out)
    assert len(emb.ids) == 24 and emb.meta["encoder_path"] == str(enc_b.resolve())


KILL_AFTER = """
import os, signal, sys
from pathlib import Path
real = os.replace
target = Path(sys.argv[1]).resolve()
def replace(src, dst, *a, **k):
    real(src, dst, *a, **k)
    if Path(dst).resolve() == target:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from audioclr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _killed_after_writing(target: Path, *argv: str) -> None:
    """Run ``audioclr *argv`` in a child that SIGKILLs itself right after ``target`` is renamed
    into place."""
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, str(target), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("killed_after", ["embeddings.npy", "tracks.json"])
def test_embed_rewrite_killed_between_renames_never_pairs_new_vectors_with_old_ids(
    tmp_path, killed_after: str
) -> None:
    music = _music(tmp_path / "music", 4)
    enc_a, enc_b = _encoder(tmp_path / "a.pt", 1), _encoder(tmp_path / "b.pt", 2)
    out, fresh = tmp_path / "emb", tmp_path / "fresh"
    assert main(["embed", str(enc_a), str(music), str(out), "--device", "cpu"]) == 0
    old = load_embeddings(out)
    args = [str(enc_b), str(music)]  # same tracks, same row count: only provenance tells
    _killed_after_writing(out / killed_after, "embed", *args, str(out), "--device", "cpu")
    assert main(["embed", *args, str(fresh), "--device", "cpu"]) == 0
    new = load_embeddings(fresh)
    assert not np.allclose(old.vectors, new.vectors)  # two encoders, two results
    try:
        got = load_embeddings(out)
    except AudioclrError as exc:  # refused, naming what to do
        assert "re-run audioclr embed" in (exc.hint or "")
    else:  # or whole: the new vectors with the new table, never a mix
        assert got.ids == new.ids and got.meta["encoder_path"] == str(enc_b.resolve())
        np.testing.assert_array_equal(got.vectors, new.vectors)
    assert main(["embed", *args, str(out), "--device", "cpu"]) == 0  # the rerun completes
    np.testing.assert_array_equal(load_embeddings(out).vectors, new.vectors)


def test_embeddings_manifest_refuses_tampering_and_old_folders_still_load(tmp_path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    folder = save_embeddings(tmp_path / "e", x, ["a", "b", "c"], ["/a", "/b", "/c"], {})
    raw = bytearray((folder / "embeddings.npy").read_bytes())
    raw[-1] ^= 0xFF  # same size, one bit of one vector changed
    (folder / "embeddings.npy").write_bytes(bytes(raw))
    with pytest.raises(AudioclrError, match="embeddings.npy does not match .*sha256 differs"):
        load_embeddings(folder)
    assert load_embeddings(folder, verify=False).vectors[2, 3] != x[2, 3]  # sizes only
    (folder / "manifest.json").unlink()  # a folder of an older audioclr: read as it is
    assert load_embeddings(folder).ids == ["a", "b", "c"]
    table = json.loads((folder / "tracks.json").read_text())
    table["sources"] = table["sources"][:2]
    (folder / "tracks.json").write_text(json.dumps(table))
    with pytest.raises(AudioclrError, match="lists of strings of equal length"):
        load_embeddings(folder)


def _index(tmp_path: Path, n: int = 30, seed: int = 0) -> Path:
    x = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    ids = [f"t{i:03d}" for i in range(n)]
    save_embeddings(tmp_path / f"emb{seed}", x, ids, [f"/m/{i}" for i in ids], {})
    return tmp_path / f"emb{seed}"


@pytest.mark.parametrize("killed_after", ["index-000002.faiss", "table.json"])
def test_index_add_killed_between_renames_leaves_old_or_new_index(
    tmp_path, killed_after: str
) -> None:
    idx = tmp_path / "idx"
    assert main(["index", "build", str(_index(tmp_path, 30, 0)), str(idx)]) == 0
    more = tmp_path / "more"
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    save_embeddings(more, x, [f"n{i}" for i in range(5)], [f"/n/{i}" for i in range(5)], {})
    _killed_after_writing(idx / killed_after, "index", "add", str(idx), str(more))
    tix = TrackIndex.load(idx)  # whole: the old index, or the new one
    assert len(tix.table) == {"index-000002.faiss": 30, "table.json": 35}[killed_after]
    _, nearest = tix.search(tix.vector_of("t007")[None], 1)
    assert tix.table.track_of(int(nearest[0, 0])) == "t007"
    assert main(["index", "remove", str(idx), "t000"]) == 0  # the next save completes
    current = TrackIndex.load(idx).table.index_file
    assert [p.name for p in idx.glob("index-*.faiss")] == [current]  # leftovers cleaned


def test_index_load_checks_id_map_manifest_and_table_fields(tmp_path, capsys) -> None:
    emb = load_embeddings(_index(tmp_path))
    tix = TrackIndex.build(emb)
    tix.table.ids[4:] += 1  # a writer's bug: rows 4.. no longer carry the ids FAISS has
    tix.table.next_id += 1
    tix.save(tmp_path / "swapped")
    with pytest.raises(RetrievalError, match="FAISS id map does not match table.json"):
        TrackIndex.load(tmp_path / "swapped")
    idx = TrackIndex.build(emb).save(tmp_path / "idx")
    table = json.loads((idx / "table.json").read_text())
    table["track_ids"][0] = "renamed.wav"  # a hand edit that keeps the fields well formed
    (idx / "table.json").write_text(json.dumps(table))
    with pytest.raises(RetrievalError, match="table.json does not match .*manifest.json"):
        TrackIndex.load(idx)
    for edit, message in [
        (lambda t: t.update(sources=t["sources"][:-1]), "must be of equal length"),
        (lambda t: t.update(ids=[str(i) for i in t["ids"]]), "ids must be non-negative integers"),
        (lambda t: t.update(ids=t["ids"][1::-1] + t["ids"][2:]), "ids must rise row by row"),
    ]:
        bad = json.loads(json.dumps(table))
        edit(bad)
        (idx / "table.json").write_text(json.dumps(bad))
        capsys.readouterr()
        _one_line_error(main(["index", "info", str(idx)]), capsys.readouterr().err)
        with pytest.raises(RetrievalError, match=message):
            TrackIndex.load(idx)


def test_index_info_into_a_closed_pipe_prints_no_traceback(tmp_path) -> None:
    idx = tmp_path / "idx"
    x = np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32)
    ids = [f"track-{i:05d}" for i in range(3000)]
    save_embeddings(tmp_path / "e", x, ids, ids, {})
    assert main(["index", "build", str(tmp_path / "e"), str(idx)]) == 0
    cmd = f"{sys.executable} -m audioclr.cli index info {idx} --ids | head -n 1"
    proc = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.stdout == "tracks: 3000\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def _bad_files(music: Path) -> dict[str, str]:
    """Real malformed files beside good ones: name -> what it is."""
    good = (music / "t0.wav").read_bytes()
    (music / "junk.ogg").write_bytes(b"OggS" + bytes(range(256)) * 4)
    (music / "wav_named.ogg").write_bytes(good)  # a WAV named .ogg, as sample libraries ship
    (music / "empty.wav").write_bytes(b"")
    (music / "header_only.wav").write_bytes(good[:44])
    return {"junk.ogg": "not audio", "empty.wav": "0 bytes", "header_only.wav": "no frames"}


def test_embed_skips_unreadable_files_lists_them_and_fails_past_the_share(tmp_path, capsys) -> None:
    music = _music(tmp_path / "music", 8)
    bad = _bad_files(music)
    enc = _encoder(tmp_path / "enc.pt", 1)
    argv = ["embed", str(enc), str(music), str(tmp_path / "emb"), "--device", "cpu"]
    capsys.readouterr()
    assert main([*argv, "--max-unreadable", "0.5"]) == 0
    cap = capsys.readouterr()
    emb = load_embeddings(tmp_path / "emb")
    skipped = {Path(s["source"]).name: s["reason"] for s in emb.meta["skipped"]}
    assert set(skipped) == set(bad)
    assert sorted(emb.ids) == sorted([f"t{i}.wav" for i in range(8)] + ["wav_named.ogg"])
    for name in bad:
        assert f"skipped {music / name}: {skipped[name]}" in cap.err
    assert "skipped 3 unreadable files" in cap.out
    code = main([*argv[:3], str(tmp_path / "emb2"), "--device", "cpu"])  # default: 5 %
    err = capsys.readouterr().err
    _one_line_error(code, err)
    assert "3 of 12 files could not be read (25.0%, more than the 5% allowed)" in err
    assert all(str(music / name) in err for name in bad)
    assert not (tmp_path / "emb2" / "embeddings.npy").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_a_file_another_user_cannot_read_is_skipped_with_permission_reason() -> None:
    base = Path(tempfile.mkdtemp(prefix="audioclr-perm-"))  # pytest's tmp_path is root-only
    try:
        music = _music(base / "music", 4)
        enc = _encoder(base / "enc.pt", 1)
        out = base / "out"
        out.mkdir()
        for p in [base, music, out]:
            p.chmod(0o777)
        for p in [enc, *music.glob("*.wav")]:
            p.chmod(0o644)
        (music / "t3.wav").chmod(0o000)
        cmd = [
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            sys.executable, "-m", "audioclr.cli", "embed", str(enc), str(music),
            str(out / "emb"), "--device", "cpu", "--max-unreadable", "0.5",
        ]  # fmt: skip
        env = {**os.environ, "HOME": str(out), "MPLCONFIGDIR": str(out)}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        if proc.returncode != 0 and "t3.wav" not in proc.stderr:
            pytest.skip(f"another user cannot run audioclr here: {proc.stderr[-300:]}")
        assert proc.returncode == 0, proc.stderr
        emb = load_embeddings(out / "emb")
        assert [Path(s["source"]).name for s in emb.meta["skipped"]] == ["t3.wav"]
        assert "permission" in emb.meta["skipped"][0]["reason"].lower()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _labels(tmp_path: Path, music: Path, bad: list[str], bad_split: str) -> Path:
    rows = ["path,label,split"]
    for i in range(12):
        rows.append(f"{music / f't{i}.wav'},{'ab'[i % 2]},{['train', 'train', 'test'][i % 3]}")
    rows += [f"{music / name},a,{bad_split}" for name in bad]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "labels.csv"


def test_probe_skips_unreadable_labelled_files_and_fails_past_the_test_share(
    tmp_path, capsys
) -> None:
    music = _music(tmp_path / "music", 12)
    bad = list(_bad_files(music))
    enc = _encoder(tmp_path / "enc.pt", 1)
    keys = ["methods=[encoder]", "task.seeds=[0]", "task.layer=last", "probe.bootstrap=50"]
    labels = _labels(tmp_path, music, bad[:1], "train")
    capsys.readouterr()
    assert main(["probe", str(enc), str(labels), str(tmp_path / "p1"), *keys]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "p1" / "report.json").read_text())
    task = report["tasks"]["labels"]
    assert [Path(x["source"]).name for x in task["unreadable"]] == ["junk.ogg"]
    assert task["tracks"] == {"train": 8, "valid": 0, "test": 4}
    line = f"warning: skipped unreadable train file {music / 'junk.ogg'}: "
    assert line in out and "junk.ogg" in (tmp_path / "p1" / "report.md").read_text()
    labels = _labels(tmp_path, music, bad, "test")  # 3 of 7 test files unreadable
    code = main(["probe", str(enc), str(labels), str(tmp_path / "p2"), *keys])
    err = capsys.readouterr().err
    _one_line_error(code, err)
    assert "3 of 7 files could not be read" in err and all(b in err for b in bad)


def test_query_missing_file_unknown_id_and_silent_file(tmp_path, capsys) -> None:
    music = _music(tmp_path / "music", 4)
    write_audio(music / "silence.wav", np.zeros(SR, np.float32), SR)
    enc = _encoder(tmp_path / "enc.pt", 1)
    assert main(["embed", str(enc), str(music), str(tmp_path / "e"), "--device", "cpu"]) == 0
    assert main(["index", "build", str(tmp_path / "e"), str(tmp_path / "idx")]) == 0
    idx = str(tmp_path / "idx")
    capsys.readouterr()
    _one_line_error(main(["query", idx, "--file", "nosuch.wav"]), err := capsys.readouterr().err)
    assert "query file nosuch.wav not found" in err
    _one_line_error(main(["query", idx, "--track", "nosuch.wav"]), err := capsys.readouterr().err)
    assert "unknown track id 'nosuch.wav'" in err
    assert main(["query", idx, "--file", str(music / "silence.wav"), "--json"]) == 0
    cap = capsys.readouterr()
    assert "warning: query file" in cap.err and "is silent" in cap.err
    assert "neighbours are meaningless" in json.loads(cap.out)[0]["warning"]
    assert main(["query", idx, "--file", str(music / "t1.wav"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["warning"] is None


def test_every_command_on_bad_input_is_one_line_without_traceback(tmp_path, capsys) -> None:
    enc = _encoder(tmp_path / "enc.pt", 1)
    (tmp_path / "notaudio").mkdir()
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "table.json").write_text("{not json")
    cases = [
        ["embed", str(enc), str(tmp_path / "nowhere"), str(tmp_path / "o1")],
        ["embed", str(tmp_path / "nosuch.pt"), str(tmp_path), str(tmp_path / "o2")],
        ["probe", str(enc), str(tmp_path / "nosuch.csv"), str(tmp_path / "o3")],
        ["index", "build", str(tmp_path / "notaudio"), str(tmp_path / "o4")],
        ["index", "info", str(idx)],
        ["query", str(idx), "--track", "a.wav"],
        ["query", str(tmp_path / "o5"), "--file", "nosuch.wav"],
    ]
    for argv in cases:
        capsys.readouterr()
        _one_line_error(main(argv), capsys.readouterr().err)
    proc = _cli(
        "index", "info", str(idx)
    )  # a real process: the exit code and stderr as a user sees
    _one_line_error(proc.returncode, proc.stderr)
    assert "table.json is damaged" in proc.stderr
