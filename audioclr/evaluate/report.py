"""The probe report: ``report.json`` (every number), ``report.md`` (task x method x fraction tables,
mean [95 % interval]), ``report.png`` (label fraction vs score with interval error bars, one line
per method, one panel per task) and the same numbers in TensorBoard (``OUT/tb``; step = label
fraction in per mille).

A report dict is ``{"tasks": {task: {"metric", "multilabel", "results": {method: {head: probe}},
"verdict": {head: {fraction: {...}}}}}, ...}`` where ``probe`` is :func:`run_probe`'s output.
Each cell's metrics carry ``ci95`` (bootstrap over test tracks and runs). On each (head,
fraction) the encoder is compared with the best baseline (highest mean of random-init encoder,
MFCC statistics, supervised-from-scratch when run) by a paired bootstrap of the difference:
"beats" only where the 95 % interval lies above zero, "loses" where it lies below, else "tie"
(:mod:`audioclr.evaluate.intervals`). The verdict is also stored on the encoder cell as
``vs_best_baseline``; the written report gathers each task's set-up ``warnings``.

Example:
    >>> task["verdict"] = verdicts(task["results"], "accuracy")
    >>> write_report(report, "out/")   # out/report.json, out/report.md, out/report.png, out/tb/
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.atomic import atomic_write_text
from audioclr.evaluate.aggregate import aggregate_table, labels_saved_lines
from audioclr.evaluate.intervals import TEST_SCORES, VERDICTS, paired_difference
from audioclr.evaluate.methods import ENCODER, is_baseline
from audioclr.machine import meta_lines


def verdicts(
    results: dict[str, dict[str, Any]], metric: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per head and fraction: the encoder vs the best baseline on ``metric``.

    ``{head: {fraction: {"baseline", "diff", "ci95", "verdict"}}}`` (verdict "beats", "tie" or
    "loses" from a paired bootstrap of ``n_boot`` replicates); each entry is also written into
    the encoder's cell as ``vs_best_baseline``. Needs the runs' in-memory test scores.
    """
    out: dict[str, dict[str, Any]] = {}
    for head, by_fraction in results.get(ENCODER, {}).items():
        out[head] = {}
        for fraction, res in by_fraction.items():
            base = {
                m: r[head][fraction]
                for m, r in results.items()
                if is_baseline(m) and head in r and fraction in r[head]
            }
            if not base:
                continue
            best = max(base, key=lambda m: _mean_or_minus_inf(base[m], metric))
            for runs in (res["runs"], base[best]["runs"]):
                if any(TEST_SCORES not in r for r in runs):
                    raise ValueError("verdicts need run_probe's in-memory test scores, not JSON")
            paired = paired_difference(res["runs"], base[best]["runs"], metric, n_boot, seed)
            out[head][fraction] = res["vs_best_baseline"] = {"baseline": best, **paired}
    return out


def _mean_or_minus_inf(cell: dict[str, Any], metric: str) -> float:
    mean = cell[metric]["mean"]
    return -math.inf if not np.isfinite(mean) else float(mean)


def _interval(m: dict[str, Any]) -> str:
    ci = m.get("ci95")
    if ci is None:
        return f"{m['mean']:.3f} ± {m['std']:.3f}"
    return f"{m['mean']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _cell(res: dict[str, Any], metric: str) -> str:
    m = res.get(metric)
    return "-" if m is None else _interval(m)


def verdict_counts(task: dict[str, Any], head: str | None = None) -> dict[str, int]:
    """How many (head, fraction) cells of a task the encoder ``beats`` / ``tie`` / ``loses``
    (only ``head``'s when given)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for h, by_fraction in task.get("verdict", {}).items():
        for v in by_fraction.values():
            if head in (None, h):
                counts[v["verdict"]] += 1
    return counts


def format_counts(counts: dict[str, int]) -> str:
    """``"beats 2, tie 1, loses 0"``."""
    return ", ".join(f"{k} {counts[k]}" for k in VERDICTS)


def task_warnings(task: dict[str, Any]) -> list[str]:
    """Every distinct set-up warning of a task's cells, in order."""
    seen = dict.fromkeys(
        w
        for by_head in task["results"].values()
        for by_fraction in by_head.values()
        for res in by_fraction.values()
        for w in res.get("warnings", [])
    )
    return list(seen)


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
                cells.append(cell + ("" if v is None else f" **{v['verdict']}** {v['baseline']}"))
            lines.append(f"| {method} | {head} | " + " | ".join(cells) + " |")
    baselines = ", ".join(m for m in results if m != ENCODER) or "none"
    lines += [
        "",
        "mean [95 % bootstrap interval over test tracks (whole groups where the labels name "
        "them) and runs (seeds x init draws; one seed at 100 % of the labels for linear and "
        "kNN heads: no subset is drawn and the fit is convex)]. "
        f"Encoder vs the best baseline ({baselines}) by a paired bootstrap of the difference: "
        "**beats** / **loses** where its 95 % interval excludes zero, else **tie**.",
        "",
    ]
    if task.get("verdict"):
        lines += [f"encoder vs best baseline: {format_counts(verdict_counts(task))}", ""]
    notes = task.get("warnings") or task_warnings(task)
    if notes:
        lines += ["warnings:", *[f"- {w}" for w in notes], ""]
    lines += labels_saved_lines(task.get("labels_saved") or {}, metric)
    lines += robustness_table(task)
    return lines + layerwise_table(task.get("layerwise") or {})


