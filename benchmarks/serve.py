"""Search page benchmark: time to ready and time to first neighbours on a large catalogue.

Builds a synthetic index of ``--tracks`` (default 10,000) seeded random vectors of ``--dim``
dimensions with ``TrackIndex.build`` (what ``audioclr index build`` runs); every track's source is
a hard link to one short WAV file, so audio can be fetched too. Then starts the real command,
``python -m audioclr.cli serve INDEX --port P``, ``--starts`` times, and prints per start:

- ready: from process start until ``/api/info`` answers (imports, index and table load, the PCA
  map, uvicorn up). Target: under 5 s at 10,000 tracks. The time a fresh process takes to build
  audioclr's argument parser is printed once, as it is part of every start.
- first neighbours: the first ``/api/neighbours?track=...&k=10`` request after ready.
- page data: ``/`` plus ``/api/map`` (what the browser loads before drawing), with the map's size.
- first audio range: a ``Range: bytes=0-65535`` request for a neighbour's audio (206).

    python benchmarks/serve.py                      # 10,000 tracks x 512-d, 3 starts
    python benchmarks/serve.py --serve-only         # without the other commands' parsers
    python benchmarks/serve.py --tracks 100000 --dim 256 --starts 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

from audioclr.evaluate.store import EmbeddingSet
from audioclr.machine import cpu_model
from audioclr.search.index import TrackIndex


def build_catalogue(folder: Path, tracks: int, dim: int, seed: int) -> Path:
    """A ``tracks``-track index in ``folder/index`` over hard links to one 2 s WAV file."""
    rng = np.random.default_rng(seed)
    wav = folder / "one.wav"
    sf.write(wav, (0.1 * rng.standard_normal(32_000)).astype(np.float32), 16_000)
    ids, sources = [], []
    for i in range(tracks):
        tid = f"genre{i % 20:02d}/track_{i:06d}.wav"
        path = folder / "audio" / tid
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(wav, path)
        ids.append(tid)
        sources.append(str(path))
    vectors = rng.standard_normal((tracks, dim)).astype(np.float32)
    meta = {"encoder_id": "synthetic", "layer": "last", "sample_rate": 16_000}
    return TrackIndex.build(EmbeddingSet(vectors, ids, sources, meta)).save(folder / "index")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[float, bytes]:
    """Seconds for one GET and its body."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def parser_s() -> float:
    """Seconds a fresh process takes to import ``audioclr.cli`` and build its parser."""
    code = (
        "import time; t = time.perf_counter(); import audioclr.cli as c; c.build_parser(); "
        "print(time.perf_counter() - t)"
    )
    return float(subprocess.check_output([sys.executable, "-c", code], text=True))


SERVE_ONLY = (  # a parser with only ``serve`` registered, as audioclr.cli.main would run it
    "import argparse, sys; from audioclr.cli import serve; p = argparse.ArgumentParser(); "
    "serve.register(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); a.func(a)"
)


def one_start(index: Path, port: int, serve_only: bool) -> dict:
    """Start ``audioclr serve``, time it, stop it."""
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    entry = ["-c", SERVE_ONLY] if serve_only else ["-m", "audioclr.cli"]
    cmd = [sys.executable, *entry, "serve", str(index), "--port", str(port)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                get(base + "/api/info")
                break
            except OSError:
                time.sleep(0.01)
        ready = time.perf_counter() - t0
        first, body = get(base + "/api/neighbours?track=genre03/track_000123.wav&k=10")
        hit = json.loads(body)["hits"][0]["id"]
        page, _ = get(base + "/")
        map_s, map_body = get(base + "/api/map")
        audio_s, _ = get(f"{base}/audio/{hit}", {"Range": "bytes=0-65535"})
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "ready_s": ready,
        "first_neighbours_s": first,
        "page_and_map_s": page + map_s,
        "map_kib": len(map_body) / 1024,
        "first_audio_range_s": audio_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--serve-only",
        action="store_true",
        help="start through a parser with only serve registered: the page's own start, without "
        "the time the other commands' registration takes",
    )
    args = ap.parse_args()
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    with tempfile.TemporaryDirectory(prefix="audioclr-serve-bench-") as tmp:
        t0 = time.perf_counter()
        index = build_catalogue(Path(tmp), args.tracks, args.dim, args.seed)
        table = json.loads((index / "table.json").read_text())
        print(
            f"catalogue: {args.tracks} tracks x {args.dim}-d, {table['factory']!r}, "
            f"built in {time.perf_counter() - t0:.1f} s"
        )
        if not args.serve_only:
            print(f"in each start, building audioclr's parser alone: {parser_s():.2f} s")
        for n in range(args.starts):
            r = one_start(index, free_port(), args.serve_only)
            print(
                f"start {n + 1}: ready {r['ready_s']:.2f} s | first neighbours "
                f"{1000 * r['first_neighbours_s']:.1f} ms | page + map "
                f"{1000 * r['page_and_map_s']:.1f} ms ({r['map_kib']:.0f} KiB) | first audio "
                f"range {1000 * r['first_audio_range_s']:.1f} ms"
            )


if __name__ == "__main__":
    main()
