"""``mfcc``: MFCC statistics (``evaluate/baselines.py``), the hand-crafted baseline.

One 80-d vector per track (mean and std of 20 MFCCs and of their deltas) at the source's
sample rate; no encoder weights, so one draw and no window vectors.

Example:
    >>> [draw] = Mfcc().embed(source, data, MethodSettings(), Path("out/emb/mfcc/x"))
    >>> draw.emb.dim
    80
"""

from __future__ import annotations

from pathlib import Path

from audioclr.evaluate.methods.base import Embedded, Method, MethodSettings, Source, TrackSet, slug


class Mfcc(Method):
    """MFCC-statistics vectors of every track."""

    name = "mfcc"
    display = "MFCC"

    def cache_key(self, source: Source, data: TrackSet, settings: MethodSettings) -> str:
        """A hash of the data and the sample rate."""
        return slug(data.key, source.sample_rate)

    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """One draw: MFCC statistics of ``data`` in ``folder`` (resumable by chunks)."""
        from audioclr.evaluate.baselines import mfcc_embed_track_list

        emb = mfcc_embed_track_list(
            data.tracks, folder, source.sample_rate, {"method": self.name}, settings.progress
        )
        return [Embedded(emb, None, folder)]

    def record(self, settings: MethodSettings) -> dict[str, object]:
        """Display name and role (layer and hop do not apply)."""
        from audioclr.evaluate.baselines import MELKWARGS, N_MFCC

        return {"display": self.display, "baseline": self.baseline, "n_mfcc": N_MFCC, **MELKWARGS}
