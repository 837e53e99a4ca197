"""The benchmark report: ``report.json`` (every number), ``report.md`` (tables), ``report.png``.

A report dict is ``{"meta": {...}, "stages": {stage: {"wall_s", ...}}, "pretrain": {...},
"probe": <run_suite report>, "retrieval": <retrieval_benchmark result>}``. The markdown shows,
per task and head, SSL vs random-init vs MFCC (mean [95 % bootstrap interval] of the primary
metric) at each label fraction with the paired verdict against the best baseline (beats / tie /
loses, counted per task and in total), and precision@k / mAP@k per method for same-track
retrieval.

Example:
    >>> write_benchmark_report(report, "out/")   # out/report.json, out/report.md, out/report.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audioclr.atomic import atomic_write_text
from audioclr.evaluate.intervals import VERDICTS
from audioclr.evaluate.methods import ENCODER, display_name
from audioclr.evaluate.report import (
    format_counts,
    layerwise_table,
    plot_fractions,
    save_figure,
    task_warnings,
    verdict_counts,
)
from audioclr.machine import meta_lines


def cell(r: dict[str, Any] | None) -> str:
    """``mean [lo, hi]`` (95 % interval) with three decimals (``-`` when absent)."""
    if r is None:
        return "-"
    lo, hi = r.get("ci95") or (float("nan"), float("nan"))
    return f"{r['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def verdict_cell(v: dict[str, Any] | None) -> str:
    """``tie vs MFCC: 0.020 [-0.010, 0.050]`` (the paired difference SSL - best baseline)."""
    if v is None:
        return "-"
    lo, hi = v["ci95"]
    word = v["verdict"] if v["verdict"] != "loses" else "**loses**"
    base = display_name(v["baseline"])
    return f"{word} vs {base}: {v['diff']:.3f} [{lo:.3f}, {hi:.3f}]"


def _fractions(results: dict[str, Any]) -> list[str]:
    found = {f for by_head in results.values() for r in by_head.values() for f in r}
    return sorted(found, key=float)


def task_table(name: str, task: dict[str, Any]) -> list[str]:
    """Markdown lines: per head, one row per label fraction, one column per method, the verdict;
    then the task's beats / ties / losses and its set-up warnings."""
    metric, results = task["metric"], task["results"]
    methods = list(results)
    heads = sorted({h for by_head in results.values() for h in by_head})
    lines = [f"### {name} ({metric}; tracks {task.get('tracks')})", ""]
    for head in heads:
        lines += [
            f"| {head} probe, fraction of labels | "
            + " | ".join(display_name(m) for m in methods)
            + " | SSL - best baseline (paired) |",
            "|---|" + "---|" * (len(methods) + 1),
        ]
        for f in _fractions(results):
            cells = [cell(results[m].get(head, {}).get(f, {}).get(metric)) for m in methods]
            v = task.get("verdict", {}).get(head, {}).get(f)
            lines.append(f"| {float(f):g} | " + " | ".join(cells) + f" | {verdict_cell(v)} |")
        lines.append("")
    lines += [f"SSL vs best baseline on {name}: {format_counts(verdict_counts(task))}", ""]
    notes = task.get("warnings") or task_warnings(task)
    lines += [f"- warning: {w}" for w in notes] + [""] if notes else []
    return lines + layerwise_table(task.get("layerwise") or {})


def total_counts(report: dict[str, Any]) -> dict[str, int]:
    """Beats / ties / losses of SSL vs the best baseline summed over every task of a report."""
    total = dict.fromkeys(VERDICTS, 0)
    for task in report["probe"]["tasks"].values():
        for k, n in verdict_counts(task).items():
            total[k] += n
    return total


def _retrieval_cell(m: dict[str, Any], k: int) -> str:
    value, ci = m[f"precision@{k}"], m.get(f"precision@{k}_ci95")
    return f"{value:.3f}" if ci is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def retrieval_table(ret: dict[str, Any]) -> list[str]:
    """Markdown lines: precision@k [95 % interval] for each k and mAP@max(k), one row per
    method, then the encoder's paired difference to the best baseline per k."""
    ks = sorted({int(k) for r in ret["results"].values() for k in r})
    kmax = str(max(ks))
    relevance = ret.get("relevance", "same track")
    lines = [
        f"### relevant = {relevance} ({ret['segments']} segments of {ret['tracks']} "
        f"tracks, {ret.get('groups', ret['tracks'])} groups, index {ret['factory']}, "
        "cosine)",
        "",
        "| method | " + " | ".join(f"precision@{k}" for k in ks) + f" | mAP@{kmax} |",
        "|---|" + "---|" * (len(ks) + 1),
    ]
    for method, by_k in ret["results"].items():
        cells = [_retrieval_cell(by_k[str(k)], k) for k in ks]
        lines.append(
            f"| {display_name(method)} | "
            + " | ".join(cells)
            + f" | {by_k[kmax][f'map@{kmax}']:.3f} |"
        )
    enc = ret["results"].get(ENCODER, {})
    paired = [
        (k, enc[str(k)]["vs_best_baseline"])
        for k in ks
        if "vs_best_baseline" in enc.get(str(k), {})
    ]
    if paired:
        lines.append(
            "| SSL − best baseline (paired) | "
            + " | ".join(
                f"{v['diff']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}] **{v['verdict']}** "
                f"{display_name(v['baseline'])}"
                for _, v in paired
            )
            + " | |"
        )
    return lines + [
        "",
        "Every segment queries the others (same release: its own track's "
        "segments are left out of its ranking); precision@k can stay below 1 when "
        "fewer than k are relevant; mAP@k divides by min(k, relevant). The "
        "segments come from held-out tracks that pretraining never heard (a seeded "
        "quarter of each soundtrack's tracks). "
        "Intervals: 95 % bootstrap over whole held-out tracks (and random-init "
        "draws), paired between methods.",
        "",
    ]


