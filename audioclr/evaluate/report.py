"""The probe report: ``report.json`` (every number), ``report.md`` (task x method x fraction tables,
mean +- std), ``report.png`` (label fraction vs score, one line per method, one panel per task) and
the same numbers in TensorBoard (``OUT/tb``; step = label fraction in per mille).

A report dict is ``{"tasks": {task: {"metric", "multilabel", "results": {method: {head: probe}},
"verdict": {head: {fraction: {...}}}}}, ...}`` where ``probe`` is :func:`run_probe`'s output.
The encoder counts as good on a (head, fraction) only if its mean primary metric beats every
baseline's (random-init encoder, MFCC statistics, supervised-from-scratch when run) on the same
splits; the tables mark it.

Example:
    >>> write_report(report, "out/")   # out/report.json, out/report.md, out/report.png, out/tb/
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.atomic import atomic_write_text

ENCODER = "encoder"


def verdicts(results: dict[str, dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """Per head and fraction: does the encoder beat the best baseline on ``metric``?"""
    out: dict[str, dict[str, Any]] = {}
    for head, by_fraction in results.get(ENCODER, {}).items():
        out[head] = {}
        for fraction, res in by_fraction.items():
            base = {
                m: r[head][fraction][metric]["mean"]
                for m, r in results.items()
                if m != ENCODER and head in r and fraction in r[head]
            }
            if not base:
                continue
            best = max(base, key=base.__getitem__)
            mean = res[metric]["mean"]
            out[head][fraction] = {
                "beats_baselines": bool(mean > base[best]),
                "best_baseline": best,
                "margin": float(mean - base[best]),
            }
    return out


def _cell(res: dict[str, Any], metric: str) -> str:
    m = res.get(metric)
    return "-" if m is None else f"{m['mean']:.3f} ± {m['std']:.3f}"


def _task_markdown(name: str, task: dict[str, Any]) -> list[str]:
    metric, results = task["metric"], task["results"]
    fractions = sorted({f for r in results.values() for h in r.values() for f in h}, key=float)
    lines = [f"## {name} ({'multi-label' if task['multilabel'] else 'single-label'}, {metric})", ""]
    for key in ("tracks", "skipped"):
        if task.get(key):
            lines += [f"{key}: {task[key]}", ""]
    lines.append(
        "| method | head | " + " | ".join(f"{float(f):g} of labels" for f in fractions) + " |"
    )
    lines.append("|---|---|" + "---|" * len(fractions))
    for method, by_head in results.items():
        for head, res in by_head.items():
            cells = []
            for f in fractions:
                cell = _cell(res[f], metric) if f in res else "-"
                v = task.get("verdict", {}).get(head, {}).get(f) if method == ENCODER else None
                cells.append(cell + ("" if v is None else (" ✓" if v["beats_baselines"] else " ✗")))
            lines.append(f"| {method} | {head} | " + " | ".join(cells) + " |")
    baselines = ", ".join(m for m in results if m != ENCODER) or "none"
    lines += ["", f"✓ = beats every baseline ({baselines}) on the same splits; ✗ = does not.", ""]
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """The markdown tables of a report."""
    lines = [
        "# Linear-probe report",
        "",
        f"encoder: `{report.get('encoder')}` (id {report.get('encoder_id')})",
        "",
    ]
    for name, task in report["tasks"].items():
        lines += _task_markdown(name, task)
    return "\n".join(lines)


def plot_report(report: dict[str, Any], path: Path) -> None:
    """One panel per task: label fraction (log x) vs primary metric, one line per method/head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["tasks"]
    fig, axes = plt.subplots(
        1, max(1, len(tasks)), figsize=(5 * max(1, len(tasks)), 4), squeeze=False
    )
    for ax, (name, task) in zip(axes[0], tasks.items(), strict=False):
        for method, by_head in task["results"].items():
            for head, res in by_head.items():
                fr = sorted(res, key=float)
                mean = [res[f][task["metric"]]["mean"] for f in fr]
                std = [res[f][task["metric"]]["std"] for f in fr]
                ax.errorbar(
                    [float(f) for f in fr],
                    mean,
                    yerr=std,
                    marker="o",
                    capsize=3,
                    label=f"{method}/{head}",
                )
        ax.set_xscale("log")
        ax.set(title=name, xlabel="fraction of training labels", ylabel=task["metric"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (temp name, then rename) and close it."""
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def log_tensorboard(report: dict[str, Any], tb_dir: Path) -> None:
    """Every mean score as ``task/method/head/metric`` at step = fraction in per mille."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tb_dir)) as writer:
        for name, task in report["tasks"].items():
            for method, by_head in task["results"].items():
                for head, res in by_head.items():
                    for f, r in res.items():
                        for metric in ("accuracy", "macro_f1", "roc_auc", "pr_auc"):
                            if metric in r and np.isfinite(r[metric]["mean"]):
                                step = int(round(float(f) * 1000))
                                writer.add_scalar(
                                    f"{name}/{method}/{head}/{metric}", r[metric]["mean"], step
                                )
        writer.add_text("report", to_markdown(report))


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md, report.png and TensorBoard scalars under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
    atomic_write_text(paths["json"], json.dumps(report, indent=1))
    atomic_write_text(paths["md"], to_markdown(report))
    plot_report(report, paths["png"])
    log_tensorboard(report, out / "tb")
    return paths
