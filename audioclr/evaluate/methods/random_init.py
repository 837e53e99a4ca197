"""``random_init``: the given encoder's architecture with fresh weights, made fair.

Each of ``random_init_draws`` draws builds the architecture from seed ``random_init_seed + i``,
re-estimates its BatchNorm running statistics on the task's training-split audio (no labels;
``evaluate/batchnorm.py``) and embeds every track with the task's layer and hop. Draws are
cached in ``FOLDER/seed-<s>/`` and reused when their settings match.

Example:
    >>> settings = MethodSettings(seed=0, draws=3)
    >>> draws = RandomInit().embed(Source.open("enc.pt"), data, settings, Path("out/emb/r"))
    >>> [d.emb.meta["init_seed"] for d in draws], draws[0].emb.meta["bn_reestimation"]
    ([0, 1, 2], {'train_tracks': 18, 'windows': 72})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audioclr.evaluate.methods.base import (
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
    embed_loaded,
    finished,
    slug,
)


def hop_samples(loaded: Any, hop_seconds: float | None) -> int:
    """The embedding hop in samples (default: the window)."""
    if hop_seconds:
        return int(round(hop_seconds * loaded.sample_rate))
    return int(loaded.input_samples)


def fresh_encoder(
    source: Source, seed: int, data: TrackSet, settings: MethodSettings
) -> tuple[Any, dict[str, int]]:
    """Fresh weights from ``seed`` with BatchNorm statistics of ``data.train`` (labels unread).

    Returns (the encoder, ``{"train_tracks", "windows"}`` the statistics were estimated on).
    """
    from audioclr.evaluate.batchnorm import reestimated

    loaded = source.load(random_init_seed=seed)
    hop = hop_samples(loaded, settings.hop_seconds)
    return reestimated(loaded, data.train, hop, settings.batch_size, settings.device)


def draw_key(source: Source, seed: int, data: TrackSet, settings: MethodSettings) -> str:
    """What a draw depends on: architecture (fresh weights' id), data, training tracks, settings."""
    fresh_id = source.load(random_init_seed=seed).encoder_id
    ids = ([t.id for t in data.tracks], [t.id for t in data.train])
    return slug(fresh_id, data.key, ids, settings.layer, settings.hop_seconds, settings.windows)


class RandomInit(Method):
    """Same architecture, fresh weights, BatchNorm statistics of the training audio; N draws."""

    name = "random_init"
    display = "random-init"
    needs_encoder = True

    def cache_key(self, source: Source, data: TrackSet, settings: MethodSettings) -> str:
        """``<layer>-<hash of the data and windows>`` (each draw in ``seed-<s>/`` below it)."""
        return f"{settings.layer}-{slug(data.key, settings.windows)}"

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One ``Embedded`` per init seed."""
        return [self.draw(source, seed, data, settings, folder) for seed in settings.seeds]

    def draw(
        self, source: Source, seed: int, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> Embedded:
        """One draw in ``folder/seed-<seed>``: reused when finished with the same settings."""
        key = draw_key(source, seed, data, settings)
        dest = folder / f"seed-{seed}"
        done = finished(dest, key, settings.windows)
        if done is not None:
            return done
        loaded, bn = fresh_encoder(source, seed, data, settings)
        meta = {
            **source.provenance(self.name),
            "init_seed": seed,
            "bn_reestimation": bn,
            "cache_key": key,
        }
        return embed_loaded(loaded, data, settings, dest, meta)

    def record(self, settings: MethodSettings) -> dict[str, Any]:
        """Display name, role, layer, hop, the seed of each draw, BatchNorm re-estimation."""
        return {
            **super().record(settings),
            "seeds": settings.seeds,
            "bn_reestimation": "running statistics of the training split (no labels)",
        }
