"""Build ``digits/``: spoken digits zero..nine by espeak-ng, a keyword task like Speech Commands.

12 speakers (an English accent + a voice variant, 7 male, 5 female) x 10 digits x 2 speeds x 2
pitches = 480 clips, 16-bit mono WAV at 22050 Hz, each trimmed of silence, peak-normalised
to -6 dBFS and centred in ``CLIP_S`` seconds. Speakers are split whole (stratified by gender:
8 train, 2 valid, 2 test), so every clip of one voice is in one split.

Output: ``digits/audio/<speaker>/<digit>_s<speed>_p<pitch>.wav``, ``digits/labels.csv``
(path,label,split), ``digits/folds.csv`` (path,label,split,group: 6 cross-validation folds of
whole speakers, stratified by gender, for ``audioclr.evaluate.folds``; group = the speaker)
and ``digits/speakers.csv`` (speaker, voice, gender, split, fold).

Usage:
    python benchmarks/datasets/digits.py [--out DIR]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common  # noqa: E402
from benchmarks.datasets.planning import fold_groups, split_groups  # noqa: E402

SAMPLE_RATE = 22050
CLIP_S = 1.5
PEAK = 0.5
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPEEDS = (130, 175)  # words per minute
PITCHES = (35, 65)  # espeak-ng pitch, 0..99
FRACTIONS = (0.6, 0.2, 0.2)
SPEAKERS: tuple[tuple[str, str], ...] = (  # (espeak-ng voice, gender)
    ("en-us+m1", "m"),
    ("en-gb+m2", "m"),
    ("en-gb-scotland+m3", "m"),
    ("en-gb-x-rp+m4", "m"),
    ("en-029+m5", "m"),
    ("en-gb-x-gbcwmd+m6", "m"),
    ("en-us-nyc+m7", "m"),
    ("en-us+f1", "f"),
    ("en-gb+f2", "f"),
    ("en-gb-scotland+f3", "f"),
    ("en-gb-x-rp+f4", "f"),
    ("en-gb-x-gbclan+f5", "f"),
)


def speaker_id(voice: str) -> str:
    """A folder-safe speaker id: ``en-us+m1`` -> ``en-us_m1``."""
    return voice.replace("+", "_")


def speaker_splits(seed: int = 0) -> dict[str, str]:
    """Split of every speaker id, whole speakers stratified by gender."""
    return split_groups({speaker_id(v): g for v, g in SPEAKERS}, FRACTIONS, seed)


SPEAKER_FOLDS = 6  # cross-validation: 2 speakers (one of each gender) per fold


def speaker_folds(seed: int = 0) -> dict[str, int]:
    """Cross-validation fold of every speaker id, whole speakers stratified by gender."""
    return fold_groups({speaker_id(v): g for v, g in SPEAKERS}, SPEAKER_FOLDS, seed)


def fit_clip(
    x: np.ndarray, sample_rate: int, clip_s: float = CLIP_S, rel_db: float = -40.0
) -> np.ndarray:
    """Trim ``x`` ``(samples,)`` to within ``rel_db`` of its peak, normalise, centre in ``clip_s``.

    Speech longer than ``clip_s`` keeps its length (nothing is cut off a word).
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        raise ValueError("silent speech")
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (rel_db / 20))
    word = x[loud[0] : loud[-1] + 1] * (PEAK / peak)
    n = max(int(round(clip_s * sample_rate)), len(word))
    out = np.zeros(n, dtype=np.float32)
    start = (n - len(word)) // 2
    out[start : start + len(word)] = word
    return out


def speak(voice: str, word: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    """espeak-ng's rendering of ``word``: float32 ``(samples,)`` at 22050 Hz."""
    wav = tmp / "say.wav"
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), word]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0 or not wav.is_file():
        raise common.BuildError(
            f"espeak-ng failed for voice {voice!r}: {res.stderr.strip()[-300:]}",
            hint="check the voice exists: espeak-ng --voices=en",
        )
    x, sr = sf.read(str(wav), dtype="float32")
    if sr != SAMPLE_RATE:
        raise common.BuildError(
            f"espeak-ng wrote {sr} Hz for {voice!r}, expected {SAMPLE_RATE}",
            hint="use espeak-ng's own voices, not mbrola ones",
        )
    return x


def build(root: Path, seed: int = 0) -> Path:
    """Build (or complete) ``root/digits``; returns the folder. Idempotent (keeps clips on disk)."""
    common.ensure_tool("espeak-ng", "espeak-ng")
    out = root / "digits"
    splits, folds = speaker_splits(seed), speaker_folds(seed)
    jobs = [(v, d, s, p) for v, _ in SPEAKERS for d in DIGITS for s in SPEEDS for p in PITCHES]
    rows, seconds = [], 0.0
    with tempfile.TemporaryDirectory(prefix="audioclr-digits-") as tmp:
        for voice, digit, speed, pitch in tqdm(jobs, desc="digits", unit="clip"):
            rel = f"audio/{speaker_id(voice)}/{digit}_s{speed}_p{pitch}.wav"
            if not (out / rel).is_file():
                try:
                    clip = fit_clip(speak(voice, digit, speed, pitch, Path(tmp)), SAMPLE_RATE)
                except ValueError:
                    print(f"  dropped silent clip {rel}")
                    continue
                common.write_wav(out / rel, clip, SAMPLE_RATE)
            seconds += sf.info(str(out / rel)).duration
            rows.append((rel, digit, splits[speaker_id(voice)]))
    common.write_csv(out / "labels.csv", ("path", "label", "split"), rows)
    speaker_of = {rel: rel.split("/")[1] for rel, _, _ in rows}  # the group
    fold_rows = [
        (rel, digit, f"fold{folds[speaker_of[rel]]}", speaker_of[rel]) for rel, digit, _ in rows
    ]
    common.write_csv(out / "folds.csv", ("path", "label", "split", "group"), fold_rows)
    common.write_csv(
        out / "speakers.csv",
        ("speaker", "voice", "gender", "split", "fold"),
        [(speaker_id(v), v, g, splits[speaker_id(v)], folds[speaker_id(v)]) for v, g in SPEAKERS],
    )
    common.print_summary("digits/labels.csv", [r[1] for r in rows], [r[2] for r in rows], seconds)
    for split in ("train", "valid", "test"):
        print(
            f"  {split} speakers: {', '.join(s for s, sp in sorted(splits.items()) if sp == split)}"
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR --seed N``."""
    args = common.parse_args(__doc__, argv, seed=True)
    build(args.root, args.seed)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
