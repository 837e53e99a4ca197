"""Pure logic of the real-recording data-set builders: segments, splits, GM families, MIDI plans.

Nothing here needs a Debian package or the network.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import digits, freepats, gm, instruments, music_pool, planning  # noqa: E402

# --- segments -------------------------------------------------------------------------------


@pytest.mark.parametrize("duration", [30.0, 34.6, 45.4, 61.0, 100.0, 395.0])
def test_segments_do_not_overlap_and_keep_gap_and_margin(duration: float) -> None:
    seg, gap, margin = 10.0, 5.0, 2.0
    plan = planning.plan_segments(duration, seg, gap, max_segments=6, margin_s=margin)
    assert len(plan) >= 2
    starts = [s for s, _ in plan]
    assert starts == sorted(starts)
    assert all(length == seg for _, length in plan)
    assert starts[0] >= margin - 1e-9
    assert starts[-1] + seg <= duration - margin + 1e-9
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - (a + seg) >= gap - 1e-3  # starts are floored to ms
    # As many as fit: one more segment of the same size and gap would not (unless capped at 6).
    usable = duration - 2 * margin
    assert len(plan) == 6 or (len(plan) + 1) * seg + len(plan) * gap > usable


def test_segments_are_deterministic_and_short_tracks_give_none() -> None:
    a = planning.plan_segments(123.4, 10.0, 5.0, 6, 2.0)
    assert a == planning.plan_segments(123.4, 10.0, 5.0, 6, 2.0)
    assert planning.plan_segments(24.0, 10.0, 5.0, 6, 2.0) == []  # only one would fit
    assert planning.plan_segments(20.0, 10.0, 0.0, 6, 0.0) == [(0.0, 10.0), (10.0, 10.0)]
    with pytest.raises(ValueError, match="segment_s"):
        planning.plan_segments(60.0, 0.0)


# --- splits ---------------------------------------------------------------------------------


def test_split_groups_is_stratified_deterministic_and_independent_per_stratum() -> None:
    strata = {f"{fam}{i}": fam for fam in ("piano", "organ", "brass") for i in range(8)}
    out = planning.split_groups(strata, (0.6, 0.15, 0.25), seed=0)
    assert set(out) == set(strata)
    for fam in ("piano", "organ", "brass"):
        counts = Counter(out[g] for g in strata if strata[g] == fam)
        assert counts == {"train": 5, "valid": 1, "test": 2}
    assert out == planning.split_groups(dict(reversed(strata.items())), (0.6, 0.15, 0.25), seed=0)
    alone = planning.split_groups(
        {g: f for g, f in strata.items() if f == "piano"}, (0.6, 0.15, 0.25)
    )
    assert alone == {g: s for g, s in out.items() if strata[g] == "piano"}
    seeds = {tuple(sorted(planning.split_groups(strata, seed=s).items())) for s in range(5)}
    assert len(seeds) > 1  # the seed matters


def test_fold_groups_deals_each_stratum_evenly_and_deterministically() -> None:
    sizes = {"piano": 8, "organ": 7, "brass": 4}
    strata = {f"{fam}{i}": fam for fam, n in sizes.items() for i in range(n)}
    out = planning.fold_groups(strata, k=4, seed=0)
    assert set(out) == set(strata) and set(out.values()) <= {0, 1, 2, 3}
    for fam, n in sizes.items():
        counts = Counter(out[g] for g in strata if strata[g] == fam)
        # every fold holds n // k or n // k + 1 groups of the stratum (independent count)
        assert sorted(counts.get(f, 0) for f in range(4)) == sorted(
            n // 4 + (i < n % 4) for i in range(4)
        )
    assert out == planning.fold_groups(dict(reversed(strata.items())), k=4, seed=0)
    alone = planning.fold_groups({g: f for g, f in strata.items() if f == "organ"}, k=4)
    assert alone == {g: s for g, s in out.items() if strata[g] == "organ"}
    assert len({tuple(sorted(planning.fold_groups(strata, seed=s).items())) for s in range(5)}) > 1
    with pytest.raises(ValueError, match="k must be >= 3"):
        planning.fold_groups(strata, k=2)


def test_split_groups_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="fractions"):
        planning.split_groups({"a": "x"}, (0.5, 0.5, 0.5))


def test_instrument_split_keeps_programs_whole_and_balanced() -> None:
    splits = instruments.program_splits(seed=0)
    assert sorted(splits) == gm.kept_programs()
    per_family = Counter((gm.gm_family(p), s) for p, s in splits.items())
    for family in gm.FAMILY_PITCHES:
        assert (per_family[(family, "train")], per_family[(family, "valid")]) == (5, 1)
        assert per_family[(family, "test")] == 2
    # Every clip path of a program carries the program, so all renderings share its split.
    plan = instruments.plan_renderings(40, gm.family_pitches("strings"))
    paths = {instruments.clip_path("fluidr3", 40, k, r) for k, r in enumerate(plan)}
    assert len(paths) == 6 and all(Path(p).name.startswith("p040_") for p in paths)
    assert instruments.program_splits(seed=0) == splits


def test_digit_speakers_are_split_whole_and_by_gender() -> None:
    splits = digits.speaker_splits(seed=0)
    gender = {digits.speaker_id(v): g for v, g in digits.SPEAKERS}
    assert set(splits) == set(gender)
    by = Counter((gender[s], split) for s, split in splits.items())
    assert by[("m", "test")] == by[("f", "test")] == 1
    assert by[("m", "valid")] == by[("f", "valid")] == 1
    assert sum(v for (_, split), v in by.items() if split == "train") == 8


# --- General MIDI families ------------------------------------------------------------------

# From the GM 1 sound set: first and last program of each family (zero-based), by name.
GM_NAMED = {
    0: "piano",  # Acoustic Grand Piano
    7: "piano",  # Clavi
    8: "chromatic_percussion",  # Celesta
    15: "chromatic_percussion",  # Dulcimer
    16: "organ",  # Drawbar Organ
    23: "organ",  # Tango Accordion
    24: "guitar",  # Acoustic Guitar (nylon)
    31: "guitar",  # Guitar harmonics
    32: "bass",  # Acoustic Bass
    39: "bass",  # Synth Bass 2
    40: "strings",  # Violin
    47: "strings",  # Timpani
    48: "ensemble",  # String Ensemble 1
    55: "ensemble",  # Orchestra Hit
    56: "brass",  # Trumpet
    63: "brass",  # Synth Brass 2
    64: "reed",  # Soprano Sax
    71: "reed",  # Clarinet
    72: "pipe",  # Piccolo
    79: "pipe",  # Ocarina
    80: "synth_lead",  # Lead 1 (square)
    87: "synth_lead",  # Lead 8 (bass + lead)
    88: "synth_pad",  # Pad 1 (new age)
    95: "synth_pad",  # Pad 8 (sweep)
    96: "synth_effects",  # FX 1 (rain)
    103: "synth_effects",  # FX 8 (sci-fi)
    104: "ethnic",  # Sitar
    111: "ethnic",  # Shanai
    112: "percussive",  # Tinkle Bell
    119: "percussive",  # Reverse Cymbal
    120: "sound_effects",  # Guitar Fret Noise
    127: "sound_effects",  # Gunshot
}


def test_gm_family_of_every_program() -> None:
    families = [gm.gm_family(p) for p in range(128)]
    for program, family in GM_NAMED.items():
        assert families[program] == family, program
    # Families are runs of 8 consecutive programs: each named pair brackets its whole run.
    assert Counter(families) == {f: 8 for f in set(GM_NAMED.values())}
    for p in range(128):
        first = GM_NAMED[8 * (p // 8)]
        assert families[p] == first
    with pytest.raises(ValueError, match="0..127"):
        gm.gm_family(128)


def test_kept_programs_drop_unpitched_families_and_pitches_fit_midi() -> None:
    kept = gm.kept_programs()
    assert len(kept) == 104
    assert not set(kept) & (set(range(96, 104)) | set(range(112, 128)))
    assert set(gm.FAMILY_PITCHES) == {gm.gm_family(p) for p in kept}
    for pitches in gm.FAMILY_PITCHES.values():
        assert all(0 <= p and p + 12 <= 127 for p in pitches)  # phrases climb an octave
    with pytest.raises(KeyError, match="percussive"):
        gm.family_pitches("percussive")


def test_renderings_alternate_style_and_velocity() -> None:
    plan = instruments.plan_renderings(5, (48, 60, 72))
    assert [r.pitch for r in plan] == [48, 48, 60, 60, 72, 72]
    assert Counter(r.style for r in plan) == {"note": 3, "phrase": 3}
    assert {r.velocity for r in plan} == {70, 110}
    for a, b in zip(plan[::2], plan[1::2], strict=True):
        assert {a.velocity, b.velocity} == {70, 110}
    assert math.isclose(instruments.CLIP_S, 3.0)


# --- freepats -------------------------------------------------------------------------------

CFG = """dir /usr/share/midi/freepats

