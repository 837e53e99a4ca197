"""What a figure was measured on: date, machine, command and git commit, for every report.

Example:
    >>> meta = machine_meta("audioclr probe enc.pt labels.csv out/")
    >>> meta["cores"], meta["cpu"]
    (2, 'Intel(R) Xeon(R) Processor')
    >>> print("\\n".join(meta_lines(meta)))
    - date: 2026-11-30T09:30:00+00:00
    - machine: 2 cores, Intel(R) Xeon(R) Processor, no GPU, torch 2.14.1
    ...
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """``lscpu``'s model name, else /proc/cpuinfo's, else ``platform.processor()``."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    try:
        out += "\n" + Path("/proc/cpuinfo").read_text()
    except OSError:
        pass
    for line in out.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def git_commit(repo: Path) -> str:
    """``HEAD`` of ``repo`` (plus ``-dirty`` when tracked files changed), or ``unknown``."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return git("rev-parse", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_meta(command: str) -> dict[str, Any]:
    """Date, machine (cores, CPU model, GPU), the command and the git commit of this code."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "gpu": gpu,
        "torch": torch.__version__,
        "command": command,
        "git_commit": git_commit(Path(__file__).resolve().parents[1]),
    }


def meta_lines(m: dict[str, Any]) -> list[str]:
    """The header bullets every report starts with: date, machine, command, commit."""
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return [
        f"- date: {m['date']}",
        f"- machine: {m['cores']} cores, {m['cpu']}{gpu}, torch {m['torch']}",
        f"- command: `{m['command']}`",
        f"- git commit: {m['git_commit']}",
    ]
