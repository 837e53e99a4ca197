"""Bootstrap intervals: weighted metrics equal metrics on resampled tracks, the cell interval
equals a plain loop, the paired difference shares resamples, verdicts follow the interval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audioclr.evaluate import metrics
from audioclr.evaluate.intervals import (
    TEST_SCORES,
    TrackScores,
    cell_interval,
    paired_difference,
    percentile_interval,
    resampled_metric,
    track_counts,
    verdict,
)
from audioclr.evaluate.report import ENCODER, verdicts, write_report

DIRECT = {
    "accuracy": lambda y, s: metrics.accuracy(y, np.argmax(s, axis=1)),
    "macro_f1": lambda y, s: metrics.macro_f1(y, np.argmax(s, axis=1)),
    "roc_auc": metrics.roc_auc_macro,
    "pr_auc": metrics.pr_auc_macro,
}


def _single(rng: np.random.Generator, n: int = 30, classes: int = 4):
    y = rng.integers(0, classes, n)
    s = np.round(rng.random((n, classes)), 1)  # rounded: ties in argmax and in ranks
    return y, s


def _multi(rng: np.random.Generator, n: int = 12, classes: int = 4):
    y = (rng.random((n, classes)) < [0.5, 0.3, 0.1, 0.05]).astype(int)
    y[0, 3] = 1  # a rare tag: many resamples hold no positive of it
    return y, np.round(rng.random((n, classes)), 1)


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "roc_auc", "pr_auc"])
def test_weighted_metric_equals_the_metric_of_the_resampled_tracks(rng, metric):
    y, s = (_multi if metric in ("roc_auc", "pr_auc") else _single)(rng)
    idx = rng.integers(0, len(y), size=(200, len(y)))
    fast = resampled_metric(metric, y, s, track_counts(idx, len(y)))
    slow = np.array([DIRECT[metric](y[i], s[i]) for i in idx])
    np.testing.assert_allclose(fast, slow, equal_nan=True, rtol=1e-12, atol=1e-12)


def test_auc_of_a_resample_with_one_class_is_nan_and_dropped():
    y = np.array([[1], [0], [0]])
    s = np.array([[0.9], [0.2], [0.1]])
    idx = np.array([[1, 2, 2], [0, 1, 2]])  # first resample: negatives only
    out = resampled_metric("roc_auc", y, s, track_counts(idx, 3))
    assert np.isnan(out[0]) and out[1] == 1.0
    assert percentile_interval(out) == (1.0, 1.0)
    assert all(np.isnan(percentile_interval(np.full(4, np.nan))))


def test_two_track_accuracy_distribution_by_hand():
    """One track right, one wrong: a resample scores 0, 1/2, 1 with probability 1/4, 1/2, 1/4."""
    runs = [_run(0, 0, np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 0.0]]))]
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 2, size=(20000, 2))
    dist = resampled_metric(
        "accuracy", runs[0][TEST_SCORES].y_true, runs[0][TEST_SCORES].scores, track_counts(idx, 2)
    )
    np.testing.assert_allclose(
        [np.mean(dist == v) for v in (0, 0.5, 1)], [0.25, 0.5, 0.25], atol=0.01
    )
    assert cell_interval(runs, "accuracy") == [0.0, 1.0]


def _run(seed: int, draw: int, y: np.ndarray, s: np.ndarray, metric: str = "accuracy") -> dict:
    value = DIRECT[metric](y, s)
    return {
        "seed": seed,
        "draw": draw,
        metric: value,
        TEST_SCORES: TrackScores(np.arange(len(y)), y, s),
    }


def _grid_runs(
    rng: np.random.Generator, y: np.ndarray, seeds: int, draws: int, noise: float
) -> list[dict]:
    classes = int(y.max()) + 1
    return [
        _run(seed, d, y, np.eye(classes)[y] + rng.normal(0, noise, (len(y), classes)))
        for seed in range(seeds)
        for d in range(draws)
    ]


def test_cell_interval_equals_a_plain_loop_with_the_same_draws(rng):
    y = rng.integers(0, 3, 25)
    runs = _grid_runs(rng, y, seeds=3, draws=2, noise=0.8)
    n_boot = 300
    # the loop draws in the documented order: tracks (B, n), seeds (B, S), draws (B, D)
    g = np.random.default_rng(5)
    tracks = g.integers(0, 25, size=(n_boot, 25))
    seeds = g.integers(0, 3, size=(n_boot, 3))
    draws = g.integers(0, 2, size=(n_boot, 2))
    by = {(r["seed"], r["draw"]): r[TEST_SCORES] for r in runs}
    dist = []
    for b in range(n_boot):
        values = []
        for si in seeds[b]:
            for di in draws[b]:
                sc = by[(int(si), int(di))]
                i = tracks[b]
                values.append(metrics.accuracy(sc.y_true[i], np.argmax(sc.scores[i], axis=1)))
        dist.append(np.mean(values))
    expected = np.percentile(dist, [2.5, 97.5])
    np.testing.assert_allclose(cell_interval(runs, "accuracy", n_boot, seed=5), expected)


def _shifted_pair(rng: np.random.Generator, n: int = 200) -> tuple[list[dict], list[dict]]:
    """b is right on a random half of the tracks; a on the same ones plus 5 % more."""
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.5
    extra = rng.choice(np.flatnonzero(~right), size=n // 20, replace=False)
    pred_b = np.where(right, y, 1 - y)
    pred_a = pred_b.copy()
    pred_a[extra] = y[extra]
    a = [_run(s, 0, y, np.eye(2)[pred_a]) for s in range(3)]
    b = [_run(s, d, y, np.eye(2)[pred_b]) for s in range(3) for d in range(3)]
    return a, b


def test_paired_difference_uses_the_same_resampled_tracks(rng):
    a, b = _shifted_pair(rng)
    res = paired_difference(a, b, "accuracy", n_boot=1000, seed=0)
    assert res["diff"] == pytest.approx(0.05)
    lo, hi = res["ci95"]
    # paired: only the 10 "extra" tracks vary, sd ~ sqrt(.05 * .95 / 200) = 0.015;
    # unpaired, each mean would vary with sd ~0.035 and the difference's interval span ~0.2
    assert hi - lo < 0.08 and lo > 0
    assert res["verdict"] == "beats"
    unpaired_a, unpaired_b = cell_interval(a, "accuracy"), cell_interval(b, "accuracy")
    assert unpaired_a[0] < unpaired_b[1]  # the two cell intervals overlap


def test_paired_difference_of_identical_methods_is_exactly_zero(rng):
    y = rng.integers(0, 3, 40)
    runs = _grid_runs(rng, y, seeds=2, draws=1, noise=1.0)
    res = paired_difference(runs, runs, "accuracy", n_boot=200)
    assert res == {"diff": 0.0, "ci95": [0.0, 0.0], "verdict": "tie"}


def test_paired_difference_refuses_different_test_tracks(rng):
    y = rng.integers(0, 2, 10)
    a = [_run(0, 0, y, np.eye(2)[y])]
    b = [{**a[0], TEST_SCORES: TrackScores(np.arange(1, 11), y, np.eye(2)[y])}]
    with pytest.raises(ValueError, match="different test tracks"):
        paired_difference(a, b, "accuracy")


def test_verdict_rule():
    assert verdict(0.01, 0.2) == "beats"
    assert verdict(-0.2, -0.01) == "loses"
    assert verdict(-0.1, 0.1) == verdict(0.0, 0.0) == verdict(np.nan, np.nan) == "tie"


def _cell(runs: list[dict]) -> dict:
    acc = [r["accuracy"] for r in runs]
    return {
        "accuracy": {
            "mean": float(np.mean(acc)),
            "std": float(np.std(acc)),
            "values": acc,
            "ci95": cell_interval(runs, "accuracy", 200),
        },
        "runs": runs,
        "warnings": [],
    }


@pytest.mark.parametrize("case", ["better", "same", "worse"])
def test_verdicts_on_constructed_cases(rng, case):
    y = rng.integers(0, 3, 150)
    good = _grid_runs(rng, y, seeds=3, draws=1, noise=0.3)  # ~100 % right
    poor = _grid_runs(rng, y, seeds=3, draws=3, noise=3.0)  # near chance
    enc = {"better": good, "same": poor, "worse": poor}[case]
    base = {"better": poor, "same": poor, "worse": good}[case]
    results = {
        ENCODER: {"linear": {"1.0": _cell(enc)}},
        "random_init": {"linear": {"1.0": _cell(base)}},
        "mfcc": {"linear": {"1.0": _cell(poor[:3])}},
    }  # worse or equal: never the best
    v = verdicts(results, "accuracy", n_boot=300)["linear"]["1.0"]
    assert v["verdict"] == {"better": "beats", "same": "tie", "worse": "loses"}[case]
    assert results[ENCODER]["linear"]["1.0"]["vs_best_baseline"] == v
    assert v["baseline"] == ("random_init" if case != "same" else v["baseline"])


def test_report_writes_intervals_verdicts_and_warnings_without_arrays(tmp_path, rng):
    y = rng.integers(0, 3, 60)
    enc, base = _grid_runs(rng, y, 2, 1, 0.3), _grid_runs(rng, y, 2, 3, 3.0)
    results = {
        ENCODER: {"linear": {"1.0": _cell(enc)}},
        "random_init": {"linear": {"1.0": {**_cell(base), "warnings": ["no valid"]}}},
    }
    task = {
        "metric": "accuracy",
        "multilabel": False,
        "results": results,
        "verdict": verdicts(results, "accuracy", n_boot=200),
    }
    write_report({"tasks": {"t": task}}, tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert TEST_SCORES not in text
    saved = json.loads(text)["tasks"]["t"]
    cell = saved["results"][ENCODER]["linear"]["1.0"]
    assert len(cell["accuracy"]["ci95"]) == 2
    assert cell["vs_best_baseline"]["verdict"] == "beats"
    assert cell["vs_best_baseline"]["baseline"] == "random_init"
    assert saved["warnings"] == ["no valid"]
    md = (tmp_path / "report.md").read_text()
    lo, hi = cell["accuracy"]["ci95"]
    assert f"{cell['accuracy']['mean']:.3f} [{lo:.3f}, {hi:.3f}] **beats** random_init" in md
    assert "- no valid" in md


def test_benchmark_summary_counts_verdicts_per_task_and_in_total():
    from audioclr.pipelines.bench_report import task_table, total_counts

    def v(word: str) -> dict:
        return {"baseline": "mfcc", "diff": -0.25, "ci95": [-0.5, -0.125], "verdict": word}

    cell = {"accuracy": {"mean": 0.5, "std": 0.0, "ci95": [0.25, 0.75]}}
    results = {ENCODER: {"linear": {"0.1": cell, "1.0": cell}}, "mfcc": {"linear": {"1.0": cell}}}
    a = {
        "metric": "accuracy",
        "results": results,
        "verdict": {"linear": {"0.1": v("loses"), "1.0": v("beats")}},
    }
    b = {"metric": "accuracy", "results": results, "verdict": {"linear": {"1.0": v("tie")}}}
    md = "\n".join(task_table("a", a))
    assert "0.500 [0.250, 0.750]" in md and "**loses** vs MFCC: -0.250 [-0.500, -0.125]" in md
    assert "SSL vs best baseline on a: beats 1, tie 0, loses 1" in md
    assert total_counts({"probe": {"tasks": {"a": a, "b": b}}}) == {
        "beats": 1,
        "tie": 1,
        "loses": 1,
    }


def test_query_intervals_resample_whole_clusters_and_pair_methods() -> None:
    from audioclr.evaluate.intervals import query_intervals

    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(8), 5)  # 8 tracks x 5 segments
    base = rng.random(40)
    per_method = {
        "encoder": (base + 0.05)[None],
        "mfcc": base[None],
        "random_init": np.stack([base - 0.1, base - 0.2]),
    }
    out = query_intervals(per_method, clusters, "encoder", ["mfcc", "random_init"], 2000, 1)
    # direct loop: the same cluster draws, mean of the resampled queries
    again = np.random.default_rng(1)
    draws = again.integers(0, 8, size=(2000, 8))
    direct = [
        np.concatenate([per_method["mfcc"][0][clusters == c] for c in d]).mean() for d in draws
    ]
    assert out["ci95"]["mfcc"] == pytest.approx(list(np.percentile(direct, [2.5, 97.5])))
    v = out["vs_best_baseline"]  # a constant shift of +0.05 on every query: a tight interval
    assert v["baseline"] == "mfcc" and v["ci95"] == pytest.approx([0.05, 0.05])
    assert v["verdict"] == "beats"
    lo, hi = out["ci95"]["random_init"]  # two draws 0.1 apart widen the interval
    assert hi - lo > out["ci95"]["mfcc"][1] - out["ci95"]["mfcc"][0]


def test_grouped_tracks_are_resampled_whole(rng):
    # 10 groups of 20 tracks; a group's tracks are all right or all wrong (5 and 5): the evidence
    # is 10 groups, not 200 tracks. Independent reference: the binomial sd over 10 groups.
    groups = np.repeat(np.arange(10), 20)
    y = np.zeros(200, dtype=np.int64)
    right = np.isin(groups, [0, 2, 4, 6, 8])
    s = np.where(right[:, None], [1.0, 0.0], [0.0, 1.0])
    plain = {"seed": 0, "draw": 0, "accuracy": 0.5, TEST_SCORES: TrackScores(np.arange(200), y, s)}
    grouped = {**plain, TEST_SCORES: TrackScores(np.arange(200), y, s, groups.astype(str))}
    lo, hi = cell_interval([grouped], "accuracy", n_boot=4000)
    sd = np.sqrt(0.25 / 10)
    assert hi - lo == pytest.approx(2 * 1.96 * sd, rel=0.2)  # 0.62
    lo_t, hi_t = cell_interval([plain], "accuracy", n_boot=4000)
    assert hi_t - lo_t == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 200), rel=0.2)  # 0.14
    # paired: the same groups are resampled for both methods
    other = {**grouped, TEST_SCORES: TrackScores(np.arange(200), y, s[:, ::-1], groups.astype(str))}
    other["accuracy"] = 0.5
    diff = paired_difference([grouped], [other], "accuracy", n_boot=4000)
    assert diff["ci95"][1] - diff["ci95"][0] == pytest.approx(2 * 1.96 * 2 * sd, rel=0.2)
