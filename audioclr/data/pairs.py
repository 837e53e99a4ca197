"""Pair sampling: two crops of the same track from a clip cache, seeded per item.

Item ``i`` of epoch ``e`` draws from ``numpy.random.default_rng([seed, e, i])``, so the same seed
gives the same crops in any DataLoader worker and in any order; ``set_epoch`` gives new crops.

Example:
    >>> ds = PairDataset(ClipCache("cache/"), crop_samples=59049, max_distance=22050, seed=0)
    >>> view_a, view_b, track = ds[0]          # (59049,), (59049,), int
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from audioclr.config import require
from audioclr.errors import CacheError

SHORT_POLICIES = ("pad", "skip")


class ClipSource(Protocol):
    """What PairDataset needs of ``audioclr.data.cache.ClipCache``."""

    sample_rate: int
    tracks: list  # list[TrackInfo]

    def __len__(self) -> int: ...
    def read(self, i: int, start: int = 0, length: int | None = None) -> np.ndarray: ...


class PairDataset(Dataset):
    """Two crops of ``crop_samples`` of one track, plus the track's index in the cache.

    ``max_distance`` (samples) bounds ``|start_a - start_b|``; ``None`` draws them independently.
    Tracks shorter than the crop are zero-padded (``short="pad"``, counted in ``padded``) or
    left out up front (``short="skip"``, counted in ``skipped``). Views are augmented later, a
    batch at a time (``audioclr.augment.batched``), not here.
    """

    def __init__(
        self,
        cache: ClipSource,
        crop_samples: int,
        max_distance: int | None = None,
        short: str = "pad",
        seed: int = 0,
    ) -> None:
        require(crop_samples > 0, "crop_samples", crop_samples, "must be > 0")
        require(
            max_distance is None or max_distance >= 0,
            "max_distance",
            max_distance,
            "must be >= 0 or null",
        )
        require(short in SHORT_POLICIES, "short", short, f"must be one of {list(SHORT_POLICIES)}")
        self.cache, self.crop_samples, self.max_distance = cache, crop_samples, max_distance
        self.short, self.seed, self.epoch = short, seed, 0
        lengths = [t.num_samples for t in cache.tracks]
        is_short = [n < crop_samples for n in lengths]
        self.indices = [i for i, s in enumerate(is_short) if not (s and short == "skip")]
        self.skipped = len(lengths) - len(self.indices)
        self.padded = sum(is_short) if short == "pad" else 0
        if not lengths:
            raise CacheError(
                "the clip cache holds no tracks",
                hint="run audioclr prepare on a folder with audio files first",
            )
        if not self.indices:
            raise CacheError(
                f"no track of the clip cache ({len(lengths)} tracks) is long enough for "
                f"crops of {crop_samples} samples",
                hint="use data.short=pad or a shorter crop",
            )

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops from now on (call at the start of each epoch, in every worker)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def positions(self, i: int) -> tuple[int, int]:
        """Start samples ``(start_a, start_b)`` of item ``i``'s crops in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        span = self.cache.tracks[self.indices[i]].num_samples - self.crop_samples
        if span <= 0:
            return 0, 0
        a = int(rng.integers(0, span + 1))
        if self.max_distance is None:
            return a, int(rng.integers(0, span + 1))
        lo, hi = max(0, a - self.max_distance), min(span, a + self.max_distance)
        return a, int(rng.integers(lo, hi + 1))

    def _crop(self, track: int, start: int) -> np.ndarray:
        n = self.cache.tracks[track].num_samples
        x = self.cache.read(track, start, min(self.crop_samples, n - start))
        if len(x) < self.crop_samples:
            x = np.pad(x, (0, self.crop_samples - len(x)))
        return np.asarray(x, dtype=np.float32)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        """``(view_a (samples,), view_b (samples,), track index in the cache)``."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} pairs")
        track = self.indices[i]
        a, b = (self._crop(track, s) for s in self.positions(i))
        return (
            torch.from_numpy(np.ascontiguousarray(a)),
            torch.from_numpy(np.ascontiguousarray(b)),
            track,
        )
