"""Every probe run's test predictions on disk, so that paired comparisons can be made later.

``report.json`` keeps each run's metrics but not its per-track test scores (the in-memory
:class:`~audioclr.evaluate.intervals.TrackScores` under ``TEST_SCORES``), which a paired
bootstrap needs. ``save_scores`` writes them for one task, every method, head, label fraction
and run, as one ``.npz`` (numbers only, plus a JSON index as a string: loading never unpickles);
``load_scores`` reads them back as run dicts that
:func:`~audioclr.evaluate.intervals.paired_difference` accepts, e.g. to compare two recipes'
encoders on the same test tracks, seeds and label subsets (``pipelines/ablation.py``).

Example:
    >>> save_scores(task_report_results, "probe/scores/digits.npz")
    >>> runs = load_scores("probe/scores/digits.npz")["encoder"]["linear"]["0.01"]
    >>> paired_difference(runs, other_runs, "accuracy")["verdict"]
    'tie'
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.atomic import atomic_write_bytes
from audioclr.errors import AudioclrError
from audioclr.evaluate.intervals import TEST_SCORES, TrackScores

SCORES_DIR = "scores"  # a probe output's folder of saved scores: <out>/scores/<task>.npz
METRICS = ("accuracy", "macro_f1", "roc_auc", "pr_auc")
FORMAT_VERSION = 1


def save_scores(results: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Write ``results`` (``{method: {head: {fraction: {"runs": [run, ...]}}}}``, runs holding
    ``TEST_SCORES``) to ``path`` atomically; runs without test scores are left out."""
    arrays: dict[str, np.ndarray] = {}
    index: list[dict[str, Any]] = []
    for method, heads in results.items():
        for head, by_fraction in heads.items():
            for fraction, cell in by_fraction.items():
                for run in cell.get("runs", []):
                    scores = run.get(TEST_SCORES)
                    if scores is None:
                        continue
                    i = len(index)
                    index.append(
                        {
                            "method": method,
                            "head": head,
                            "fraction": fraction,
                            "seed": run["seed"],
                            "draw": int(run.get("draw", 0)),
                            **{m: float(run[m]) for m in METRICS if m in run},
                        }
                    )
                    arrays[f"{i}/tracks"] = np.asarray(scores.tracks, dtype=np.int64)
                    arrays[f"{i}/y_true"] = np.asarray(scores.y_true)
                    arrays[f"{i}/scores"] = np.asarray(scores.scores, dtype=np.float32)
                    if scores.groups is not None:
                        arrays[f"{i}/groups"] = np.asarray([str(g) for g in scores.groups])
    meta = {"format_version": FORMAT_VERSION, "runs": index}
    buf = io.BytesIO()
    np.savez_compressed(buf, index=np.asarray(json.dumps(meta)), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_scores(path: str | Path) -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """``{method: {head: {fraction: [run, ...]}}}`` from :func:`save_scores`'s file; each run
    holds ``seed``, ``draw``, its metrics and ``TEST_SCORES``. Raises ``AudioclrError`` naming
    the file if it is missing or not such a file."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["index"]))
            files = {k: z[k] for k in z.files if k != "index"}
    except (OSError, ValueError, KeyError) as exc:
        raise AudioclrError(
            f"{p}: not a saved probe scores file ({exc})",
            hint="rerun the probe stage that writes it",
        ) from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise AudioclrError(f"{p}: scores format {meta.get('format_version')!r} is not supported")
    out: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for i, info in enumerate(meta["runs"]):
        scores = TrackScores(
            files[f"{i}/tracks"],
            files[f"{i}/y_true"],
            files[f"{i}/scores"],
            files.get(f"{i}/groups"),
        )
        run = {k: v for k, v in info.items() if k not in ("method", "head", "fraction")}
        run[TEST_SCORES] = scores
        heads = out.setdefault(info["method"], {}).setdefault(info["head"], {})
        heads.setdefault(info["fraction"], []).append(run)
    return out
