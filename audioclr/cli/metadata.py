"""CLI command ``metadata``: attach track metadata (and playlists) to a clip cache.

Example:
    $ audioclr metadata cache/ tracks.csv --playlists playlists.csv
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``metadata`` to ``sub``."""
    p = sub.add_parser(
        "metadata",
        help="attach track metadata (artist, release, ...) and playlists to a clip cache",
        description="Match the rows of TRACKS (header path,<column>,...; paths relative to the "
        "CSV) and of --playlists (rows playlist,path) to the cache's tracks and write "
        "CACHE/metadata.json, for pretraining with data.positives=group:<column> or playlist. "
        "Tracks without a row stay usable; an unknown path or a malformed row is an error "
        "naming its line.",
    )
    p.add_argument("cache", help="clip cache folder (written by audioclr prepare)")
    p.add_argument("tracks", help="CSV path,<column>,... (e.g. path,artist,release)")
    p.add_argument("--playlists", help="CSV of playlist,path rows (for data.positives=playlist)")
    p.set_defaults(func=_metadata)


def _metadata(args: argparse.Namespace) -> int:
    from audioclr.data.metadata import attach_metadata

    s = attach_metadata(args.cache, args.tracks, args.playlists)
    lists = f", {s.playlists} playlists" if args.playlists else ""
    print(
        f"wrote {s.path}: columns {', '.join(s.columns)}; {s.tracks_with_metadata} tracks with "
        f"metadata, {s.tracks_without} without{lists}"
    )
    return 0
