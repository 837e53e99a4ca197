"""Distributed embedding: ``torchrun --nproc_per_node 2`` (gloo, CPU) writes the folder one
process writes, byte for byte, each rank embedding its share of the chunks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
