"""Probe cache: a fit is reused while nothing it depends on changes, and only then.

A key added to ``ProbeConfig`` later, at a default that keeps the old behaviour, must not
throw away earlier fits (they were refitted to identical scores when ``probe.select`` came);
any changed value, including that new key's, must refit; and a changed default must come
with a new ``KEY_VERSION`` (default-valued keys are not hashed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import audioclr.evaluate.probe_cache as probe_cache
from audioclr.config import config_to_dict
from audioclr.evaluate.probe_cache import cached_probe, changed_fields, probe_key
from audioclr.evaluate.probe_config import ProbeConfig
from audioclr.evaluate.probe_data import ProbeData


@dataclass
class LaterProbeConfig(ProbeConfig):
    """ProbeConfig as a later version might have it: one more key, its default the old behaviour."""

    new_knob: int = 0


def _data(rng: np.random.Generator, n: int = 60, dim: int = 6) -> ProbeData:
    y = np.repeat(np.arange(3), n // 3)
    x = (np.eye(3, dim)[y] * 3 + rng.normal(0, 1, (n, dim))).astype(np.float32)
    splits = np.array(["train", "train", "valid", "test"] * (n // 4))
    return ProbeData(x, np.arange(n), y, splits, ["a", "b", "c"], False)


FAST = {"weight_decays": [1e-3], "max_iterations": 20}


def test_changed_fields_lists_only_values_off_their_default():
    cfg = LaterProbeConfig(**FAST, new_knob=2)
    assert changed_fields(cfg) == {**FAST, "new_knob": 2}
    assert changed_fields(LaterProbeConfig()) == {} == changed_fields(ProbeConfig())


def test_key_survives_a_new_default_key_and_follows_every_change(rng):
    draws = [_data(rng)]
    key = probe_key(draws, ProbeConfig(**FAST), [1.0], [0])
    assert probe_key(draws, LaterProbeConfig(**FAST), [1.0], [0]) == key
    assert probe_key(draws, LaterProbeConfig(**FAST, new_knob=1), [1.0], [0]) != key
    assert probe_key(draws, ProbeConfig(**{**FAST, "select": "loss"}), [1.0], [0]) != key
    assert probe_key(draws, ProbeConfig(**FAST), [1.0], [1]) != key
    other = _data(rng)
    assert probe_key([other], ProbeConfig(**FAST), [1.0], [0]) != key


@pytest.fixture
def fits(monkeypatch):
    """Counts the probes actually fitted (not read back)."""
    calls: list[ProbeConfig] = []
    real = probe_cache.run_probe

    def counting(data, cfg, fractions, seeds):
        calls.append(cfg)
        return real(data, cfg, fractions, seeds)

    monkeypatch.setattr(probe_cache, "run_probe", counting)
    return calls


def test_a_fit_is_read_back_under_a_later_config_and_refitted_when_a_value_changes(
    tmp_path, rng, fits
):
    data = _data(rng)
    first = cached_probe(tmp_path, data, ProbeConfig(**FAST), [1.0], [0])
    assert len(fits) == 1
    again = cached_probe(tmp_path, data, LaterProbeConfig(**FAST), [1.0], [0])
    assert len(fits) == 1, "a default-valued new key refitted an unchanged probe"
    assert again["1.0"]["accuracy"] == first["1.0"]["accuracy"]
    cached_probe(tmp_path, data, LaterProbeConfig(**FAST, new_knob=3), [1.0], [0])
    cached_probe(tmp_path, data, ProbeConfig(**{**FAST, "weight_decays": [1e-2]}), [1.0], [0])
    assert len(fits) == 3


# ProbeConfig's defaults when KEY_VERSION was last bumped: default-valued keys are not hashed, so
# a default that changes what a probe computes must bump KEY_VERSION (and this record with it).
DEFAULTS_AT_KEY_VERSION = {
    1: {
        "head": "linear",
        "weight_decays": [1e-05, 0.0001, 0.001, 0.01, 0.1],
        "lr": 0.01,
        "max_epochs": 100,
        "max_iterations": 500,
        "patience": 10,
        "batch_size": 64,
        "hidden": 256,
        "k": 5,
        "device": "cpu",
        "bootstrap": 1000,
        "finetune_lrs": [0.0001, 0.001],
        "finetune_epochs": 30,
        "finetune_patience": 5,
        "finetune_batch_size": 16,
        "finetune_augment": "none",
        "standardize": "labelled",
        "select": "metric",
    }
}


def test_a_changed_default_comes_with_a_new_key_version():
    now = config_to_dict(ProbeConfig())
    recorded = DEFAULTS_AT_KEY_VERSION.get(probe_cache.KEY_VERSION)
    assert recorded is not None, "record ProbeConfig's defaults for the new KEY_VERSION here"
    changed = {k: (recorded[k], now[k]) for k in recorded if now.get(k, recorded[k]) != recorded[k]}
    assert not changed, (
        f"ProbeConfig defaults changed {changed} without a KEY_VERSION bump: old cached fits "
        "would be read back as if fitted with the new defaults"
    )
    removed = sorted(set(recorded) - set(now))
    assert not removed, f"keys {removed} left ProbeConfig: update this record"
