"""The ablation's report: ``ablation.json`` (every number) and ``ablation.md`` (one table per task).

After the recipes (with the pool each pretrained on) comes the matrix (``ablation_matrix.py``:
recipe/layer x task at 100 % and 10 % of the labels), then a table per task: columns are
``<recipe>/<layer>``; rows are a task's (head, label fraction) cells or a retrieval kind's
precision@k. A cell is the encoder's ``mean [95 % interval]`` and its paired verdict vs
the best baseline of the same run; the best column of a row (highest mean) is in bold. The
comparison with the reference recipe (``versus.py``) pairs every other recipe with it,
row by row. The summary counts beats / ties / losses per column and names the column best in
most rows of each task, with that column's paired difference to the reference.

Example:
    >>> tables = ablation_tables(report)   # {"tones": {"metric": ..., "rows": [...]}, ...}
    >>> write_ablation_report(report, "out/")   # out/ablation.json, out/ablation.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audioclr.atomic import atomic_write_text
from audioclr.evaluate.intervals import VERDICTS
from audioclr.evaluate.methods import ENCODER, display_name
from audioclr.evaluate.report import format_counts
from audioclr.machine import meta_lines
from audioclr.pipelines.ablation_matrix import ablation_matrix, matrix_lines, table_cell
from audioclr.pipelines.bench_report import cell
from audioclr.pipelines.versus import recipe_versus, versus_lines

Table = dict[str, Any]


def _put(
    tables: dict[str, Table], table: str, metric: str, row: str, col: str, value: dict[str, Any]
) -> None:
    t = tables.setdefault(table, {"metric": metric, "rows": {}})
    t["rows"].setdefault(row, {})[col] = value


def ablation_tables(report: dict[str, Any]) -> dict[str, Table]:
    """``{table: {"metric", "rows": [{"row", "cells": {column: cell}, "best": [columns]}]}}``
    for every task and retrieval kind."""
    tables: dict[str, Table] = {}
    for recipe, rec in report["recipes"].items():
        for layer, probe in rec["probe"].items():
            for task, t in probe["tasks"].items():
                for head, by_f in t["results"].get(ENCODER, {}).items():
                    for f, r in by_f.items():
                        v = t.get("verdict", {}).get(head, {}).get(f)
                        _put(
                            tables,
                            task,
                            t["metric"],
                            f"{head} probe, {float(f):g} of labels",
                            f"{recipe}/{layer}",
                            table_cell(r[t["metric"]], v),
                        )
        for kind, ret in rec["retrieval"].items():
            enc = ret["results"].get(ENCODER, {})
            layer = ret.get("methods", {}).get(ENCODER, {}).get("layer", "last")
            for k in sorted(enc, key=int):
                r = {"mean": enc[k][f"precision@{k}"], "ci95": enc[k].get(f"precision@{k}_ci95")}
                _put(
                    tables,
                    f"{kind} retrieval",
                    "precision@k",
                    f"precision@{k}",
                    f"{recipe}/{layer}",
                    table_cell(r, enc[k].get("vs_best_baseline")),
                )
    for t in tables.values():
        rows = []
        for row, cells in t["rows"].items():
            top = max(c["mean"] for c in cells.values())
            rows.append(
                {
                    "row": row,
                    "cells": cells,
                    "best": [c for c, x in cells.items() if x["mean"] == top],
                }
            )
        t["rows"] = rows
    return tables


def summary(tables: dict[str, Table]) -> dict[str, Any]:
    """Per column: beats / tie / loses vs the best baseline over every row; per table: the
    columns best in most rows (ties broken by the mean over rows; several if still equal)."""
    counts: dict[str, dict[str, int]] = {}
    winners: dict[str, Any] = {}
    for name, t in tables.items():
        best: dict[str, int] = {}
        means: dict[str, list[float]] = {}
        for row in t["rows"]:
            for col, c in row["cells"].items():
                per = counts.setdefault(col, dict.fromkeys(VERDICTS, 0))
                if "verdict" in c:
                    per[c["verdict"]] += 1
                best[col] = best.get(col, 0) + (col in row["best"])
                means.setdefault(col, []).append(c["mean"])
        score = {c: (best[c], sum(means[c]) / len(means[c])) for c in best}
        top = [c for c in score if score[c] == max(score.values())]
        winners[name] = {"columns": top, "best_rows": best[top[0]], "rows": len(t["rows"])}
    return {"counts": counts, "winners": winners}


def _verdict_text(c: dict[str, Any]) -> str:
    if "verdict" not in c:
        return ""
    base = display_name(c["baseline"])
    return {"beats": f" beats {base}", "tie": f" ties {base}", "loses": f" **loses** to {base}"}[
        c["verdict"]
    ]


def table_lines(name: str, t: Table, columns: list[str]) -> list[str]:
    """One markdown table: a row per (head, fraction) or k, a column per recipe/layer."""
    cols = [c for c in columns if any(c in r["cells"] for r in t["rows"])]
    lines = [
        f"### {name} ({t['metric']})",
        "",
        "| | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for row in t["rows"]:
        cells = []
        for col in cols:
            c = row["cells"].get(col)
            text = "-" if c is None else cell(c)
            if c is not None and col in row["best"]:
                text = f"**{text}**"
            cells.append(text + (_verdict_text(c) if c else ""))
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _vs_reference(versus: dict[str, Any] | None, table: str, columns: list[str]) -> str:
    """``col: better 1, tie 2, worse 0`` over the table's rows for each winning column (``-``
    without a comparison; ``the reference`` for the reference's own columns)."""
    if versus is None:
        return "-"
    out = []
    for col in columns:
        if col.split("/", 1)[0] == versus["reference"]:
            out.append(f"{col}: the reference")
            continue
        n = dict.fromkeys(VERDICTS, 0)
        for cells in versus["tables"].get(table, {}).values():
            if col in cells:
                n[cells[col]["verdict"]] += 1
        if sum(n.values()):
            out.append(f"{col}: better {n['beats']}, tie {n['tie']}, worse {n['loses']}")
        else:
            out.append(f"{col}: -")
    return "; ".join(out)


