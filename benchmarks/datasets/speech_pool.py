"""Build ``speech_pool/``: unlabelled English speech by espeak-ng, a pretraining pool of speech.

The speech counterpart of ``music_pool/audio/pretrain`` for the cross-domain benchmark
(``benchmarks/cross_domain.yaml``): ``FILES`` files of 8-12 generated sentences each (~35 s a
file, ~1.7 h in all), 16-bit mono WAV at 22050 Hz, trimmed of silence, peak-normalised to
-6 dBFS, each at least ``MIN_S`` seconds (the pretraining crops are 1.5 s). As many files as
``music_pool/audio/pretrain`` has tracks (182): pretraining draws its pairs per track, so a run
on both pools draws about half its crops from each. Deterministic from ``--seed``: the same
seed writes the same bytes.

Disjoint from the digits task (``digits.py``):

- the text: sentences from a fixed vocabulary with no digit word, no homophone of one ("to",
  "for", "won", "ate", "oh", ...) and no word that contains one ("someone", "weight");
- the voices: espeak-ng has only the 8 English accents digits already uses, so the accents are
  reused, but every voice here pairs an accent with a named variant (``adam``, ``Andrea``,
  ``klatt2`` ...) and digits only uses the numbered variants ``m1``-``m7`` and ``f1``-``f5``;
- speeds and pitches are drawn per file from ranges (``SPEEDS``, ``PITCHES``), not digits' four
  fixed pairs.

Output: ``speech_pool/audio/<voice>/utt_NNNN.wav`` (the pool to pretrain on) and
``speech_pool/utterances.csv`` (path, voice, speed, pitch, duration_s, text). Building takes
about a minute on one core (one espeak-ng call per file).

Usage:
    python benchmarks/datasets/speech_pool.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common, digits  # noqa: E402

SAMPLE_RATE = digits.SAMPLE_RATE
FILES = 180
MIN_S = 4.0
SENTENCES = (8, 12)  # sentences per file, inclusive
SPEEDS = (120, 200)  # words per minute, inclusive
PITCHES = (20, 80)  # espeak-ng pitch, inclusive
VOICES = (  # an accent + a named variant (digits uses m1..m7 and f1..f5 only)
    "en-us+adam",
    "en-us+Andrea",
    "en-gb+david",
    "en-gb+belinda",
    "en-gb-scotland+klatt2",
    "en-gb-scotland+Annie",
    "en-gb-x-rp+edward",
    "en-gb-x-rp+steph",
    "en-029+john",
    "en-029+linda",
    "en-gb-x-gbcwmd+max",
    "en-gb-x-gbcwmd+Alicia",
    "en-us-nyc+paul",
    "en-us-nyc+anika",
    "en-gb-x-gbclan+robert",
    "en-gb-x-gbclan+aunty",
)
# words the text must never hold: the digits and their homophones / alternative names
FORBIDDEN = frozenset(
    [*digits.DIGITS, "oh", "owe", "nought", "naught", "nil", "won", "to", "too", "for", "fore"]
    + ["ate"]
)
NOUNS = (
    "gardener", "library", "bicycle", "child", "door", "river", "teacher", "garden", "window",
    "captain", "village", "basket", "mountain", "painter", "kitchen", "forest", "candle",
    "letter", "market", "rabbit", "doctor", "island", "bridge", "violin", "farmer", "pocket",
    "castle", "sailor", "lantern", "meadow", "baker", "harbour", "engine", "student", "mirror",
    "orchard", "tailor", "blanket", "valley", "kettle", "poet", "ladder", "camera", "desert",
    "puppy", "pilot", "window sill", "station", "umbrella", "drummer", "museum", "bucket",
)  # fmt: skip
ADJECTIVES = (
    "quiet", "old", "small", "red", "curious", "heavy", "bright", "gentle", "tired", "happy",
    "narrow", "golden", "silent", "busy", "wooden", "clever", "cold", "distant", "green",
    "famous", "humble", "shiny", "sleepy", "proud", "ancient", "little", "yellow", "brave",
    "dusty", "windy", "purple", "strange", "lucky", "patient", "careful", "polite",
)  # fmt: skip
VERBS = (
    "painted", "opened", "carried", "watched", "cleaned", "followed", "visited", "pushed",
    "found", "painted over", "borrowed", "repaired", "noticed", "wrapped", "described",
    "ignored", "admired", "closed", "dropped", "lifted", "collected", "remembered", "chased",
    "photographed", "measured", "greeted", "explored", "washed", "delivered", "protected",
)  # fmt: skip
ADVERBS = (
    "carefully", "slowly", "quickly", "quietly", "happily", "suddenly", "gently", "boldly",
    "eagerly", "calmly", "rarely", "proudly", "nearly", "almost", "finally", "warmly",
)  # fmt: skip
PLACES = (
    "behind the", "near the", "under the", "beside the", "across the", "inside the",
    "outside the", "above the", "below the", "along the", "beyond the", "around the",
    "through the", "past the", "in the", "on the",
)  # fmt: skip
TIMES = (
    "yesterday", "this morning", "last summer", "at dawn", "in the evening", "on Sunday",
    "after lunch", "at midnight", "in winter", "every spring", "later that day", "at noon",
)  # fmt: skip


@dataclass(frozen=True)
class Utterance:
    """One file of the pool: where it goes, how espeak-ng says it, and what it says."""

    rel: str
    voice: str
    speed: int
    pitch: int
    text: str


def _pick(rng: np.random.Generator, words: Sequence[str]) -> str:
    return words[int(rng.integers(len(words)))]


def sentence(rng: np.random.Generator) -> str:
    """One sentence from the fixed vocabulary, e.g. ``The quiet gardener painted the red
    door behind the library.`` (one of five shapes: statement, question, time-first ...)."""
    a, n, v, d = (partial(_pick, rng, w) for w in (ADJECTIVES, NOUNS, VERBS, ADVERBS))
    p, t = _pick(rng, PLACES), _pick(rng, TIMES)
    shape = int(rng.integers(5))
    if shape == 0:
        return f"The {a()} {n()} {v()} the {a()} {n()} {p} {n()}."
    if shape == 1:
        return f"{t.capitalize()}, a {a()} {n()} {d()} {v()} the {n()}."
    if shape == 2:
        return f"Why did the {n()} leave the {a()} {n()} {p} {n()}?"
    if shape == 3:
        return f"The {n()} {d()} {v()} a {a()} {n()} {t}."
    return f"What a {a()} {n()} the {n()} {v()} {p} {n()}!"


def plan(seed: int = 0, files: int = FILES) -> list[Utterance]:
    """The pool's files, a function of ``seed`` and ``files`` only: voices in turn, speed,
    pitch and ``SENTENCES`` sentences drawn per file."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(files):
        voice = VOICES[i % len(VOICES)]
        speed = int(rng.integers(SPEEDS[0], SPEEDS[1] + 1))
        pitch = int(rng.integers(PITCHES[0], PITCHES[1] + 1))
        n = int(rng.integers(SENTENCES[0], SENTENCES[1] + 1))
        text = " ".join(sentence(rng) for _ in range(n))
        rel = f"audio/{digits.speaker_id(voice)}/utt_{i:04d}.wav"
        out.append(Utterance(rel, voice, speed, pitch, text))
    return out


