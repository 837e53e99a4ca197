"""Track metadata on a clip cache (``audioclr metadata``), groups, and group pair sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_audio

from audioclr.cli import main
from audioclr.data.cache import ClipCache, prepare_cache
from audioclr.data.groups import build_groups, load_groups
from audioclr.data.metadata import METADATA, TrackMetadata, attach_metadata, read_metadata
from audioclr.data.pairs import PairDataset
from audioclr.errors import ConfigError, LabelError

SR = 8000
# release -> tracks; "solo" has one track, "loose.wav" gets no metadata row
RELEASES = {"A": ["a0", "a1", "a2", "a3"], "B": ["b0", "b1", "b2"], "solo": ["s0"]}
TRACKS_CSV = "path,artist,release\n" + "".join(
    f"audio/{r}/{t}.wav,art{r},{r}\n" for r, ts in RELEASES.items() for t in ts
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("meta")
    rng = np.random.default_rng(0)
    names = [f"{r}/{t}.wav" for r, ts in RELEASES.items() for t in ts] + ["loose.wav"]
    for k, name in enumerate(names):
        seconds = 1.0 + 0.25 * k  # distinct lengths: a crop tells which track it came from
        write_audio(root / "audio" / name, rng.uniform(-0.3, 0.3, int(SR * seconds)), SR)
    prepare_cache(root / "audio", root / "cache", sample_rate=SR, progress=False)
    (root / "tracks.csv").write_text(TRACKS_CSV)
    return root


@pytest.fixture(scope="module")
def cache(corpus: Path) -> ClipCache:
    attach_metadata(corpus / "cache", corpus / "tracks.csv")
    return ClipCache(corpus / "cache")


def release_of(cache: ClipCache, track: int) -> str | None:
    tid = cache.tracks[track].track_id
    return next((r for r, ts in RELEASES.items() if tid in {f"{r}/{t}.wav" for t in ts}), None)


def test_metadata_is_attached_by_source_path_and_read_back(corpus: Path, cache: ClipCache):
    meta = read_metadata(cache.root)
    assert meta is not None and meta.columns == ["artist", "release"]
    for r, ts in RELEASES.items():
        for t in ts:
            assert meta.value(f"{r}/{t}.wav", "release") == r
            assert meta.value(f"{r}/{t}.wav", "artist") == f"art{r}"
    assert meta.value("loose.wav", "release") is None  # no row: still a track, no metadata
    stored = json.loads((cache.root / METADATA).read_text())
    assert stored["format_version"] == 1 and "loose.wav" not in stored["tracks"]


def test_cli_attaches_playlists_and_reports_counts(corpus: Path, tmp_path: Path, capsys):
    lists = tmp_path / "lists.csv"
    rel = Path("..") / corpus.name / "audio"  # paths are relative to the CSV's folder
    lists.write_text(
        f"playlist,path\nmix,{rel}/A/a0.wav\nmix,{rel}/B/b0.wav\nmix,{rel}/loose.wav\n"
        f"other,{rel}/solo/s0.wav\n"
    )
    assert main(["metadata", str(corpus / "cache"), str(corpus / "tracks.csv"),
                 "--playlists", str(lists)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "8 tracks with metadata, 1 without, 2 playlists" in out
    meta = read_metadata(corpus / "cache")
    assert meta.playlists == {
        "mix": ["A/a0.wav", "B/b0.wav", "loose.wav"],
        "other": ["solo/s0.wav"],
    }
    attach_metadata(corpus / "cache", corpus / "tracks.csv")  # back to the module's state


@pytest.mark.parametrize(
    ("csv_text", "line", "what"),
    [
        ("path,release\naudio/A/a0.wav,A\naudio/nope.wav,A\n", 3, "is not a track of clip cache"),
        ("path,release\naudio/A/a0.wav,A\naudio/A/a1.wav,A,extra\n", 3, "expected 2 cells"),
        ("path,release\naudio/A/a0.wav,A\n\naudio/A/a0.wav,B\n", 4, "listed twice"),
        ("path,release\n,A\n", 2, "empty path"),
        ("file,release\naudio/A/a0.wav,A\n", 1, "header"),
    ],
)
def test_bad_rows_are_errors_naming_file_and_line(corpus, csv_text, line, what):
    bad = corpus / f"bad{line}.csv"  # beside audio/: the rows' relative paths resolve
    bad.write_text(csv_text)
    side = corpus / "cache" / METADATA
    before = side.read_bytes() if side.exists() else None
    with pytest.raises(LabelError, match=rf"bad{line}\.csv:{line}: .*{what}"):
        attach_metadata(corpus / "cache", bad)
    assert (side.read_bytes() if side.exists() else None) == before  # nothing written


def test_playlist_rows_are_checked_too(corpus: Path):
    bad = corpus / "badlists.csv"
    bad.write_text("playlist,path\nmix,audio/A/a0.wav\nmix\n")
    with pytest.raises(LabelError, match=r"badlists\.csv:3: expected 2 cells"):
        attach_metadata(corpus / "cache", corpus / "tracks.csv", playlists=bad)


def test_groups_by_column_and_by_playlist():
    ids = ["t0", "t1", "t2", "t3", "t4"]
    meta = TrackMetadata(
        ["release"],
        {"t0": {"release": "x"}, "t1": {"release": "y"}, "t2": {"release": "x"}, "t4": {}},
        {"p": ["t0", "t1"], "q": ["t1", "t3"], "gone": ["t9"]},
    )
    g = build_groups(ids, meta, "group:release")
    assert g.ids[:, 0].tolist() == [0, 1, 0, -1, -1]
    assert [m.tolist() for m in g.members] == [[0, 2], [1]]
    p = build_groups(ids, meta, "playlist")
    assert [m.tolist() for m in p.members] == [[0, 1], [1, 3]]  # "gone" lists no cache track
    assert p.ids.tolist() == [[0, -1], [0, 1], [-1, -1], [1, -1], [-1, -1]]
    with pytest.raises(ConfigError, match="no column 'artist'"):
        build_groups(ids, meta, "group:artist")


def test_group_positives_need_metadata(tmp_path: Path, corpus: Path):
    bare = tmp_path / "bare"
    prepare_cache(corpus / "audio" / "B", bare, sample_rate=SR, progress=False)
    with pytest.raises(ConfigError, match="data.positives.*has no metadata"):
        load_groups(ClipCache(bare), "group:release")
    assert load_groups(ClipCache(bare), "track") is None


@pytest.mark.parametrize("p", [0.3, 0.8])
def test_second_view_comes_from_the_same_group_at_the_configured_rate(cache: ClipCache, p):
    groups = load_groups(cache, "group:release")
    ds = PairDataset(cache, SR // 2, seed=3, groups=groups, group_p=p)
    assert (ds.alone, ds.ungrouped) == (1, 1)  # solo/s0 and loose.wav
    other = draws = 0
    for epoch in range(150):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            track = ds.indices[i]
            release = release_of(cache, track)
            partner = ds.partner(i)
            if release in (None, "solo"):
                assert partner == track  # groups of one (or none) fall back
                continue
            draws += 1
            if partner != track:
                other += 1
                assert release_of(cache, partner) == release  # never another group
    sd = np.sqrt(draws * p * (1 - p))
    assert abs(other - p * draws) < 4 * sd, (other, draws, p)


def test_group_item_is_crop_of_the_partner_and_carries_group_ids(cache: ClipCache):
    groups = load_groups(cache, "group:release")
    ds = PairDataset(cache, SR // 2, seed=0, groups=groups, group_p=1.0)
    seen_other = False
    for i in range(len(ds)):
        a, b, track, ids = ds[i]
        partner = ds.partner(i)
        sa, sb = ds.positions(i, partner)
        np.testing.assert_array_equal(a.numpy(), cache.read(track, sa, SR // 2))
        np.testing.assert_array_equal(b.numpy(), cache.read(partner, sb, SR // 2))
        assert ids.tolist() == groups.ids[track].tolist()
        seen_other |= partner != track
    assert seen_other


def test_group_p_zero_gives_exactly_the_crops_of_track_positives(cache: ClipCache):
    plain = PairDataset(cache, SR // 2, max_distance=800, seed=5)
    grouped = PairDataset(
        cache, SR // 2, max_distance=800, seed=5,
        groups=load_groups(cache, "group:release"), group_p=0.0,
    )  # fmt: skip
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        grouped.set_epoch(epoch)
        for i in range(len(plain)):
            x, y = plain[i], grouped[i]
            assert all(np.array_equal(u, v) for u, v in zip(x[:2], y[:2], strict=True))
