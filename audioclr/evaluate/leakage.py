"""Did pretraining hear a probe's test audio? Compare test files with an encoder's training set.

An exported encoder records the source files of its pretraining clip cache with content
fingerprints (``trained_on``, written by ``audioclr export``; ``audioclr.data.fingerprint``). A
test file counts as seen when its resolved path is one of those sources, or when its fingerprint
is one of theirs (the same file copied or renamed elsewhere). Probing on seen audio flatters the
encoder against every baseline, so the probe warns loudly and records it in the report.

Example:
    >>> seen = seen_test_files(loaded.trained_on, [Path("audio/a.wav"), Path("audio/b.wav")])
    >>> [p.name for p in seen]
    ['a.wav']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audioclr.data.fingerprint import file_fingerprint


def seen_test_files(trained_on: dict[str, Any], test_paths: Sequence[str | Path]) -> list[Path]:
    """The ``test_paths`` that the encoder's pretraining cache also held (see module doc).

    ``trained_on`` without ``sources`` (encoder exported before this was recorded, or its cache
    was unreadable at export) gives ``[]``: use :func:`leak_status` to tell "none" from "unknown".
    """
    sources = trained_on.get("sources") or []
    by_path = {str(Path(s).resolve()) for s in sources}
    prints = {f for f in trained_on.get("fingerprints") or [] if f}
    seen = []
    for p in map(Path, test_paths):
        if str(p.resolve()) in by_path or (prints and file_fingerprint(p) in prints):
            seen.append(p)
    return seen


def leak_status(trained_on: dict[str, Any], test_paths: Sequence[str | Path]) -> dict[str, Any]:
    """``{"checked": bool, "test_files": n, "seen": n, "examples": [...], "cache": ...}``."""
    if trained_on.get("sources") is None:
        return {
            "checked": False,
            "test_files": len(test_paths),
            "seen": None,
            "examples": [],
            "cache": trained_on.get("cache"),
        }
    seen = seen_test_files(trained_on, test_paths)
    return {
        "checked": True,
        "test_files": len(test_paths),
        "seen": len(seen),
        "examples": [str(p) for p in seen[:3]],
        "cache": trained_on.get("cache"),
    }


def leak_warning(task: str, status: dict[str, Any]) -> str | None:
    """A one-line warning when test audio was seen in pretraining (or could not be checked)."""
    if not status["checked"]:
        return (
            f"task {task!r}: cannot check whether pretraining saw the test audio (the "
            "encoder records no training files; re-export it with this audioclr)"
        )
    if status["seen"]:
        return (
            f"task {task!r}: the encoder was pretrained on {status['seen']} of the "
            f"{status['test_files']} test files (e.g. {status['examples'][0]}): its scores "
            "are flattered against every baseline; pretrain on audio disjoint from the test "
            "split"
        )
    return None
