"""Embedding throughput in x realtime for a melcnn encoder (default widths, random weights).

Three inputs, measured side by side in one run: arrays in memory, a clip cache (no decoding),
and audio files on disk (decode + resample on the fly). Target on 2 CPU cores: >= 200x realtime.

    .venv/bin/python benchmarks/embed.py --tracks 20 --seconds 30 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audioclr.data.prepare import prepare_cache
from audioclr.evaluate.embed import cut_windows, embed_track_list, embed_windows
from audioclr.evaluate.tracks import open_tracks
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import LoadedEncoder


def _loaded(sample_rate: int) -> LoadedEncoder:
    enc = build_encoder("melcnn", sample_rate).eval()
    return LoadedEncoder(enc, sample_rate, enc.input_samples, list(enc.layer_names), {}, "bench")


def _timed(fn, rep: int) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn(rep)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sample-rate", type=int, default=22050)
    ap.add_argument(
        "--file-rate", type=int, default=44100, help="rate of the files on disk (resampled)"
    )
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="report the best of this many runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    sr = args.sample_rate
    loaded = _loaded(sr)
    win = loaded.input_samples
    audio_s = args.tracks * args.seconds
    arrays = [
        rng.normal(0, 0.1, int(args.seconds * sr)).astype(np.float32) for _ in range(args.tracks)
    ]
    embed_windows(loaded, arrays[:2], batch_size=args.batch_size, device=args.device)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "audio").mkdir()
        for i in range(args.tracks):
            x = rng.normal(0, 0.1, int(args.seconds * args.file_rate)).astype(np.float32)
            sf.write(tmp / "audio" / f"t{i:03d}.wav", x, args.file_rate, subtype="PCM_16")
        prepare_cache(tmp / "audio", tmp / "cache", sample_rate=sr, progress=False)

        all_windows = torch.from_numpy(
            np.stack([w for a in arrays for w in cut_windows(a, win, win, 1)])
        )

        def as_loaded() -> (
            None
        ):  # same batches, the encoder as loaded (no fusion, no channels-last)
            with torch.inference_mode():
                for lo in range(0, len(all_windows), args.batch_size):
                    loaded.encoder(all_windows[lo : lo + args.batch_size])

        def from_tracks(data: Path, rep: int) -> None:  # a fresh output folder: nothing to resume
            tracks = open_tracks(data, sr)
            embed_track_list(
                loaded,
                tracks,
                tmp / f"out{rep}-{data.name}",
                batch_size=args.batch_size,
                device=args.device,
                progress=False,
            )

        runs = {
            "arrays, encoder as loaded (ref.)": lambda rep: as_loaded(),
            "arrays in memory": lambda rep: embed_windows(
                loaded, arrays, batch_size=args.batch_size, device=args.device
            ),
            "clip cache": lambda rep: from_tracks(tmp / "cache", rep),
            "files on disk (decode+resample)": lambda rep: from_tracks(tmp / "audio", rep),
        }
        print(
            f"melcnn (default widths, random weights), {args.tracks} tracks x {args.seconds:g} s "
            f"at {sr} Hz, {len(all_windows)} windows of {win} samples, "
            f"{torch.get_num_threads()} threads, device {args.device}, "
            f"best of {args.repeats}, load average {os.getloadavg()[0]:.1f}"
        )
        best = {name: min(_timed(fn, r) for r in range(args.repeats)) for name, fn in runs.items()}
        for name, secs in best.items():
            print(
                f"  {name:34s} {secs:7.2f} s  ->  {audio_s / secs:7.1f}x realtime  (target >= 200x)"
            )


if __name__ == "__main__":
    main()
