"""Groups of tracks that make positives: the ``data.positives`` setting, resolved on a cache.

``track``: no groups (two crops of one track, the default). ``group:<column>``: tracks with the
same value in a metadata column (``group:release``, ``group:artist``) form a group.
``playlist``: each playlist is a group; a track may be in several. Tracks without a value (or
in no playlist) are in no group. Group ids index ``members``; ``ids`` holds each track's group
ids, padded with -1 to the largest number of groups of one track.

Example:
    >>> groups = load_groups(ClipCache("cache/"), "group:release")
    >>> groups.ids.shape, len(groups.members)             # (tracks, 1), releases
    ((182, 1), 12)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from audioclr.data.metadata import TrackMetadata, read_metadata
from audioclr.errors import ConfigError

if TYPE_CHECKING:
    from audioclr.data.cache import ClipCache

TRACK, PLAYLIST, GROUP = "track", "playlist", "group:"


def check_positives(spec: str, key: str = "data.positives") -> None:
    """``ConfigError`` naming ``key`` unless ``spec`` is track, playlist or group:<column>."""
    ok = spec in (TRACK, PLAYLIST) or (spec.startswith(GROUP) and spec[len(GROUP) :].strip())
    if not ok:
        raise ConfigError(
            f"config key '{key}' must be track, playlist or group:<column>, got {spec!r}",
            hint=f"e.g. {key}=group:release (a column attached with audioclr metadata)",
        )


@dataclass
class TrackGroups:
    """``ids`` ``(tracks, width)`` int64 group ids per cache track (-1: none); ``members``:
    per group id, the sorted cache indices of its tracks."""

    positives: str
    ids: np.ndarray
    members: list[np.ndarray]


def build_groups(track_ids: list[str], meta: TrackMetadata, positives: str) -> TrackGroups:
    """The groups of ``positives`` over the cache tracks ``track_ids`` (in cache order)."""
    check_positives(positives)
    if positives == TRACK:
        raise ValueError("positives=track has no groups")
    position = {tid: i for i, tid in enumerate(track_ids)}
    if positives == PLAYLIST:
        named = {
            p: [position[t] for t in ids if t in position] for p, ids in meta.playlists.items()
        }
    else:
        column = positives[len(GROUP) :].strip()
        if column not in meta.columns:
            raise ConfigError(
                f"config key 'data.positives' is {positives!r}, but the cache's metadata has "
                f"no column {column!r}",
                hint=f"choose one of {['group:' + c for c in meta.columns] + [PLAYLIST]}",
            )
        named = {}
        for i, tid in enumerate(track_ids):
            value = meta.value(tid, column)
            if value is not None:
                named.setdefault(value, []).append(i)
    members = [np.array(sorted(v), dtype=np.int64) for _, v in sorted(named.items()) if v]
    per_track: list[list[int]] = [[] for _ in track_ids]
    for gid, m in enumerate(members):
        for i in m:
            per_track[int(i)].append(gid)
    width = max(1, max(len(g) for g in per_track) if per_track else 1)
    ids = np.full((len(track_ids), width), -1, dtype=np.int64)
    for i, g in enumerate(per_track):
        ids[i, : len(g)] = g
    return TrackGroups(positives, ids, members)


def load_groups(cache: ClipCache, positives: str) -> TrackGroups | None:
    """The groups of ``positives`` on a ``ClipCache`` (None for ``track``); ``ConfigError``
    when the cache has no metadata."""
    check_positives(positives)
    if positives == TRACK:
        return None
    root = cache.root
    meta = read_metadata(root)
    if meta is None:
        raise ConfigError(
            f"config key 'data.positives' is {positives!r}, but clip cache {root} has no metadata",
            hint=f"attach it first: audioclr metadata {root} tracks.csv [--playlists FILE]",
        )
    if positives == PLAYLIST and not meta.playlists:
        raise ConfigError(
            f"config key 'data.positives' is 'playlist', but clip cache {root} has no playlists",
            hint=f"attach them: audioclr metadata {root} tracks.csv --playlists playlists.csv",
        )
    return build_groups([t.track_id for t in cache.tracks], meta, positives)
