"""Metrics equal scikit-learn's on fixed predictions (sklearn is a dev-only reference here)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from audioclr.evaluate.metrics import accuracy, macro_f1, pr_auc_macro, roc_auc_macro, score_all


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multilabel_auc_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((60, 5)) < 0.3).astype(int)
    y[0], y[1] = 1, 0  # every tag has positives and negatives
    scores = np.round(rng.random((60, 5)) + 0.5 * y, 1)  # rounding makes ties
    assert roc_auc_macro(y, scores) == pytest.approx(
        roc_auc_score(y, scores, average="macro"), abs=1e-12
    )
    assert pr_auc_macro(y, scores) == pytest.approx(
        average_precision_score(y, scores, average="macro"), abs=1e-12
    )


def test_single_label_metrics_equal_sklearn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 100)
    pred = np.where(rng.random(100) < 0.6, y, rng.integers(0, 5, 100))  # class 4 only predicted
    assert accuracy(y, pred) == pytest.approx(accuracy_score(y, pred))
    assert macro_f1(y, pred) == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)


def test_score_all_uses_argmax_and_skips_one_class_tags():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert score_all(np.array([1, 0, 0]), probs, False)["accuracy"] == pytest.approx(2 / 3)
    y = np.array([[1, 1], [0, 1], [1, 1]])  # tag 1 is always on: no AUC, left out
    assert score_all(y, probs, True)["roc_auc"] == pytest.approx(
        roc_auc_score(y[:, 0], probs[:, 0])
    )
