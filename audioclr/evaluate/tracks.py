"""The tracks to embed: a folder of audio, a labels CSV or a clip cache, as one list of ``Track``.

Each ``Track`` has an id (posix path relative to the data root, matching ``ClipCache`` ids),
its source path and a ``read()`` returning float32 mono samples at the encoder's rate. A cache
at another sample rate is an error (``SampleRateMismatch``); decoded files are resampled on decode.
A file that cannot be decoded raises ``TrackReadError`` (its source and the reason), which
embedding treats as ``prepare`` treats a bad file: skipped and listed, not fatal.

Example:
    >>> tracks = open_tracks("my_music/", sample_rate=22050)
    >>> tracks[0].id, tracks[0].read().shape
    ('piano/a.wav', (66150,))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioclr.errors import AudioReadError, SampleRateMismatch


@dataclass
class Track:
    """One track to embed: ``read()`` -> ``(samples,)`` float32 at the requested rate."""

    id: str
    source: str
    read: Callable[[], np.ndarray]


class TrackReadError(AudioReadError):
    """One audio file could not be read (``source``, ``reason``); callers may skip it."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{shown(source)}: {reason}", hint="fix or remove the file")
        self.source, self.reason = source, reason


def shown(path: str | Path) -> str:
    """A path as text for messages and reports: bytes that are not UTF-8 escaped (``\\xff``)."""
    import os

    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _decoder(path: Path, sample_rate: int) -> Callable[[], np.ndarray]:
    from audioclr.data.decode import decode_audio

    def read() -> np.ndarray:
        try:
            x = decode_audio(path, sample_rate)
        except AudioReadError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            for prefix in (f"{path}: ", f"{shown(path)}: "):
                reason = reason.removeprefix(prefix)
            raise TrackReadError(str(path), reason) from exc
        if x.size == 0:
            raise TrackReadError(str(path), "no audio frames (zero-length audio)")
        if not np.all(np.isfinite(x)):
            raise TrackReadError(str(path), "corrupt audio (NaN or Inf samples)")
        return x

    return read


def _is_cache(path: Path) -> bool:
    return path.is_dir() and (path / "manifest.json").is_file()


def _from_cache(path: Path | list[str | Path], sample_rate: int) -> list[Track]:
    from audioclr.data.cache import open_cache

    cache = open_cache(path)
    if int(cache.sample_rate) != int(sample_rate):
        raise SampleRateMismatch(
            f"clip cache {path} is at {cache.sample_rate} Hz; the encoder expects {sample_rate} Hz",
            hint=f"prepare one at that rate: audioclr prepare SRC OUT --sample-rate {sample_rate}",
        )
    return [
        Track(t.track_id, str(t.source), (lambda i=i: np.asarray(cache.read(i), dtype=np.float32)))
        for i, t in enumerate(cache.tracks)
    ]


def tracks_of_files(paths: list[Path], sample_rate: int, root: Path | None = None) -> list[Track]:
    """Tracks decoded from audio files (resampled to ``sample_rate``), ids relative to ``root``."""
    return _from_files(paths, root or common_root(paths), sample_rate)


def _from_files(paths: list[Path], root: Path, sample_rate: int) -> list[Track]:
    tracks = []
    for p in paths:
        p = Path(p).resolve()
        try:
            tid = p.relative_to(root).as_posix()
        except ValueError:
            tid = p.as_posix()
        tracks.append(Track(tid, str(p), _decoder(p, sample_rate)))
    return tracks


def common_root(paths: list[Path]) -> Path:
    """The deepest folder holding every path (ids are relative to it)."""
    import os

    if not paths:
        return Path(".").resolve()
    return Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))


def open_tracks(data: str | Path | list[str | Path], sample_rate: int) -> list[Track]:
    """Tracks of a clip cache (or a list of them, read as one), a labels CSV / labelled folder,
    or a folder of audio files."""
    if isinstance(data, list):
        return _from_cache(data, sample_rate)
    path = Path(data)
    if not path.exists():
        raise AudioReadError(
            f"data {path} does not exist",
            hint="give a folder of audio, a labels CSV or a clip cache",
        )
    if _is_cache(path):
        return _from_cache(path, sample_rate)
    if path.is_file():
        from audioclr.data.labels import load_labelled_set

        labelled = load_labelled_set(path)
        root = common_root(labelled.paths)
        tracks = _from_files(labelled.paths, root, sample_rate)
    else:
        from audioclr.data.scan import scan_audio

        root = path.resolve()
        tracks = _from_files(scan_audio(path).files, root, sample_rate)
    if not tracks:
        raise AudioReadError(
            f"no audio files found in {path}", hint="supported: .wav .flac .ogg .mp3 .aiff"
        )
    return tracks
