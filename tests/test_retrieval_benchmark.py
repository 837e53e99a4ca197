"""benchmarks/retrieval.py, the script behind the 1e7 figures: its synthetic data has the
spectrum it claims, and its past-memory path runs end to end at toy size (so it cannot rot)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

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
    report = tmp_path / "r.md"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "retrieval.py"),
        "--sizes", "20000", "--types", "large", "--dim", "32", "--queries", "300",
        "--gt-queries", "200", "--nprobe", "8", "--quantizer-nprobe", "1,16", "--k-factor", "8",
        "--rounds", "1", "--factory", "IVF256(IVF16,Flat),PQ8np", "--target", "0.9",
        "--workdir", str(tmp_path / "w"), "--report", str(report),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = report.read_text()
    rows = [
        r.split("|") for r in text.splitlines() if r.startswith("| 1 |") or r.startswith("| 16 |")
    ]
    recall = {int(r[1]): float(r[4]) for r in rows}
    assert recall[16] >= 0.9 and recall[1] < recall[16], recall  # more centroid lists: better
    assert (
        "IVF256(IVF16,Flat),PQ8np" in text
        and "best reaching recall@10 >= 0.9: quantizer_nprobe=16" in text
    )
