"""benchmarks/retrieval.py, the script behind the 1e7 figures: its synthetic data has the
spectrum it claims, and its past-memory path runs end to end at toy size (so it cannot rot)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import retrieval  # noqa: E402


@pytest.mark.parametrize("alpha", [0.0, 1.6])
def test_synthetic_data_has_the_power_law_spectrum_it_names(alpha: float) -> None:
    """The data's PCA eigenvalues fall as i^-alpha (log-log slope fitted in numpy over the
    leading 40 after the first); alpha 0 is isotropic, the data of the earlier runs."""
    args = argparse.Namespace(seed=0, clusters=0, dim=128, alpha=alpha, spread=0.05)
    synth, rng = retrieval.make_synth(200_000, args)
    x = retrieval.clustered(40_000, synth, rng)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    eig = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    i = np.arange(2, 42)
    slope = -np.polyfit(np.log(i), np.log(eig[1:41]), 1)[0]
    assert abs(slope - alpha) < 0.25, slope


def test_large_path_runs_end_to_end_and_reports(tmp_path: Path) -> None:
    """A toy run of the 1e7 command: the quantizer_nprobe sweep orders recall, the build's own
    tuning is reported with its recall, and the fast-scan padding figure matches the lists in
    the saved index (whole blocks of 32 codes) and fits in the file's size."""
    report = tmp_path / "r.md"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "retrieval.py"),
        "--sizes", "20000", "--types", "large", "--dim", "32", "--queries", "300",
        "--gt-queries", "200", "--nprobe", "8", "--quantizer-nprobe", "1,16", "--k-factor", "32",
        "--rounds", "1", "--factory", "IVF256(IVF16,Flat),PQ16x4fs", "--target", "0.9",
        "--workdir", str(tmp_path / "w"), "--report", str(report), "--keep",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = report.read_text()
    rows = [
        r.split("|") for r in text.splitlines() if r.startswith("| 1 |") or r.startswith("| 16 |")
    ]
    recall = {int(r[1]): float(r[4]) for r in rows}
    assert recall[16] >= 0.9 and recall[1] < recall[16], recall  # more centroid lists: better
    assert "IVF256(IVF16,Flat),PQ16x4fs" in text
    assert "recall@10 >= 0.9: quantizer_nprobe=" in text
    tuned = re.search(r"own tuning .* picks nprobe (\d+).*recall@10 \*\*([\d.]+) at", text)
    assert tuned and float(tuned.group(2)) >= 0.85, text  # target 0.9 on its own tracks
    single = re.search(r"one query a call .*: ([\d.]+) ms a query \((\d+) queries/s\)", text)
    assert single and abs(1000 / float(single.group(1)) / int(single.group(2)) - 1) < 0.1, text
    (path,) = (tmp_path / "w" / "index-20000").glob("index-*.faiss")
    index = faiss.read_index(str(path))  # held: the IVF view below points into it
    ivf = faiss.extract_index_ivf(index)
    sizes = np.array([ivf.invlists.list_size(i) for i in range(ivf.nlist)])
    pad = float(np.sum(np.ceil(sizes / 32) * 32 - sizes)) * 8 / 20000  # 8-byte codes
    reported = float(re.search(r"([\d.]+) bytes/vector of padding", text).group(1))
    assert pad > 0.5 and abs(reported - pad) < 0.06, (reported, pad)
    assert path.stat().st_size >= 20000 * (8 + 16 + pad)


def test_private_memory_counts_anonymous_pages_not_mapped_files(tmp_path: Path) -> None:
    """The report's "private memory": 256 MiB of written numpy pages add 0.25 GiB; reading a
    256 MiB file through a memory map adds nothing (those pages are the kernel's to drop)."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status")
    before = retrieval.private_gib()
    held = np.ones((64, 2**20), np.float32)  # 256 MiB, written
    grown = retrieval.private_gib() - before
    assert abs(grown - 0.25) < 0.03, grown
    path = tmp_path / "big.npy"
    np.save(path, held)
    del held
    mapped = np.load(path, mmap_mode="r")
    base = retrieval.private_gib()
    assert float(mapped.sum(dtype=np.float64)) == 64 * 2**20  # every page read
    assert retrieval.private_gib() - base < 0.03


def test_killed_benchmark_leaves_no_build_running(tmp_path: Path) -> None:
    """SIGKILL to the benchmark while its build child runs: the child dies with it (it once
    kept building a 1e7 index for 10 minutes after its parent was gone)."""
    import os
    import signal
    import time

    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "retrieval.py"), "--sizes", "400000",
        "--types", "large", "--dim", "64", "--queries", "100", "--gt-queries", "50",
        "--factory", "IVF4096(IVF64,Flat),PQ32x4fs", "--workdir", str(tmp_path / "w"),
    ]  # fmt: skip
    parent = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child = None
        for _ in range(600):  # the build child appears after the data and exact top-10
            kids = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True)
            for pid in map(int, kids.stdout.split()):  # not the resource tracker: the build
                if b"multiprocessing-fork" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    child = pid
            if child:
                break
            time.sleep(0.1)
        assert child is not None, "no build child started"
        time.sleep(1.0)  # inside build_large
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(50):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return
            with open(f"/proc/{child}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):  # dead, not yet reaped
                    return
            time.sleep(0.1)
        os.kill(child, signal.SIGKILL)  # leave nothing behind, then fail
        pytest.fail(f"build child {child} still ran after its parent was killed")
    finally:
        parent.kill()
