"""CLI command ``serve``: the search page over an index, bound to 127.0.0.1 by default.

Example:
    $ audioclr serve my_index/ --port 8000
    $ audioclr serve my_index/ --audio-root /music --max-upload-mb 20
"""

from __future__ import annotations

import argparse
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _serve(args: argparse.Namespace) -> int:
    from audioclr.errors import ConfigError
    from audioclr.search.catalogue import Catalogue
    from audioclr.search.page import create_app, serve

    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}", hint="e.g. 50")
    cat = Catalogue.load(args.index, args.encoder, args.device, args.audio_root)
    app = create_app(cat, max_upload_bytes=int(args.max_upload_mb * 2**20))
    if args.host not in LOOPBACK:
        print(
            f"warning: listening on {args.host}: the page has no login; anyone who can reach "
            "this address can search and play the catalogue",
            file=sys.stderr,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"serving {args.index} ({len(cat.tix.table)} tracks) at http://{host}:{args.port}/ "
        "(Ctrl-C stops)",
        file=sys.stderr,
    )
    serve(app, args.host, args.port)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to ``sub``."""
    s = sub.add_parser(
        "serve", help="a search page: find tracks, listen to their neighbours, see the map"
    )
    s.add_argument("index", help="index folder (from audioclr index build)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--audio-root",
        action="append",
        help="serve audio only from under this folder (repeatable; default: each track's "
        "prepared root, from its source path and track id)",
    )
    s.add_argument(
        "--max-upload-mb",
        type=float,
        default=50.0,
        help="largest audio upload accepted, in MB (default 50; bigger ones get HTTP 413)",
    )
    s.add_argument("--encoder", help="exported encoder for uploads (default: the index's)")
    s.add_argument("--device", default="cpu", help="device that embeds uploads")
    s.set_defaults(func=_serve)
