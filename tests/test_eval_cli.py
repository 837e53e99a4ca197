"""CLI: embed writes what the Python API computes; bad input gives one clear error line."""

from __future__ import annotations

import numpy as np
import torch
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.evaluate.embed import embed_waveform
from audioclr.evaluate.store import load_embeddings
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import load_encoder, save_encoder

SR = 8000


def _encoder(tmp_path):
    torch.manual_seed(3)
    enc = build_encoder("melcnn", SR, widths=[8, 16], n_fft=256, hop_length=128, n_mels=16)
    return save_encoder(enc.eval(), tmp_path / "enc.pt", {})


def test_embed_command_matches_api(tmp_path):
    enc = _encoder(tmp_path)
    write_audio(tmp_path / "audio" / "a.wav", tone(500, SR, 1.5), SR)
    write_audio(tmp_path / "audio" / "b.wav", tone(1500, SR, 0.7), SR)
    argv = ["embed", str(enc), str(tmp_path / "audio"), str(tmp_path / "emb")]
    assert main(argv + ["--layer", "all", "--hop-seconds", "0.25", "--device", "cpu"]) == 0
    emb = load_embeddings(tmp_path / "emb")
    loaded = load_encoder(enc)
    assert emb.ids == ["a.wav", "b.wav"] and emb.dim == 2 * (8 + 16)  # mean + std per block
    assert emb.meta["encoder_id"] == loaded.encoder_id and emb.meta["hop_samples"] == 2000
    x = tone(500, SR, 1.5)
    expect = embed_waveform(loaded, x, layer="all", hop_samples=2000)
    np.testing.assert_allclose(emb.vectors[0], expect, rtol=1e-3, atol=1e-3)  # 16-bit file


def test_bad_layer_and_bad_suite_key_are_one_line_errors(tmp_path, capsys):
    enc = _encoder(tmp_path)
    write_audio(tmp_path / "audio" / "a.wav", tone(500, SR, 0.5), SR)
    assert (
        main(["embed", str(enc), str(tmp_path / "audio"), str(tmp_path / "e"), "--layer", "x"]) == 2
    )
    err = capsys.readouterr().err
    assert "unknown layer 'x'" in err and "block1" in err
    suite = tmp_path / "suite.yaml"
    suite.write_text("tasks:\n  - {name: t, labels: l.csv, fractions: [0.5]}\nheadz: [linear]\n")
    assert (
        main(["probe-suite", str(suite), "--encoder", str(enc), "--out", str(tmp_path / "o")]) == 2
    )
    assert "headz" in capsys.readouterr().err
    suite.write_text("tasks:\n  - {name: t, labels: l.csv, fractions: [1.5]}\n")
    assert (
        main(["probe-suite", str(suite), "--encoder", str(enc), "--out", str(tmp_path / "o")]) == 2
    )
    assert "fractions" in capsys.readouterr().err


def test_overrides_are_key_value_words_on_every_config_command(tmp_path, capsys, monkeypatch):
    """probe and probe-suite take KEY=VALUE words (task.KEY for probe's one task), anywhere."""
    import audioclr.evaluate.suite as suite_mod

    seen = []
    monkeypatch.setattr(
        suite_mod,
        "run_suite",
        lambda cfg, enc, out: seen.append(cfg) or {"tasks": {}, "files": {"md": "x"}},
    )
    enc = _encoder(tmp_path)
    assert (
        main(
            [
                "probe",
                str(enc),
                "labels.csv",
                str(tmp_path / "o"),
                "task.fractions=[0.1,1.0]",
                "methods=[encoder,mfcc]",
                "task.heads=[knn]",
                "probe.k=7",
            ]
        )
        == 0
    )
    cfg = seen[-1]
    assert (cfg.tasks[0].name, cfg.tasks[0].labels) == ("labels", "labels.csv")
    assert (cfg.tasks[0].fractions, cfg.tasks[0].heads) == ([0.1, 1.0], ["knn"])
    assert (cfg.methods, cfg.probe.k) == (["encoder", "mfcc"], 7)
    suite = tmp_path / "suite.yaml"
    suite.write_text("tasks:\n  - {name: t, labels: l.csv}\n")
    assert (
        main(
            [
                "probe-suite",
                str(suite),
                "device=cpu",
                "--encoder",
                str(enc),
                "--out",
                str(tmp_path / "o"),
                "probe.k=3",
            ]
        )
        == 0
    )
    assert (seen[-1].device, seen[-1].probe.k) == ("cpu", 3)
    assert main(["probe", str(enc), "labels.csv", str(tmp_path / "o"), "task.fractionz=[1]"]) == 2
    assert "fractionz" in capsys.readouterr().err
