"""Probe results kept beside the embeddings they were fitted on: an identical probe is fit once.

A probe's result depends only on the probed rows (every draw's vectors, tracks, targets, splits,
groups), the head's config, the label fractions and the seeds. ``cached_probe`` hashes exactly
those, the config as the keys that differ from ``ProbeConfig``'s defaults (so a key added later,
at a default that keeps the old behaviour, leaves earlier fits valid). A hit reads the result
back (``<key>.json``, with every run's test predictions from
``<key>.npz``: :mod:`audioclr.evaluate.saved_scores`), a miss fits and writes both (the JSON
last, so a killed write is a miss). The suite keeps them in ``OUT/probes/<method>/``; the
ablation (``pipelines/ablation.py``) links each recipe's baseline folders there to one shared
folder, so the baselines' probes, the same in every recipe, are fitted by the first recipe
only. Sets with corrupted test splits (robustness) are always fitted: their corrupted runs'
predictions are not kept.

Example:
    >>> res = cached_probe(out / "probes" / "mfcc", draws, cfg, [0.1, 1.0], [0, 1])
    >>> res["0.1"]["accuracy"]["mean"]       # fitted once, read back on every later call
    0.62
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audioclr.atomic import atomic_write_text
from audioclr.config import config_to_dict
from audioclr.errors import AudioclrError
from audioclr.evaluate.distributed import from_rank0, is_main
from audioclr.evaluate.intervals import TEST_SCORES
from audioclr.evaluate.probe import run_probe
from audioclr.evaluate.probe_config import ProbeConfig
from audioclr.evaluate.probe_data import ProbeData
from audioclr.evaluate.report import public
from audioclr.evaluate.saved_scores import load_scores, save_scores

KEY_VERSION = 1  # bump when what a probe computes changes, a default value included


def changed_fields(cfg: ProbeConfig) -> dict[str, Any]:
    """The keys of ``cfg`` whose values differ from its class's defaults.

    Example:
        >>> changed_fields(ProbeConfig(k=10))
        {'k': 10}
    """
    default = config_to_dict(type(cfg)())
    return {k: v for k, v in config_to_dict(cfg).items() if default.get(k, object()) != v}


def _add(h: Any, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def probe_key(
    draws: Sequence[ProbeData], cfg: ProbeConfig, fractions: Sequence[float], seeds: Sequence[int]
) -> str:
    """A hash of everything a probe's result depends on (no randomness is left out: the label
    subsets and initialisations come from ``seeds``). The config enters as
    :func:`changed_fields`: what a probe computes with a default value is tied to
    ``KEY_VERSION``."""
    h = hashlib.sha256()
    head = {"version": KEY_VERSION, "config": changed_fields(cfg)}
    head.update(fractions=[float(f) for f in fractions], seeds=[int(s) for s in seeds])
    h.update(json.dumps(head, sort_keys=True).encode())
    for d in draws:
        for a in (d.x, d.row_track, d.targets, d.splits.astype(str)):
            _add(h, a)
        h.update(json.dumps([d.classes, d.multilabel]).encode())
        _add(h, np.asarray([] if d.groups is None else [str(g) for g in d.groups], dtype=str))
    return h.hexdigest()[:24]


def cached_probe(
    folder: Path,
    data: ProbeData | Sequence[ProbeData],
    cfg: ProbeConfig,
    fractions: Sequence[float],
    seeds: Sequence[int],
) -> dict[str, dict[str, Any]]:
    """:func:`~audioclr.evaluate.probe.run_probe`'s result, read from ``folder`` when an
    identical probe was fitted before, else fitted and written there (by the main process)."""
    draws = [data] if isinstance(data, ProbeData) else list(data)
    if any(d.corrupted for d in draws):
        return run_probe(data, cfg, fractions, seeds)
    key = probe_key(draws, cfg, fractions, seeds)
    text, scores = folder / f"{key}.json", folder / f"{key}.npz"
    # rank 0 decides (and reads): under torchrun every rank then fits together or none does
    kept = _read(text, scores) if is_main() and text.is_file() and scores.is_file() else None
    kept = from_rank0(kept)
    if kept is not None:
        return kept
    result = run_probe(data, cfg, fractions, seeds)
    if is_main():
        save_scores({"probe": {"head": result}}, scores)
        atomic_write_text(text, json.dumps(public(result)))
    return result


def _read(text: Path, scores: Path) -> dict[str, dict[str, Any]] | None:
    """The JSON result with every run's test predictions put back (same order as saved); None
    (fit again) when the two files do not belong together or cannot be read."""
    try:
        result = json.loads(text.read_text())
        saved = load_scores(scores).get("probe", {}).get("head", {})
    except (OSError, ValueError, AudioclrError):
        return None
    for fraction, cell in result.items():
        runs = saved.get(fraction, [])
        if len(runs) != len(cell["runs"]):
            return None
        for run, back in zip(cell["runs"], runs, strict=True):
            if (run["seed"], run.get("draw", 0)) != (back["seed"], back["draw"]):
                return None
            run[TEST_SCORES] = back[TEST_SCORES]
    return result
