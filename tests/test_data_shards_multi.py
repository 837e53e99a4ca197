"""Sharded prepare: shards i/n split the files by a stable hash, and read as one (``open_cache``)
they equal one full prepare; pretraining and embedding accept a list of caches."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tone, write_audio

from audioclr.config import load_config
from audioclr.data.cache import ClipCache, MultiCache, open_cache, prepare_cache
from audioclr.data.scan import in_shard, parse_shard
from audioclr.errors import CacheError, ConfigError, SampleRateMismatch

N_FILES = 12


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    for i in range(N_FILES):
        folder = root / ("a" if i % 2 else "b")
        write_audio(folder / f"t{i:02d}.wav", tone(150 + 40 * i, 16000, 1.0 + 0.1 * i), 16000)
    return root


def _prepare(src, out, **kw):
    return prepare_cache(src, out, sample_rate=16000, workers=1, progress=False, **kw)


def test_two_shards_read_as_one_equal_one_full_prepare(tmp_path, src) -> None:
    _prepare(src, tmp_path / "full")
    parts = [_prepare(src, tmp_path / f"s{i}", shard=(i, 2)) for i in range(2)]
    full = ClipCache(tmp_path / "full")
    shards = [ClipCache(tmp_path / f"s{i}") for i in range(2)]
    ids = [{t.track_id for t in c.tracks} for c in shards]
    assert ids[0] and ids[1] and not ids[0] & ids[1]  # both hold files, none twice
    for i, c in enumerate(shards):  # each holds exactly the files its hash names
        assert c.shard == (i, 2) and parts[i].added == len(c)
        assert ids[i] == {t.track_id for t in full.tracks if in_shard(t.track_id, (i, 2))}

    both = open_cache([tmp_path / "s1", tmp_path / "s0"])  # any order: ids sort the same
    assert isinstance(both, MultiCache) and both.sample_rate == full.sample_rate
    assert [t.track_id for t in both.tracks] == [t.track_id for t in full.tracks]
    assert [t.num_samples for t in both.tracks] == [t.num_samples for t in full.tracks]
    for i, t in enumerate(full.tracks):
        assert both.index_of(t.track_id) == i
        np.testing.assert_array_equal(both.read(i), full.read(i))
        np.testing.assert_array_equal(both.read(i, 100, 50), full.read(i, 100, 50))
        assert both.duration(i) == full.duration(i)


def test_caches_of_other_sources_get_prefixed_ids_and_must_share_a_rate(tmp_path, src) -> None:
    other = tmp_path / "other"
    write_audio(other / "b" / "t00.wav", tone(300, 16000, 1.5), 16000)  # same id as src's
    _prepare(src, tmp_path / "c0")
    _prepare(other, tmp_path / "c1")
    both = open_cache([str(tmp_path / "c0"), str(tmp_path / "c1")])
    assert len(both) == N_FILES + 1
    assert both.tracks[-1].track_id == "1:b/t00.wav" and both.tracks[0].track_id.startswith("0:")
    np.testing.assert_array_equal(
        both.read(both.index_of("1:b/t00.wav")), ClipCache(tmp_path / "c1").read(0)
    )
    with pytest.raises(CacheError, match="single cache"):
        _ = both.root
    with pytest.raises(CacheError, match="listed twice"):
        open_cache([tmp_path / "c0", tmp_path / "c0"])
    with pytest.raises(CacheError, match="no clip cache"):
        open_cache([])
    prepare_cache(other, tmp_path / "c22k", sample_rate=22050, workers=1, progress=False)
    with pytest.raises(SampleRateMismatch, match="16000, 22050"):
        open_cache([tmp_path / "c0", tmp_path / "c22k"])
    assert isinstance(open_cache([tmp_path / "c0"]), ClipCache)


def test_a_cache_keeps_its_shard(tmp_path, src) -> None:
    _prepare(src, tmp_path / "s0", shard=(0, 3))
    assert _prepare(src, tmp_path / "s0", shard=(0, 3)).added == 0  # resumes
    with pytest.raises(CacheError, match="shard 0/3.*--shard 1/3"):
        _prepare(src, tmp_path / "s0", shard=(1, 3))
    with pytest.raises(CacheError, match="no --shard"):
        _prepare(src, tmp_path / "s0")


def test_parse_shard_reads_torchrun_then_slurm() -> None:
    assert parse_shard("2/5") == (2, 5)
    assert parse_shard("auto", {"RANK": "1", "WORLD_SIZE": "4", "SLURM_PROCID": "3"}) == (1, 4)
    assert parse_shard("auto", {"SLURM_PROCID": "3", "SLURM_NTASKS": "8"}) == (3, 8)
    for bad in ("5/5", "-1/2", "x", "1/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    with pytest.raises(ConfigError, match="RANK/WORLD_SIZE"):
        parse_shard("auto", {})
    assert sum(in_shard(f"t{k}.wav", (0, 2)) for k in range(1000)) == 532  # stable across runs


def test_pretraining_and_embedding_take_a_list_of_caches(tmp_path, src) -> None:
    from audioclr.evaluate.tracks import open_tracks
    from audioclr.ssl.config import PretrainConfig
    from audioclr.ssl.train import cache_sample_rate, pair_dataset

    for i in range(2):
        _prepare(src, tmp_path / f"s{i}", shard=(i, 2))
    listed = f"data.cache=[{tmp_path / 's0'},{tmp_path / 's1'}]"
    cfg = load_config(PretrainConfig, None, [listed])
    assert cfg.data.cache == [str(tmp_path / "s0"), str(tmp_path / "s1")]
    assert cache_sample_rate(cfg) == 16000
    dataset = pair_dataset(cfg, crop_samples=8000, sample_rate=16000)
    assert len(dataset) == N_FILES
    one = load_config(PretrainConfig, None, [f"data.cache={tmp_path / 's0'}"])
    assert one.data.cache == str(tmp_path / "s0")
    with pytest.raises(ConfigError, match="data.cache"):
        load_config(PretrainConfig, None, ["data.cache={a: 1}"])

    tracks = open_tracks([tmp_path / "s0", tmp_path / "s1"], 16000)
    full = _prepare(src, tmp_path / "full").cache_dir
    assert [t.id for t in tracks] == [t.id for t in open_tracks(full, 16000)]
    np.testing.assert_array_equal(tracks[3].read(), ClipCache(full).read(3))


def test_cache_shares_draw_each_cache_at_its_share_and_resume_exactly(tmp_path, src) -> None:
    from audioclr.data.pairs import PairDataset
    from audioclr.ssl.data import StepBatchSampler, pool_counts
    from audioclr.ssl.train import cache_pools

    other = tmp_path / "other"
    for i in range(3):  # a small second source: 3 tracks against 12
        write_audio(other / f"s{i}.wav", tone(500 + 50 * i, 16000, 1.2), 16000)
    _prepare(src, tmp_path / "c0")
    _prepare(other, tmp_path / "c1")
    both = open_cache([str(tmp_path / "c0"), str(tmp_path / "c1")])
    ds = PairDataset(both, 8000, seed=0)
    pools = cache_pools(ds)
    # the items of each cache, by their ids' cache prefix (an independent reading)
    assert pools == [
        [j for j, t in enumerate(ds.indices) if both.tracks[t].track_id.startswith(f"{k}:")]
        for k in range(2)
    ]
    assert [len(p) for p in pools] == [N_FILES, 3]
    # half the pairs from the 3-track cache: it limits the epoch (all 3), the other gives 3
    assert pool_counts([12, 3], [1, 1]) == [3, 3] and pool_counts([12, 3], [3, 1]) == [9, 3]
    epochs = 6
    sampler = StepBatchSampler(len(ds), 2, 0, 0, 3 * epochs, pools=pools, shares=[1, 1])
    seen = [item for batch in sampler for item in batch]
    assert len(seen) == 6 * epochs
    second = set(pools[1])
    for e in range(epochs):
        items = [i for _, ep, i in seen if ep == e]
        assert len(items) == len(set(items)) == 6  # no track twice in an epoch
        assert sum(i in second for i in items) == 3  # the share, exactly, every epoch
    first_seen = {i for _, _, i in seen} - second
    assert len(first_seen) > 3  # the larger cache gives a fresh subset each epoch
    through = list(StepBatchSampler(len(ds), 2, 0, 0, 18, pools=pools, shares=[1, 1]))
    assert list(StepBatchSampler(len(ds), 2, 0, 7, 18, pools=pools, shares=[1, 1])) == through[7:]
    # without shares, per track: the 3-track cache gives 3 of every 15 pairs
    plain = [i for b in StepBatchSampler(len(ds), 5, 0, 0, 3) for _, _, i in b]
    assert sum(i in second for i in plain) == 3


def test_one_cache_per_batch_draws_whole_batches_from_one_cache_and_resumes_exactly() -> None:
    from audioclr.errors import ConfigError as Err
    from audioclr.ssl.data import StepBatchSampler
    from audioclr.ssl.train import check_pools_fill_a_batch

    pools = [list(range(14)), list(range(14, 22))]  # 3 whole batches of 4 (2 left), 2 of 4
    which = {i: k for k, p in enumerate(pools) for i in p}

    def sampler(start: int = 0, stop: int = 30, **kw):
        return StepBatchSampler(22, 4, 0, start, stop, pools=pools, one_pool_per_batch=True, **kw)

    batches = list(sampler())
    assert all(len({which[i] for _, _, i in b}) == 1 for b in batches)
    for e in range(6):  # 5 batches an epoch: 3 of the first cache, 2 of the second
        items = [i for b in batches for _, ep, i in b if ep == e]
        assert len(items) == len(set(items)) == 20
        assert sum(which[i] == 1 for i in items) == 8
    assert {i for b in batches for _, _, i in b} == set(range(22))  # the 2 left over come later
    assert list(sampler(7)) == batches[7:]
    # shares count whole batches: [1, 1] gives each cache 2 batches an epoch
    shared = list(sampler(shares=[1, 1]))
    assert sorted(which[b[0][2]] for b in shared[:4]) == [0, 0, 1, 1]
    # two ranks: each rank's batch is one cache
    for rank in (0, 1):
        ranked = StepBatchSampler(22, 4, 0, 0, 10, rank, 2, pools=pools, one_pool_per_batch=True)
        assert all(len({which[i] for _, _, i in b}) == 1 for b in ranked)
    # without the option a batch mixes the caches
    mixed = list(StepBatchSampler(22, 4, 0, 0, 30, pools=pools, shares=[14, 8]))
    assert any(len({which[i] for _, _, i in b}) == 2 for b in mixed)
    with pytest.raises(Err, match="data.one_cache_per_batch.*cache 1 .* 8 usable"):
        check_pools_fill_a_batch(pools, 10)


def test_cache_shares_are_checked_against_the_caches(tmp_path) -> None:
    from audioclr.ssl.config import PretrainConfig

    ok = load_config(PretrainConfig, None, ["data.cache=[a, b]", "data.cache_shares=[3, 1]"])
    assert ok.data.cache_shares == [3, 1]
    for bad in ("[1]", "[1, 0]", "[-1, 2]"):
        with pytest.raises(ConfigError, match="data.cache_shares"):
            load_config(PretrainConfig, None, ["data.cache=[a, b]", f"data.cache_shares={bad}"])
    with pytest.raises(ConfigError, match="data.cache_shares"):
        load_config(PretrainConfig, None, ["data.cache=a", "data.cache_shares=[1]"])


def test_max_distance_per_cache_bounds_each_caches_crops(tmp_path, src) -> None:
    from audioclr.ssl.config import PretrainConfig
    from audioclr.ssl.train import pair_dataset

    other = tmp_path / "other"
    for i in range(3):
        write_audio(other / f"s{i}.wav", tone(500 + 50 * i, 16000, 3.0), 16000)
    _prepare(src, tmp_path / "c0")
    _prepare(other, tmp_path / "c1")
    caches = f"data.cache=[{tmp_path / 'c0'},{tmp_path / 'c1'}]"
    for near in (0, 1):  # 0.05 s = 800 samples in one cache, anywhere in the other
        bounds = ["null", "null"]
        bounds[near] = "0.05"
        cfg = load_config(
            PretrainConfig, None, [caches, f"data.max_distance_seconds=[{','.join(bounds)}]"]
        )
        ds = pair_dataset(cfg, crop_samples=4000, sample_rate=16000)
        gaps: dict[int, list[int]] = {0: [], 1: []}
        for epoch in range(20):
            ds.set_epoch(epoch)
            for i, track in enumerate(ds.indices):
                cache = int(ds.cache.tracks[track].track_id[0])  # the "k:" prefix of its id
                gaps[cache].append(abs(np.subtract(*ds.positions(i))))
        assert max(gaps[near]) <= 800
        assert max(gaps[1 - near]) > 4 * 800
    for bad in ("[0.5]", "[0.5, -1]", "[a, 0.5]"):
        with pytest.raises(ConfigError, match="data.max_distance_seconds"):
            load_config(PretrainConfig, None, [caches, f"data.max_distance_seconds={bad}"])
    with pytest.raises(ConfigError, match="data.max_distance_seconds"):
        load_config(PretrainConfig, None, ["data.cache=a", "data.max_distance_seconds=[0.5]"])
    # a recipe checked before its caches are known (data.cache unset) is checked again with them
    unset = load_config(PretrainConfig, None, ["data.max_distance_seconds=[null, 0.5]"])
    assert unset.data.max_distance_seconds == [None, 0.5]
    one = load_config(PretrainConfig, None, [caches, "data.max_distance_seconds=0.05"])
    assert max(pair_dataset(one, 4000, 16000).bounds) == 800