# a comment
drumset 0

 35\tDrum_000/035_Kick_1.pat amp=100

bank 0

 0\tTone_000/000_Acoustic_Grand_Piano.pat amp=120 pan=center
 73\tTone_000/073_Flute.pat
# 74\tTone_000/074_Recorder.pat
bank 1
 5\tTone_001/005_Other.pat
"""


def test_freepats_config_parsing_keeps_bank_zero_programs_only() -> None:
    assert freepats.freepats_programs(CFG) == {
        0: "Tone_000/000_Acoustic_Grand_Piano.pat",
        73: "Tone_000/073_Flute.pat",
    }
    assert freepats.freepats_programs(CFG, bank=1) == {5: "Tone_001/005_Other.pat"}


def test_freepats_config_points_at_the_unpacked_patches(tmp_path: Path) -> None:
    cfg = tmp_path / freepats.CONFIG_IN_PACKAGE
    cfg.parent.mkdir(parents=True)
    cfg.write_text(CFG)
    text = freepats.timidity_config(tmp_path)
    dirs = [ln for ln in text.splitlines() if ln.startswith("dir ")]
    assert dirs == [f"dir {(tmp_path / freepats.PATCHES_IN_PACKAGE).resolve()}"]
    assert freepats.freepats_programs(text) == freepats.freepats_programs(CFG)


def test_freepats_keeps_families_with_enough_programs_split_whole() -> None:
    rendered = [0, 1, 2, 4, 16, 19, 21, 23, 48, 53, 73]  # piano 4, organ 4, ensemble 2, pipe 1
    assert freepats.kept_families(rendered) == ["organ", "piano"]
    assert freepats.kept_families(rendered, min_programs=1) == [
        "ensemble",
        "organ",
        "piano",
        "pipe",
    ]
    kept = [p for p in rendered if gm.gm_family(p) in ("organ", "piano")]
    splits = freepats.program_splits(kept, seed=0)
    assert set(splits) == set(kept)
    for family in ("organ", "piano"):
        counts = Counter(s for p, s in splits.items() if gm.gm_family(p) == family)
        assert counts == {"train": 2, "valid": 1, "test": 1}
    assert splits == freepats.program_splits(list(reversed(kept)), seed=0)
    plan = freepats.plan_renderings(73, gm.family_pitches("pipe"))
    assert freepats.clip_path(73, 1, plan[1]).startswith("audio/pipe/p073_1_phrase_n67_")


# --- music pool -----------------------------------------------------------------------------


def test_pool_packages_and_segment_cap() -> None:
    assert len(set(music_pool.PACKAGES)) == len(music_pool.PACKAGES) == 13
    assert {"supertux-data", "xmoto-data", "frozen-bubble-data"} < set(music_pool.PACKAGES)
    plan = planning.plan_segments(
        1755.0,
        music_pool.SEGMENT_S,
        music_pool.GAP_S,
        music_pool.MAX_SEGMENTS,
        music_pool.MARGIN_S,
    )
    assert len(plan) == music_pool.MAX_SEGMENTS
    seg = music_pool.segment_path("a-music/x y", 2, 12.3456)
    assert seg == "segments/a-music/x y/seg02_0012346ms.wav"  # the start in ms: no stale reuse
    assert music_pool.package_folder("supertux-data") == "supertux"
    assert music_pool.package_folder("ufoai-music") == "ufoai-music"
