"""Build ``instruments/``: GM instrument families rendered from two real-sample soundfonts.

Each of the 104 programs of the 13 pitched GM families gets 6 clips of 3 s at 22050 Hz (three
pitches, a held note and a four-note phrase, soft and loud). Programs are split *within each
family* (5 train, 1 valid, 2 test), so every rendering of one preset stays in one split:

* ``labels.csv``: train and valid rendered with soundfont A (FluidR3_GM), test = the test
  programs rendered with soundfont B (TimGM6mb by default): other presets *and* other recordings.
* ``cross_soundfont_test.csv``: those soundfont-B test rows alone.
* ``labels_same_soundfont.csv``: same train/valid, test = the test programs from soundfont A,
  so the gap between the two test scores measures the cost of the change of recordings.
* ``folds.csv`` (4-fold cross-validation, ``audioclr.evaluate.folds``): every program's
  soundfont-A clips in its fold (``foldK``, 2 programs of each family per fold), and the same
  programs rendered with soundfont B as that fold's test-only stand-ins (``foldK-test``): each
  fold is tested on soundfont B after training on the other folds' soundfont-A clips, so all
  104 programs are tested once (4x the test programs of ``labels.csv``). Its ``group``
  column names the program, so probe intervals resample whole programs.
* ``folds_same_soundfont.csv``: the soundfont-A clips alone, in the same folds.
* ``programs.csv``: program, family, split, fold.

Usage:
    python benchmarks/datasets/instruments.py [--out DIR] [--soundfont-b timgm6mb|musescore]
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common  # noqa: E402
from benchmarks.datasets.gm import family_pitches, gm_family, kept_programs  # noqa: E402
from benchmarks.datasets.planning import FOLDS, fold_groups, split_groups  # noqa: E402
from benchmarks.datasets.render import CLIP_S, Rendering, plan_renderings, render_program  # noqa: E402

SAMPLE_RATE = 22050
FRACTIONS = (0.6, 0.15, 0.25)
SOUNDFONTS = {  # key -> (Debian package, file inside it)
    "fluidr3": ("fluid-soundfont-gm", "usr/share/sounds/sf2/FluidR3_GM.sf2"),
    "timgm6mb": ("timgm6mb-soundfont", "usr/share/sounds/sf2/TimGM6mb.sf2"),
    "musescore": (
        "musescore-general-soundfont-small",
        "usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    ),
}
SOUNDFONT_A = "fluidr3"
SOUNDFONTS_B = ("timgm6mb", "musescore")  # --soundfont-b choices, the first the default


def program_splits(seed: int = 0) -> dict[int, str]:
    """Split of every kept GM program, whole programs stratified by family (5/1/2 of 8)."""
    by_name = split_groups({f"{p:03d}": gm_family(p) for p in kept_programs()}, FRACTIONS, seed)
    return {int(name): split for name, split in by_name.items()}


def program_folds(seed: int = 0) -> dict[int, int]:
    """Cross-validation fold of every kept GM program (2 of each family's 8 per fold)."""
    by_name = fold_groups({f"{p:03d}": gm_family(p) for p in kept_programs()}, FOLDS, seed)
    return {int(name): fold for name, fold in by_name.items()}


def clip_path(sf_key: str, program: int, k: int, r: Rendering) -> str:
    """Path of one clip relative to the instruments folder (posix)."""
    family = gm_family(program)
    return f"audio/{sf_key}/{family}/p{program:03d}_{k}_{r.style}_n{r.pitch}_v{r.velocity}.wav"


def soundfont_file(key: str, root: Path) -> Path:
    """The soundfont ``key`` unpacked from its Debian package into the cache."""
    pkg, inner = SOUNDFONTS[key]
    path = common.fetch_package(pkg, root) / inner
    if not path.is_file():
        raise common.BuildError(
            f"{pkg} has no {inner}", hint=f"delete {root / 'debian' / pkg} and rerun"
        )
    return path


def _render_jobs(out: Path, jobs: list[tuple[str, int]], fonts: dict[str, Path]) -> dict[str, int]:
    """Render each (soundfont, program) not marked done; returns {clip path: 1 kept | 0 silent}."""
    status: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="audioclr-instr-") as tmp:
        for sf_key, program in tqdm(jobs, desc="instruments", unit="program"):
            plan = plan_renderings(program, family_pitches(gm_family(program)))
            rels = [clip_path(sf_key, program, k, r) for k, r in enumerate(plan)]
            done = out / "audio" / sf_key / ".done" / f"p{program:03d}"
            if not done.is_file():
                clips = render_program(fonts[sf_key], program, plan, SAMPLE_RATE, Path(tmp))
                for rel, clip in zip(rels, clips, strict=True):
                    if clip.any():
                        common.write_wav(out / rel, clip, SAMPLE_RATE)
                done.parent.mkdir(parents=True, exist_ok=True)
                done.touch()
            status.update({rel: int((out / rel).is_file()) for rel in rels})
    return status


