"""Clip cache: quantization bounds, reads equal decoding, rejects, incremental reruns, damage."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_audio

from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.decode import decode_audio
from audioclr.data.manifest import dequantize, quantize
from audioclr.errors import CacheError, ConfigError, SampleRateMismatch


def make_src(tmp_path, rng):
    src = tmp_path / "src"
    write_audio(src / "piano" / "a.wav", tone(440, 44100, 1.5), 44100)
    write_audio(
        src / "piano" / "b.flac", rng.uniform(-0.4, 0.4, (16000 * 2, 2)).astype(np.float32), 16000
    )
    write_audio(src / "c.ogg", tone(220, 22050, 1.2), 22050)
    return src


@pytest.mark.parametrize("dtype,bound", [("int16", 0.5 / 32767 + 1e-7), ("float16", None)])
def test_quantization_round_trip_error(rng, dtype: str, bound) -> None:
    x = rng.uniform(-1, 1, 100_000).astype(np.float32)
    y = dequantize(quantize(x, dtype))
    err = np.abs(y - x)
    if bound is not None:
        assert err.max() <= bound
    else:  # float16: relative error <= 2^-11 (absolute 2^-25 when subnormal)
        assert np.all(err <= np.maximum(np.abs(x) * 2.0**-11, 2.0**-25))
    assert err.max() > 0  # it really is lossy: the bound is what we claim, not vacuous


@pytest.mark.parametrize("dtype,atol", [("int16", 0.5 / 32767 + 1e-7), ("float16", 2.0**-11)])
def test_cache_reads_equal_decoded_audio(tmp_path, rng, dtype: str, atol: float) -> None:
    src = make_src(tmp_path, rng)
    s = prepare_cache(
        src, tmp_path / "cache", sample_rate=22050, dtype=dtype, workers=2, progress=False
    )
    assert (s.added, s.unchanged, s.rejects) == (3, 0, [])
    cache = ClipCache(tmp_path / "cache")
    assert cache.sample_rate == 22050 and len(cache) == 3
    assert [t.track_id for t in cache.tracks] == ["c.ogg", "piano/a.wav", "piano/b.flac"]
    for t in cache.tracks:
        ref = decode_audio(src / t.track_id, 22050)
        i = cache.index_of(t.track_id)
        np.testing.assert_allclose(cache.read(i), ref, atol=atol)
        start = int(rng.integers(0, len(ref) - 1000))
        np.testing.assert_allclose(cache.read(i, start, 1000), ref[start : start + 1000], atol=atol)
    again = pickle.loads(pickle.dumps(cache))
    np.testing.assert_array_equal(again.read(0), cache.read(0))
    with pytest.raises(CacheError, match="nope.wav"):
        cache.index_of("nope.wav")
    with pytest.raises(ValueError, match="outside track"):
        cache.read(0, start=cache.tracks[0].num_samples - 5, length=10)


def test_every_bad_file_kind_is_listed_with_its_reason(tmp_path) -> None:
    src = tmp_path / "src"
    write_audio(src / "good.wav", tone(440, 22050, 1.5), 22050)
    (src / "corrupt.wav").write_bytes(b"RIFF" + os.urandom(2000))
    (src / "empty.flac").write_bytes(b"")
    write_audio(src / "zero.wav", np.zeros(0, np.float32), 22050)
    write_audio(src / "silent.wav", np.zeros(44100, np.float32), 22050)
    write_audio(src / "short.wav", tone(440, 22050, 0.5), 22050)
    (src / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    (src / "song.m4a").write_bytes(b"\0" * 100)
    (src / "notes.txt").write_text("not audio, ignored")
    s = prepare_cache(src, tmp_path / "cache", workers=2, min_duration=1.0, progress=False)
    reasons = {os.path.basename(p): r for p, _, r in s.rejects}
    kinds = {os.path.basename(p): k for p, k, _ in s.rejects}
    assert s.added == 1
    assert set(reasons) == {
        "corrupt.wav",
        "empty.flac",
        "zero.wav",
        "silent.wav",
        "short.wav",
        "dangling.wav",
        "song.m4a",
    }
    assert "corrupt" in reasons["corrupt.wav"]
    assert "empty file" in reasons["empty.flac"]
    assert "zero-length" in reasons["zero.wav"]
    assert "silent" in reasons["silent.wav"]
    assert "too short: 0.5 s" in reasons["short.wav"]
    assert "no such file" in reasons["dangling.wav"]
    assert "torchcodec" in reasons["song.m4a"]
    assert kinds == {
        "corrupt.wav": "corrupt",
        "empty.flac": "empty",
        "zero.wav": "empty",
        "silent.wav": "silent",
        "short.wav": "too_short",
        "dangling.wav": "missing",
        "song.m4a": "unsupported",
    }
    listed = (tmp_path / "cache" / "rejects.csv").read_text().splitlines()
    assert listed[0] == "path,kind,reason" and len(listed) == 1 + 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_is_rejected(tmp_path) -> None:
    src = tmp_path / "src"
    path = write_audio(src / "locked.wav", tone(440, 22050, 1.5), 22050)
    path.chmod(0)
    s = prepare_cache(src, tmp_path / "cache", workers=1, progress=False)
    assert s.added == 0 and s.rejects[0].kind == "permission"
    assert "permission denied" in s.rejects[0].reason


def test_rerun_processes_only_new_or_changed_files(tmp_path, rng) -> None:
    src = make_src(tmp_path, rng)
    prepare_cache(src, tmp_path / "cache", workers=1, progress=False)
    write_audio(src / "new.wav", tone(330, 22050, 2.0), 22050)
    write_audio(
        src / "piano" / "a.wav", tone(550, 44100, 2.5), 44100
    )  # changed: new content and size
    (src / "c.ogg").unlink()
    s = prepare_cache(src, tmp_path / "cache", workers=1, progress=False)
    assert (s.added, s.unchanged, s.removed) == (2, 1, 1)
    cache = ClipCache(tmp_path / "cache")
    assert sorted(t.track_id for t in cache.tracks) == ["new.wav", "piano/a.wav", "piano/b.flac"]
    np.testing.assert_allclose(
        cache.read(cache.index_of("piano/a.wav")),
        decode_audio(src / "piano/a.wav", 22050),
        atol=1e-4,
    )


def test_half_written_sample_and_shard_rollover(tmp_path, rng) -> None:
    src = make_src(tmp_path, rng)
    cache_dir = tmp_path / "cache"
    prepare_cache(src, cache_dir, workers=1, progress=False, max_shard_bytes=100_000)
    shards = sorted(cache_dir.glob("shard-*.i16"))
    assert len(shards) >= 2  # three tracks of ~60-90 kB each cannot share a 100 kB shard
    with open(shards[-1], "ab") as fh:  # what a kill in the middle of a write leaves behind
        fh.write(b"\x07" * 3)
    write_audio(src / "z.wav", tone(660, 22050, 1.0), 22050)
    prepare_cache(src, cache_dir, workers=1, progress=False, max_shard_bytes=100_000)
    cache = ClipCache(cache_dir)
    for t in cache.tracks:
        np.testing.assert_allclose(
            cache.read(cache.index_of(t.track_id)), decode_audio(src / t.track_id, 22050), atol=1e-4
        )


def test_sample_rate_and_dtype_mismatch(tmp_path, rng) -> None:
    src = make_src(tmp_path, rng)
    prepare_cache(src, tmp_path / "cache", sample_rate=22050, workers=1, progress=False)
    with pytest.raises(SampleRateMismatch, match="22050 Hz.*16000"):
        prepare_cache(src, tmp_path / "cache", sample_rate=16000, workers=1, progress=False)
    with pytest.raises(CacheError, match="int16.*float16"):
        prepare_cache(src, tmp_path / "cache", dtype="float16", workers=1, progress=False)
    with pytest.raises(ConfigError, match="dtype"):
        prepare_cache(src, tmp_path / "c2", dtype="int8", progress=False)


def test_damaged_or_foreign_caches_are_refused(tmp_path, rng) -> None:
    with pytest.raises(CacheError, match="does not exist"):
        ClipCache(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CacheError, match="not a clip cache"):
        ClipCache(tmp_path / "plain")
    src = make_src(tmp_path, rng)
    cache_dir = tmp_path / "cache"
    prepare_cache(src, cache_dir, workers=1, progress=False)
    shard = cache_dir / "shard-00000.i16"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(CacheError, match="damaged"):
        ClipCache(cache_dir)
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    (cache_dir / "manifest.json").write_text(json.dumps(dict(manifest, format_version=99)))
    with pytest.raises(CacheError, match="format_version 99"):
        ClipCache(cache_dir)


def test_float_audio_written_back_as_int16_file(tmp_path) -> None:
    """The stored bytes are the int16 samples of the decoded audio (read back without ClipCache)."""
    src = tmp_path / "src"
    x = tone(440, 22050, 1.0, amplitude=0.25)
    write_audio(src / "t.wav", x, 22050, subtype="FLOAT")
    prepare_cache(src, tmp_path / "cache", workers=1, progress=False)
    raw = np.fromfile(tmp_path / "cache" / "shard-00000.i16", dtype="<i2")
    np.testing.assert_array_equal(raw, np.rint(x * 32767).astype(np.int16))
    assert sf.info(str(src / "t.wav")).frames == len(raw)
