"""Build ``instruments_freepats/``: GM instrument families rendered by timidity from freepats.

A third source of real recorded instruments, apart from both soundfonts of ``instruments/``:
Debian's ``freepats`` (sampled instruments as GUS patches) played by ``timidity`` through a
config that maps only freepats (``timidity_freepats.cfg``, written here; it is read after the
system's default config, so its mappings win for every program rendered). Freepats covers only
part of General MIDI: just the programs its ``freepats.cfg`` maps in bank 0 are rendered, each
with the clips of ``instruments.py`` (three pitches, a held note and a four-note phrase, soft and
loud: 6 clips of 3 s, mono 22050 Hz, peak-normalised). Silent clips are dropped, and a family is
kept only when at least ``MIN_PROGRAMS`` of its programs render a clip, so that train, valid and
test each get whole programs of it (split within each family, seeded, as ``instruments.py``
does). With Debian's freepats 20060219 that keeps 56 programs of 9 families (piano 7,
chromatic_percussion 5, organ 4, guitar 7, bass 7, strings 6, brass 6, reed 8, pipe 6 of 8 each)
and drops ensemble (2 programs), synth_lead (2), synth_pad (3) and ethnic (1). Output:

* ``labels.csv`` (path,label,split): label = GM family; every clip of a program in one split.
* ``folds.csv`` (path,label,split,group): the same clips in 4 cross-validation folds of whole
  programs, stratified by family (``audioclr.evaluate.folds``); group = the program.
* ``programs.csv`` (program, family, patch, clips, split, fold): every freepats program of the 13
  pitched GM families, with ``split`` = ``dropped`` for those of a family left out.

Usage:
    python benchmarks/datasets/freepats.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common  # noqa: E402
from benchmarks.datasets.gm import family_pitches, gm_family, kept_programs  # noqa: E402
from benchmarks.datasets.planning import FOLDS, fold_groups, split_groups  # noqa: E402
from benchmarks.datasets.render import (  # noqa: E402
    CLIP_S,
    NOTE_S,
    SLOT_S,
    Rendering,
    cut_clips,
    plan_renderings,
    write_midi,
)

PACKAGE = "freepats"
CONFIG_IN_PACKAGE = "etc/timidity/freepats.cfg"
PATCHES_IN_PACKAGE = "usr/share/midi/freepats"
SAMPLE_RATE = 22050
FRACTIONS = (0.6, 0.15, 0.25)
MIN_PROGRAMS = 4  # per family: at least 2 train, 1 valid, 1 test programs
SILENT_PEAK = 1e-3  # timidity writes 16-bit PCM: a clip peaking below -60 dBFS is silence
_PROGRAM_LINE = re.compile(r"^\s*(\d+)\s+(\S+)")


def freepats_programs(cfg_text: str, bank: int = 0) -> dict[int, str]:
    """``{program: patch file}`` that a timidity config maps in tone ``bank`` (drumsets and
    other banks ignored)."""
    out: dict[int, str] = {}
    section: tuple[str, int] | None = None
    for line in cfg_text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in ("bank", "drumset") and len(words) > 1 and words[1].isdigit():
            section = (words[0], int(words[1]))
            continue
        match = _PROGRAM_LINE.match(line)
        if match and section == ("bank", bank):
            out[int(match.group(1))] = match.group(2)
    return dict(sorted(out.items()))


def timidity_config(freepats_dir: Path) -> str:
    """freepats' own config with its ``dir`` pointed at the unpacked patches."""
    text = (freepats_dir / CONFIG_IN_PACKAGE).read_text()
    body = [ln for ln in text.splitlines() if not ln.strip().startswith("dir ")]
    return f"dir {(freepats_dir / PATCHES_IN_PACKAGE).resolve()}\n" + "\n".join(body) + "\n"


def kept_families(programs_ok: Sequence[int], min_programs: int = MIN_PROGRAMS) -> list[str]:
    """Families with at least ``min_programs`` of ``programs_ok`` (programs that rendered)."""
    counts = Counter(gm_family(p) for p in programs_ok)
    return sorted(f for f, n in counts.items() if n >= min_programs)


def program_splits(programs: Sequence[int], seed: int = 0) -> dict[int, str]:
    """Split of each program: whole programs, stratified by family, seeded."""
    by_name = split_groups({f"{p:03d}": gm_family(p) for p in programs}, FRACTIONS, seed)
    return {int(name): split for name, split in by_name.items()}


def clip_path(program: int, k: int, r: Rendering) -> str:
    """Path of one clip relative to the set's folder (posix)."""
    family = gm_family(program)
    return f"audio/{family}/p{program:03d}_{k}_{r.style}_n{r.pitch}_v{r.velocity}.wav"


