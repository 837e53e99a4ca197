"""Throughput of the HEAR API (``audioclr.hear``) in x realtime: scene and timestamp embeddings.

The default melcnn (random weights, exported through ``save_encoder`` and read back by
``audioclr.hear.load_model``) on ``--sounds`` sounds of ``--seconds`` of noise at its rate, on
CPU (or ``--device cuda``). Timestamp embeddings cost about ``window / hop`` times the scene's:
every 50 ms a 500 ms window by default (``--hop-ms``, ``--window-ms``).

    .venv/bin/python benchmarks/hear.py --sounds 4 --seconds 60 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import audioclr.hear as hear
from audioclr.machine import cpu_model
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import save_encoder


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls (synchronised on CUDA)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--sample-rate", type=int, default=22050, help="the encoder's rate")
    ap.add_argument("--hop-ms", type=float, default=50.0)
    ap.add_argument("--window-ms", type=float, default=500.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="report the best of this many runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_encoder(build_encoder("melcnn", args.sample_rate).eval(), Path(tmp) / "e.pt")
        model = hear.load_model(str(path), args.hop_ms, args.window_ms, args.batch_size)
    model.to(args.device)
    samples = int(args.seconds * model.sample_rate)
    gen = torch.Generator().manual_seed(0)
    audio = (torch.rand(args.sounds, samples, generator=gen) * 0.2 - 0.1).to(args.device)
    hear.get_scene_embeddings(audio[:1, : model.sample_rate], model)  # warm-up
    audio_s = args.sounds * args.seconds
    print(
        f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, device "
        f"{args.device}, load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}"
    )
    print(
        f"melcnn (default widths, random weights) at {model.encoder_rate} Hz, HEAR rate "
        f"{model.sample_rate}; {args.sounds} sounds x {args.seconds:g} s; scene: windows of "
        f"{model.window} samples; timestamps: every {args.hop_ms:g} ms, windows of "
        f"{model.timestamp_window} samples; dim {model.scene_embedding_size}; best of "
        f"{args.repeats}"
    )
    runs = {
        "scene embeddings": lambda: hear.get_scene_embeddings(audio, model),
        "timestamp embeddings": lambda: hear.get_timestamp_embeddings(audio, model),
    }
    for name, fn in runs.items():
        secs = best_seconds(fn, args.repeats)
        print(f"  {name:22s} {secs:7.2f} s  ->  {audio_s / secs:8.1f}x realtime")


if __name__ == "__main__":
    main()
