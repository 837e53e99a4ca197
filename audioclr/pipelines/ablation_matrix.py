"""The ablation's matrix: one row per recipe/layer, one column per task, at a few label fractions.

The compact view of an ablation, and the whole point of a cross-domain run
(``benchmarks/cross_domain.yaml``, where a recipe is a pretraining domain: music, speech,
both). A cell is the encoder's ``mean [95 % interval]`` with its task's first head at that
fraction, then the paired verdict vs the best baseline of the same run; the best row of each
column is in bold. Below the recipes, the baselines' own scores (from the first recipe's run:
baselines do not depend on the recipe). Fractions shown: those of ``MATRIX_FRACTIONS`` the run
probed.

Example:
    >>> m = ablation_matrix(report)      # {"fractions": [1.0, 0.1], "tasks": {...}, "cells": ...}
    >>> print("\\n".join(matrix_lines(m)))
"""

from __future__ import annotations

from typing import Any

from audioclr.evaluate.methods import ENCODER, display_name
from audioclr.pipelines.bench_report import cell

MATRIX_FRACTIONS = (1.0, 0.1)

_WORDS = {"beats": "beats", "tie": "ties", "loses": "**loses** to"}


def table_cell(r: dict[str, Any], v: dict[str, Any] | None) -> dict[str, Any]:
    """A report cell: ``{"mean", "ci95"}`` of ``r``, plus the paired verdict ``v`` when given
    (``verdict``, ``baseline``, ``diff``, ``diff_ci95``).

    Example:
        >>> table_cell({"mean": 0.5, "ci95": [0.4, 0.6]}, None)
        {'mean': 0.5, 'ci95': [0.4, 0.6]}
    """
    out = {"mean": r["mean"], "ci95": r.get("ci95")}
    if v is not None:
        out.update(
            verdict=v["verdict"], baseline=v["baseline"], diff=v["diff"], diff_ci95=v["ci95"]
        )
    return out


def ablation_matrix(report: dict[str, Any]) -> dict[str, Any]:
    """``{"fractions": [f], "tasks": {task: {"metric", "head"}}, "rows": [recipe/layer],
    "baselines": [method/layer], "cells": {str(f): {row: {task: cell}}}}``; a cell is
    ``{"mean", "ci95"}``, plus ``verdict``, ``baseline``, ``diff`` and ``diff_ci95`` in a recipe's
    row where the task has a verdict."""
    tasks: dict[str, dict[str, str]] = {}
    rows: list[str] = []
    baselines: list[str] = []
    found: dict[float, dict[str, dict[str, Any]]] = {}
    for k, (recipe, rec) in enumerate(report["recipes"].items()):
        for layer, probe in rec["probe"].items():
            rows.append(f"{recipe}/{layer}")
            for task, t in probe["tasks"].items():
                if not t["results"].get(ENCODER):
                    continue
                head = tasks.setdefault(
                    task, {"metric": t["metric"], "head": next(iter(t["results"][ENCODER]))}
                )["head"]
                for method, heads in t["results"].items():
                    if method != ENCODER and k > 0:
                        continue  # baselines: the first recipe's (they do not depend on it)
                    row = f"{recipe if method == ENCODER else display_name(method)}/{layer}"
                    if method != ENCODER and row not in baselines:
                        baselines.append(row)
                    for f, r in heads.get(head, {}).items():
                        if float(f) not in MATRIX_FRACTIONS:
                            continue
                        v = t.get("verdict", {}).get(head, {}).get(f)
                        c = table_cell(r[t["metric"]], v if method == ENCODER else None)
                        found.setdefault(float(f), {}).setdefault(row, {})[task] = c
    fractions = [f for f in MATRIX_FRACTIONS if f in found]
    return {
        "fractions": fractions,
        "tasks": tasks,
        "rows": rows,
        "baselines": baselines,
        "cells": {str(f): found[f] for f in fractions},
    }


def _text(c: dict[str, Any] | None, best: bool) -> str:
    if c is None:
        return "-"
    text = f"**{cell(c)}**" if best else cell(c)
    if "verdict" in c:
        text += f" {_WORDS[c['verdict']]} {display_name(c['baseline'])}"
    return text


def matrix_lines(m: dict[str, Any]) -> list[str]:
    """The matrix as markdown: a table per fraction (rows: recipe/layer; columns: tasks)."""
    tasks = list(m["tasks"])
    lines = []
    for f in m["fractions"]:
        cells = m["cells"][str(f)]
        tops = {
            t: max((cells[r][t]["mean"] for r in m["rows"] if t in cells.get(r, {})), default=None)
            for t in tasks
        }
        lines += [
            f"### {f * 100:g} % of the labels",
            "",
            "| recipe/layer | "
            + " | ".join(f"{t} ({m['tasks'][t]['metric']}, {m['tasks'][t]['head']})" for t in tasks)
            + " |",
            "|---|" + "---|" * len(tasks),
        ]
        for row in m["rows"]:
            mine = cells.get(row, {})
            texts = [_text(mine.get(t), mine.get(t, {}).get("mean") == tops[t]) for t in tasks]
            lines.append(f"| {row} | " + " | ".join(texts) + " |")
        for row in m["baselines"]:
            mine = cells.get(row, {})
            texts = [_text(mine.get(t), False) for t in tasks]
            lines.append(f"| {row} | " + " | ".join(texts) + " |")
        lines.append("")
    return lines
