"""``hear:<module>[:<weights>]``: any HEAR 2021 module as a representation in the same report.

The module is imported by name (``importlib``), so it must be importable where audioclr runs:
an installed package (``pip install hearbaseline`` -> ``hear:hearbaseline.naive``) or a module
on ``PYTHONPATH`` (``PYTHONPATH=. audioclr probe ... --methods encoder hear:tests.hear_toy``).
``load_model(weights or "")`` gives the model, moved to the task's device; every track is read
at the source's rate, resampled to the model's ``sample_rate`` (torchaudio, recorded in the
embeddings' ``meta``: the HEAR protocol feeds each model at its own rate), cut into the windows
the encoder gets (its ``input_samples`` and the task's hop, the last window aligned to the end;
a whole track when no window is known) and embedded with ``get_scene_embeddings``, windows of a
length batched together; a track's vector is the mean of its windows'. It is a baseline: the
report's verdict compares the encoder with the best of every baseline, a HEAR model included.
The cache key sees the module name, its source file and the weights file (path, size and
modification time of each), so editing the module or its weights embeds again.

Example:
    >>> method = get_method("hear:hearbaseline.naive")
    >>> method.display, method.folder
    ('HEAR hearbaseline.naive', 'hear-hearbaseline.naive')
    >>> [draw] = method.embed(source, data, MethodSettings(), Path("out/emb/hear-x/k"))
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torchaudio

from audioclr.errors import AudioclrError, ConfigError
from audioclr.evaluate.methods.base import (
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
    finished,
    slug,
    with_windows,
)
from audioclr.evaluate.tracks import Track

API = ("load_model", "get_scene_embeddings")
HINT = (
    "write hear:<module>[:<weights>] with an importable module: pip install it, or put its "
    "folder on PYTHONPATH"
)


class Hear(Method):
    """A HEAR 2021 module's scene embeddings of the encoder's windows (one draw)."""

    name = "hear"
    display = "HEAR"
    argument = "<module>[:<weights>]"

    def __init__(self, argument: str = "") -> None:
        module, _, weights = argument.partition(":")
        if not module or not all(p.isidentifier() for p in module.split(".")):
            raise ConfigError(f"method 'hear:{argument}' names no module", hint=HINT)
        self.module, self.weights = module, weights
        self.display = f"HEAR {module}" + (f" ({Path(weights).name})" if weights else "")

    @property
    def folder(self) -> str:
        """``hear-<module>`` (plus a hash of the weights path when given)."""
        return f"hear-{self.module}" + (f"-{slug(self.weights)}" if self.weights else "")

    def check(self) -> None:
        """``ConfigError`` unless the module can be found (its parents are imported to look)."""
        try:
            found = importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(f"method 'hear:{self.module}': cannot import {self.module}", HINT)
        if self.weights and not Path(self.weights).exists():
            raise ConfigError(f"method 'hear:{self.module}': no weights at {self.weights}", HINT)

    def cache_key(self, source: Source, data: TrackSet, settings: MethodSettings) -> str:
        """A hash of the data, module (and its source file), weights file, rate, windows, hop."""
        weights: Any = _file_stamp(self.weights) if self.weights else ""
        spec = importlib.util.find_spec(self.module)
        code = _file_stamp(spec.origin) if spec is not None and spec.origin else ""
        window, hop = window_and_hop(source, settings)
        parts = (data.key, self.module, code, weights, source.sample_rate, window, hop)
        parts += (settings.windows,)
        return slug(*parts)

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One draw: the module's mean scene embedding of each track's windows, in ``folder``."""
        from audioclr.evaluate.chunks import run_chunked
        from audioclr.evaluate.frozen import resolve_device

        self.check()
        key = self.cache_key(source, data, settings)
        done = finished(folder, key, settings.windows)
        if done is not None:
            return [done]
        api = self._import()
        device = resolve_device(settings.device)
        model = api.load_model(self.weights)
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(
                f"method 'hear:{self.module}': load_model returned a {type(model).__name__}, "
                "not a torch.nn.Module",
                hint="audioclr evaluates PyTorch HEAR modules only",
            )
        model.to(device).eval()
        rate = _model_int(model, "sample_rate", self.module)
        size = _model_int(model, "scene_embedding_size", self.module)
        window, hop = window_and_hop(source, settings)
        to_model = torchaudio.transforms.Resample(source.sample_rate, rate)
        scale = rate / source.sample_rate
        cut = (round(window * scale), round((hop or window) * scale)) if window else None

        def compute(chunk: Sequence[Track]) -> list[np.ndarray]:
            waves = [_resampled(t, to_model, source.sample_rate, rate) for t in chunk]
            return scene_windows(api, model, waves, cut, size, settings.batch_size, device)

        meta = {
            **source.provenance(f"hear:{self.module}"),
            "hear_module": self.module,
            "hear_weights": self.weights or None,
            "model_sample_rate": rate,
            "resampled_from": source.sample_rate if rate != source.sample_rate else None,
            "window_samples": cut[0] if cut else None,
            "hop_samples": cut[1] if cut else None,
            "cache_key": key,
        }
        run_chunked(data.tracks, compute, folder, meta, settings.windows, 64, settings.progress)
        return [with_windows(folder, settings.windows)]

    def record(self, settings: MethodSettings) -> dict[str, Any]:
        """Display name, role, module, weights and hop (each draw: the model's rate)."""
        return {
            "display": self.display,
            "baseline": self.baseline,
            "module": self.module,
            "weights": self.weights or None,
            "hop_seconds": settings.hop_seconds,
        }

    def _import(self) -> ModuleType:
        try:
            api = importlib.import_module(self.module)
        except ImportError as exc:
            raise ConfigError(f"method 'hear:{self.module}': {exc}", HINT) from exc
        missing = [f for f in API if not callable(getattr(api, f, None))]
        if missing:
            raise ConfigError(
                f"method 'hear:{self.module}': {self.module} is not a HEAR module "
                f"(no {', '.join(missing)})",
                hint="a HEAR 2021 module defines load_model and get_scene_embeddings",
            )
        return api


