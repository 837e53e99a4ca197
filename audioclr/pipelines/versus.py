"""Paired comparison of two encoders' suite results: a recipe against a reference recipe.

The tables compare each encoder with the baselines; whether one encoder is better than another
needs its own paired test, not two means side by side. For every row of every table (a task's
head and label fraction, or a retrieval kind's precision@k) this computes the difference
``mine - reference`` of the encoders' scores and its 95 % interval by the same paired bootstrap
as the verdicts vs the baselines: the same resampled test tracks (whole programs / speakers /
held-out tracks), the same label-subset seeds. The inputs are the predictions the stages saved:
``probe/scores/<task>.npz`` (:mod:`audioclr.evaluate.saved_scores`) and
``retrieval/<kind>_per_query.npz`` (:func:`audioclr.pipelines.bench_retrieval.save_per_query`).
Rows without them (probed before these were saved) are listed under ``missing``.

Two callers: the ablation pairs every recipe with ``ablation.reference``
(:func:`recipe_versus`), ``audioclr compare RUN REFERENCE`` pairs two benchmark runs
(:func:`runs_versus`).

Example:
    >>> v = recipe_versus(report, Path("ablation_out"))
    >>> v["tables"]["digits"]["linear probe, 0.01 of labels"]["clmr/all"]["verdict"]
    'tie'
    >>> v = runs_versus(Path("bench_near"), Path("bench_out"))
    >>> print("\\n".join(versus_lines(v)))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audioclr.errors import AudioclrError
from audioclr.evaluate.intervals import VERDICTS, paired_difference, query_intervals
from audioclr.evaluate.methods import ENCODER
from audioclr.evaluate.saved_scores import SCORES_DIR, load_scores
from audioclr.pipelines.bench_retrieval import load_per_query

_WORDS = {"beats": "better", "tie": "tie", "loses": "**worse**"}


def _put(tables: dict[str, Any], table: str, row: str, col: str, v: dict[str, Any]) -> None:
    tables.setdefault(table, {}).setdefault(row, {})[col] = v


def _both_saved(mine: Path, ref: Path, what: str, missing: list[str]) -> bool:
    """Whether both files exist; else a note on ``missing`` naming the absent ones."""
    absent = [str(p) for p in (mine, ref) if not p.is_file()]
    if absent:
        missing.append(f"{what}: no saved predictions ({', '.join(absent)})")
    return not absent


def _probe_rows(
    tables: dict[str, Any],
    col: str,
    probe: dict[str, Any],
    mine_dir: Path,
    ref_dir: Path,
    missing: list[str],
) -> None:
    for task, t in probe["tasks"].items():
        mine, ref = mine_dir / SCORES_DIR / f"{task}.npz", ref_dir / SCORES_DIR / f"{task}.npz"
        if not _both_saved(mine, ref, f"{col} {task}", missing):
            continue
        a, b = load_scores(mine).get(ENCODER, {}), load_scores(ref).get(ENCODER, {})
        for head, by_f in a.items():
            for f, runs in by_f.items():
                other = b.get(head, {}).get(f)
                if other is None:
                    continue
                row = f"{head} probe, {float(f):g} of labels"
                try:
                    _put(tables, task, row, col, paired_difference(runs, other, t["metric"]))
                except ValueError as exc:  # other test tracks: nothing to pair
                    missing.append(f"{col} {task}, {row}: {exc}")


def _retrieval_rows(
    tables: dict[str, Any],
    col: str,
    kinds: dict[str, Any],
    mine_dir: Path,
    ref_dir: Path,
    missing: list[str],
) -> None:
    for kind, ret in kinds.items():
        mine, ref = mine_dir / f"{kind}_per_query.npz", ref_dir / f"{kind}_per_query.npz"
        if not _both_saved(mine, ref, f"{col} {kind} retrieval", missing):
            continue
        a, b = load_per_query(mine), load_per_query(ref)
        if list(a["queries"]) != list(b["queries"]):
            missing.append(f"{col} {kind} retrieval: other queries than the reference's")
            continue
        for k in sorted(ret["results"].get(ENCODER, {}), key=int):
            key = f"{ENCODER}/precision@{k}"
            if key not in a or key not in b:
                continue
            iv = query_intervals({"a": a[key], "b": b[key]}, list(a["clusters"]), "a", ["b"])
            v = iv["vs_best_baseline"]
            _put(
                tables,
                f"{kind} retrieval",
                f"precision@{k}",
                col,
                {"diff": v["diff"], "ci95": v["ci95"], "verdict": v["verdict"]},
            )


def recipe_versus(report: dict[str, Any], out: Path) -> dict[str, Any]:
    """``{"reference", "what": "recipe", "tables": {table: {row: {recipe/layer: {"diff",
    "ci95", "verdict"}}}}, "counts": {recipe/layer: {verdict: n}}, "missing": [notes]}`` for
    every recipe but ``report["reference"]``, at each layer both were probed at (retrieval: at
    its layer)."""
    ref = report["reference"]
    recipes = report["recipes"]
    tables: dict[str, Any] = {}
    missing: list[str] = []
    for recipe, rec in recipes.items():
        if recipe == ref:
            continue
        for layer, probe in rec["probe"].items():
            if layer in recipes[ref]["probe"]:
                mine, theirs = out / recipe / "probe" / layer, out / ref / "probe" / layer
                _probe_rows(tables, f"{recipe}/{layer}", probe, mine, theirs, missing)
        layer = next(iter(rec["retrieval"].values()), {}).get("methods", {})
        layer = layer.get(ENCODER, {}).get("layer", "last")
        mine, theirs = out / recipe / "retrieval", out / ref / "retrieval"
        _retrieval_rows(tables, f"{recipe}/{layer}", rec["retrieval"], mine, theirs, missing)
    return _counted(ref, tables, missing)


def runs_versus(mine: Path, ref: Path) -> dict[str, Any]:
    """:func:`recipe_versus`'s result for two ``audioclr benchmark`` output folders: run
    ``mine`` paired with run ``ref`` (their ``report.json`` and saved predictions); the column
    is ``mine``'s folder name. ``AudioclrError`` naming the folder when a report is missing."""
    reports = []
    for run in (mine, ref):
        path = Path(run) / "report.json"
        if not path.is_file():
            raise AudioclrError(
                f"{path} not found: {run} is not a finished benchmark run",
                hint="pass two --out folders of 'audioclr benchmark' whose report was written",
            )
        reports.append(json.loads(path.read_text()))
    tables: dict[str, Any] = {}
    missing: list[str] = []
    col = Path(mine).name
    _probe_rows(tables, col, reports[0]["probe"], mine / "probe", ref / "probe", missing)
    kinds = reports[0].get("retrieval") or {}
    _retrieval_rows(tables, col, kinds, mine / "retrieval", ref / "retrieval", missing)
    return _counted(Path(ref).name, tables, missing, what="run")


