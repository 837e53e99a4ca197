"""Pair sampling: two crops of the same track (or of two tracks of a group), seeded per item.

Item ``i`` of epoch ``e`` draws its crops from ``numpy.random.default_rng([seed, e, i])``, so the
same seed gives the same crops in any DataLoader worker and in any order; ``set_epoch`` gives
new crops. With ``groups`` (``audioclr.data.groups``: ``data.positives=group:<column>`` or
``playlist``), view b comes with probability ``group_p`` from another track of one of the
track's groups (drawn from ``default_rng([seed, e, i, 1])``, a separate stream, so the crops of
a same-track pair are those of plain sampling); a track alone in its groups, or in none, falls
back to crops of itself. Items then carry the track's group ids for the loss.

Example:
    >>> ds = PairDataset(ClipCache("cache/"), crop_samples=59049, max_distance=22050, seed=0)
    >>> view_a, view_b, track = ds[0]          # (59049,), (59049,), int
    >>> ds = PairDataset(cache, 59049, seed=0, groups=load_groups(cache, "group:release"))
    >>> view_a, view_b, track, group_ids = ds[0]   # ..., (width,) int64, -1 = none
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from audioclr.config import require
from audioclr.data.groups import TrackGroups
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

    ``max_distance`` (samples) bounds ``|start_a - start_b|`` of two crops of one track; ``None``
    draws them independently; a list gives one bound (or ``None``) per cache of a
    ``MultiCache`` (``cache.member``), e.g. near positives in speech, anywhere in music. Tracks
    shorter than the crop are zero-padded (``short="pad"``, counted in ``padded``) or left out
    up front (``short="skip"``, counted in ``skipped``).
    With ``groups``, view b comes from another usable track of the same group with probability
    ``group_p``; ``alone`` counts usable tracks in groups with no other usable track and
    ``ungrouped`` those in no group (both always fall back to their own crops). Views are
    augmented later, a batch at a time (``audioclr.augment.batched``), not here.
    """

    def __init__(
        self,
        cache: ClipSource,
        crop_samples: int,
        max_distance: int | None | Sequence[int | None] = None,
        short: str = "pad",
        seed: int = 0,
        groups: TrackGroups | None = None,
        group_p: float = 0.5,
    ) -> None:
        require(crop_samples > 0, "crop_samples", crop_samples, "must be > 0")
        bounds = list(max_distance) if isinstance(max_distance, Sequence) else [max_distance]
        require(
            all(d is None or d >= 0 for d in bounds),
            "max_distance",
            max_distance,
            "must be >= 0 or null",
        )
        n_caches = len(getattr(cache, "caches", [cache]))
        require(
            not isinstance(max_distance, Sequence) or len(bounds) == n_caches,
            "max_distance",
            max_distance,
            f"must give one bound per cache ({n_caches})",
        )
        require(short in SHORT_POLICIES, "short", short, f"must be one of {list(SHORT_POLICIES)}")
        require(0 <= group_p <= 1, "group_p", group_p, "must be in [0, 1]")
        self.cache, self.crop_samples, self.max_distance = cache, crop_samples, max_distance
        self.short, self.seed, self.epoch = short, seed, 0
        member = getattr(cache, "member", lambda i: 0)
        lengths = [t.num_samples for t in cache.tracks]
        # the bound of each track's crops: its cache's (one bound: every track's)
        self.bounds = [bounds[member(i) if len(bounds) > 1 else 0] for i in range(len(lengths))]
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
        self.groups, self.group_p = groups, group_p
        self.members: list[np.ndarray] | None = None
        self.alone = self.ungrouped = 0
        if groups is not None:
            self._usable_members(groups)

    def _usable_members(self, groups: TrackGroups) -> None:
        """Restrict each group to usable tracks; count the tracks that will fall back."""
        usable = np.array(self.indices, dtype=np.int64)
        self.members = [np.intersect1d(m, usable) for m in groups.members]
        sizes = np.array([len(m) for m in self.members] + [0])  # id -1 -> size 0
        size_of = sizes[groups.ids[usable]]  # (usable, width)
        self.ungrouped = int((groups.ids[usable] < 0).all(axis=1).sum())
        self.alone = int((size_of < 2).all(axis=1).sum()) - self.ungrouped

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops from now on (call at the start of each epoch, in every worker)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def partner(self, i: int) -> int:
        """The cache index of the track view b of item ``i`` comes from in the current epoch
        (the item's own track without groups, or when it falls back)."""
        track = self.indices[i]
        if self.groups is None or self.members is None:
            return track
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])
        if rng.random() >= self.group_p:
            return track
        options = [self.members[g] for g in self.groups.ids[track] if g >= 0]
        options = [m for m in options if len(m) > 1]
        if not options:
            return track
        group = options[int(rng.integers(len(options)))]
        j = int(rng.integers(len(group) - 1))  # any member but the track itself
        return int(group[j + (j >= int(np.searchsorted(group, track)))])

    def positions(self, i: int, partner: int | None = None) -> tuple[int, int]:
        """Start samples ``(start_a, start_b)`` of item ``i``'s crops in the current epoch;
        ``partner``: view b's track when it is another track (its crop is then drawn anywhere
        in that track)."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        track = self.indices[i]
        span = self.cache.tracks[track].num_samples - self.crop_samples
        a = int(rng.integers(0, span + 1)) if span > 0 else 0
        if partner is not None and partner != track:
            span_b = self.cache.tracks[partner].num_samples - self.crop_samples
            return a, int(rng.integers(0, span_b + 1)) if span_b > 0 else 0
        if span <= 0:
            return 0, 0
        bound = self.bounds[track]
        if bound is None:
            return a, int(rng.integers(0, span + 1))
        lo, hi = max(0, a - bound), min(span, a + bound)
        return a, int(rng.integers(lo, hi + 1))

    def _crop(self, track: int, start: int) -> np.ndarray:
        n = self.cache.tracks[track].num_samples
        x = self.cache.read(track, start, min(self.crop_samples, n - start))
        if len(x) < self.crop_samples:
            x = np.pad(x, (0, self.crop_samples - len(x)))
        return np.asarray(x, dtype=np.float32)

    def __getitem__(
        self, i: int
    ) -> tuple[Tensor, Tensor, int] | tuple[Tensor, Tensor, int, Tensor]:
        """``(view_a (samples,), view_b (samples,), track index in the cache)``, plus the
        track's group ids ``(width,)`` int64 (-1: none) when built with ``groups``."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} pairs")
        track = self.indices[i]
        other = self.partner(i)
        start_a, start_b = self.positions(i, other)
        a, b = self._crop(track, start_a), self._crop(other, start_b)
        item = (
            torch.from_numpy(np.ascontiguousarray(a)),
            torch.from_numpy(np.ascontiguousarray(b)),
            track,
        )
        if self.groups is None:
            return item
        return (*item, torch.from_numpy(self.groups.ids[track].copy()))
