"""The ``audioclr`` command: argument parsing and dispatch, nothing else.

Each ``audioclr.cli.<area>`` module has ``register(subparsers)``, which adds its subcommands and
sets ``func`` to a handler taking the parsed ``argparse.Namespace``. Handlers import heavy
modules (torch, faiss) lazily so ``audioclr --help`` stays fast.

Example:
    $ audioclr prepare my_music/ cache/ --sample-rate 22050
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from audioclr import __version__
from audioclr.cli import augment, benchmark, data, evaluate, pipelines, pretrain, retrieval
from audioclr.cli import metadata as metadata_cli
from audioclr.cli import serve as serve_cli
from audioclr.errors import AudioclrError

AREAS = (
    data,
    metadata_cli,
    augment,
    pretrain,
    evaluate,
    retrieval,
    pipelines,
    benchmark,
    serve_cli,
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="audioclr",
        description="Self-supervised contrastive pretraining for audio: prepare a clip cache, "
        "pretrain (SimCLR/CPC), embed, probe against baselines, and query similar tracks.",
    )
    parser.add_argument("--version", action="version", version=f"audioclr {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    # KEY=VALUE overrides may stand before, between or after a command's options
    if (
        rest
        and hasattr(args, "overrides")
        and all("=" in w and not w.startswith("-") for w in rest)
    ):
        args.overrides = [*args.overrides, *rest]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.cli_main = main  # for commands that chain other commands (the demo)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (audioclr index info | head) fails here, not at exit
        return code
    except BrokenPipeError:
        # the reader went away: no traceback; point stdout at devnull so the final flush at
        # exit cannot fail again (the Python docs' recipe for SIGPIPE)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except AudioclrError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished work is kept; rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
