"""The GPU check's toy run (``benchmarks/gpu_check.py --cpu``): every step runs and reports, so
the script is ready the day a CUDA machine is (about a minute on 2 CPU cores)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_mode_runs_every_step(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_check.py",
            "--cpu",
            "--budget-min",
            "10",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = out.read_text()
    assert f"wrote {out}" in r.stdout and "## 6. The default recipe" in r.stdout
    titles = re.findall(r"^## (\d)\. ", report, re.M)
    assert titles == ["1", "2", "3", "4", "5", "6"] and "skipped" not in report.replace(
        "2 skipped", ""
    )
    rows = re.findall(
        r"^\| (melcnn|samplecnn) \| (model-only|end to end) \|.*\| (True|False) \|", report, re.M
    )
    assert len(rows) == 4 and all(finite == "True" for *_, finite in rows)
    assert "same parameters drawn" in report and "x realtime" in report
    assert "the built-in demo corpus" in report and "| encoder | linear |" in report
    assert report.rstrip().splitlines()[-1].startswith("all checks passed")
