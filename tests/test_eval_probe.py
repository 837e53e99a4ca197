"""Probe: separable data is learnt, shuffled labels give chance, fractions are stratified."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioclr.errors import LabelError
from audioclr.evaluate.intervals import TEST_SCORES
from audioclr.evaluate.probe import run_probe
from audioclr.evaluate.probe_config import ProbeConfig
from audioclr.evaluate.probe_data import ProbeData, sample_fraction


def _blobs(rng: np.random.Generator, n_per: int = 40, classes: int = 4, dim: int = 16) -> ProbeData:
    centres = rng.normal(0, 1, (classes, dim)) * 4
    y = np.repeat(np.arange(classes), n_per)
    x = centres[y] + rng.normal(0, 1, (len(y), dim))
    splits = rng.choice(["train", "valid", "test"], size=len(y), p=[0.6, 0.2, 0.2])
    return ProbeData(
        x.astype(np.float32), np.arange(len(y)), y, splits, [f"c{i}" for i in range(classes)], False
    )


FAST = ProbeConfig(max_epochs=25, patience=5, weight_decays=[0.0, 1e-3])


@pytest.mark.parametrize("head", ["linear", "mlp", "knn"])
def test_separable_embeddings_are_learnt(rng, head):
    data = _blobs(rng)
    res = run_probe(
        data, ProbeConfig(**{**FAST.__dict__, "head": head}), fractions=[1.0], seeds=[0, 1]
    )
    assert res["1.0"]["accuracy"]["mean"] >= 0.97
    assert res["1.0"]["macro_f1"]["mean"] >= 0.97


def test_shuffled_labels_give_chance(rng):
    classes, data = 4, _blobs(rng, n_per=100)
    data.targets = rng.permutation(data.targets)
    res = run_probe(data, FAST, fractions=[1.0], seeds=[0, 1, 2])
    # chance is 1/4; the test split holds ~80 tracks, so the binomial std is ~0.05
    assert abs(res["1.0"]["accuracy"]["mean"] - 1 / classes) < 0.13


def test_multilabel_probe_learns_tags(rng):
    n, dim, tags = 300, 12, 3
    x = rng.normal(0, 1, (n, dim)).astype(np.float32)
    y = (x[:, :tags] > 0).astype(np.float32)  # tag c is on when feature c is positive
    x[:, :tags] += np.where(y > 0, 1.0, -1.0)  # with a margin
    splits = np.array(["train"] * 180 + ["valid"] * 60 + ["test"] * 60)
    data = ProbeData(x, np.arange(n), y, splits, ["a", "b", "c"], True)
    res = run_probe(data, FAST, fractions=[1.0], seeds=[0])
    assert res["1.0"]["roc_auc"]["mean"] > 0.97 and res["1.0"]["pr_auc"]["mean"] > 0.9


def test_window_predictions_are_averaged_per_track(rng):
    # each track has 3 windows: two informative, one pure noise; track-level scoring must use all
    base = _blobs(rng, n_per=30)
    n = len(base.targets)
    x = np.concatenate(
        [base.x, base.x + rng.normal(0, 0.5, base.x.shape), rng.normal(0, 1, base.x.shape) * 4]
    )
    data = ProbeData(
        x.astype(np.float32),
        np.tile(np.arange(n), 3),
        base.targets,
        base.splits,
        base.classes,
        False,
    )
    res = run_probe(data, FAST, fractions=[1.0], seeds=[0])
    run = res["1.0"]["runs"][0]
    n_test = int(np.sum(base.splits == "test"))
    # accuracy is a track-level fraction: a multiple of 1/n_test
    assert np.isclose(run["accuracy"] * n_test, round(run["accuracy"] * n_test))
    assert run["accuracy"] >= 0.95


def test_fraction_sampling_is_stratified_and_deterministic(rng):
    y = np.repeat(np.arange(5), [100, 50, 20, 10, 3])
    train = np.arange(len(y))
    a = sample_fraction(y, train, 0.1, seed=7, multilabel=False)
    b = sample_fraction(y, train, 0.1, seed=7, multilabel=False)
    c = sample_fraction(y, train, 0.1, seed=8, multilabel=False)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    counts = np.bincount(y[a], minlength=5)
    np.testing.assert_array_equal(
        counts, [10, 5, 2, 1, 1]
    )  # round(0.1 n_c), at least one per class


def test_fraction_sampling_multilabel_covers_every_tag(rng):
    y = (rng.random((200, 6)) < np.array([0.5, 0.3, 0.1, 0.05, 0.02, 0.01])).astype(np.float32)
    y[0, 5] = 1  # make sure every tag has a positive
    train = np.arange(200)
    a = sample_fraction(y, train, 0.01, seed=3, multilabel=True)
    np.testing.assert_array_equal(a, sample_fraction(y, train, 0.01, seed=3, multilabel=True))
    assert (y[a].sum(axis=0) >= 1).all()
    assert len(a) >= 2


def test_bad_fraction_is_refused():
    with pytest.raises(LabelError, match="fraction"):
        sample_fraction(np.zeros(4, int), np.arange(4), 1.5, 0, False)


@pytest.mark.parametrize("wd", [1e-3, 1e-1])
def test_linear_head_is_the_regularised_logistic_regression_optimum(rng, wd):
    """Against scikit-learn: ``mean CE + wd ||W||^2`` is its ``C = 1 / (2 wd n)`` problem."""
    from sklearn.linear_model import LogisticRegression

    from audioclr.evaluate.probe_fit import Split, fit_linear

    data = _blobs(rng, n_per=30, classes=3, dim=6)
    data.x += rng.normal(0, 3, data.x.shape).astype(np.float32)  # overlapping classes
    train_tracks = data.split_indices("train")
    mean, std = np.zeros(6), np.ones(6)
    train = Split(data, train_tracks, mean, std)
    valid = Split(data, data.split_indices("valid"), mean, std)
    model, _, iterations = fit_linear(train, valid, 3, False, wd, ProbeConfig(), seed=0)
    assert iterations < ProbeConfig().max_iterations  # converged
    ours = torch.softmax(model(train.x), dim=1).detach().numpy()
    reference = LogisticRegression(C=1 / (2 * wd * len(train_tracks)), tol=1e-10, max_iter=10000)
    theirs = reference.fit(train.x.numpy(), train.y_rows).predict_proba(train.x.numpy())
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_runs_are_seeds_times_draws_and_subsets_do_not_depend_on_the_draw(rng, monkeypatch):
    import audioclr.evaluate.probe as probe

    data = _blobs(rng, n_per=20, classes=3, dim=8)
    other = ProbeData(
        rng.normal(0, 1, data.x.shape).astype(np.float32),  # another init draw: other vectors
        data.row_track,
        data.targets,
        data.splits,
        data.classes,
        False,
    )
    chosen: dict[tuple[int, int], list[int]] = {}
    real = probe.probe_once

    def spy(d, train_tracks, cfg, seed):
        chosen[(seed, 0 if d is data else 1)] = list(train_tracks)
        return real(d, train_tracks, cfg, seed)

    monkeypatch.setattr(probe, "probe_once", spy)
    knn = ProbeConfig(head="knn", bootstrap=50)
    res = run_probe([data, other], knn, fractions=[0.3], seeds=[0, 1, 2])["0.3"]
    assert [(r["seed"], r["draw"]) for r in res["runs"]] == [
        (s, d) for s in (0, 1, 2) for d in (0, 1)
    ]
    for s in (0, 1, 2):
        assert chosen[(s, 0)] == chosen[(s, 1)]
    assert chosen[(0, 0)] != chosen[(1, 0)]
    assert len(res["accuracy"]["values"]) == 6
    lo, hi = res["accuracy"]["ci95"]
    assert lo <= res["accuracy"]["mean"] <= hi
    # one ProbeData is one draw
    single = run_probe(data, knn, fractions=[0.3], seeds=[0])["0.3"]["runs"]
    assert [(r["seed"], r["draw"]) for r in single] == [(0, 0)]


def test_draws_of_other_tracks_are_refused(rng):
    data = _blobs(rng, n_per=10, classes=2, dim=4)
    other = ProbeData(
        data.x, data.row_track, data.targets[::-1].copy(), data.splits, data.classes, False
    )
    with pytest.raises(LabelError, match="draw 1"):
        run_probe([data, other], ProbeConfig(head="knn"), seeds=[0])


def test_runs_keep_test_track_scores_in_memory_only(rng):
    from audioclr.evaluate.intervals import TEST_SCORES
    from audioclr.evaluate.report import public

    data = _blobs(rng, n_per=10, classes=2, dim=4)
    run = run_probe(data, ProbeConfig(head="knn", bootstrap=20), seeds=[0])["1.0"]["runs"][0]
    scores = run[TEST_SCORES]
    test = data.split_indices("test")
    np.testing.assert_array_equal(scores.tracks, test)
    np.testing.assert_array_equal(scores.y_true, data.targets[test])
    assert scores.scores.shape == (len(test), 2)
    assert TEST_SCORES not in public(run)


def test_one_class_is_an_error(rng):
    data = _blobs(rng, n_per=10, classes=2, dim=4)
    data.targets = np.zeros_like(data.targets)
    with pytest.raises(LabelError, match="has one class"):
        run_probe(data, FAST, seeds=[0])
    data = _blobs(rng, n_per=10, classes=2, dim=4)
    data.targets = np.where(data.splits == "train", 0, data.targets)
    with pytest.raises(LabelError, match="training split has one class"):
        run_probe(data, FAST, seeds=[0])


def test_one_class_multilabel_is_an_error(rng):
    y = np.ones((20, 2))
    data = ProbeData(
        rng.normal(0, 1, (20, 3)).astype(np.float32),
        np.arange(20),
        y,
        np.array(["train"] * 14 + ["test"] * 6),
        ["a", "b"],
        True,
    )
    with pytest.raises(LabelError, match="one class"):
        run_probe(data, FAST, seeds=[0])


def test_class_missing_from_training_warns_and_is_recorded(rng):
    from audioclr.evaluate.probe_data import ProbeWarning

    data = _blobs(rng, n_per=15, classes=3, dim=6)
    data.splits = np.where((data.targets == 2) & (data.splits == "train"), "valid", data.splits)
    data.splits[np.flatnonzero(data.targets == 2)[0]] = "test"
    with pytest.warns(ProbeWarning, match="class 'c2' has test tracks but no training track"):
        res = run_probe(data, ProbeConfig(head="knn", bootstrap=20), seeds=[0, 1])
    assert any("'c2'" in w for w in res["1.0"]["warnings"])


def test_no_validation_split_warns_and_runs(rng):
    from audioclr.evaluate.probe_data import ProbeWarning

    data = _blobs(rng, n_per=15, classes=3, dim=6)
    data.splits = np.where(data.splits == "valid", "train", data.splits)
    with pytest.warns(ProbeWarning, match="no validation tracks"):
        res = run_probe(data, ProbeConfig(**{**FAST.__dict__, "bootstrap": 20}), seeds=[0])
    assert res["1.0"]["accuracy"]["mean"] > 0.9
    assert any("no validation tracks" in w for w in res["1.0"]["warnings"])
    assert run_probe(data, ProbeConfig(head="knn"), seeds=[0])["1.0"]["warnings"] == []


def test_fraction_one_fits_one_seed_for_convex_heads_only(rng):
    data = _blobs(rng, n_per=60, dim=24)
    data.x = data.x + rng.normal(0, 6, data.x.shape).astype(np.float32)  # overlapping classes
    full = run_probe(data, FAST, fractions=[1.0, 0.3], seeds=[0, 1, 2])
    assert [r["seed"] for r in full["1.0"]["runs"]] == [0]
    assert [r["seed"] for r in full["0.3"]["runs"]] == [0, 1, 2]
    # the claim behind it: another seed refits the same convex problem, to the same predictions
    alone = [run_probe(data, FAST, seeds=[s])["1.0"]["runs"][0] for s in (0, 1)]
    a, b = (r[TEST_SCORES].scores for r in alone)
    assert np.abs(a - b).max() < 1e-3
    assert alone[0]["accuracy"] < 0.95  # not a trivially separable set
    mlp = ProbeConfig(**{**FAST.__dict__, "head": "mlp"})
    assert [r["seed"] for r in run_probe(data, mlp, seeds=[0, 1])["1.0"]["runs"]] == [0, 1]


@pytest.mark.parametrize("standardize", ["labelled", "train_audio"])
def test_standardize_takes_statistics_from_training_audio_only(rng, monkeypatch, standardize):
    import audioclr.evaluate.probe as probe

    data = _blobs(rng, n_per=50)
    held_out = data.splits != "train"
    data.x[held_out] += 1000.0  # any valid / test row in the statistics would show
    means: list[np.ndarray] = []
    real_split = probe.Split

    def spy(d, tracks, mean, std):
        means.append(np.asarray(mean))
        return real_split(d, tracks, mean, std)

    monkeypatch.setattr(probe, "Split", spy)
    cfg = ProbeConfig(**{**FAST.__dict__, "standardize": standardize})
    res = run_probe(data, cfg, fractions=[0.1], seeds=[3])
    train_all = np.flatnonzero(data.splits == "train")
    labelled = sample_fraction(data.targets, train_all, 0.1, 3, False)
    expected = data.x[labelled if standardize == "labelled" else train_all].mean(axis=0)
    assert len(labelled) < len(train_all) / 5
    assert means and all(np.allclose(m, expected, atol=1e-4) for m in means)
    assert res["0.1"]["runs"][0]["train_tracks"] == len(labelled)  # labels: still the subset


def test_standardize_names_the_key_when_bad():
    from audioclr.errors import ConfigError

    with pytest.raises(ConfigError, match="probe.standardize"):
        ProbeConfig(standardize="test")


@pytest.mark.parametrize("select", ["metric", "loss"])
def test_weight_decay_is_chosen_by_the_selected_validation_signal(rng, select):
    """Against scikit-learn fits of every weight decay: ``select=loss`` keeps the one with the
    lowest validation cross-entropy, ``select=metric`` the best validation accuracy (the loss
    breaking ties)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    data = _blobs(rng, n_per=40, classes=3, dim=32)
    data.x += rng.normal(0, 8, data.x.shape).astype(np.float32)  # overlapping: the penalty matters
    grid = [1e-4, 1e-2, 1.0]
    rows = data.split_indices("train")
    mean, std = data.x[rows].mean(axis=0), data.x[rows].std(axis=0) + 1e-6
    x_tr, y_tr = (data.x[rows] - mean) / std, data.targets[rows]
    valid = data.split_indices("valid")
    x_va, y_va = (data.x[valid] - mean) / std, data.targets[valid]
    keys = {}
    for wd in grid:
        ref = LogisticRegression(C=1 / (2 * wd * len(rows)), tol=1e-10, max_iter=10000)
        proba = ref.fit(x_tr, y_tr).predict_proba(x_va)
        loss, acc = log_loss(y_va, proba, labels=[0, 1, 2]), float((proba.argmax(1) == y_va).mean())
        keys[wd] = (-loss, acc) if select == "loss" else (acc, -loss)
    ranked = sorted(grid, key=keys.get, reverse=True)
    assert keys[ranked[0]][0] - keys[ranked[1]][0] > 0.01 or select == "metric"  # a clear winner
    cfg = ProbeConfig(weight_decays=grid, select=select)
    run = run_probe(data, cfg, fractions=[1.0], seeds=[0])["1.0"]["runs"][0]
    assert run["weight_decay"] == ranked[0]


def test_the_two_selections_can_disagree(rng):
    """The data of the test above: the lowest validation loss and the best validation accuracy
    pick different weight decays, so that test tells the two signals apart."""
    data = _blobs(rng, n_per=40, classes=3, dim=32)
    data.x += rng.normal(0, 8, data.x.shape).astype(np.float32)
    picks = {
        s: run_probe(data, ProbeConfig(weight_decays=[1e-4, 1e-2, 1.0], select=s), [1.0], [0])[
            "1.0"
        ]["runs"][0]["weight_decay"]
        for s in ("metric", "loss")
    }
    assert picks["metric"] != picks["loss"]