def window_and_hop(source: Source, settings: MethodSettings) -> tuple[int | None, int | None]:
    """The encoder's window and the task's hop in samples at the source's rate (None: unknown
    window, whole tracks; None hop: the window)."""
    rate = source.sample_rate
    hop = int(round(settings.hop_seconds * rate)) if settings.hop_seconds else None
    if source.given is not None:
        return source.given.meta.get("window_samples"), hop
    return int(source.load().input_samples), hop


def scene_windows(
    api: ModuleType,
    model: torch.nn.Module,
    waves: Sequence[np.ndarray],
    cut: tuple[int, int] | None,
    size: int,
    batch_size: int,
    device: torch.device,
) -> list[np.ndarray]:
    """Each wave's windows (``cut`` = window, hop; None: the whole wave) embedded by
    ``api.get_scene_embeddings`` -> one ``(windows, size)`` float32 array per wave."""
    from audioclr.evaluate.embed import cut_windows

    pieces = [cut_windows(w, cut[0], cut[1], 1) if cut else [w] for w in waves]
    flat = [(i, j, p) for i, ps in enumerate(pieces) for j, p in enumerate(ps)]
    out: list[list[Any]] = [[None] * len(ps) for ps in pieces]
    by_len: dict[int, list[tuple[int, int, np.ndarray]]] = {}
    for item in flat:
        by_len.setdefault(item[2].shape[0], []).append(item)
    for group in by_len.values():
        for lo in range(0, len(group), batch_size):
            batch = group[lo : lo + batch_size]
            x = torch.from_numpy(np.stack([p for _, _, p in batch])).to(device)
            with torch.no_grad():
                emb = api.get_scene_embeddings(x, model)
            if tuple(emb.shape) != (len(batch), size):
                raise AudioclrError(
                    f"{api.__name__}.get_scene_embeddings returned shape {tuple(emb.shape)}, "
                    f"expected ({len(batch)}, {size}) (scene_embedding_size)"
                )
            for (i, j, _), v in zip(batch, emb.float().cpu().numpy(), strict=True):
                out[i][j] = v
    return [np.stack(r).astype(np.float32) for r in out]


def _resampled(track: Track, to_model: torch.nn.Module, rate: int, model_rate: int) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(track.read(), dtype=np.float32))
    if rate == model_rate:
        return x.numpy()
    with torch.no_grad():
        return to_model(x).numpy()


def _model_int(model: Any, attr: str, module: str) -> int:
    value = getattr(model, attr, None)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ConfigError(
            f"method 'hear:{module}': the model's {attr} must be a positive int, got {value!r}",
            hint="a HEAR model has int sample_rate, scene_embedding_size, timestamp_embedding_size",
        )
    return int(value)


def _file_stamp(path: str) -> Any:
    """``(resolved path, size, mtime_ns)`` of a file, or ``path`` itself if it is not one."""
    if not Path(path).is_file():
        return path
    st = Path(path).stat()
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
