"""Reading a versioned JSON file: the object it holds, or one of our errors naming what is wrong.

Every JSON file audioclr writes for another command to read (a cache's manifest, an index's side
table) carries ``format_version``; a file from another version is refused, never guessed at.

Example:
    >>> data = read_versioned_json(path, 1, CacheError, damaged_hint="prepare again",
    ...                            version_hint="prepare again with this audioclr")
    >>> data["format_version"]
    1
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audioclr.errors import AudioclrError


def read_versioned_json(
    path: Path, version: int, error: type[AudioclrError], damaged_hint: str, version_hint: str
) -> dict[str, Any]:
    """The JSON object in ``path``, whose ``format_version`` must be ``version``.

    Raises ``error`` with ``damaged_hint`` when the file cannot be read or parsed, and with
    ``version_hint`` when it holds no object or one of another ``format_version``.

    Example:
        >>> read_versioned_json(Path("idx/table.json"), 1, RetrievalError, "rebuild", "rebuild")
        {'format_version': 1, ...}
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise error(f"{path} is damaged: {exc}", hint=damaged_hint) from exc
    found = data.get("format_version") if isinstance(data, dict) else None
    if found != version:
        raise error(
            f"{path} has format_version {found!r}; this audioclr reads version {version}",
            hint=version_hint,
        )
    return data
