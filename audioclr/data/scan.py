"""Find audio under a folder: what soundfile reads, plus FFmpeg containers when torchcodec is there.

File names are the bytes the OS gave: paths hold them as ``str`` with surrogate escapes
(``os.fsdecode``), :func:`shown` escapes them for messages. A folder that cannot be listed is
reported in ``skipped`` (kind ``permission`` or ``io``), never skipped silently.
:func:`in_shard` picks a deterministic 1/N of the files by a hash of their relative path.

Example:
    >>> result = scan_audio("my_music/")
    >>> result.files[:1], result.skipped[:1]
    ([PosixPath('/abs/my_music/a.flac')], [Reject('/abs/my_music/b.m4a', 'unsupported', '...')])
    >>> shown(os.fsdecode(b"bad_\\xff.wav"))
    'bad_\\\\xff.wav'
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from audioclr.data.manifest import Reject
from audioclr.errors import AudioReadError, ConfigError

SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
FFMPEG_EXTS = {".m4a", ".mp4", ".aac", ".opus", ".wma", ".webm", ".mka", ".alac"}
# (rank, world size) variables of torchrun, then of SLURM's srun
SHARD_ENV = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))


def absolute(path: str | Path) -> Path:
    """Absolute, normalised path without resolving symlinks (so ids match across modules)."""
    return Path(os.path.abspath(os.fspath(path)))


def shown(path: str | Path) -> str:
    """``path`` printable in any locale: bytes that are not UTF-8 as ``\\xff`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def os_error_kind(exc: OSError) -> tuple[str, str]:
    """``(kind, reason)`` of an OS error: ``permission`` / ``missing`` / ``io`` (transient ones
    are retried by the next prepare)."""
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return "permission", "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "missing", "no such file (a dangling link?)"
    return "io", f"I/O error ({exc.strerror or exc})"


@functools.cache
def torchcodec_available() -> bool:
    """True when torchcodec (and so FFmpeg decoding) can be imported."""
    return importlib.util.find_spec("torchcodec") is not None


@dataclass
class ScanResult:
    """Audio files found under a root (sorted, absolute); files and folders skipped, with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Reject] = field(default_factory=list)


def scan_audio(root: str | Path) -> ScanResult:
    """Recursively list the audio files under ``root``; other files are ignored.

    Files with a container only FFmpeg reads (m4a, opus, ...) are listed in ``skipped`` with
    the reason when torchcodec is not installed; so are subfolders that cannot be listed.
    ``AudioReadError`` if ``root`` is not a folder.
    """
    root = absolute(root)
    try:
        with os.scandir(root):
            pass
    except FileNotFoundError:
        raise AudioReadError(
            f"audio folder {shown(root)} does not exist", hint="check the path"
        ) from None
    except NotADirectoryError:
        raise AudioReadError(
            f"{shown(root)} is a file, not a folder", hint="pass the folder that holds the audio"
        ) from None
    except OSError as exc:
        raise AudioReadError(
            f"cannot read the audio folder {shown(root)}: {os_error_kind(exc)[1]}",
            hint="check the folder's permissions",
        ) from None
    result = ScanResult()

    def unlistable(exc: OSError) -> None:
        kind, why = os_error_kind(exc)
        result.skipped.append(Reject(str(exc.filename), kind, f"folder not scanned: {why}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
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
                    result.skipped.append(Reject(str(path), "unsupported", reason))
    result.files.sort()
    result.skipped.sort()
    return result


def in_shard(track_id: str, shard: tuple[int, int]) -> bool:
    """Whether ``track_id`` (a relative path) belongs to shard ``(i, n)``: a stable hash of its
    bytes, so every machine agrees whatever order it lists the files in.

    Example:
        >>> sum(in_shard(f"t{k}.wav", (0, 2)) for k in range(1000))  # about half
        532
    """
    digest = hashlib.blake2b(os.fsencode(track_id), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard[1] == shard[0]


def parse_shard(spec: str, env: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """``"I/N"`` (0-based ``I``) -> ``(I, N)``; ``"auto"`` reads ``RANK``/``WORLD_SIZE``
    (torchrun) or ``SLURM_PROCID``/``SLURM_NTASKS`` (srun). ``ConfigError`` naming ``--shard``.

    Example:
        >>> parse_shard("1/4"), parse_shard("auto", {"RANK": "2", "WORLD_SIZE": "3"})
        ((1, 4), (2, 3))
    """
    text = spec.strip()
    if text == "auto":
        found = [(env[r], env[w]) for r, w in SHARD_ENV if r in env and w in env]
        if not found:
            raise ConfigError(
                "--shard auto found no RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS",
                hint="run it under torchrun or srun, or pass --shard I/N",
            )
        text = "/".join(found[0])
    i, _, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise ConfigError(
            f"--shard {spec!r} is not I/N with 0 <= I < N (from {text!r})",
            hint="e.g. --shard 0/4 ... --shard 3/4 on four machines, or --shard auto",
        )
    return index, count
