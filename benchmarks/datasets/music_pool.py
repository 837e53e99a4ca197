"""Build ``music_pool/``: unlabeled real music from Debian game soundtracks, and retrieval sets.

Each package in ``PACKAGES`` is one game's soundtrack, so its name is real release-level metadata
(same composer or studio, same release). Every music file that ``soundfile`` decodes (OGG
Vorbis, Opus in Ogg, MP3, FLAC, WAV; audio inside ``.pk3``/``.zip`` archives is unpacked first;
the headerless PCM of ``RAW_FORMATS`` with its documented format) and lasts at least
``MIN_TRACK_S`` seconds is a track (shorter ones are sound effects or jingles). Tracker modules
(``.xm``, ``.mod``, ...) are synthesised by a player, not decoded: skipped and counted. Symbolic
links are skipped and byte-identical files kept once. Output:

* ``music_pool/audio/pretrain/<package>/<path>``: the pretraining pool (``audioclr prepare
  music_pool/audio/pretrain ...``), copied unchanged, except Opus files, copied under an ``.ogg``
  name (an Ogg container that libsndfile reads), and raw PCM, stored as 16-bit FLAC.
* ``music_pool/audio/heldout/<package>/<path>``: whole tracks kept out of pretraining, a fixed
  seeded share of each package (``HELDOUT_SHARE``): retrieval is scored on these only, so it never
  measures the training objective on its own training data. A file of an earlier build that is
  no longer listed (another split, another name) is deleted, so neither folder holds strays.
* ``music_pool/tracks.csv``: path, duration, source_package (= release), split (pretrain |
  heldout), source_file (the file inside the unpacked package).
* ``music_pool/segments.csv``: path, start_s, duration_s, track: up to ``MAX_SEGMENTS``
  non-overlapping segments of each held-out track (quiet ones, below ``QUIET_DB``, dropped).
* ``music_pool/segments/<track>/segNN_<start ms>ms.wav`` (mono, 22050 Hz) and two label files
  over the same segments, in the same order:

  - ``segments_labels.csv`` (path,label = track): same-track retrieval; for a query segment the
    relevant answers are the other segments of its track.
  - ``segments_release_labels.csv`` (path,label = source package): same-release retrieval; the
    relevant answers are the segments of *other* tracks of the query's release. Segments of the
    query's own track are same-release too, and easier: an evaluator should drop them from the
    ranking (neither hit nor miss), taking each segment's track from ``segments_labels.csv``
    (same paths). A release with a single held-out track has no such answer: its segments are
    distractors only (the build prints how many).

Usage:
    python benchmarks/datasets/music_pool.py [--out DIR]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.datasets import common  # noqa: E402
from benchmarks.datasets.planning import plan_segments  # noqa: E402

PACKAGES = (
    "supertux-data",
    "xmoto-data",
    "frozen-bubble-data",
    "asc-music",
    "drascula-music",
    "fb-music-high",
    "hyperrogue-music",
    "nexuiz-music",
    "planetblupi-music-ogg",
    "singularity-music",
    "ufoai-music",
    "warzone2100-music",
    "xblast-tnt-musics",
)
# Suffix of a decodable source file -> suffix of its copy in the pool (Opus is Ogg: audioclr's
# scanner sends ``.opus`` to FFmpeg, ``.ogg`` to libsndfile, which decodes both codecs).
AUDIO_SUFFIXES = {
    ".ogg": ".ogg",
    ".oga": ".ogg",
    ".opus": ".ogg",
    ".mp3": ".mp3",
    ".flac": ".flac",
    ".wav": ".wav",
}
TRACKER_SUFFIXES = frozenset({".mod", ".xm", ".s3m", ".it", ".mtm", ".umx", ".mid", ".midi"})
ARCHIVE_SUFFIXES = frozenset({".pk3", ".zip"})


@dataclass(frozen=True)
class RawFormat:
    """How to read a package's headerless ``.raw`` PCM files (stored in the pool as FLAC)."""

    samplerate: int
    channels: int
    subtype: str


