"""Leak check: an exported encoder records its pretraining files; probes find test files in them."""

from __future__ import annotations

import shutil

from conftest import tone, write_audio

from audioclr.data.cache import prepare_cache
from audioclr.evaluate.leakage import leak_status, leak_warning, seen_test_files
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import load_encoder, save_encoder, training_sources

SR = 8000


def test_exported_encoder_names_its_training_files_and_the_probe_finds_them(tmp_path) -> None:
    src = tmp_path / "unlabeled"
    for i, f in enumerate((220, 330, 440)):
        write_audio(src / f"t{i}.wav", tone(f, SR, 1.5 + 0.1 * i), SR)
    prepare_cache(src, tmp_path / "cache", sample_rate=SR, progress=False)
    enc = build_encoder(
        "melcnn", SR, widths=[4, 8], n_mels=16, n_fft=256, hop_length=128, input_samples=SR
    )
    path = save_encoder(enc, tmp_path / "enc.pt", trained_on=training_sources(tmp_path / "cache"))
    trained_on = load_encoder(path).trained_on
    assert sorted(trained_on["sources"]) == sorted(
        str((src / f"t{i}.wav").resolve()) for i in range(3)
    )

    copied = tmp_path / "labelled" / "t1.wav"  # the same file copied elsewhere
    copied.parent.mkdir()
    shutil.copy(src / "t1.wav", copied)
    same_name_other = write_audio(tmp_path / "other" / "t2.wav", tone(550, SR, 1.7), SR)
    assert same_name_other.stat().st_size == (src / "t2.wav").stat().st_size  # same name, size
    fresh = write_audio(tmp_path / "labelled" / "new.wav", tone(660, SR, 1.0), SR)
    test = [src / "t0.wav", copied, same_name_other, fresh]
    assert seen_test_files(trained_on, test) == [src / "t0.wav", copied]

    status = leak_status(trained_on, test)
    assert (status["checked"], status["seen"], status["test_files"]) == (True, 2, 4)
    assert "2 of the 4 test files" in leak_warning("genre", status)
    assert leak_warning("genre", leak_status(trained_on, [fresh])) is None


def test_unknown_training_set_is_said_not_silently_clean(tmp_path) -> None:
    status = leak_status(training_sources(tmp_path / "no_cache"), [tmp_path / "a.wav"])
    assert status["checked"] is False and status["seen"] is None
    assert "cannot check" in leak_warning("genre", status)
