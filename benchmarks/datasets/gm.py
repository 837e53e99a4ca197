"""General MIDI: instrument families of the 128 programs, and what to render for each family.

GM level 1 groups programs 0-127 into 16 families of 8 consecutive programs. The instruments
set keeps the 13 pitched families and drops synth effects (96-103), percussive (112-119) and
sound effects (120-127), whose members are noises or textures rather than instruments.

Example:
    >>> gm_family(0), gm_family(33), gm_family(73)
    ('piano', 'bass', 'pipe')
    >>> len(kept_programs())
    104
"""

from __future__ import annotations

GM_FAMILIES: tuple[str, ...] = (
    "piano",
    "chromatic_percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth_lead",
    "synth_pad",
    "synth_effects",
    "ethnic",
    "percussive",
    "sound_effects",
)
DROPPED_FAMILIES = frozenset({"synth_effects", "percussive", "sound_effects"})

# Three MIDI note numbers per family, inside the usual range of its members.
FAMILY_PITCHES: dict[str, tuple[int, int, int]] = {
    "piano": (48, 60, 72),
    "chromatic_percussion": (60, 72, 84),
    "organ": (48, 60, 72),
    "guitar": (45, 57, 69),
    "bass": (31, 38, 45),
    "strings": (48, 57, 67),
    "ensemble": (48, 60, 72),
    "brass": (48, 58, 67),
    "reed": (50, 60, 70),
    "pipe": (67, 74, 81),
    "synth_lead": (55, 67, 79),
    "synth_pad": (48, 60, 72),
    "ethnic": (55, 62, 69),
}


def gm_family(program: int) -> str:
    """The GM family of ``program`` (0-127, zero-based as in MIDI program-change messages)."""
    if not 0 <= program <= 127:
        raise ValueError(f"GM program must be in 0..127, got {program}")
    return GM_FAMILIES[program // 8]


def kept_programs() -> list[int]:
    """Programs of the pitched families used by the instruments set, ascending."""
    return [p for p in range(128) if gm_family(p) not in DROPPED_FAMILIES]


def family_pitches(family: str) -> tuple[int, int, int]:
    """The three MIDI notes rendered for ``family`` (KeyError naming it if it is dropped)."""
    try:
        return FAMILY_PITCHES[family]
    except KeyError:
        raise KeyError(
            f"no pitches for GM family {family!r}; kept: {sorted(FAMILY_PITCHES)}"
        ) from None
