"""The demo journey's pieces that are not CLI commands: id mapping and the summary table."""

from __future__ import annotations

import csv

from audioclr.pipelines.demo import demo_steps, retrieval_labels
from audioclr.pipelines.summary import probe_table


def _cell(mean: float) -> dict:
    return {"accuracy": {"mean": mean, "std": 0.01, "ci95": [mean - 0.05, mean + 0.04]}}


def _verdict(word: str) -> dict:
    return {"baseline": "mfcc", "diff": 0.1, "ci95": [0.0, 0.2], "verdict": word}


def test_retrieval_labels_map_corpus_paths_to_cache_ids(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\naudio/bell/bell_000.wav,bell\naudio/organ/organ_003.wav,organ\n")
    out = retrieval_labels(labels, tmp_path / "ids.csv")
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["track_id", "label"],
        ["bell/bell_000.wav", "bell"],
        ["organ/organ_003.wav", "organ"],
    ]


def test_probe_table_rows_and_verdict_follow_the_report():
    report = {
        "tasks": {
            "demo": {
                "metric": "accuracy",
                "results": {
                    "encoder": {"linear": {"0.1": _cell(0.5), "1.0": _cell(0.9)}},
                    "mfcc": {"linear": {"0.1": _cell(0.6), "1.0": _cell(0.4)}},
                },
                "verdict": {"linear": {"0.1": _verdict("tie"), "1.0": _verdict("beats")}},
            }
        }
    }
    lines = probe_table(report)
    ssl = next(line for line in lines if line.strip().startswith("SSL "))
    mfcc = next(line for line in lines if line.strip().startswith("MFCC"))
    assert "0.500 [0.450, 0.540]" in ssl and "0.900 [0.850, 0.940]" in ssl
    assert "0.600 [0.550, 0.640]" in mfcc and "0.400 [0.350, 0.440]" in mfcc
    verdicts = next(line for line in lines if line.strip().startswith("SSL vs best "))
    assert verdicts.split()[-2:] == ["tie", "beats"]
    assert lines[-2].strip() == "SSL vs best baseline (paired bootstrap): beats 1, tie 1, loses 0"
    assert lines[-1] == "all tasks, SSL vs best baseline: beats 1, tie 1, loses 0"


def test_pretrain_step_resumes_when_a_checkpoint_exists(tmp_path):
    first = {s.argv[0]: s.argv for s in demo_steps(tmp_path, 3.0, "demo")}
    assert "--resume" not in first["pretrain"]
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"")
    again = {s.argv[0]: s.argv for s in demo_steps(tmp_path, 3.0, "demo")}
    assert "--resume" in again["pretrain"]
    assert f"data.cache={tmp_path / 'cache'}" in again["pretrain"]
