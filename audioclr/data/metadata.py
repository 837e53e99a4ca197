"""Track metadata of a clip cache: columns (``artist``, ``release``, ...) and playlists.

``tracks.csv`` has a header ``path,<column>,...`` and one row per track; ``playlists.csv`` has
rows ``playlist,path`` (one per membership). Paths are relative to the CSV's folder, as in
labels files, and are matched to the cache's tracks by their source path (``TrackInfo.source``,
as ``prepare`` saw it). The result is a side file ``metadata.json`` in the cache folder, written
atomically under the cache's writer lock; a track without a row simply has no metadata (it
stays usable, its positives are crops of itself). A path the cache does not hold, or a malformed
row, is a ``LabelError`` naming the file and line (``tracks.csv:7: ...``).

Example:
    >>> summary = attach_metadata("cache/", "tracks.csv", playlists="playlists.csv")
    >>> meta = read_metadata("cache/")
    >>> meta.columns, meta.value("supertux/forest/a.ogg", "release")
    (['artist', 'release'], 'supertux-data')
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from audioclr.atomic import atomic_write_text
from audioclr.data.manifest import read_manifest, tracks_of
from audioclr.data.scan import absolute
from audioclr.data.shards import cache_lock
from audioclr.errors import CacheError, LabelError
from audioclr.jsonfile import read_versioned_json

FORMAT_VERSION = 1
METADATA = "metadata.json"


@dataclass
class TrackMetadata:
    """Columns per track id and playlists (name -> track ids) of one clip cache."""

    columns: list[str]
    tracks: dict[str, dict[str, str]] = field(default_factory=dict)
    playlists: dict[str, list[str]] = field(default_factory=dict)

    def value(self, track_id: str, column: str) -> str | None:
        """The track's value in ``column``; None when it has no row or an empty cell."""
        return self.tracks.get(track_id, {}).get(column) or None


@dataclass
class MetadataSummary:
    """What :func:`attach_metadata` wrote."""

    path: Path
    columns: list[str]
    tracks_with_metadata: int
    tracks_without: int
    playlists: int


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each non-blank CSV row of ``path``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for row in reader:
                if row and any(c.strip() for c in row):
                    yield reader.line_num, [c.strip() for c in row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"cannot read {path}: {exc}") from exc


def _track_index(cache: Path) -> dict[str, str]:
    """Source path (absolute and real) -> track id, for every track of the cache."""
    index: dict[str, str] = {}
    for t in tracks_of(read_manifest(cache), cache):
        index[str(absolute(t.source))] = t.track_id
        index.setdefault(os.path.realpath(t.source), t.track_id)
    return index


def _track_id(index: dict[str, str], csv_path: Path, line: int, rel: str, cache: Path) -> str:
    where = f"{csv_path}:{line}"
    if not rel:
        raise LabelError(f"{where}: empty path")
    target = absolute(csv_path.parent / rel)
    found = index.get(str(target)) or index.get(os.path.realpath(target))
    if found is None:
        raise LabelError(
            f"{where}: {rel} is not a track of clip cache {cache} (looked for {target})",
            hint="paths are relative to the CSV's folder; list only prepared tracks",
        )
    return found


def read_track_table(
    path: str | Path, index: dict[str, str], cache: Path
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """``tracks.csv`` -> ``(columns, {track id: {column: value}})``; ``LabelError`` naming the
    line of an unknown path, a repeated path or a row with the wrong number of cells."""
    path = absolute(path)
    rows = _rows(path)
    first = next(rows, None)
    if first is None:
        raise LabelError(f"{path}: no rows", hint="expected a header path,<column>,... and rows")
    line, header = first
    columns = header[1:]
    if not header or header[0].lower() != "path" or not columns:
        raise LabelError(
            f"{path}:{line}: header {header} must be path,<column>,... (e.g. path,artist,release)"
        )
    if any(not c for c in columns) or len(set(columns)) != len(columns):
        raise LabelError(f"{path}:{line}: column names must be distinct and non-empty: {columns}")
    table: dict[str, dict[str, str]] = {}
    seen: dict[str, int] = {}
    for line, row in rows:
        if len(row) != len(header):
            raise LabelError(
                f"{path}:{line}: expected {len(header)} cells ({','.join(header)}), "
                f"got {len(row)}: {row}"
            )
        tid = _track_id(index, path, line, row[0], cache)
        if tid in seen:
            raise LabelError(f"{path}:{line}: {row[0]} is listed twice (first at line {seen[tid]})")
        seen[tid] = line
        table[tid] = {c: v for c, v in zip(columns, row[1:], strict=True) if v}
    return columns, table


def read_playlists(path: str | Path, index: dict[str, str], cache: Path) -> dict[str, list[str]]:
    """``playlists.csv`` (``playlist,path`` rows, optional header) -> name -> sorted track ids."""
    path = absolute(path)
    playlists: dict[str, set[str]] = {}
    for line, row in _rows(path):
        if [c.lower() for c in row] == ["playlist", "path"]:
            continue
        if len(row) != 2 or not row[0]:
            raise LabelError(f"{path}:{line}: expected 2 cells playlist,path, got {row}")
        playlists.setdefault(row[0], set()).add(_track_id(index, path, line, row[1], cache))
    if not playlists:
        raise LabelError(f"{path}: no rows", hint="expected rows playlist,path")
    return {name: sorted(ids) for name, ids in sorted(playlists.items())}


def attach_metadata(
    cache_dir: str | Path, tracks: str | Path, playlists: str | Path | None = None
) -> MetadataSummary:
    """Read ``tracks`` (and ``playlists``), match them to the cache's tracks and write
    ``cache_dir/metadata.json`` (replacing an earlier one). Returns what was written."""
    cache = absolute(cache_dir)
    index = _track_index(cache)
    columns, table = read_track_table(tracks, index, cache)
    lists = read_playlists(playlists, index, cache) if playlists is not None else {}
    data = {
        "format_version": FORMAT_VERSION,
        "columns": columns,
        "tracks": table,
        "playlists": lists,
        "sources": {
            "tracks": str(absolute(tracks)),
            "playlists": str(absolute(playlists)) if playlists is not None else None,
        },
    }
    with cache_lock(cache):
        atomic_write_text(cache / METADATA, json.dumps(data, indent=1, sort_keys=True))
    n_tracks = len(set(index.values()))
    return MetadataSummary(cache / METADATA, columns, len(table), n_tracks - len(table), len(lists))


def read_metadata(cache_dir: str | Path) -> TrackMetadata | None:
    """The cache's ``metadata.json``, or None when it has none; ``CacheError`` if damaged."""
    path = absolute(cache_dir) / METADATA
    if not path.is_file():
        return None
    hint = "attach it again: audioclr metadata CACHE tracks.csv"
    data = read_versioned_json(path, FORMAT_VERSION, CacheError, hint, hint)
    try:
        return TrackMetadata(
            [str(c) for c in data["columns"]],
            {str(t): dict(v) for t, v in data["tracks"].items()},
            {str(p): [str(t) for t in ids] for p, ids in data["playlists"].items()},
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CacheError(f"{path} is damaged: {exc}", hint=hint) from exc