def pool_text(pretrain: dict[str, Any]) -> str:
    """The pool folders and hours of a report's ``pretrain`` (older reports: hours only)."""
    folders = " + ".join(f"`{f}`" for f in pretrain.get("pool_folders", []))
    return f"{folders + ', ' if folders else ''}{pretrain['pool_hours']:.1f} h"


def method_text(p: dict[str, Any]) -> str:
    """``" (method vicreg)"``: the objective pretrained with (empty if not recorded)."""
    return f" (method {p['method']})" if p.get("method") else ""


def precision_text(p: dict[str, Any]) -> str:
    """``", precision bf16-mixed"``: what the pretraining computed in (empty if not recorded)."""
    return f", precision {p['precision']}" if p.get("precision") else ""


def bn_text(report: dict[str, Any]) -> str:
    """Where each encoder's BatchNorm statistics came from (``probe.encoder_bn``)."""
    task = (report.get("config") or {}).get("probe", {}).get("encoder_bn") == "task"
    ssl = (
        "SSL's too (`probe.encoder_bn=task`)"
        if task
        else "SSL's are the exported ones (pretraining views)"
    )
    return (
        "BatchNorm statistics: random-init's re-estimated on each task's training audio "
        f"(no labels); {ssl}."
    )


def to_markdown(report: dict[str, Any]) -> str:
    """The whole report as markdown."""
    p = report["pretrain"]
    lines = [
        "# audioclr benchmark on real recordings",
        "",
        *meta_lines(report["meta"]),
        f"- pretraining: `{p['config']}`{method_text(p)} on {p['pool_tracks']} tracks "
        f"({pool_text(p)}), {p['steps']} steps in "
        f"{p['minutes']:.1f} min (budget {p['budget_minutes']:g} min, max_steps "
        f"{p['max_steps']}{precision_text(p)}), encoder id {p['encoder_id']}",
        "- stage wall times: "
        + ", ".join(f"{k} {v['wall_s']:.0f} s" for k, v in report["stages"].items()),
        "",
        "## Linear probes: SSL vs random-init vs MFCC",
        "",
        "mean [95 % bootstrap interval over test tracks and runs (seeds x init draws; one "
        "seed at 100 % of the labels, where no subset is drawn and the linear fit is convex); "
        "a task whose labels name groups resamples whole groups: programs, speakers]; a task with "
        "folds tests every fold once (the next fold selects the weight decay, the others "
        "train) and joins the test folds; the last column is the paired difference SSL - best "
        "baseline: beats / loses where its interval excludes zero, else tie.",
        "",
        bn_text(report),
        "",
    ]
    for name, task in report["probe"]["tasks"].items():
        lines += task_table(name, task)
    lines += [f"**SSL vs best baseline, all tasks: {format_counts(total_counts(report))}**", ""]
    for kind, ret in report["retrieval"].items():
        lines += [f"## {kind.replace('_', '-').capitalize()} retrieval", ""] + retrieval_table(ret)
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """One panel per task (fraction vs metric per method, first head, 95 % intervals as error
    bars) and one of precision@k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["probe"]["tasks"]
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(4.5 * (len(tasks) + 1), 4), squeeze=False)
    for ax, (name, task) in zip(axes[0], tasks.items(), strict=False):
        firsts = [(m, sorted(by_head)[0], by_head) for m, by_head in task["results"].items()]
        lines = [(f"{display_name(m)} ({h})", by_head[h]) for m, h, by_head in firsts]
        plot_fractions(ax, name, task["metric"], lines)
    ax = axes[0][-1]
    for method, by_k in report["retrieval"]["same_track"]["results"].items():
        ks = sorted(int(k) for k in by_k)
        ax.plot(
            ks, [by_k[str(k)][f"precision@{k}"] for k in ks], marker="o", label=display_name(method)
        )
    ax.set(title="same-track retrieval", xlabel="k", ylabel="precision@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def write_benchmark_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md and report.png under ``out_dir`` (atomically)."""
    out = Path(out_dir)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
    atomic_write_text(paths["json"], json.dumps(report, indent=1))
    atomic_write_text(paths["md"], to_markdown(report))
    plot(report, paths["png"])
    return paths