def robustness_table(task: dict[str, Any]) -> list[str]:
    """Markdown lines: per method and head, at the largest label fraction, the clean score and
    each corruption's score and drop (clean - corrupted, paired 95 % interval); empty if none."""
    metric, specs = task["metric"], task.get("corruptions") or []
    rows = []
    for method, by_head in task["results"].items():
        for head, res in by_head.items():
            f = max(res, key=float)
            robust = res[f].get("corrupted")
            if not robust:
                continue
            cells = [_cell(res[f], metric)]
            for spec in specs:
                c = robust.get(spec)
                if c is None:
                    cells.append("-")
                    continue
                d = c["drop"]
                lo, hi = d["ci95"]
                cells.append(
                    f"{c[metric]['mean']:.3f} (drop {d['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}])"
                )
            rows.append(f"| {method} | {head} | {float(f):g} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        f"robustness (trained on clean audio, tested on each corrupted test split; {metric}; "
        "drop = clean - corrupted with its paired 95 % bootstrap interval):",
        "",
        "| method | head | labels | clean | " + " | ".join(specs) + " |",
        "|---|---|---|---|" + "---|" * len(specs),
        *rows,
        "",
    ]


def layerwise_table(lw: dict[str, Any]) -> list[str]:
    """Markdown lines: the encoder's probe on each block alone and on all (empty if none)."""
    if not lw.get("layers"):
        return []
    lines = [
        f"where the information lives (encoder, {lw['head']} probe, "
        f"{float(lw['fraction']):g} of labels, {lw['metric']}):",
        "",
        "| layer | dim | score |",
        "|---|---|---|",
    ]
    for name, m in lw["layers"].items():
        lines.append(f"| {name} | {m['dim']} | {_interval(m)} |")
    return lines + [""]


def to_markdown(report: dict[str, Any]) -> str:
    """The markdown tables of a report."""
    lines = [
        "# Linear-probe report",
        "",
        *(meta_lines(report["meta"]) if report.get("meta") else []),
        f"- encoder: `{report.get('encoder')}` (id {report.get('encoder_id')})",
        "",
    ]
    for name, task in report["tasks"].items():
        lines += _task_markdown(name, task)
    lines += aggregate_table(report.get("aggregate") or {})
    return "\n".join(lines)


def plot_fractions(ax: Any, title: str, metric: str, lines: list[tuple[str, dict]]) -> None:
    """One panel: label fraction (log x) vs ``metric`` with 95 % intervals as error bars, one
    line per ``(label, {fraction: cell})``."""
    for label, res in lines:
        fr = sorted(res, key=float)
        mean, yerr = error_bars([res[f][metric] for f in fr])
        ax.errorbar([float(f) for f in fr], mean, yerr=yerr, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set(title=title, xlabel="fraction of training labels", ylabel=metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_report(report: dict[str, Any], path: Path) -> None:
    """One panel per task: label fraction (log x) vs primary metric with 95 % intervals as error
    bars, one line per method/head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["tasks"]
    fig, axes = plt.subplots(
        1, max(1, len(tasks)), figsize=(5 * max(1, len(tasks)), 4), squeeze=False
    )
    for ax, (name, task) in zip(axes[0], tasks.items(), strict=False):
        lines = [
            (f"{m}/{h}", res)
            for m, by_head in task["results"].items()
            for h, res in by_head.items()
        ]
        plot_fractions(ax, name, task["metric"], lines)
    fig.tight_layout()
    save_figure(fig, path)


def error_bars(cells: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Means ``(k,)`` and ``(2, k)`` distances down/up to the ``ci95`` bounds (0 where absent)."""
    mean = np.array([c["mean"] for c in cells], dtype=np.float64)
    ci = np.array([c.get("ci95") or [np.nan, np.nan] for c in cells], dtype=np.float64)
    yerr = np.nan_to_num(np.stack([mean - ci[:, 0], ci[:, 1] - mean]), nan=0.0)
    return mean, np.maximum(yerr, 0.0)


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


def public(obj: Any) -> Any:
    """A copy of ``obj`` without the in-memory keys (those starting with ``_``) of dicts."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list | tuple):
        return [public(v) for v in obj]
    return obj


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md, report.png and TensorBoard scalars under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
    report = public(report)
    for task in report.get("tasks", {}).values():
        task.setdefault("warnings", task_warnings(task))
    atomic_write_text(paths["json"], json.dumps(report, indent=1))
    atomic_write_text(paths["md"], to_markdown(report))
    plot_report(report, paths["png"])
    log_tensorboard(report, out / "tb")
    return paths