def words_of(text: str) -> list[str]:
    """Lower-case words of ``text`` (punctuation dropped)."""
    return "".join(c.lower() if c.isalpha() else " " for c in text).split()


def digit_words(text: str) -> list[str]:
    """The words of ``text`` that are forbidden (a digit, a homophone, or containing a digit)."""
    return [w for w in words_of(text) if w in FORBIDDEN or any(d in w for d in digits.DIGITS)]


def render(u: Utterance, tmp: Path) -> np.ndarray:
    """espeak-ng's rendering of ``u``, trimmed, normalised, at least ``MIN_S`` s ``(samples,)``."""
    return digits.fit_clip(digits.speak(u.voice, u.text, u.speed, u.pitch, tmp), SAMPLE_RATE, MIN_S)


def build(root: Path, seed: int = 0, files: int = FILES) -> Path:
    """Build (or complete) ``root/speech_pool``; returns the folder. Idempotent: keeps files on
    disk and removes WAVs that are not in the plan (a bigger earlier build)."""
    common.ensure_tool("espeak-ng", "espeak-ng")
    out = root / "speech_pool"
    utterances = plan(seed, files)
    bad = [u.rel for u in utterances if digit_words(u.text)]
    if bad:  # the vocabulary is fixed: this is a bug in the word lists
        raise common.BuildError(f"digit words in {bad[:3]}", hint="fix speech_pool's word lists")
    wanted = {u.rel for u in utterances}
    for stray in sorted((out / "audio").rglob("*.wav")):
        if stray.relative_to(out).as_posix() not in wanted:
            stray.unlink()
    rows, seconds = [], 0.0
    with tempfile.TemporaryDirectory(prefix="audioclr-speech-") as tmp:
        for u in tqdm(utterances, desc="speech_pool", unit="file"):
            if not (out / u.rel).is_file():
                common.write_wav(out / u.rel, render(u, Path(tmp)), SAMPLE_RATE)
            duration = sf.info(str(out / u.rel)).duration
            seconds += duration
            rows.append((u.rel, u.voice, u.speed, u.pitch, f"{duration:.3f}", u.text))
    common.write_csv(
        out / "utterances.csv", ("path", "voice", "speed", "pitch", "duration_s", "text"), rows
    )
    shortest = min(float(r[4]) for r in rows)
    print(
        f"\nspeech_pool: {len(rows)} files, {len(VOICES)} voices, {seconds / 3600:.2f} h in all, "
        f"shortest {shortest:.1f} s",
        flush=True,
    )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR --seed N``."""
    args = common.parse_args(__doc__, argv, seed=True)
    build(args.root, args.seed)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
