"""PairDataset over a real clip cache: crop positions, distance bound, pad/skip, seeding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_audio

from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.pairs import PairDataset
from audioclr.errors import AudioclrError

SR = 8000
SECONDS = {"long_a.wav": 3.0, "long_b.wav": 2.5, "short.wav": 1.2}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> ClipCache:
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for name, seconds in SECONDS.items():
        # a ramp-like random walk: every window is distinct, so a crop identifies its start
        write_audio(
            root / "src" / name,
            (0.3 * rng.uniform(-1, 1, int(SR * seconds))).astype(np.float32),
            SR,
            subtype="FLOAT",
        )
    prepare_cache(root / "src", root / "cache", sample_rate=SR, progress=False, min_duration=1.0)
    return ClipCache(root / "cache")


def source(cache: ClipCache, track: int) -> np.ndarray:
    """The track as written, read independently with soundfile."""
    path = Path(cache.root).parent / "src" / cache.tracks[track].track_id
    return sf.read(str(path), dtype="float32")[0]


def test_views_are_crops_of_the_track_at_the_drawn_positions(cache: ClipCache) -> None:
    crop = SR  # 1 s
    ds = PairDataset(cache, crop, seed=1)
    for i in range(len(ds)):
        a, b, track = ds[i]
        sa, sb = ds.positions(i)
        full = source(cache, track)
        assert a.shape == (crop,) and a.dtype == torch.float32
        np.testing.assert_allclose(a.numpy(), full[sa : sa + crop], atol=1e-4)  # int16 cache
        np.testing.assert_allclose(b.numpy(), full[sb : sb + crop], atol=1e-4)


def test_max_distance_bounds_crop_offsets(cache: ClipCache) -> None:
    bounded = PairDataset(cache, 4000, max_distance=500, seed=0)
    free = PairDataset(cache, 4000, max_distance=None, seed=0)
    gaps_bounded, gaps_free = [], []
    for epoch in range(30):
        bounded.set_epoch(epoch)
        free.set_epoch(epoch)
        for i in range(len(bounded)):
            gaps_bounded.append(abs(np.subtract(*bounded.positions(i))))
            gaps_free.append(abs(np.subtract(*free.positions(i))))
    assert max(gaps_bounded) <= 500
    assert max(gaps_free) > 2000


def test_short_tracks_padded_or_skipped(cache: ClipCache) -> None:
    crop = 2 * SR  # longer than short.wav (1.2 s)
    padded = PairDataset(cache, crop, short="pad")
    assert (padded.padded, padded.skipped, len(padded)) == (1, 0, 3)
    i = padded.indices.index(cache.index_of("short.wav"))
    a, b, _ = padded[i]
    n = int(1.2 * SR)
    np.testing.assert_allclose(a[:n].numpy(), source(cache, padded.indices[i]), atol=1e-4)
    assert torch.all(a[n:] == 0) and torch.equal(a, b)
    skipped = PairDataset(cache, crop, short="skip")
    assert (skipped.padded, skipped.skipped, len(skipped)) == (0, 1, 2)
    assert cache.index_of("short.wav") not in skipped.indices
    with pytest.raises(AudioclrError, match="long enough"):
        PairDataset(cache, 10 * SR, short="skip")


def test_seeding_same_seed_same_crops_new_epoch_new_crops(cache: ClipCache) -> None:
    one, two, other = (PairDataset(cache, 4000, seed=s) for s in (3, 3, 4))
    first = [one.positions(i) for i in range(len(one))]
    assert first == [two.positions(i) for i in reversed(range(len(two)))][::-1]
    assert first != [other.positions(i) for i in range(len(other))]
    one.set_epoch(1)
    assert first != [one.positions(i) for i in range(len(one))]


def test_dataloader_workers_give_the_same_views(cache: ClipCache) -> None:
    ds = PairDataset(cache, 4000, seed=2)
    expected = [ds[i] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2)
    for (a, b, track), (ea, eb, et) in zip(loader, expected, strict=True):
        assert torch.equal(a[0], ea) and torch.equal(b[0], eb) and int(track) == et
    assert not torch.equal(expected[0][0], expected[0][1])  # two different crops


def test_bad_arguments_name_the_key(cache: ClipCache) -> None:
    with pytest.raises(AudioclrError, match="crop_samples"):
        PairDataset(cache, 0)
    with pytest.raises(AudioclrError, match="short"):
        PairDataset(cache, 100, short="loop")
    with pytest.raises(AudioclrError, match="max_distance"):
        PairDataset(cache, 100, max_distance=-1)