def build(root: Path, soundfont_b: str = "timgm6mb", seed: int = 0) -> Path:
    """Build (or complete) ``root/instruments``; returns the folder. Idempotent."""
    common.ensure_tool("fluidsynth", "fluidsynth")
    out = root / "instruments"
    fonts = {key: soundfont_file(key, root) for key in (SOUNDFONT_A, soundfont_b)}
    splits = program_splits(seed)
    folds = program_folds(seed)
    jobs = [(SOUNDFONT_A, p) for p in sorted(splits)]
    jobs += [(soundfont_b, p) for p in sorted(splits) if splits[p] == "test"]
    b_all = [(soundfont_b, p) for p in sorted(splits)]  # every program: the folds' stand-ins
    status = _render_jobs(out, jobs + [j for j in b_all if j not in jobs], fonts)
    rows: dict[str, list[tuple[str, str, str]]] = {"a_trainvalid": [], "a_test": [], "b_test": []}
    for sf_key, program in jobs:
        plan = plan_renderings(program, family_pitches(gm_family(program)))
        for k, r in enumerate(plan):
            rel = clip_path(sf_key, program, k, r)
            if not status[rel]:
                print(f"  dropped silent clip {rel}")
                continue
            split = splits[program]
            group = (
                "b_test"
                if sf_key != SOUNDFONT_A
                else "a_test"
                if split == "test"
                else "a_trainvalid"
            )
            rows[group].append((rel, gm_family(program), split))
    header = ("path", "label", "split")
    common.write_csv(out / "labels.csv", header, rows["a_trainvalid"] + rows["b_test"])
    common.write_csv(out / "cross_soundfont_test.csv", header, rows["b_test"])
    common.write_csv(
        out / "labels_same_soundfont.csv", header, rows["a_trainvalid"] + rows["a_test"]
    )
    fold_rows: dict[str, list[tuple[str, str, str, str]]] = {"a": [], "b": []}
    for sf_key, program in [(SOUNDFONT_A, p) for p in sorted(splits)] + b_all:
        plan = plan_renderings(program, family_pitches(gm_family(program)))
        stand_in = sf_key != SOUNDFONT_A
        for k, r in enumerate(plan):
            rel = clip_path(sf_key, program, k, r)
            if status[rel]:
                fold = f"fold{folds[program]}" + ("-test" if stand_in else "")
                row = (rel, gm_family(program), fold, f"p{program:03d}")  # group: the program
                fold_rows["b" if stand_in else "a"].append(row)
    fold_header = (*header, "group")
    common.write_csv(out / "folds.csv", fold_header, fold_rows["a"] + fold_rows["b"])
    common.write_csv(out / "folds_same_soundfont.csv", fold_header, fold_rows["a"])
    common.write_csv(
        out / "programs.csv",
        ("program", "family", "split", "fold"),
        [(p, gm_family(p), splits[p], folds[p]) for p in sorted(splits)],
    )
    main_rows = rows["a_trainvalid"] + rows["b_test"]
    common.print_summary(
        f"instruments/labels.csv (train/valid: {SOUNDFONT_A}, test: {soundfont_b})",
        [r[1] for r in main_rows],
        [r[2] for r in main_rows],
        CLIP_S * len(main_rows),
    )
    print(f"  + labels_same_soundfont.csv test: {len(rows['a_test'])} clips from {SOUNDFONT_A}")
    print(
        f"  + folds.csv: {len(fold_rows['a'])} {SOUNDFONT_A} clips in {FOLDS} folds, "
        f"{len(fold_rows['b'])} {soundfont_b} stand-ins"
    )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR --soundfont-b KEY --seed N``."""
    args = common.parse_args(__doc__, argv, seed=True, soundfonts=SOUNDFONTS_B)
    build(args.root, args.soundfont_b, args.seed)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
