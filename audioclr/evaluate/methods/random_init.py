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

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


def hop_samples(loaded: LoadedEncoder, hop_seconds: float | None) -> int:
    """The embedding hop in samples (default: the window)."""
    if hop_seconds:
        return int(round(hop_seconds * loaded.sample_rate))
    return int(loaded.input_samples)


def task_statistics(
    loaded: LoadedEncoder, data: TrackSet, settings: MethodSettings
) -> tuple[Any, dict[str, int]]:
    """``loaded`` with BatchNorm statistics of ``data.train`` (labels unread), windows cut at
    the task's hop. Returns (the encoder, ``{"train_tracks", "windows"}``)."""
    from audioclr.evaluate.batchnorm import reestimated

    hop = hop_samples(loaded, settings.hop_seconds)
    return reestimated(loaded, data.train, hop, settings.batch_size, settings.device)


def fresh_encoder(
    source: Source, seed: int, data: TrackSet, settings: MethodSettings
) -> tuple[Any, dict[str, int]]:
    """Fresh weights from ``seed`` with BatchNorm statistics of ``data.train`` (labels unread).

    Returns (the encoder, ``{"train_tracks", "windows"}`` the statistics were estimated on).
    """
    return task_statistics(source.load(random_init_seed=seed), data, settings)


def draw_key(source: Source, seed: int, data: TrackSet, settings: MethodSettings) -> str:
    """What a draw depends on: architecture (fresh weights' id), data, training tracks, settings."""
    fresh_id = source.load(random_init_seed=seed).encoder_id
    ids = ([t.id for t in data.tracks], [t.id for t in data.train])
    return slug(fresh_id, data.key, ids, settings.layer, settings.hop_seconds, settings.windows)


def seeded_draw(
    method: str,
    source: Source,
    seed: int,
    data: TrackSet,
    settings: MethodSettings,
    folder: Path,
    key: str,
    train: Callable[[Any], tuple[Any, dict[str, Any]]] | None = None,
) -> Embedded:
    """Draw ``seed`` of ``method`` in ``folder/seed-<seed>``: reused when finished with ``key``,
    else fresh weights (BatchNorm of the training audio), ``train``ed when given, embedded frozen.

    ``train(encoder)`` returns the trained encoder and what its draw's ``meta`` records of it.

    Example:
        >>> key = draw_key(source, 0, data, settings)
        >>> seeded_draw("random_init", source, 0, data, settings, Path("out/emb/r"), key)
    """
    dest = folder / f"seed-{seed}"
    done = finished(dest, key, settings.windows)
    if done is not None:
        return done
    loaded, bn = fresh_encoder(source, seed, data, settings)
    loaded, trained = train(loaded) if train is not None else (loaded, {})
    meta = {
        **source.provenance(method),
        "init_seed": seed,
        "bn_reestimation": bn,
        **trained,
        "cache_key": key,
    }
    return embed_loaded(loaded, data, settings, dest, meta)


class RandomInit(Method):
    """Same architecture, fresh weights, BatchNorm statistics of the training audio; N draws
    (each in ``seed-<s>/`` below the cache folder)."""

    name = "random_init"
    display = "random-init"
    needs_encoder = True

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One ``Embedded`` per init seed (reused when finished with the same settings)."""
        return [
            seeded_draw(
                self.name,
                source,
                seed,
                data,
                settings,
                folder,
                draw_key(source, seed, data, settings),
            )
            for seed in settings.seeds
        ]

    def finetune_starts(
        self, source: Source, data: TrackSet, settings: MethodSettings
    ) -> list[LoadedEncoder]:
        """Each draw's fresh weights with BatchNorm statistics of the training audio: the
        fine-tuning heads then train from scratch (the supervised baseline's protocol)."""
        return [fresh_encoder(source, seed, data, settings)[0] for seed in settings.seeds]

    def record(self, settings: MethodSettings) -> dict[str, Any]:
        """Display name, role, layer, hop, the seed of each draw, BatchNorm re-estimation."""
        return {
            **super().record(settings),
            "seeds": settings.seeds,
            "bn_reestimation": "running statistics of the training split (no labels)",
        }
