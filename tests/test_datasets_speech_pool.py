"""The speech pool builder: disjoint text and voices from digits, determinism, a tiny real build
(espeak-ng, skipped when it is not installed)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import common, digits, speech_pool  # noqa: E402

SPOKEN = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero")


def test_text_never_holds_a_digit_word_and_the_check_catches_them() -> None:
    vocabulary = [
        *speech_pool.NOUNS,
        *speech_pool.ADJECTIVES,
        *speech_pool.VERBS,
        *speech_pool.ADVERBS,
        *speech_pool.PLACES,
        *speech_pool.TIMES,
    ]
    words = {w for phrase in vocabulary for w in phrase.lower().split()}
    assert not {w for w in words if w in SPOKEN or any(d in w for d in SPOKEN)}
    assert not words & {"to", "too", "for", "won", "ate", "oh"}
    text = " ".join(u.text for u in speech_pool.plan(0, 400))
    assert not speech_pool.digit_words(text)
    assert len(set(speech_pool.words_of(text))) > 150  # a varied vocabulary, not a few phrases
    assert speech_pool.digit_words("Someone went to the Seven hills, then ate.") == [
        "someone",
        "to",
        "seven",
        "ate",
    ]


def test_plan_is_seeded_and_uses_no_digits_voice() -> None:
    a, b = speech_pool.plan(0, 40), speech_pool.plan(0, 40)
    assert a == b and a != speech_pool.plan(1, 40)
    assert speech_pool.plan(0, 10) == a[:10]  # a smaller pool is a prefix of the bigger one
    assert not {u.voice for u in a} & {v for v, _ in digits.SPEAKERS}
    assert {u.voice for u in a} == set(speech_pool.VOICES)  # every voice in 40 files
    variants = {v.split("+")[1] for v in speech_pool.VOICES}
    assert not variants & {v.split("+")[1] for v, _ in digits.SPEAKERS}
    for u in a:
        assert speech_pool.SPEEDS[0] <= u.speed <= speech_pool.SPEEDS[1]
        assert speech_pool.PITCHES[0] <= u.pitch <= speech_pool.PITCHES[1]
        n = u.text.count(".") + u.text.count("?") + u.text.count("!")
        assert speech_pool.SENTENCES[0] <= n <= speech_pool.SENTENCES[1]
        assert u.rel == f"audio/{digits.speaker_id(u.voice)}/{Path(u.rel).name}"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


def test_tiny_build_is_speech_at_the_rate_and_the_same_bytes_per_seed(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    one = speech_pool.build(tmp_path / "a", seed=3, files=3)
    two = speech_pool.build(tmp_path / "b", seed=3, files=3)
    other = speech_pool.build(tmp_path / "c", seed=4, files=3)
    assert _files(one) == _files(two) and len(_files(one)) == 3
    assert _files(one) != _files(other)
    rows = common.read_csv(one / "utterances.csv")
    assert [r["path"] for r in rows] == [u.rel for u in speech_pool.plan(3, 3)]
    for r in rows:
        info = sf.info(str(one / r["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.duration >= speech_pool.MIN_S
        assert float(r["duration_s"]) == pytest.approx(info.duration, abs=1e-3)
        x, _ = sf.read(str(one / r["path"]), dtype="float32")
        assert np.max(np.abs(x)) == pytest.approx(digits.PEAK, abs=1e-3)
        # speech, not silence: most 50 ms frames within 40 dB of the loudest
        frames = x[: len(x) // 1102 * 1102].reshape(-1, 1102)
        rms = np.sqrt(np.mean(frames**2, axis=1))
        assert np.mean(rms > rms.max() * 0.01) > 0.5
        # rough speaking rate: espeak's words per minute within a factor 2 (pauses, trimming)
        wpm = len(speech_pool.words_of(r["text"])) / (info.duration / 60)
        assert 0.5 * int(r["speed"]) < wpm < 1.5 * int(r["speed"])
    speech_pool.build(tmp_path / "a", seed=3, files=2)  # a smaller pool prunes the extra file
    assert sorted(_files(one)) == sorted(u.rel for u in speech_pool.plan(3, 2))
