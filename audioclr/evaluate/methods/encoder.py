"""``encoder``: the representation under test, the given exported encoder (or embeddings folder).

An embeddings folder is used as is (its ``windows/`` when windows are probed); an exported
encoder embeds the task's tracks with the task's layer and hop, frozen, into the cache folder.
With ``encoder_bn="task"`` its BatchNorm running statistics are first re-estimated on the task's
training audio (no labels; ``evaluate/batchnorm.py``), the care ``random_init`` gets: the
exported statistics come from augmented pretraining views, not from the task's recordings.

Example:
    >>> [draw] = Encoder().embed(Source.open("enc.pt"), data, MethodSettings(), Path("out/x"))
    >>> draw.emb.meta["method"]
    'encoder'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclr.errors import AudioclrError
from audioclr.evaluate.methods.base import (
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
    embed_loaded,
    slug,
    with_windows,
)

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


class Encoder(Method):
    """The given encoder's frozen embeddings (the one every baseline is compared with)."""

    name = "encoder"
    display = "SSL"
    baseline = False

    def cache_key(self, source: Source, data: TrackSet, settings: MethodSettings) -> str:
        """``<layer>-<hash>``; with task BatchNorm statistics ``<layer>-bn-<hash>``, the hash
        covering the training tracks they come from."""
        if settings.encoder_bn != "task":
            return super().cache_key(source, data, settings)
        train = [t.id for t in data.train]
        return f"{settings.layer}-bn-{slug(data.key, settings.windows, train)}"

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One draw: the given folder, or the encoder's embeddings of ``data`` in ``folder``
        (BatchNorm statistics of ``data.train`` first, with ``encoder_bn="task"``)."""
        task_bn = settings.encoder_bn == "task"
        if source.given is not None:
            if task_bn:
                raise AudioclrError(
                    f"encoder_bn=task re-estimates the encoder's BatchNorm statistics, but "
                    f"{source.path} is an embeddings folder",
                    hint="pass the exported encoder (ENC.pt), or encoder_bn=pretraining",
                )
            return [with_windows(source.path, settings.windows, source.given)]
        meta = source.provenance(self.name)
        loaded = source.load()
        if task_bn:
            from audioclr.evaluate.methods.random_init import task_statistics

            loaded, meta["bn_reestimation"] = task_statistics(loaded, data, settings)
        return [embed_loaded(loaded, data, settings, folder, meta)]

    def record(self, settings: MethodSettings) -> dict[str, Any]:
        """Display name, role, layer, hop and where its BatchNorm statistics come from."""
        where = {
            "pretraining": "as exported (pretraining views)",
            "task": "running statistics of the training split (no labels)",
        }
        return {**super().record(settings), "bn_statistics": where[settings.encoder_bn]}

    def finetune_starts(
        self, source: Source, data: TrackSet, settings: MethodSettings
    ) -> list[LoadedEncoder]:
        """The exported encoder (none for an embeddings folder that names no encoder)."""
        return [source.load()] if source.encoder_path is not None else []
