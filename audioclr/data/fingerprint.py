"""A cheap content fingerprint of an audio file: its size plus a hash of its first and last 64 KiB.

Enough to recognise the same file copied or renamed elsewhere (the leak check between a probe's
test audio and an encoder's pretraining files) without reading whole catalogues.

Example:
    >>> file_fingerprint("a.wav")
    '48044:9f86d081884c7d65'
"""

from __future__ import annotations

import hashlib
from pathlib import Path

EDGE = 64 * 1024


def file_fingerprint(path: str | Path) -> str | None:
    """``"<size>:<sha256 of the first and last 64 KiB, 16 hex>"``, or ``None`` if unreadable."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            h = hashlib.sha256(fh.read(EDGE))
            if size > EDGE:
                fh.seek(max(EDGE, size - EDGE))
                h.update(fh.read(EDGE))
    except OSError:
        return None
    return f"{size}:{h.hexdigest()[:16]}"
