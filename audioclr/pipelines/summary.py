"""The demo's closing screen: probe table with baselines, retrieval scores, where everything is.

Reads only what the demo steps wrote (``probe/report.json``, ``retrieval.json``, query output),
so the numbers are the ones a user finds in those files.

Example:
    >>> print("\\n".join(probe_table(json.loads(Path("demo_out/probe/report.json").read_text()))))
    ... # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from audioclr.evaluate.intervals import VERDICTS
from audioclr.evaluate.methods import display_name
from audioclr.evaluate.report import format_counts, verdict_counts


def _interval(m: dict[str, Any]) -> str:
    lo, hi = m.get("ci95") or (float("nan"), float("nan"))
    return f"{m['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def probe_table(report: dict[str, Any], head: str = "linear") -> list[str]:
    """Rows ``method | fraction: mean [95 % interval] ...`` for ``head`` of every task, the
    paired verdict of SSL vs the best baseline per fraction, and beats / ties / losses per task
    and in total."""
    lines: list[str] = []
    total = dict.fromkeys(VERDICTS, 0)
    for name, task in report.get("tasks", {}).items():
        results, metric = task["results"], task["metric"]
        fractions = sorted({f for r in results.values() for f in r.get(head, {})}, key=float)
        if not fractions:
            continue
        lines.append(f"{name} ({head} probe, {metric} [95 % interval], test split):")
        lines.append(
            f"  {'method':<18}" + "".join(f"{f'{float(f):.0%} labels':>28}" for f in fractions)
        )
        for method, by_head in results.items():
            cells = by_head.get(head, {})
            row = "".join(
                f"{_interval(cells[f][metric]) if f in cells else '-':>28}" for f in fractions
            )
            lines.append(f"  {display_name(method):<18}{row}")
        verdict = task.get("verdict", {}).get(head, {})
        row = "".join(f"{verdict[f]['verdict'] if f in verdict else '-':>28}" for f in fractions)
        lines.append(f"  {'SSL vs best':<18}{row}")
        counts = verdict_counts(task, head)
        for k in VERDICTS:
            total[k] += counts[k]
        lines.append(f"  SSL vs best baseline (paired bootstrap): {format_counts(counts)}")
    if lines:
        lines.append(f"all tasks, SSL vs best baseline: {format_counts(total)}")
    return lines


def query_examples(
    out: Path, count: int, command: Callable[[Sequence[str]], int]
) -> list[dict[str, Any]]:
    """Query the index with the first track of ``count`` classes through the CLI ``command``."""
    table = out / "retrieval_labels.csv"
    firsts: dict[str, str] = {}
    for line in table.read_text().splitlines()[1:]:
        track, label = line.split(",", 1)
        firsts.setdefault(label, track)
    examples = []
    for track in list(firsts.values())[:count]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            command(["query", str(out / "index"), "--track", track, "-k", "5", "--json"])
        examples.extend(json.loads(buf.getvalue()))
    return examples


def _query_lines(examples: list[dict[str, Any]]) -> list[str]:
    lines = []
    for ex in examples:
        hits = ", ".join(f"{h['track_id']} ({h['score']:.2f})" for h in ex.get("results", [])[:3])
        lines.append(f"  {ex.get('query', '?')} -> {hits}")
    return lines


def seen_lines(out: Path, report: dict[str, Any]) -> list[str]:
    """What the encoder saw: its pretraining folder, and the leak check of every probe task."""
    lines = [
        f"pretrained on: {out / 'corpus' / 'unlabeled'} (unlabelled); probed and indexed: "
        f"{out / 'corpus' / 'audio'} (labelled, never heard in pretraining)"
    ]
    for name, task in report.get("tasks", {}).items():
        leak = task.get("pretraining_leak") or {}
        if leak.get("checked"):
            lines.append(
                f"leak check, task {name}: {leak['seen']} of {leak['test_files']} test "
                "files were in the pretraining cache"
            )
        elif leak:
            lines.append(f"leak check, task {name}: not possible ({leak.get('warning')})")
    return lines


def print_summary(out: Path, examples: list[dict[str, Any]], seconds: float) -> None:
    """Print the one-screen summary of a finished demo under ``out``."""
    report = json.loads((out / "probe" / "report.json").read_text())
    retrieval = json.loads((out / "retrieval.json").read_text())
    pk = {
        k: v
        for k, v in retrieval.items()
        if k.startswith(("precision", "map", "recall")) and not k.endswith("_ci95")
    }
    k = retrieval.get("k")
    ci = retrieval.get(f"precision@{k}_ci95")
    lines = ["", "=" * 78, f"audioclr demo finished in {seconds / 60:.1f} min", ""]
    lines += seen_lines(out, report) + [""]
    lines += probe_table(report)
    lines += [
        "",
        "retrieval over the labelled tracks (relevant = same class): "
        + ", ".join(f"{name} {v:.3f}" for name, v in pk.items())
        + (f"; precision@{k} 95 % interval [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""),
    ]
    lines += ["nearest neighbours of a few tracks (top 3, cosine):"] + _query_lines(examples)
    lines += [
        "",
        f"TensorBoard logs : tensorboard --logdir {out / 'run' / 'tb'}",
        f"probe report     : {out / 'probe' / 'report.md'} (+ report.json, report.png)",
        f"augment preview  : {out / 'preview'} (WAV views + spectrogram PNG)",
        f"encoder          : {out / 'encoder.pt'}    index: {out / 'index'}",
        "",
        "the same on your own folder (MY_AUDIO, with MY_LABELS.csv = path,label):",
        "  audioclr prepare MY_AUDIO cache/ --sample-rate 22050",
        "  audioclr pretrain --config simclr_melcnn data.cache=cache/ run.dir=runs/mine",
        "  audioclr export runs/mine encoder.pt",
        "  audioclr probe encoder.pt MY_LABELS.csv report/",
        "  audioclr embed encoder.pt cache/ emb/ && audioclr index build emb/ index/",
        "  audioclr query index/ --file some_track.wav -k 10",
        "=" * 78,
    ]
    print("\n".join(lines))
