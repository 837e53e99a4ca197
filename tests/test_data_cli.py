"""The data CLI commands: prepare prints its summary and rejects; errors: one line + hint."""

from __future__ import annotations

import numpy as np
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.data.cache import ClipCache


def test_prepare_and_demo_data_commands(tmp_path, capsys) -> None:
    src = tmp_path / "src"
    write_audio(src / "a.wav", tone(440, 44100, 1.5), 44100)
    (src / "bad.wav").write_bytes(b"junk" * 100)
    rc = main(
        [
            "prepare",
            str(src),
            str(tmp_path / "cache"),
            "--sample-rate",
            "16000",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "1 added" in out and "1 rejected" in out and "bad.wav" in out and "rejects.csv" in out
    cache = ClipCache(tmp_path / "cache")
    assert cache.sample_rate == 16000 and len(cache.read(0)) == 24000

    rc = main(
        ["prepare", str(src), str(tmp_path / "cache"), "--sample-rate", "22050", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "error:" in err and "16000" in err and "hint:" in err

    rc = main(["demo-data", str(tmp_path / "demo"), "--per-class", "1", "--seed", "3"])
    assert rc == 0
    wavs = sorted((tmp_path / "demo" / "audio").rglob("*.wav"))
    assert len(wavs) == 5 and (tmp_path / "demo" / "labels.csv").is_file()
    assert np.all([w.stat().st_size > 44 for w in wavs])