# xblast-tnt's sound server (xbsndsrv.c) plays its .raw files as unsigned 8-bit PCM at 22050 Hz;
# the background songs (xbsng*.raw) are stereo (their "mono" flag is FALSE).
RAW_FORMATS = {"xblast-tnt-musics": RawFormat(22050, 2, "PCM_U8")}
MIN_TRACK_S = 30.0
SEGMENT_S = 10.0
GAP_S = 5.0
MARGIN_S = 2.0
MAX_SEGMENTS = 4  # per held-out track: a few hundred segments in all keeps retrieval quick
QUIET_DB = -45.0  # a segment below this RMS level (a fade, a silent intro) is no query
SAMPLE_RATE = 22050
HELDOUT_SHARE = 0.25  # of each package's tracks, whole tracks, chosen by SPLIT_SEED
SPLIT_SEED = 0


@dataclass
class PackageScan:
    """What :func:`scan_package` found: tracks ``(path, seconds)`` and what it skipped."""

    tracks: list[tuple[Path, float]] = field(default_factory=list)
    short: int = 0  # decodable but shorter than MIN_TRACK_S
    tracker: Counter[str] = field(default_factory=Counter)  # suffix -> count
    unreadable: list[str] = field(default_factory=list)
    links: int = 0

    def skipped_line(self) -> str:
        """The skipped files in a few words (empty when none)."""
        parts = []
        if self.short:
            parts.append(f"{self.short} shorter than {MIN_TRACK_S:.0f} s")
        for suffix, n in sorted(self.tracker.items()):
            parts.append(f"{n} tracker {suffix} (not decodable)")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable")
        if self.links:
            parts.append(f"{self.links} symlinks")
        return ", ".join(parts)


