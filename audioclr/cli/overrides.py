"""The one spelling of config overrides on every command: ``KEY=VALUE`` words.

``main`` (``audioclr/cli/__init__.py``) also takes such words placed among a command's options.

Example:
    >>> add_overrides(parser, "trainer.max_steps=500 optim.lr=3e-4")
"""

from __future__ import annotations

import argparse


def add_overrides(p: argparse.ArgumentParser, example: str) -> None:
    """Add the positional ``overrides`` (``KEY=VALUE`` words) to ``p``, with an example."""
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help=f"dotted overrides, e.g. {example}"
    )
