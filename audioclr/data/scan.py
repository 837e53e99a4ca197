"""Find audio under a folder: what soundfile reads, plus FFmpeg containers when torchcodec is there.

Example:
    >>> result = scan_audio("my_music/")
    >>> result.files[:1], result.skipped[:1]
    ([PosixPath('/abs/my_music/a.flac')], [(PosixPath('/abs/my_music/b.m4a'), '...torchcodec...')])
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from audioclr.errors import AudioReadError

SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
FFMPEG_EXTS = {".m4a", ".mp4", ".aac", ".opus", ".wma", ".webm", ".mka", ".alac"}


def absolute(path: str | Path) -> Path:
    """Absolute, normalised path without resolving symlinks (so ids match across modules)."""
    return Path(os.path.abspath(os.fspath(path)))


@functools.cache
def torchcodec_available() -> bool:
    """True when torchcodec (and so FFmpeg decoding) can be imported."""
    return importlib.util.find_spec("torchcodec") is not None


@dataclass
class ScanResult:
    """Audio files found under a root (sorted, absolute) and files skipped with the reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def scan_audio(root: str | Path) -> ScanResult:
    """Recursively list the audio files under ``root``; other files are ignored.

    Files with a container only FFmpeg reads (m4a, opus, ...) are listed in ``skipped`` with
    the reason when torchcodec is not installed. ``AudioReadError`` if ``root`` is not a folder.
    """
    root = absolute(root)
    if not root.exists():
        raise AudioReadError(f"audio folder {root} does not exist", hint="check the path")
    if not root.is_dir():
        raise AudioReadError(
            f"{root} is a file, not a folder", hint="pass the folder that holds the audio"
        )
    result = ScanResult()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            ext = path.suffix.lower()
            if ext in SOUNDFILE_EXTS:
                result.files.append(path)
            elif ext in FFMPEG_EXTS:
                if torchcodec_available():
                    result.files.append(path)
                else:
                    reason = (
                        f"unsupported container {ext}: needs torchcodec with FFmpeg, not installed"
                    )
                    result.skipped.append((path, reason))
    result.files.sort()
    result.skipped.sort()
    return result