def _columns(report: dict[str, Any], tables: dict[str, Table]) -> list[str]:
    found = {c for t in tables.values() for r in t["rows"] for c in r["cells"]}
    ordered = [f"{r}/{layer}" for r in report["recipes"] for layer in report["layers"]]
    extra = sorted(found - set(ordered))  # retrieval at a layer not probed
    return [c for c in ordered if c in found] + extra


def to_markdown(report: dict[str, Any]) -> str:
    """The whole ablation report as markdown."""
    b = report["budget"]
    tables = ablation_tables(report)
    summ, columns = summary(tables), _columns(report, tables)
    lines = [
        "# audioclr ablation: pretraining recipes on the benchmark suite",
        "",
        *meta_lines(report["meta"]),
        f"- budget per recipe: `{b['config']}` "
        + (f"with {', '.join(f'`{o}`' for o in b['overrides'])}, " if b["overrides"] else "")
        + f"{b['minutes']:g} min (max_steps {b['max_steps']})",
        f"- **One pretraining run per recipe at a small budget ({b['minutes']:g} min).** "
        "Intervals cover test tracks, probe seeds and random-init draws, not the "
        "run-to-run variance of pretraining: read differences between recipes as "
        "indications, not results.",
        "",
        "## Recipes",
        "",
        "| recipe | overrides | pool | method | steps | minutes | encoder id |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rec in report["recipes"].items():
        p, pool = rec["pretrain"], rec["pool"]
        lines.append(
            f"| {name} | {', '.join(f'`{o}`' for o in rec['overrides']) or '-'} | "
            f"{' + '.join(f'`{f}`' for f in pool['folders'])} ({pool['tracks']} tracks, "
            f"{pool['hours']:.1f} h) | {p.get('method')} | {p['steps']} | {p['minutes']:.1f} | "
            f"{p['encoder_id']} |"
        )
    lines += [
        "",
        "## Matrix: recipe x task",
        "",
        "Cells: SSL mean [95 % interval] with the task's first head, then the paired verdict "
        "vs the best baseline; bold: the best recipe/layer of the column.",
        "",
        *matrix_lines(ablation_matrix(report)),
        "## Tables",
        "",
        "Cells: SSL mean [95 % interval], then the paired verdict vs the best baseline "
        "of the same layer (beats / loses where the difference's interval excludes zero, "
        "else ties); bold: the best recipe/layer of the row. Retrieval embeds at the "
        "layer its column names.",
        "",
    ]
    for name, t in tables.items():
        lines += table_lines(name, t, columns)
    versus = report.get("versus")
    if versus is not None:
        lines += versus_lines(versus)
    lines += [
        "## Summary",
        "",
        "SSL vs best baseline, over every row of every table:",
        "",
        "| recipe/layer | " + " | ".join(VERDICTS) + " |",
        "|---|---|---|---|",
    ]
    for col in columns:
        n = summ["counts"].get(col, dict.fromkeys(VERDICTS, 0))
        lines.append(f"| {col} | " + " | ".join(str(n[k]) for k in VERDICTS) + " |")
    lines += [
        "",
        "Which recipe wins which task (best mean in most rows; the last column: its paired "
        "difference to the reference recipe, rows better / tie / worse):",
        "",
        "| task | winner | best in rows | its verdicts there | vs the reference |",
        "|---|---|---|---|---|",
    ]
    for name, w in summ["winners"].items():
        verdicts = []
        for col in w["columns"]:
            mine = dict.fromkeys(VERDICTS, 0)
            for row in tables[name]["rows"]:
                v = row["cells"].get(col, {}).get("verdict")
                if v:
                    mine[v] += 1
            verdicts.append(f"{col}: {format_counts(mine)}")
        tied = " (tied)" if len(w["columns"]) > 1 else ""
        lines.append(
            f"| {name} | {', '.join(w['columns'])}{tied} | {w['best_rows']} / "
            f"{w['rows']} | {'; '.join(verdicts)} | {_vs_reference(versus, name, w['columns'])} |"
        )
    return "\n".join([*lines, ""])


def write_ablation_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``ablation.json`` and ``ablation.md``; adds ``tables``, ``summary``, ``matrix``
    (derived from the recipes' reports) and ``versus`` (every recipe paired with
    ``report["reference"]``, from the predictions saved under ``out_dir``) to ``report``."""
    out = Path(out_dir)
    paths = {"json": out / "ablation.json", "md": out / "ablation.md"}
    report["tables"] = ablation_tables(report)
    report["summary"] = summary(report["tables"])
    if report.get("reference") in report["recipes"]:
        report["versus"] = recipe_versus(report, out)
    report["matrix"] = ablation_matrix(report)
    atomic_write_text(paths["json"], json.dumps(report, indent=1))
    atomic_write_text(paths["md"], to_markdown(report))
    return paths
