"""Summaries across cells: labels saved by pretraining, and one score over many tasks.

**Labels saved** (per task, per head of the encoder): the smallest label fraction from which
on (that fraction and every larger one) the encoder is not significantly worse than
supervised-from-scratch with all labels (``random_init`` with the ``finetune`` head at its
largest fraction): the paired 95 % bootstrap interval of (encoder at f) - (reference) does not
lie entirely below zero (same test tracks and seeds, ``intervals.paired_difference``).

**Aggregate** (HEAR-style): on each task, at its largest label fraction, each (method, head)'s
mean primary score ``s`` is normalised as ``(s - s_mfcc) / (s_best - s_mfcc)``, with ``s_mfcc``
the best MFCC head and ``s_best`` the best (method, head) of the task: MFCC = 0, the best = 1.
The aggregate of a (method, head) is the mean over the tasks that ran it. A task without MFCC,
or where MFCC is the best, has nothing to normalise against and is left out (listed).

Example:
    >>> task["labels_saved"] = labels_saved(task["results"], "accuracy")
    >>> aggregate(report["tasks"])["ranking"][0]
    'encoder/finetune'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audioclr.evaluate.intervals import paired_difference
from audioclr.evaluate.methods import ENCODER

REFERENCE = ("random_init", "finetune")  # supervised from scratch: fine-tuned random weights
MFCC = "mfcc"
SAVED_RULE = (
    "smallest label fraction from which on (it and every larger one) the encoder's paired 95 % "
    "interval vs random-init fine-tuned on all labels is not entirely below zero"
)
AGGREGATE_RULE = (
    "per task at its largest label fraction: (score - best MFCC) / (best method - best MFCC), "
    "then the mean over tasks"
)


def labels_saved(
    results: dict[str, dict[str, Any]], metric: str, n_boot: int = 1000
) -> dict[str, Any]:
    """``{"reference", "rule", "heads": {head: {"fraction", "saved", "by_fraction"}}}`` (``{}``
    without the reference); ``fraction`` None when no fraction matches. Needs the runs'
    in-memory test scores."""
    ref_method, ref_head = REFERENCE
    ref = results.get(ref_method, {}).get(ref_head)
    if not ref or ENCODER not in results:
        return {}
    ref_fraction = max(ref, key=float)
    ref_runs = ref[ref_fraction]["runs"]
    out: dict[str, Any] = {
        "reference": {
            "method": ref_method,
            "head": ref_head,
            "fraction": float(ref_fraction),
            metric: ref[ref_fraction][metric]["mean"],
        },
        "rule": SAVED_RULE,
        "heads": {},
    }
    for head, by_fraction in results[ENCODER].items():
        fractions = sorted(by_fraction, key=float)
        compared = {
            f: paired_difference(by_fraction[f]["runs"], ref_runs, metric, n_boot)
            for f in fractions
        }
        matched = None
        for f in reversed(fractions):
            if compared[f]["ci95"][1] < 0:  # significantly worse (a NaN interval is not)
                break
            matched = float(f)
        out["heads"][head] = {
            "fraction": matched,
            "saved": None if matched is None else 1.0 - matched,
            "by_fraction": compared,
        }
    return out


def aggregate(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The HEAR-style aggregate of a suite's tasks (see the module docstring)."""
    per_task: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for name, task in tasks.items():
        metric, results = task["metric"], task["results"]
        cells = [(m, h, res) for m, by_head in results.items() for h, res in by_head.items()]
        if not cells:
            left_out[name] = "no results"
            continue
        fraction = max((f for _, _, res in cells for f in res), key=float)
        scores = {
            f"{m}/{h}": float(res[fraction][metric]["mean"])
            for m, h, res in cells
            if fraction in res and np.isfinite(res[fraction][metric]["mean"])
        }
        mfcc = [s for key, s in scores.items() if key.split("/")[0] == MFCC]
        if not mfcc:
            left_out[name] = "no MFCC baseline to normalise against"
            continue
        lo, hi = max(mfcc), max(scores.values())
        if hi <= lo:
            left_out[name] = "MFCC is the best method: nothing to normalise against"
            continue
        per_task[name] = {
            "fraction": float(fraction),
            "mfcc": lo,
            "best": hi,
            "normalised": {k: (s - lo) / (hi - lo) for k, s in scores.items()},
        }
    keys = list(dict.fromkeys(k for t in per_task.values() for k in t["normalised"]))
    scores_out = {
        k: {
            "mean": float(
                np.mean([t["normalised"][k] for t in per_task.values() if k in t["normalised"]])
            ),
            "tasks": sum(1 for t in per_task.values() if k in t["normalised"]),
        }
        for k in keys
    }
    ranking = sorted(scores_out, key=lambda k: -scores_out[k]["mean"])
    return {
        "rule": AGGREGATE_RULE,
        "tasks": per_task,
        "left_out": left_out,
        "scores": scores_out,
        "ranking": ranking,
    }


def aggregate_table(agg: dict[str, Any]) -> list[str]:
    """Markdown lines: the aggregate ranking (empty when no task could be normalised)."""
    if not agg.get("ranking"):
        return [f"aggregate over tasks: none ({why})" for why in agg.get("left_out", {}).values()]
    names = list(agg["tasks"])
    lines = [
        "## Aggregate over tasks",
        "",
        f"{agg['rule']} (MFCC = 0, best = 1).",
        "",
        "| rank | method/head | aggregate | tasks | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for rank, key in enumerate(agg["ranking"], start=1):
        per = [agg["tasks"][t]["normalised"].get(key) for t in names]
        cells = " | ".join("-" if v is None else f"{v:.3f}" for v in per)
        s = agg["scores"][key]
        lines.append(f"| {rank} | {key} | {s['mean']:.3f} | {s['tasks']} | {cells} |")
    lines += [f"\nleft out: {name} ({why})" for name, why in agg.get("left_out", {}).items()]
    return lines + [""]


def labels_saved_lines(saved: dict[str, Any], metric: str) -> list[str]:
    """Markdown lines: per encoder head, the label fraction matching from-scratch training."""
    if not saved.get("heads"):
        return []
    ref = saved["reference"]
    lines = [
        f"labels saved: reference = {ref['method']} with head {ref['head']} at "
        f"{ref['fraction']:g} of labels ({metric} {ref[metric]:.3f}); rule: {saved['rule']}.",
        "",
    ]
    for head, v in saved["heads"].items():
        if v["fraction"] is None:
            lines.append(f"- encoder/{head}: does not match it at any label fraction")
            continue
        d = v["by_fraction"][next(f for f in v["by_fraction"] if float(f) == v["fraction"])]
        lines.append(
            f"- encoder/{head}: matches it with {v['fraction']:g} of the labels "
            f"(saves {100 * v['saved']:.0f} %; difference there {d['diff']:+.3f} "
            f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}])"
        )
    return lines + [""]
