"""CLI command for the real-recording benchmark suite (placeholder until it lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to ``sub``."""
