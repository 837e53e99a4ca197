"""Distributed embedding: ``torchrun --nproc_per_node 2`` (gloo, CPU) writes the folder one
process writes, byte for byte, each rank embedding its share of the chunks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.evaluate.store import load_embeddings
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import save_encoder

SR = 8000
ROOT = Path(__file__).resolve().parents[1]
FILES = ["embeddings.npy", "tracks.json", "manifest.json"]


def test_torchrun_two_gloo_ranks_write_the_single_process_folder(tmp_path) -> None:
    torch.manual_seed(5)
    enc = build_encoder("melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16)
    enc = save_encoder(enc.eval(), tmp_path / "enc.pt", {})
    music = tmp_path / "music"
    for i in range(9):  # lengths differ: windows per track differ between chunks
        write_audio(music / f"t{i}.wav", tone(150 + 70 * i, SR, 0.6 + 0.2 * i), SR)
    (music / "t9.wav").write_bytes(b"RIFF" + bytes(64))  # skipped by whichever rank reads it
    args = [str(enc), str(music)]
    flags = ["--device", "cpu", "--chunk-size", "2", "--keep-windows", "--max-unreadable", "0.2"]
    assert main(["embed", *args, str(tmp_path / "one"), *flags]) == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*torchrun, "-m", "audioclr.cli", "embed", *args, str(tmp_path / "two"), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1  # rank 0 alone reports
    assert "| 6/6 [" in proc.stderr  # rank 0's bar: its chunks 0, 2, 4 of two tracks each
    one, two = tmp_path / "one", tmp_path / "two"
    for name in FILES + [f"windows/{n}" for n in FILES]:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    emb = load_embeddings(two)
    assert len(emb.ids) == 9 and [s["id"] for s in emb.meta["skipped"]] == ["t9.wav"]
    parts = sorted(p.name for p in (two / ".parts").glob("part-*.json"))
    assert parts == [f"part-{c:05d}.json" for c in range(5)]  # 9 + 1 tracks in chunks of 2


def test_torchrun_probe_reports_the_single_process_scores(tmp_path) -> None:
    """The probe's embedding step split over 2 gloo ranks: the same cached encoder embeddings,
    byte for byte (MFCC's within float rounding), and the same scores and intervals as one
    process; rank 0 alone writes the report."""
    torch.manual_seed(6)
    enc = build_encoder("melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16)
    enc = save_encoder(enc.eval(), tmp_path / "enc.pt", {})
    rows = ["path,label"]
    for i in range(30):
        label = ("low", "high")[i % 2]
        freq = (180 + 9 * i) if label == "low" else (1400 + 23 * i)
        write_audio(tmp_path / "task" / f"c{i:02d}.wav", tone(freq, SR, 0.5 + 0.02 * i), SR)
        rows.append(f"c{i:02d}.wav,{label}")
    labels = tmp_path / "task" / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    flags = ["methods=[encoder,mfcc]", "task.fractions=[0.5,1.0]", "task.seeds=[0,1]", "device=cpu"]
    assert main(["probe", str(enc), str(labels), str(tmp_path / "one"), *flags]) == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*torchrun, "-m", "audioclr.cli", "probe", str(enc), str(labels), str(tmp_path / "two")]
        + flags,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("report:") == 1, proc.stdout
    # each fit runs once, on one rank: per method, 3 fits (2 seeds at 0.5, the first at 1.0)
    # split 2 + 1, never 3 on both ranks (the results above come back on every rank)
    bars = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if "probe linear" in ln]
    done = {ln.split("|")[-1].split("[")[0].strip() for ln in bars if "100%" in ln}
    assert done == {"2/2", "1/1"}, bars
    one, two = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("one", "two"))
    (task,) = one["tasks"]
    assert one["tasks"][task]["results"] == two["tasks"][task]["results"]
    vecs = sorted((tmp_path / "one" / "emb").rglob("embeddings.npy"))
    assert vecs
    assert {v.parts[-3] for v in vecs} == {"encoder", "mfcc"}
    for v in vecs:
        w = tmp_path / "two" / v.relative_to(tmp_path / "one")
        if "encoder" in v.parts:
            assert v.read_bytes() == w.read_bytes()
        else:  # torchrun runs each rank with OMP_NUM_THREADS=1: float sums in another order
            # (float32 MFCCs reach |x| ~ 240: an absolute 1e-5 is below their spacing there;
            # on an AMD EPYC 7 of 2,400 values differed by up to 9e-5, relative 1.4e-6)
            np.testing.assert_allclose(np.load(w), np.load(v), rtol=1e-5, atol=1e-5)
