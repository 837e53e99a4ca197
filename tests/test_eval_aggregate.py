"""Aggregate over tasks (HEAR-style normalisation) and labels saved, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from audioclr.evaluate.aggregate import aggregate, aggregate_table, labels_saved
from audioclr.evaluate.intervals import TEST_SCORES, TrackScores


def _task(scores: dict[str, float], low: float = 0.0) -> dict:
    """A task whose (method/head) has ``scores`` at 1.0 of labels and ``low`` at 0.1."""
    results: dict = {}
    for key, s in scores.items():
        method, head = key.split("/")
        results.setdefault(method, {})[head] = {
            "0.1": {"accuracy": {"mean": low}},
            "1.0": {"accuracy": {"mean": s}},
        }
    return {"metric": "accuracy", "results": results}


def test_aggregate_on_a_hand_computed_case():
    tasks = {
        "a": _task({"encoder/linear": 0.8, "random_init/linear": 0.5, "mfcc/linear": 0.6}),
        "b": _task(
            {
                "encoder/linear": 0.9,
                "random_init/linear": 0.95,
                "mfcc/linear": 0.7,
                "mfcc/knn": 0.65,  # the best MFCC head is the reference
                "encoder/finetune": 0.75,
            }
        ),
        "c": _task({"encoder/linear": 0.5, "mfcc/linear": 0.9}),  # MFCC best: left out
    }
    agg = aggregate(tasks)
    # a: (s - 0.6) / (0.8 - 0.6); b: (s - 0.7) / (0.95 - 0.7)
    expect = {
        "encoder/linear": (1.0 + 0.8) / 2,
        "random_init/linear": (-0.5 + 1.0) / 2,
        "mfcc/linear": 0.0,
        "mfcc/knn": -0.2,
        "encoder/finetune": 0.2,
    }
    assert set(agg["scores"]) == set(expect)
    for key, value in expect.items():
        assert agg["scores"][key]["mean"] == pytest.approx(value)
    assert agg["scores"]["encoder/finetune"]["tasks"] == 1
    assert agg["ranking"] == [
        "encoder/linear",
        "random_init/linear",
        "encoder/finetune",
        "mfcc/linear",
        "mfcc/knn",
    ]
    assert list(agg["left_out"]) == ["c"] and "MFCC is the best" in agg["left_out"]["c"]
    table = "\n".join(aggregate_table(agg))
    assert "| 1 | encoder/linear | 0.900 | 2 | 1.000 | 0.800 |" in table


def _runs(correct: np.ndarray, seeds=(0, 1)) -> list[dict]:
    """Runs whose test predictions are right exactly where ``correct`` is true (2 classes)."""
    y = np.arange(len(correct)) % 2
    pred = np.where(correct, y, 1 - y)
    scores = np.eye(2)[pred]
    acc = float(correct.mean())
    return [
        {
            "seed": s,
            "draw": 0,
            "accuracy": acc,
            TEST_SCORES: TrackScores(np.arange(len(y)), y, scores),
        }
        for s in seeds
    ]


def _cell(correct: np.ndarray) -> dict:
    return {"accuracy": {"mean": float(correct.mean())}, "runs": _runs(correct)}


def test_labels_saved_is_the_smallest_fraction_from_which_on_it_is_not_worse():
    n = 40
    right, wrong = np.ones(n, bool), np.zeros(n, bool)
    almost = right.copy()
    almost[:2] = False  # 2 of 40 wrong: not significantly worse than all right
    results = {
        "encoder": {
            "finetune": {
                "0.1": _cell(wrong),
                "0.25": _cell(almost),
                "0.5": _cell(wrong),
                "1.0": _cell(right),
            },
            "linear": {"0.1": _cell(wrong), "1.0": _cell(wrong)},
        },
        "random_init": {"finetune": {"0.5": _cell(wrong), "1.0": _cell(right)}},
    }
    saved = labels_saved(results, "accuracy", n_boot=200)
    assert saved["reference"] == {
        "method": "random_init",
        "head": "finetune",
        "fraction": 1.0,
        "accuracy": 1.0,
    }
    ft = saved["heads"]["finetune"]
    assert ft["fraction"] == 1.0  # 0.25 matches but 0.5 does not: "from which on"
    assert ft["by_fraction"]["0.25"]["ci95"][1] >= 0 > ft["by_fraction"]["0.5"]["ci95"][1]
    assert (
        saved["heads"]["linear"]["fraction"] is None and saved["heads"]["linear"]["saved"] is None
    )
    results["encoder"]["finetune"]["0.5"] = _cell(almost)
    assert labels_saved(results, "accuracy", n_boot=200)["heads"]["finetune"]["fraction"] == 0.25
    assert labels_saved({"encoder": results["encoder"]}, "accuracy") == {}  # no reference
