"""MIDI phrases for one GM program, written with mido and rendered in one fluidsynth call.

All renderings of a program go into one MIDI file, one per time slot (``SLOT_S`` apart, each
ended by "all sound off"), so the soundfont is loaded once per program; the rendered WAV is then
cut back into clips of ``CLIP_S`` seconds. Reverb and chorus are off so nothing rings across slots.

Example:
    >>> notes = plan_renderings(48, (48, 60, 72))
    >>> len(notes), notes[0]
    (6, Rendering(pitch=48, velocity=70, style='note'))
    >>> sf2 = Path("FluidR3_GM.sf2")
    >>> clips = render_program(sf2, 48, notes, 22050, Path("/tmp/p48"))  # doctest: +SKIP
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.datasets.common import BuildError

CLIP_S = 3.0  # clip length: note(s) plus release
SLOT_S = 4.0  # one rendering per slot; the last second is silence
NOTE_S = 2.0  # a single note is held this long
PHRASE_STEP_S = 0.5  # a phrase is root, major third, fifth, octave, this far apart
TICKS_PER_BEAT = 480
TEMPO_US = 500_000  # 120 bpm: 960 ticks per second
PEAK = 0.5  # clips are peak-normalised to this (-6 dBFS)


@dataclass(frozen=True)
class Rendering:
    """One clip to render: a single held note or a short arpeggio starting at ``pitch``."""

    pitch: int
    velocity: int
    style: str  # "note" | "phrase"


def plan_renderings(program: int, pitches: tuple[int, ...]) -> list[Rendering]:
    """Two renderings per pitch: a held note and a phrase, at alternating soft/loud velocities."""
    out = []
    for i, pitch in enumerate(pitches):
        soft_first = (i + program) % 2 == 0
        out.append(Rendering(pitch, 70 if soft_first else 110, "note"))
        out.append(Rendering(pitch, 110 if soft_first else 70, "phrase"))
    return out


def _note_events(r: Rendering, t0: float) -> list[tuple[float, str, int, int]]:
    """(time_s, kind, a, b) events of one rendering starting at ``t0``."""
    if r.style == "note":
        spans = [(r.pitch, 0.0, NOTE_S)]
    else:
        spans = [
            (r.pitch + d, k * PHRASE_STEP_S, (k + 1) * PHRASE_STEP_S)
            for k, d in enumerate((0, 4, 7, 12))
        ]
    events = []
    for pitch, on, off in spans:
        events.append((t0 + on, "note_on", min(pitch, 127), r.velocity))
        events.append((t0 + off, "note_off", min(pitch, 127), 0))
    events.append((t0 + CLIP_S, "control_change", 120, 0))  # all sound off: nothing leaks on
    return events


def write_midi(path: Path, program: int, renderings: list[Rendering]) -> Path:
    """A type-0 MIDI file on channel 0: program change, then one rendering per slot."""
    import mido

    events = [e for k, r in enumerate(renderings) for e in _note_events(r, k * SLOT_S)]
    events.append((len(renderings) * SLOT_S, "control_change", 121, 0))  # marks the end
    events.sort(key=lambda e: (e[0], e[1] != "note_off"))
    track = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0),
            mido.Message("program_change", program=program, channel=0, time=0),
        ]
    )
    ticks_per_s = TICKS_PER_BEAT * 1_000_000 / TEMPO_US
    now = 0
    for t, kind, a, b in events:
        tick = int(round(t * ticks_per_s))
        if kind == "control_change":
            msg = mido.Message(kind, control=a, value=b, channel=0, time=tick - now)
        else:
            msg = mido.Message(kind, note=a, velocity=b, channel=0, time=tick - now)
        track.append(msg)
        now = tick
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return path


def render_program(
    soundfont: Path, program: int, renderings: list[Rendering], sample_rate: int, work: Path
) -> list[np.ndarray]:
    """Render ``renderings`` of ``program`` with fluidsynth; one float32 ``(clip_samples,)`` each.

    Clips have their DC removed and are peak-normalised to ``PEAK``; a silent clip (the
    soundfont lacks the preset or the note) comes back as all zeros for the caller to drop.
    """
    mid = write_midi(work / f"program{program:03d}.mid", program, renderings)
    wav = mid.with_suffix(".wav")
    cmd = [
        "fluidsynth",
        "-ni",
        "-q",
        "-R",
        "0",
        "-C",
        "0",
        "-g",
        "0.5",
        "-r",
        str(sample_rate),
        "-O",
        "float",
        "-T",
        "wav",
        "-F",
        str(wav),
        str(soundfont),
        str(mid),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0 or not wav.is_file():
        raise BuildError(
            f"fluidsynth failed on {soundfont.name} program {program}: {res.stderr.strip()[-300:]}",
            hint="check that fluidsynth runs: fluidsynth --version",
        )
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    wav.unlink()
    if sr != sample_rate:
        raise BuildError(
            f"fluidsynth wrote {sr} Hz, asked for {sample_rate} Hz", hint="upgrade fluidsynth"
        )
    return cut_clips(x.mean(axis=1), len(renderings), sample_rate)


def cut_clips(
    mono: np.ndarray, n: int, sample_rate: int, silent_peak: float = 1e-4
) -> list[np.ndarray]:
    """The ``n`` clips of a rendering with one slot per clip (``SLOT_S`` apart, ``CLIP_S`` long).

    Each clip has its DC removed and is peak-normalised to ``PEAK``; a silent one (peak below
    ``silent_peak``) comes back as all zeros; a slot past the end of ``mono`` is padded with zeros.
    """
    n_clip, n_slot = int(CLIP_S * sample_rate), int(SLOT_S * sample_rate)
    clips = []
    for k in range(n):
        clip = np.zeros(n_clip, dtype=np.float32)
        piece = mono[k * n_slot : k * n_slot + n_clip]
        clip[: len(piece)] = piece - piece.mean() if len(piece) else piece
        peak = float(np.max(np.abs(clip)))
        clips.append(clip * (PEAK / peak) if peak > silent_peak else np.zeros_like(clip))
    return clips