def unpack_archives(pkg_dir: Path) -> list[Path]:
    """Extract the audio members of every ``.pk3``/``.zip`` under ``pkg_dir`` into
    ``<archive>.d/`` beside it (once: a ``.unzipped`` marker); returns those folders."""
    folders = []
    archives = [p for p in sorted(pkg_dir.rglob("*")) if p.suffix.lower() in ARCHIVE_SUFFIXES]
    for archive in archives:
        if not archive.is_file() or archive.is_symlink():
            continue
        dest = archive.with_name(archive.name + ".d")
        folders.append(dest)
        if (dest / ".unzipped").is_file():
            continue
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        with zipfile.ZipFile(archive) as z:
            for member in sorted(z.namelist()):
                suffix = PurePosixPath(member).suffix.lower()
                inside = PurePosixPath(member)
                if member.endswith("/") or inside.is_absolute() or ".." in inside.parts:
                    continue
                if suffix in AUDIO_SUFFIXES or suffix in TRACKER_SUFFIXES:
                    target = tmp / Path(*inside.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(member))
        (tmp / ".unzipped").write_text(archive.name + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return folders


def duration_s(path: Path, raw: RawFormat | None = None) -> float:
    """Seconds of audio in ``path`` (a ``.raw`` file read with ``raw``'s format)."""
    if raw is not None and path.suffix.lower() == ".raw":
        with sf.SoundFile(
            str(path), "r", raw.samplerate, raw.channels, raw.subtype, format="RAW"
        ) as f:
            return f.frames / f.samplerate
    return sf.info(str(path)).duration


def scan_package(pkg_dir: Path, raw: RawFormat | None = None) -> PackageScan:
    """Tracks of an unpacked package, sorted by path: decodable files >= MIN_TRACK_S.

    Archives are unpacked first (:func:`unpack_archives`); ``.raw`` files count only when the
    package has a ``raw`` format. Tracker modules, short files, unreadable files and symbolic
    links are counted in the result, not returned.
    """
    unpack_archives(pkg_dir)
    scan = PackageScan()
    for path in sorted(pkg_dir.rglob("*")):
        suffix = path.suffix.lower()
        if path.is_symlink():
            scan.links += suffix in AUDIO_SUFFIXES or suffix in TRACKER_SUFFIXES
            continue
        if not path.is_file():
            continue
        if suffix in TRACKER_SUFFIXES:
            scan.tracker[suffix] += 1
            continue
        if suffix not in AUDIO_SUFFIXES and not (raw is not None and suffix == ".raw"):
            continue
        try:
            seconds = duration_s(path, raw)
        except (RuntimeError, sf.LibsndfileError) as e:
            scan.unreadable.append(f"{path.relative_to(pkg_dir)}: {e}")
            continue
        if seconds >= MIN_TRACK_S:
            scan.tracks.append((path, seconds))
        else:
            scan.short += 1
    return scan


def find_tracks(pkg_dir: Path, raw: RawFormat | None = None) -> list[tuple[Path, float]]:
    """Sorted ``(path, seconds)`` of the music files in an unpacked package (see scan_package)."""
    return scan_package(pkg_dir, raw).tracks


def pool_suffix(path: Path, raw: RawFormat | None = None) -> str:
    """Suffix of ``path``'s copy in the pool: ``.flac`` for raw PCM, ``.ogg`` for Opus."""
    suffix = path.suffix.lower()
    if raw is not None and suffix == ".raw":
        return ".flac"
    return AUDIO_SUFFIXES[suffix]


def heldout_names(
    names: Sequence[str], share: float = HELDOUT_SHARE, seed: int = SPLIT_SEED
) -> set[str]:
    """A fixed seeded ``share`` of ``names`` (sorted first; at least one of two or more)."""
    names = sorted(names)
    n = round(share * len(names)) if len(names) > 1 else 0
    n = max(n, 1) if len(names) > 1 else 0
    rng = np.random.default_rng([seed, len(names)])
    return {names[i] for i in rng.permutation(len(names))[:n]}


def _store(src: Path, dest: Path, raw: RawFormat | None) -> None:
    """Copy ``src`` to ``dest`` (raw PCM: decoded and written as 16-bit FLAC); atomic, once."""
    transcode = raw is not None and src.suffix.lower() == ".raw"
    if dest.is_file() and (transcode or dest.stat().st_size == src.stat().st_size):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.stem + ".tmp" + dest.suffix)
    if transcode:
        assert raw is not None
        x, sr = sf.read(
            str(src),
            samplerate=raw.samplerate,
            channels=raw.channels,
            subtype=raw.subtype,
            format="RAW",
            dtype="float32",
        )
        sf.write(str(tmp), x, sr, subtype="PCM_16", format="FLAC")
    else:
        shutil.copyfile(src, tmp)
    tmp.replace(dest)


TrackRow = tuple[str, float, str, str, str]  # path, duration, package, split, source_file


def package_folder(pkg: str) -> str:
    """Folder of a package's tracks in the pool: ``supertux-data`` -> ``supertux``."""
    return pkg.removesuffix("-data")


def plan_package(
    pkg: str,
    pkg_dir: Path,
    found: list[tuple[Path, float]],
    seen: set[str],
    raw: RawFormat | None = None,
) -> tuple[list[tuple[Path, TrackRow]], int]:
    """(source, tracks.csv row) of each track of ``pkg`` not in ``seen`` (sha256 digests, updated
    in place), with its split; and how many byte-identical duplicates were dropped."""
    if not found:
        return [], 0
    base = Path(os.path.commonpath([p.parent for p, _ in found]))
    unique, dropped = [], 0
    for path, seconds in found:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            print(f"  skipped duplicate {path.relative_to(pkg_dir)}")
            dropped += 1
            continue
        seen.add(digest)
        unique.append((path, seconds))
    held = heldout_names([p.relative_to(base).as_posix() for p, _ in unique])
    out = []
    for path, seconds in unique:
        inner = path.relative_to(base)
        split = "heldout" if inner.as_posix() in held else "pretrain"
        rel = Path("audio", split, package_folder(pkg), inner).with_suffix(pool_suffix(path, raw))
        source = path.relative_to(pkg_dir).as_posix()
        out.append((path, (rel.as_posix(), round(seconds, 3), pkg, split, source)))
    return out, dropped


