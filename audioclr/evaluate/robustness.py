"""A task's audio for the heads that need it: clean waves for fine-tuning, corrupted test splits.

``TaskAudio`` reads each labelled track at most once (kept in memory) and corrupts each test
track once per corruption (``evaluate/corruptions.py``, seeded by the suite's
``corruption_seed``, the corruption and the track). For the frozen heads, :meth:`corrupted_set`
is a ``TrackSet`` of the corrupted test tracks that any method embeds like clean data (cached
under its own key), and :func:`corrupted_rows` aligns those embeddings with the labelled set; for
the fine-tuning heads, :meth:`finetune_data` builds ``AudioData`` whose ``corrupted`` entries
hold the corrupted test waves. Either way the probe trained on clean audio is also scored on
each corrupted test split (``ProbeData.corrupted``).

Example:
    >>> audio = TaskAudio(labelled, 22050, window=59049, corruptions=["noise:10"], seed=0)
    >>> rows = corrupted_rows(embed_method("mfcc", source, audio.corrupted_set("noise:10", data),
    ...                                    settings, out)[0], audio.test, clean)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audioclr.evaluate.corruptions import corrupt, parse_corruption, track_rng
from audioclr.evaluate.finetune import AudioData, audio_data
from audioclr.evaluate.methods.base import Embedded, TrackSet
from audioclr.evaluate.probe_data import ProbeData
from audioclr.evaluate.tracks import Track, tracks_of_files

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder


class TaskAudio:
    """The labelled tracks of one task as audio, clean and (test split) corrupted."""

    def __init__(
        self,
        labelled: Any,
        sample_rate: int,
        window: int,
        corruptions: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        self.labelled = labelled
        self.tracks = tracks_of_files(labelled.paths, sample_rate)
        self.test = np.asarray(labelled.indices("test"))
        self.sample_rate, self.window, self.seed = sample_rate, window, seed
        self.corruptions = [str(parse_corruption(c)) for c in corruptions]
        self._waves: dict[int, np.ndarray] = {}
        self._corrupted: dict[str, dict[int, np.ndarray]] = {}

    def wave(self, i: int) -> np.ndarray:
        """Track ``i``'s clean ``(samples,)`` float32 (read once)."""
        if i not in self._waves:
            self._waves[i] = np.asarray(self.tracks[i].read(), np.float32)
        return self._waves[i]

    def corrupted(self, spec: str) -> dict[int, np.ndarray]:
        """``{test track: corrupted (samples,)}`` for ``spec`` (computed once)."""
        if spec not in self._corrupted:
            c = parse_corruption(spec)
            self._corrupted[spec] = {
                int(i): corrupt(
                    self.wave(int(i)), c, self.sample_rate, self.window, track_rng(self.seed, c, i)
                )
                for i in self.test
            }
        return self._corrupted[spec]

    def corrupted_set(self, spec: str, data: TrackSet) -> TrackSet:
        """The corrupted test tracks as a ``TrackSet`` (training split and labels of ``data``,
        so random-weight methods get the same BatchNorm statistics as on clean audio)."""
        waves = self.corrupted(spec)
        tracks = [
            Track(self.tracks[i].id, self.tracks[i].source, (lambda i=int(i): waves[i]))
            for i in self.test
        ]
        key = f"{data.key}#test#{spec}#seed{self.seed}"
        return dataclasses.replace(data, tracks=tracks, key=key)

    def finetune_data(
        self, labels: ProbeData, start: LoadedEncoder, hop: int, device: str
    ) -> AudioData:
        """``AudioData`` of every labelled track starting from ``start``, with the corrupted
        test splits under ``corrupted``."""
        waves = {i: self.wave(i) for i in range(len(self.tracks))}
        clean = audio_data(labels, waves, start, hop, device)
        clean.corrupted = {
            s: dataclasses.replace(clean, waves=self.corrupted(s), corrupted={})
            for s in self.corruptions
        }
        return clean


def corrupted_rows(draw: Embedded, test: np.ndarray, clean: ProbeData) -> ProbeData:
    """``clean`` with the rows of ``draw`` (an embedding of the corrupted test tracks, in the
    order of ``test``; per window when ``draw`` has windows)."""
    if draw.windows is None:
        x, owner = draw.emb.vectors, np.arange(len(test))
    else:
        x = draw.windows.vectors
        owner = np.asarray(draw.windows.meta["track_index"], dtype=np.int64)
    return dataclasses.replace(
        clean, x=np.asarray(x, np.float32), row_track=np.asarray(test)[owner], corrupted={}
    )
