"""Saved probe predictions: the same paired verdicts from disk as in memory; no pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioclr.errors import AudioclrError
from audioclr.evaluate.intervals import TEST_SCORES, TrackScores, paired_difference
from audioclr.evaluate.saved_scores import load_scores, save_scores


def _runs(rng: np.random.Generator, skill: float, seeds: list[int], draws: int) -> list[dict]:
    """Runs on 40 test tracks of 4 classes in 10 groups: the true class gets ``skill`` extra."""
    y = np.arange(40) % 4
    groups = np.array([f"speaker{i // 4}" for i in range(40)])
    runs = []
    for seed in seeds:
        for d in range(draws):
            p = rng.random((40, 4))
            p[np.arange(40), y] += skill * rng.random(40)
            p /= p.sum(axis=1, keepdims=True)
            acc = float((p.argmax(axis=1) == y).mean())
            runs.append(
                {
                    "seed": seed,
                    "draw": d,
                    "accuracy": acc,
                    TEST_SCORES: TrackScores(np.arange(40), y, p, groups),
                }
            )
    return runs


def test_saved_scores_give_the_paired_difference_computed_in_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    enc = _runs(rng, 0.8, [0, 1, 2], 1)
    base = _runs(rng, 0.4, [0, 1, 2], 3)
    results = {
        "encoder": {"linear": {"0.1": {"runs": enc}}},
        "random_init": {"linear": {"0.1": {"runs": base}}},
    }
    path = save_scores(results, tmp_path / "scores" / "tones.npz")
    got = load_scores(path)
    assert set(got) == {"encoder", "random_init"}
    back = got["encoder"]["linear"]["0.1"]
    assert [(r["seed"], r["draw"], r["accuracy"]) for r in back] == [
        (r["seed"], r["draw"], r["accuracy"]) for r in enc
    ]
    for r in back:  # the saved probabilities score what the run scored
        s = r[TEST_SCORES]
        assert float((s.scores.argmax(axis=1) == s.y_true).mean()) == r["accuracy"]
        assert list(s.groups[:5]) == ["speaker0"] * 4 + ["speaker1"]
    expected = paired_difference(enc, base, "accuracy")
    assert paired_difference(back, got["random_init"]["linear"]["0.1"], "accuracy") == expected
    assert expected["verdict"] == "beats"


def test_loading_refuses_what_is_not_a_scores_file(tmp_path: Path) -> None:
    with pytest.raises(AudioclrError, match="missing.npz"):
        load_scores(tmp_path / "missing.npz")
    bad = tmp_path / "objects.npz"  # an object array would need unpickling: refused
    np.savez(bad, index=np.asarray('{"format_version": 1, "runs": []}'), x=np.array([{}, 1]))
    with pytest.raises(AudioclrError, match="objects.npz"):
        load_scores(bad)