def _copy_tracks(root: Path, out: Path) -> tuple[list[TrackRow], dict[str, str]]:
    """Copy every kept track into ``out/audio/<split>``; tracks.csv rows and, per package, what
    was skipped (a few words)."""
    rows: list[TrackRow] = []
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    for pkg in PACKAGES:
        pkg_dir = common.fetch_package(pkg, root)
        raw = RAW_FORMATS.get(pkg)
        scan = scan_package(pkg_dir, raw)
        for line in scan.unreadable:
            print(f"  skipped unreadable {pkg}/{line}")
        planned, dropped = plan_package(pkg, pkg_dir, scan.tracks, seen, raw)
        words = [scan.skipped_line(), f"{dropped} byte-identical duplicates" if dropped else ""]
        skipped[pkg] = ", ".join(w for w in words if w)
        if not planned:
            print(f"  {pkg}: no music file >= {MIN_TRACK_S:.0f} s ({skipped[pkg] or 'no audio'})")
            continue
        for src, row in tqdm(planned, desc=pkg, unit="track", leave=False):
            _store(src, out / row[0], raw)
            rows.append(row)
    if not rows:
        raise common.BuildError(
            "no music track found in any package", hint="check the .deb downloads"
        )
    return rows, skipped


def prune(folder: Path, keep: set[Path]) -> int:
    """Delete files under ``folder`` not in ``keep`` (and emptied folders); returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


def track_id(rel: str) -> str:
    """Track id of a pool file: its path under ``audio/<split>/`` without the suffix
    (``xmoto/menu``)."""
    return str(Path(*Path(rel).parts[2:]).with_suffix("").as_posix())


def segment_path(tid: str, k: int, start_s: float) -> str:
    """Path of the ``k``-th segment of track ``tid`` (its start in the name, so a changed plan
    never reuses a stale file)."""
    return f"segments/{tid}/seg{k:02d}_{int(round(start_s * 1000)):07d}ms.wav"


SegmentRow = tuple[str, float, float, str]  # track path, start_s, duration_s, track id


def _cut_segments(out: Path, tracks: list[TrackRow]) -> tuple[list[tuple[str, SegmentRow]], int]:
    """Plan segments of every held-out track and write them as WAVs; (segment path, row) of the
    kept ones, and how many were dropped as quiet (below ``QUIET_DB``: fades, silent intros; a
    track left with one segment is dropped whole, as retrieval needs two)."""
    rows, dropped = [], 0
    held = [t for t in tracks if t[3] == "heldout"]
    for rel, seconds, *_ in tqdm(held, desc="segments", unit="track"):
        plan = plan_segments(seconds, SEGMENT_S, GAP_S, MAX_SEGMENTS, MARGIN_S)
        tid = track_id(rel)
        kept = []
        for k, (start, length) in enumerate(plan):
            seg_rel = segment_path(tid, k, start)
            seg = out / seg_rel
            if not seg.is_file():
                info = sf.info(str(out / rel))
                x, sr = sf.read(
                    str(out / rel),
                    start=int(start * info.samplerate),
                    frames=int(length * info.samplerate),
                    dtype="float32",
                    always_2d=True,
                )
                common.write_wav(
                    seg,
                    soxr.resample(x.mean(axis=1), sr, SAMPLE_RATE).astype(np.float32),
                    SAMPLE_RATE,
                )
            if common.rms_db(sf.read(str(seg), dtype="float32")[0]) >= QUIET_DB:
                kept.append((seg_rel, (rel, start, length, tid)))
            else:
                seg.unlink()
        if len(kept) < 2:
            for seg_rel, _ in kept:
                (out / seg_rel).unlink()
            kept = []
        dropped += len(plan) - len(kept)
        rows += kept
    return rows, dropped


def release_rows(
    segments: list[tuple[str, SegmentRow]], tracks: list[TrackRow]
) -> list[tuple[str, str]]:
    """``segments_release_labels.csv`` rows: (segment path, source package of its track)."""
    package_of = {t[0]: t[2] for t in tracks}
    return [(seg, package_of[row[0]]) for seg, row in segments]


def build(root: Path) -> Path:
    """Build (or complete) ``root/music_pool``; returns the folder. Idempotent."""
    out = root / "music_pool"
    tracks, skipped = _copy_tracks(root, out)
    ids = Counter(track_id(t[0]) for t in tracks)
    if max(ids.values()) > 1:
        clash = sorted(t for t, n in ids.items() if n > 1)
        raise common.BuildError(f"tracks share an id: {clash[:5]}", hint="rename one of each pair")
    stale = prune(out / "audio", {out / t[0] for t in tracks})
    common.write_csv(
        out / "tracks.csv", ("path", "duration", "source_package", "split", "source_file"), tracks
    )
    segments, quiet = _cut_segments(out, tracks)
    stale += prune(out / "segments", {out / seg for seg, _ in segments})
    common.write_csv(
        out / "segments.csv", ("path", "start_s", "duration_s", "track"), [r for _, r in segments]
    )
    common.write_csv(
        out / "segments_labels.csv", ("path", "label"), [(s, r[3]) for s, r in segments]
    )
    releases = release_rows(segments, tracks)
    common.write_csv(out / "segments_release_labels.csv", ("path", "label"), releases)
    hours = sum(t[1] for t in tracks) / 3600
    pretrain_h = sum(t[1] for t in tracks if t[3] == "pretrain") / 3600
    print(
        f"\nmusic_pool/tracks.csv: {len(tracks)} tracks, {hours:.2f} h in total "
        f"({pretrain_h:.2f} h pretrain, {hours - pretrain_h:.2f} h held out)"
    )
    print(f"  {'package':<24}{'tracks':>7}{'min':>8}{'held':>6}  shortest..longest s; skipped")
    for pkg in PACKAGES:
        secs = [t[1] for t in tracks if t[2] == pkg]
        held = sum(1 for t in tracks if t[2] == pkg and t[3] == "heldout")
        span = f"{min(secs):.0f}..{max(secs):.0f}" if secs else "-"
        print(
            f"  {pkg:<24}{len(secs):>7}{sum(secs) / 60:>8.1f}{held:>6}  {span}; "
            f"{skipped[pkg] or 'nothing'}"
        )
    n_tracks = len({r[3] for _, r in segments})
    print(
        f"  segments.csv: {len(segments)} segments of {SEGMENT_S:.0f} s from {n_tracks} held-out "
        f"tracks (at most {MAX_SEGMENTS} each, none from the pretraining pool); "
        f"{quiet} dropped as quiet (< {QUIET_DB:.0f} dBFS RMS)"
    )
    tracks_of: dict[str, set[str]] = {}
    for (_, row), (_, pkg) in zip(segments, releases, strict=True):
        tracks_of.setdefault(pkg, set()).add(row[3])
    lone = sorted(pkg for pkg, tids in tracks_of.items() if len(tids) < 2)
    n_lone = sum(1 for _, pkg in releases if pkg in lone)
    print(
        f"  segments_release_labels.csv: {len(releases)} segments of {len(tracks_of)} releases; "
        f"{n_lone} segments (of {', '.join(lone) or 'none'}) have no other held-out track of "
        f"their release (distractors only)"
    )
    if stale:
        print(f"  removed {stale} stale files of an earlier build")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--out DIR``."""
    build(common.parse_args(__doc__, argv).root)


if __name__ == "__main__":
    sys.exit(common.run_main(main))
