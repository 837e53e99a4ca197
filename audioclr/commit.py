"""One commit per output folder: ``manifest.json``, written last, names every file with its size
and sha256, and readers refuse a folder whose files do not match it.

A writer first calls :func:`invalidate` (removes the manifest and the files a reader needs to
pair the data, so a half-rewritten folder can never be read as a whole one), writes its files
(each atomically), then :func:`write_manifest`. A folder without a manifest was written by an
older audioclr (or by hand) and is read as it is; :func:`verify_manifest` says which.

Example:
    >>> write_manifest(folder, ["embeddings.npy", "tracks.json"], kind="embeddings")
    >>> verify_manifest(folder, "embeddings", AudioclrError, hint="re-run audioclr embed")
    True
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from audioclr.atomic import atomic_write_text
from audioclr.errors import AudioclrError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def invalidate(folder: Path, names: list[str]) -> None:
    """Remove ``folder``'s manifest, then ``names``: the folder reads as incomplete until the
    next :func:`write_manifest`."""
    for name in [MANIFEST, *names]:
        (folder / name).unlink(missing_ok=True)


def write_manifest(folder: Path, names: list[str], kind: str) -> Path:
    """Commit ``folder``: record the size and sha256 of each of ``names`` (paths relative to it)."""
    files = {
        n: {"bytes": (folder / n).stat().st_size, "sha256": sha256_of(folder / n)} for n in names
    }
    doc = {"format_version": FORMAT_VERSION, "kind": kind, "files": files}
    return atomic_write_text(folder / MANIFEST, json.dumps(doc, indent=1))


def verify_manifest(
    folder: Path, kind: str, error: type[AudioclrError], hint: str, hashes: bool = True
) -> bool:
    """Check ``folder``'s files against its manifest; ``False`` if it has none (an older folder).

    Raises ``error`` naming the first file that is missing or differs in size or (``hashes``)
    sha256, or when the manifest itself is damaged or of another kind or version.
    """
    path = folder / MANIFEST
    if not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text())
        files = doc["files"]
        ok = doc.get("format_version") == FORMAT_VERSION and doc.get("kind") == kind
        ok = ok and all(isinstance(v, dict) for v in files.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise error(f"{path} is damaged ({exc})", hint=hint) from exc
    if not ok:
        raise error(f"{path} is not a version {FORMAT_VERSION} {kind} manifest", hint=hint)
    for name, want in files.items():
        file = folder / name
        if not file.is_file():
            raise error(f"{file} is missing (listed in {path})", hint=hint)
        size = file.stat().st_size
        if size != want.get("bytes") or (hashes and sha256_of(file) != want.get("sha256")):
            what = (
                f"{size} bytes, {want.get('bytes')} expected"
                if size != want.get("bytes")
                else "sha256 differs"
            )
            raise error(
                f"{file} does not match {path} ({what}): the folder was changed after it was "
                "written, or a write was interrupted",
                hint=hint,
            )
    return True
