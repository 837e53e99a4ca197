"""Shared plumbing for the real-recording data-set builders: cache folder, Debian packages, files.

Everything here is deterministic and idempotent: a package already unpacked, a tool already
installed or a file already written is left alone.

Example:
    >>> root = data_root(None)                      # $AUDIOCLR_DATA or ~/.cache/audioclr-data
    >>> pkg_dir = fetch_package("xmoto-data", root)  # apt-get download + dpkg -x, once
    >>> ensure_tool("fluidsynth", "fluidsynth")      # apt-get install when missing (as root)
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from audioclr.errors import AudioclrError

DEFAULT_ROOT = Path("~/.cache/audioclr-data")
ENV_VAR = "AUDIOCLR_DATA"
OUT_HELP = "cache folder (default $AUDIOCLR_DATA or ~/.cache/audioclr-data)"


class BuildError(AudioclrError):
    """A data set cannot be built: a package or tool is missing, or its audio is unusable."""


def data_root(out: str | Path | None) -> Path:
    """The cache folder: ``out``, else ``$AUDIOCLR_DATA``, else ``~/.cache/audioclr-data``."""
    chosen = out or os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(chosen).expanduser().resolve()


def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)


def _download_deb(pkg: str, debs: Path) -> Path:
    """``apt-get download pkg`` into ``debs`` (an ``apt-get update`` and one retry if unknown)."""
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise BuildError(
            f"cannot fetch Debian package {pkg!r}: apt-get not found",
            hint="build the data sets on a Debian/Ubuntu machine",
        )
    debs.mkdir(parents=True, exist_ok=True)
    print(f"[debian] apt-get download {pkg}", flush=True)
    res = _run(["apt-get", "download", pkg], cwd=debs)
    if res.returncode != 0:
        print("[debian] apt-get update (package lists missing or stale)", flush=True)
        _run(["apt-get", "update"])
        res = _run(["apt-get", "download", pkg], cwd=debs)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if res.returncode != 0 or not found:
        raise BuildError(
            f"apt-get download {pkg} failed: {res.stderr.strip()[-300:]}",
            hint="run 'apt-get update' as root, check the package name, then retry",
        )
    return found[-1]


def fetch_package(pkg: str, root: Path) -> Path:
    """Fetch ``pkg``'s .deb and ``dpkg -x`` it into ``root/debian/pkg``; returns that folder.

    Nothing is installed on the system. A finished unpack leaves a ``.unpacked`` marker, so a
    second call returns at once; an interrupted one is redone from scratch.
    """
    dest = root / "debian" / pkg
    if (dest / ".unpacked").is_file():
        return dest
    deb = _download_deb(pkg, root / "debs")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    res = _run(["dpkg", "-x", str(deb), str(tmp)])
    if res.returncode != 0:
        raise BuildError(
            f"dpkg -x {deb} failed: {res.stderr.strip()[-300:]}",
            hint=f"delete {deb} so it is downloaded again",
        )
    (tmp / ".unpacked").write_text(deb.name + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def ensure_tool(command: str, package: str) -> str:
    """Path of ``command``; installs Debian ``package`` with apt-get if missing and we are root."""
    path = shutil.which(command)
    if path:
        return path
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BuildError(
            f"{command!r} is not installed", hint=f"install it: sudo apt-get install {package}"
        )
    print(f"[debian] {command} missing: apt-get install -y {package}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        _run(["apt-get", "update"])
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    path = shutil.which(command)
    if not path:
        raise BuildError(
            f"apt-get install {package} did not provide {command!r}: {res.stderr.strip()[-300:]}",
            hint=f"install it by hand: apt-get install {package}",
        )
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV atomically (temp name, then rename); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV with a header, as dicts."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_wav(path: Path, x: np.ndarray, sample_rate: int) -> Path:
    """Write ``x`` ``(samples,)`` float as 16-bit PCM WAV atomically; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.wav")
    sf.write(str(tmp), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16")
    tmp.replace(path)
    return path


def rms_db(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def print_summary(name: str, labels: Sequence[str], splits: Sequence[str], seconds: float) -> None:
    """Print counts per class and split, and the total duration, as one small table."""
    by = Counter(zip(labels, splits, strict=True))
    split_names = [s for s in ("train", "valid", "test") if s in set(splits)]
    print(f"\n{name}: {len(labels)} clips, {seconds / 60:.1f} min in total")
    print(f"  {'class':<22}" + "".join(f"{s:>7}" for s in split_names) + f"{'all':>7}")
    for label in sorted(set(labels)):
        counts = [by[(label, s)] for s in split_names]
        print(f"  {label:<22}" + "".join(f"{c:>7}" for c in counts) + f"{sum(counts):>7}")
    totals = [sum(by[(lab, s)] for lab in set(labels)) for s in split_names]
    print(f"  {'all':<22}" + "".join(f"{c:>7}" for c in totals) + f"{len(labels):>7}", flush=True)


def parse_args(
    doc: str, argv: Sequence[str] | None, seed: bool = False, soundfonts: Sequence[str] = ()
) -> argparse.Namespace:
    """A builder's command line, described by ``doc``'s first line: ``--out DIR`` (resolved by
    :func:`data_root` into ``args.root``), then ``--soundfont-b KEY`` when ``soundfonts`` are
    given (the first is the default) and ``--seed N`` (default 0) when ``seed``.

    Example:
        >>> args = parse_args(__doc__, ["--seed", "3"], seed=True)
        >>> args.seed, args.root == data_root(None)
        (3, True)
    """
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", help=OUT_HELP)
    if soundfonts:
        ap.add_argument("--soundfont-b", default=soundfonts[0], choices=list(soundfonts))
    if seed:
        ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.root = data_root(args.out)
    return args


def run_main(fn, argv: Sequence[str] | None = None) -> int:  # type: ignore[no-untyped-def]
    """Call ``fn(argv)``; an ``AudioclrError`` is printed as one line plus hint. Returns 0 or 1."""
    try:
        fn(argv)
    except AudioclrError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    return 0
