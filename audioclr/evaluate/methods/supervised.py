"""``supervised``: the random-init encoder trained from scratch on the task's training labels.

Opt-in (it trains). Each draw starts from :func:`random_init.fresh_encoder` (seed
``random_init_seed + i``, BatchNorm statistics of the training audio), trains it with a linear
head on every training label (``evaluate/supervised.py``), then embeds every track frozen.
Draws are cached in ``FOLDER/seed-<s>/`` and reused when their settings and labels match.

Example:
    >>> settings = MethodSettings(draws=1, supervised_epochs=20)
    >>> [draw] = Supervised().embed(source, data, settings, Path("out/emb/supervised/x"))
    >>> draw.emb.meta["supervised_epochs"]
    20
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audioclr.errors import AudioclrError
from audioclr.evaluate.methods.base import (
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
    slug,
)
from audioclr.evaluate.methods.random_init import draw_key, seeded_draw

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


class Supervised(Method):
    """Fresh weights trained on the training labels, then frozen; one per init draw (each in
    ``seed-<s>/`` below the cache folder)."""

    name = "supervised"
    display = "supervised"
    needs_encoder = True
    needs_labels = True

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One ``Embedded`` per init seed."""
        if data.targets is None or not data.train:
            raise AudioclrError(
                "method 'supervised' needs training tracks with labels",
                hint="give the task a labelled 'train' split",
            )
        return [self.draw(source, seed, data, settings, folder) for seed in settings.seeds]

    def draw(
        self, source: Source, seed: int, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> Embedded:
        """Train and embed one draw in ``folder/seed-<seed>`` (reused when finished)."""
        from audioclr.evaluate.supervised import train_supervised

        targets = np.asarray(data.targets)
        key = slug(
            draw_key(source, seed, data, settings),
            settings.supervised_epochs,
            targets.tobytes(),
            data.multilabel,
            data.n_classes,
        )

        def train(loaded: LoadedEncoder) -> tuple[LoadedEncoder, dict[str, Any]]:
            trained, losses = train_supervised(
                loaded,
                [t.read() for t in data.train],
                targets,
                data.multilabel,
                data.n_classes,
                epochs=settings.supervised_epochs,
                seed=seed,
                device=settings.device,
                progress=settings.progress,
            )
            return trained, {
                "supervised_epochs": settings.supervised_epochs,
                "final_loss": losses[-1],
            }

        return seeded_draw(self.name, source, seed, data, settings, folder, key, train)

    def record(self, settings: MethodSettings) -> dict[str, Any]:
        """Display name, role, layer, hop, each draw's seed, epochs, BatchNorm re-estimation."""
        return {
            **super().record(settings),
            "seeds": settings.seeds,
            "supervised_epochs": settings.supervised_epochs,
            "bn_reestimation": "at init, on the training split",
        }