def _counted(
    ref: str, tables: dict[str, Any], missing: list[str], what: str = "recipe"
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for rows in tables.values():
        for cells in rows.values():
            for col, v in cells.items():
                counts.setdefault(col, dict.fromkeys(VERDICTS, 0))[v["verdict"]] += 1
    return {"reference": ref, "what": what, "tables": tables, "counts": counts, "missing": missing}


def versus_lines(v: dict[str, Any]) -> list[str]:
    """The comparison as markdown: one table (rows: task and row; columns: recipe/layer) and
    the counts per column."""
    ref, what = v["reference"], v.get("what", "recipe")
    layer = " (same layer)" if what == "recipe" else ""
    cols = list(v["counts"])
    lines = [
        f"## Each {what} paired with the reference {what} ({ref})",
        "",
        f"Cells: {what} - {ref}{layer}, the paired difference of the encoders' means "
        "[95 % interval: the same resampled test tracks, programs / speakers / held-out tracks "
        "whole, and the same label-subset seeds]; better / **worse** where the interval "
        "excludes zero, else tie.",
        "",
    ]
    if cols:
        lines += ["| table, row | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for table, rows in v["tables"].items():
            for row, cells in rows.items():
                texts = []
                for col in cols:
                    c = cells.get(col)
                    if c is None:
                        texts.append("-")
                        continue
                    lo, hi = c["ci95"]
                    texts.append(f"{c['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] {_WORDS[c['verdict']]}")
                lines.append(f"| {table}, {row} | " + " | ".join(texts) + " |")
        lines += [
            "",
            f"| {what}{'/layer' if what == 'recipe' else ''} vs {ref} | better | tie | worse |",
            "|---|---|---|---|",
        ]
        for col in cols:
            n = v["counts"][col]
            lines.append(f"| {col} | {n['beats']} | {n['tie']} | {n['loses']} |")
    else:
        lines.append("No other recipe to compare with.")
    if v["missing"]:
        lines += ["", "Not compared (no saved predictions):", ""]
        lines += [f"- {m}" for m in v["missing"]]
    return [*lines, ""]
