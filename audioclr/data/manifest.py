"""The clip-cache file format: ``manifest.json`` + append-only sample shards.

A cache folder holds ``manifest.json`` (format_version, sample_rate, dtype, min_duration, root,
shard, tracks, rejects), shards ``shard-00000.i16`` (or ``.f16``) of raw little-endian samples,
and ``rejects.csv`` (``path,kind,reason``; paths are the OS's bytes). A track is ``num_samples``
samples at ``offset`` (in samples) of one shard. Between runs shards are only appended to (a
rerun first cuts off bytes past the last track the manifest names: what a killed run left);
the manifest is written to a temp name and renamed, so a kill at any moment leaves the
previous manifest pointing at complete data. ``shard`` is ``[i, n]`` for a cache of a
``--shard i/n`` prepare, else null.

Example:
    >>> m = read_manifest(Path("cache"))
    >>> m["sample_rate"], len(m["tracks"])
    (22050, 160)
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from audioclr.atomic import atomic_write_bytes, atomic_write_text
from audioclr.errors import CacheError
from audioclr.jsonfile import read_versioned_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REJECTS = "rejects.csv"
DTYPES = {"int16": ("<i2", ".i16"), "float16": ("<f2", ".f16")}
INT16_SCALE = 32767.0
# kinds of reject that may pass (a permission fixed, a disk back): retried by the next prepare
TRANSIENT = frozenset({"permission", "io", "missing"})


class Reject(NamedTuple):
    """A file (or folder) left out of the cache: its path, the ``kind`` of failure (``corrupt``,
    ``unsupported``, ``permission``, ``io``, ``truncated``, ``too_short``, ...) and why."""

    path: str
    kind: str
    reason: str


@dataclass
class TrackInfo:
    """Where a track lives; ``track_id`` = source path relative to the prepared root."""

    track_id: str
    source: str
    num_samples: int
    shard: int
    offset: int
    size: int = 0  # source file size in bytes (change detection)
    mtime_ns: int = 0  # source file mtime (change detection)


def shard_name(index: int, dtype: str) -> str:
    """File name of shard ``index``: ``shard-00003.i16``."""
    return f"shard-{index:05d}{DTYPES[dtype][1]}"


def quantize(x: np.ndarray, dtype: str) -> np.ndarray:
    """float32 ``(samples,)`` -> stored samples (int16 scaled by 32767 and clipped, or float16)."""
    if dtype == "int16":
        return np.clip(np.rint(x * INT16_SCALE), -32768, 32767).astype("<i2")
    return x.astype("<f2")


def dequantize(q: np.ndarray) -> np.ndarray:
    """Stored samples -> float32 ``(samples,)``; inverse of :func:`quantize` up to rounding."""
    if q.dtype.kind == "i":
        return q.astype(np.float32) * np.float32(1.0 / INT16_SCALE)
    return q.astype(np.float32)


def empty_manifest(sample_rate: int, dtype: str, min_duration: float) -> dict[str, Any]:
    """A manifest with no tracks."""
    return {
        "format_version": FORMAT_VERSION,
        "sample_rate": sample_rate,
        "dtype": dtype,
        "min_duration": min_duration,
        "root": None,
        "shard": None,
        "tracks": [],
        "rejects": [],
    }


def read_manifest(root: Path) -> dict[str, Any]:
    """Load and check ``root/manifest.json``; ``CacheError`` naming the problem otherwise."""
    path = root / MANIFEST
    if not root.is_dir():
        raise CacheError(
            f"clip cache {root} does not exist", hint="create it with: audioclr prepare SRC CACHE"
        )
    if not path.is_file():
        raise CacheError(
            f"{root} is not a clip cache (no {MANIFEST})",
            hint="create it with: audioclr prepare SRC CACHE",
        )
    data = read_versioned_json(
        path,
        FORMAT_VERSION,
        CacheError,
        damaged_hint="delete the cache folder and run prepare again",
        version_hint="prepare the cache again with this version of audioclr",
    )
    if data.get("dtype") not in DTYPES or not isinstance(data.get("sample_rate"), int):
        raise CacheError(
            f"{path} is damaged: bad dtype or sample_rate",
            hint="delete the cache and prepare again",
        )
    return data


def tracks_of(manifest: dict[str, Any], path: Path) -> list[TrackInfo]:
    """The manifest's tracks as ``TrackInfo``; ``CacheError`` if an entry is malformed."""
    try:
        return [
            TrackInfo(**{k: t[k] for k in TrackInfo.__dataclass_fields__})
            for t in manifest["tracks"]
        ]
    except (KeyError, TypeError) as exc:
        raise CacheError(f"{path / MANIFEST} is damaged: bad track entry ({exc})") from exc


def write_manifest(
    root: Path, manifest: dict[str, Any], tracks: list[TrackInfo], durable: bool = True
) -> None:
    """Write the manifest atomically (temp name, fsync, rename)."""
    data = dict(manifest, tracks=[asdict(t) for t in sorted(tracks, key=lambda t: t.track_id)])
    atomic_write_text(root / MANIFEST, json.dumps(data, indent=1), durable)


def write_rejects(root: Path, rejects: list[Reject]) -> None:
    """Write ``root/rejects.csv`` atomically; a path is written as the bytes the OS gave."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(Reject._fields)
    writer.writerows(rejects)
    atomic_write_bytes(root / REJECTS, buf.getvalue().encode("utf-8", "surrogateescape"))
