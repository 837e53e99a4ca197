"""Every probe report says what it was measured on: date, machine (cores, the CPU model lscpu
shows), the command and the git commit, in report.json and at the top of report.md."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import save_encoder

SR = 8000
ROOT = Path(__file__).resolve().parents[1]


def _lscpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    pytest.skip("lscpu shows no model name here")


def test_probe_report_names_date_machine_command_and_commit(tmp_path, monkeypatch) -> None:
    torch.manual_seed(1)
    enc = build_encoder("melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16)
    enc = save_encoder(enc.eval(), tmp_path / "enc.pt", {})
    rows = ["path,label"]
    for i in range(12):
        label = ("low", "high")[i % 2]
        write_audio(
            tmp_path / f"c{i}.wav", tone((200 if i % 2 == 0 else 1800) + 10 * i, SR, 0.5), SR
        )
        rows.append(f"c{i}.wav,{label}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    argv = [str(enc), str(tmp_path / "labels.csv"), str(tmp_path / "out"), "methods=[mfcc]"]
    monkeypatch.setattr(sys, "argv", ["audioclr", "probe", *argv])
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    assert main(["probe", *argv]) == 0
    meta = json.loads((tmp_path / "out" / "report.json").read_text())["meta"]
    assert (
        before
        <= datetime.datetime.fromisoformat(meta["date"])
        <= datetime.datetime.now(datetime.UTC)
    )
    assert meta["cores"] == os.cpu_count() and meta["cpu"] == _lscpu_model()
    assert meta["command"].startswith("audioclr probe ") and "methods=[mfcc]" in meta["command"]
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert meta["git_commit"].removesuffix("-dirty") == head
    md = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert md[2] == f"- date: {meta['date']}"
    assert md[3].startswith(f"- machine: {os.cpu_count()} cores, {_lscpu_model()}")
    assert md[5] == f"- git commit: {meta['git_commit']}"
