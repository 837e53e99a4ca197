"""Listen-free sanity checks of built data sets: every listed file reads, has the right rate and
length, is not silent, and no near-duplicate group (program, speaker, track) straddles splits.

Example:
    >>> csv_path = root / "digits" / "labels.csv"
    >>> report = check_labelled(csv_path, group_of=digit_speaker)  # doctest: +SKIP
    >>> report.problems
    []

Usage:
    python benchmarks/datasets/check.py [--out DIR]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common  # noqa: E402

SILENT_DB = -50.0
SEGMENT_MIN_S = 9.9


@dataclass
class CheckReport:
    """What a check found: clip count, seconds, loudness range and a list of problems."""

    name: str
    clips: int = 0
    seconds: float = 0.0
    rms_db: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the console."""
        status = "OK" if not self.problems else f"{len(self.problems)} PROBLEMS"
        if not self.rms_db:  # a check of labels only: no audio read
            return f"{self.name}: {self.clips} rows: {status}"
        lo, hi = min(self.rms_db), max(self.rms_db)
        return (
            f"{self.name}: {self.clips} clips, {self.seconds / 60:.1f} min, "
            f"RMS {lo:.1f}..{hi:.1f} dBFS: {status}"
        )


def check_clip(path: Path, sample_rate: int, min_s: float, report: CheckReport) -> None:
    """Read ``path`` and add its duration, level and any problem to ``report``."""
    if not path.is_file():
        report.problems.append(f"missing {path}")
        return
    x, sr = sf.read(str(path), dtype="float32")
    seconds = len(x) / sr
    level = common.rms_db(np.asarray(x))
    report.clips += 1
    report.seconds += seconds
    report.rms_db.append(level)
    if sr != sample_rate:
        report.problems.append(f"{path}: {sr} Hz, expected {sample_rate}")
    if seconds < min_s:
        report.problems.append(f"{path}: {seconds:.2f} s < {min_s} s")
    if level < SILENT_DB:
        report.problems.append(f"{path}: silent ({level:.1f} dBFS RMS)")


def check_labelled(
    csv_path: Path, group_of: Callable[[str], str], sample_rate: int = 22050, min_s: float = 1.0
) -> CheckReport:
    """Check every row of a ``path,label,split`` CSV and that each group sits in one split (or
    one fold: a fold's test-only stand-ins, ``foldK-test``, count as fold K)."""
    if not csv_path.is_file():
        raise common.BuildError(
            f"{csv_path} not found", hint="run python benchmarks/datasets/build_all.py"
        )
    report = CheckReport(csv_path.parent.name + "/" + csv_path.name)
    splits_of: dict[str, set[str]] = defaultdict(set)
    for row in common.read_csv(csv_path):
        check_clip(csv_path.parent / row["path"], sample_rate, min_s, report)
        splits_of[group_of(row["path"])].add(row.get("split", "").removesuffix("-test"))
    report.problems += [
        f"group {g} in splits {sorted(s)}" for g, s in splits_of.items() if len(s) > 1
    ]
    return report


def instrument_program(rel: str) -> str:
    """``audio/fluidr3/piano/p003_0_note_n48_v70.wav`` -> ``p003``."""
    return Path(rel).name.split("_")[0]


def digit_speaker(rel: str) -> str:
    """``audio/en-us_m1/seven_s130_p35.wav`` -> ``en-us_m1``."""
    return Path(rel).parent.name


def check_release_labels(pool: Path) -> CheckReport:
    """``segments_release_labels.csv`` lists the segments of ``segments_labels.csv`` (same paths,
    same order), each labelled with the source package of its track in ``tracks.csv``, and
    every segment comes from a held-out track (clips are read by the segments check)."""
    csv_path = pool / "segments_release_labels.csv"
    if not csv_path.is_file():
        raise common.BuildError(
            f"{csv_path} not found", hint="run python benchmarks/datasets/build_all.py"
        )
    report = CheckReport("music_pool/segments_release_labels.csv")
    releases = common.read_csv(csv_path)
    by_track = common.read_csv(pool / "segments_labels.csv")
    track_rows = {
        Path(*Path(t["path"]).parts[2:]).with_suffix("").as_posix(): t  # audio/<split>/<id>.ext
        for t in common.read_csv(pool / "tracks.csv")
    }
    report.clips = len(releases)
    if [r["path"] for r in releases] != [r["path"] for r in by_track]:
        report.problems.append("release and track label files list different segments")
    for rel, tr in zip(releases, by_track, strict=False):
        track = track_rows.get(tr["label"])
        if track is None:
            report.problems.append(f"{rel['path']}: track {tr['label']} not in tracks.csv")
        elif track["source_package"] != rel["label"]:
            report.problems.append(
                f"{rel['path']}: release {rel['label']}, its track's {track['source_package']}"
            )
        elif track["split"] != "heldout":
            report.problems.append(f"{rel['path']}: from pretraining track {tr['label']}")
    return report


def check_all(root: Path) -> list[CheckReport]:
    """Check every set under ``root``; prints one line each and returns the reports."""
    reports = [
        check_labelled(root / "instruments" / "labels.csv", instrument_program, min_s=2.0),
        check_labelled(root / "instruments" / "labels_same_soundfont.csv", instrument_program),
        check_labelled(root / "instruments_freepats" / "labels.csv", instrument_program, min_s=2.0),
        check_labelled(root / "digits" / "labels.csv", digit_speaker),
        check_labelled(root / "instruments" / "folds.csv", instrument_program),
        check_labelled(root / "instruments_freepats" / "folds.csv", instrument_program),
        check_labelled(root / "digits" / "folds.csv", digit_speaker),
        check_labelled(
            root / "music_pool" / "segments_labels.csv", lambda rel: "all", min_s=SEGMENT_MIN_S
        ),
        check_release_labels(root / "music_pool"),
    ]
    for report in reports:
        print(report.line())
        for problem in report.problems[:10]:
            print(f"  {problem}")
    return reports


def require_clean(reports: Sequence[CheckReport]) -> None:
    """Raise ``BuildError`` when any report lists a problem (each was printed already).

    Example:
        >>> require_clean(check_all(root))
    """
    bad = sum(len(r.problems) for r in reports)
    if bad:
        raise common.BuildError(
            f"{bad} problems in the built data sets", hint="see the lines above"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR``; exits non-zero when a check fails."""
    require_clean(check_all(common.parse_args(__doc__, argv).root))


if __name__ == "__main__":
    sys.exit(common.run_main(main))
