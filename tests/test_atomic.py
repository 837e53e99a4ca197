"""Atomic writes: a new file gets the mode ``open`` would give it (not the temp file's 0600), a
replaced file keeps its own, and a failed write leaves the old file and no temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from audioclr.atomic import atomic_write, atomic_write_text


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with open(tmp_path / "plain.json", "w") as fh:  # what open() makes: the reference
            fh.write("{}")
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain.json").stat().st_mode)
    assert want == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == want


def test_a_replaced_file_keeps_its_mode_and_a_failed_write_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o640

    def boom(fh: object) -> None:
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.txt"]
