"""``encoder``: the representation under test, the given exported encoder (or embeddings folder).

An embeddings folder is used as is (its ``windows/`` when windows are probed); an exported
encoder embeds the task's tracks with the task's layer and hop, frozen, into the cache folder.

Example:
    >>> [draw] = Encoder().embed(Source.open("enc.pt"), data, MethodSettings(), Path("out/x"))
    >>> draw.emb.meta["method"]
    'encoder'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from audioclr.evaluate.methods.base import (
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
    embed_loaded,
    with_windows,
)

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


class Encoder(Method):
    """The given encoder's frozen embeddings (the one every baseline is compared with)."""

    name = "encoder"
    display = "SSL"
    baseline = False

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One draw: the given folder, or the encoder's embeddings of ``data`` in ``folder``."""
        if source.given is not None:
            return [with_windows(source.path, settings.windows, source.given)]
        meta = source.provenance(self.name)
        return [embed_loaded(source.load(), data, settings, folder, meta)]

    def finetune_starts(
        self, source: Source, data: TrackSet, settings: MethodSettings
    ) -> list[LoadedEncoder]:
        """The exported encoder (none for an embeddings folder that names no encoder)."""
        return [source.load()] if source.encoder_path is not None else []