def render_program(
    config: Path, program: int, renderings: list[Rendering], sample_rate: int, work: Path
) -> list[np.ndarray]:
    """Render ``renderings`` of ``program`` in one timidity call; one float32 clip each (all
    zeros when silent). Reverb and chorus are off, so nothing rings across slots."""
    mid = write_midi(work / f"program{program:03d}.mid", program, renderings)
    wav = mid.with_suffix(".wav")
    cmd = [
        "timidity", "-c", str(config), "-s", str(sample_rate), "-OwM",
        "-EFreverb=0", "-EFchorus=0", "-o", str(wav), str(mid),
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0 or not wav.is_file():
        raise common.BuildError(
            f"timidity failed on program {program}: {(res.stderr or res.stdout).strip()[-300:]}",
            hint="check that timidity runs: timidity --version",
        )
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    wav.unlink()
    if sr != sample_rate:
        raise common.BuildError(
            f"timidity wrote {sr} Hz, asked for {sample_rate} Hz", hint="-s ignored?"
        )
    # timidity drops silence before the first note: the first note starts at 0, so nothing may
    # go; a shorter file would mean the slots moved.
    if len(x) < ((len(renderings) - 1) * SLOT_S + NOTE_S - 0.1) * sr:
        raise common.BuildError(
            f"timidity rendered {len(x) / sr:.2f} s for program {program}, expected at least "
            f"{(len(renderings) - 1) * SLOT_S + NOTE_S:.1f} s",
            hint="the slots would not line up; check the MIDI file and timidity's options",
        )
    return cut_clips(x.mean(axis=1), len(renderings), sample_rate, SILENT_PEAK)


def _render_all(out: Path, config: Path, programs: list[int]) -> dict[int, list[int]]:
    """Render each program not yet done; ``{program: 1 (kept) | 0 (silent) per clip}``.

    The per-clip status is stored in a marker per program, so a rerun knows it without the
    audio (clips of dropped families are deleted)."""
    status: dict[int, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="audioclr-freepats-") as tmp:
        for program in tqdm(programs, desc="freepats", unit="program"):
            plan = plan_renderings(program, family_pitches(gm_family(program)))
            done = out / "audio" / ".done" / f"p{program:03d}"
            if not done.is_file():
                clips = render_program(config, program, plan, SAMPLE_RATE, Path(tmp))
                for k, (r, clip) in enumerate(zip(plan, clips, strict=True)):
                    if clip.any():
                        common.write_wav(out / clip_path(program, k, r), clip, SAMPLE_RATE)
                done.parent.mkdir(parents=True, exist_ok=True)
                done.write_text("".join("1" if c.any() else "0" for c in clips) + "\n")
            status[program] = [int(c) for c in done.read_text().strip()]
    return status


def build(root: Path, seed: int = 0) -> Path:
    """Build (or complete) ``root/instruments_freepats``; returns the folder. Idempotent."""
    common.ensure_tool("timidity", "timidity")
    out = root / "instruments_freepats"
    freepats_dir = common.fetch_package(PACKAGE, root)
    if not (freepats_dir / CONFIG_IN_PACKAGE).is_file():
        raise common.BuildError(
            f"{PACKAGE} has no {CONFIG_IN_PACKAGE}", hint=f"delete {freepats_dir} and rerun"
        )
    config = out / "timidity_freepats.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(timidity_config(freepats_dir))
    patches = freepats_programs(config.read_text())
    pitched = set(kept_programs())
    programs = [p for p in patches if p in pitched]
    status = _render_all(out, config, programs)
    rendered = [p for p in programs if any(status[p])]
    families = kept_families(rendered)
    kept = [p for p in rendered if gm_family(p) in families]
    splits = program_splits(kept, seed)
    by_name = fold_groups({f"{p:03d}": gm_family(p) for p in kept}, FOLDS, seed)
    folds = {int(name): fold for name, fold in by_name.items()}
    rows, keep_files = [], set()
    for program in kept:
        plan = plan_renderings(program, family_pitches(gm_family(program)))
        for k, r in enumerate(plan):
            rel = clip_path(program, k, r)
            if status[program][k]:
                rows.append((rel, gm_family(program), splits[program]))
                keep_files.add(rel)
            else:
                print(f"  dropped silent clip {rel}")
    for family_dir in sorted((out / "audio").glob("*")):
        if family_dir.name == ".done" or not family_dir.is_dir():
            continue
        for wav in sorted(family_dir.glob("*.wav")):
            if wav.relative_to(out).as_posix() not in keep_files:
                wav.unlink()
        if not any(family_dir.iterdir()):
            shutil.rmtree(family_dir)
    common.write_csv(out / "labels.csv", ("path", "label", "split"), rows)
    program_of = {rel: Path(rel).name[:4] for rel, _, _ in rows}  # "p000": the group
    fold_rows = [
        (rel, label, f"fold{folds[int(program_of[rel][1:])]}", program_of[rel])
        for rel, label, _ in rows
    ]
    common.write_csv(out / "folds.csv", ("path", "label", "split", "group"), fold_rows)
    common.write_csv(
        out / "programs.csv",
        ("program", "family", "patch", "clips", "split", "fold"),
        [
            (p, gm_family(p), patches[p], sum(status[p]), splits.get(p, "dropped"), folds.get(p))
            for p in programs
        ],
    )
    _print_coverage(programs, rendered, families)
    common.print_summary(
        "instruments_freepats/labels.csv (timidity + freepats)",
        [r[1] for r in rows],
        [r[2] for r in rows],
        CLIP_S * len(rows),
    )
    return out


def _print_coverage(programs: list[int], rendered: list[int], families: list[str]) -> None:
    """Per pitched GM family: programs freepats maps, programs that rendered, kept or not."""
    mapped, ok = Counter(map(gm_family, programs)), Counter(map(gm_family, rendered))
    print(f"\nfreepats coverage of the pitched GM families (kept: >= {MIN_PROGRAMS} programs)")
    print(f"  {'family':<22}{'mapped':>7}{'rendered':>9}  kept")
    for family in sorted({gm_family(p) for p in kept_programs()}):
        flag = "yes" if family in families else "no"
        print(f"  {family:<22}{mapped[family]:>5}/8{ok[family]:>9}  {flag}")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR --seed N``."""
    args = common.parse_args(__doc__, argv, seed=True)
    build(args.root, args.seed)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
