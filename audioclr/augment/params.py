"""What each view received: the applied augmentation parameters as a fixed-schema tensor.

``applied_params(q)`` turns the parameters drawn by :class:`BatchedAugment` (a dict ``q`` of
per-example tensors, keys ``<transform>.<name>``) into ``(batch, P)`` float32 with the columns
of ``PARAM_NAMES``, each the value the chain APPLIED (a transform that did not run gives its
neutral value, never what it drew):

=========================  ================================================  =======
column                     value                                             neutral
=========================  ================================================  =======
``pitch.semitones``        shift in semitones                                0
``filter.highpass``        1 if a high-pass ran                              0
``filter.lowpass``         1 if a low-pass ran                               0
``filter.log2_cutoff_hz``  ``log2`` of the -3 dB cutoff in Hz                0
``gain.gain_db``           gain in dB                                        0
``delay.active``           1 if echoes were added                            0
``reverb.wet``             reverberant share of the mix                      0
``reverb.rt60_s``          decay time of the impulse response, seconds       0
``polarity.sign``          -1 if the waveform was inverted                   +1
``noise.active``           1 if white noise was added                        0
``noise.snr_db``           its SNR in dB                                     0
``background.active``      1 if another clip of the batch was mixed in       0
``background.snr_db``      its SNR in dB                                     0
=========================  ================================================  =======

``param_ranges(cfg)`` gives the values each column can take under an :class:`AugmentConfig`
(the neutral value included when the transform may not run); a column with ``lo == hi`` is
constant under that config (e.g. every column of a transform with ``p = 0``).

Example:
    >>> y, params = BatchedAugment(cfg, 22050)(x, g, return_params=True)   # params (batch, P)
    >>> params[:, PARAM_NAMES.index("gain.gain_db")]                       # applied gain, dB
    >>> lo, hi = param_ranges(cfg)                                         # (P,), (P,)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audioclr.augment.config import AugmentConfig

PARAM_NAMES: tuple[str, ...] = (
    "pitch.semitones",
    "filter.highpass",
    "filter.lowpass",
    "filter.log2_cutoff_hz",
    "gain.gain_db",
    "delay.active",
    "reverb.wet",
    "reverb.rt60_s",
    "polarity.sign",
    "noise.active",
    "noise.snr_db",
    "background.active",
    "background.snr_db",
)


def applied_params(q: dict[str, Tensor]) -> Tensor:
    """``(batch, len(PARAM_NAMES))`` float32: the applied values of the drawn parameters ``q``
    (``BatchedAugment.sample_params``), neutral where a transform did not run."""

    def when(transform: str, value: Tensor | float, neutral: float = 0.0) -> Tensor:
        on = q[f"{transform}.active"].bool()
        return torch.where(on, torch.as_tensor(value, device=on.device).float(), neutral)

    highpass = q["filter.highpass"].bool()
    cols = {
        "pitch.semitones": when("pitch", q["pitch.semitones"]),
        "filter.highpass": when("filter", highpass.float()),
        "filter.lowpass": when("filter", (~highpass).float()),
        "filter.log2_cutoff_hz": when("filter", torch.log2(q["filter.cutoff_hz"].float())),
        "gain.gain_db": when("gain", q["gain.gain_db"]),
        "delay.active": when("delay", 1.0),
        "reverb.wet": when("reverb", q["reverb.wet"]),
        "reverb.rt60_s": when("reverb", q["reverb.rt60_s"]),
        "polarity.sign": when("polarity", -1.0, neutral=1.0),
        "noise.active": when("noise", 1.0),
        "noise.snr_db": when("noise", q["noise.snr_db"]),
        "background.active": when("background", 1.0),
        "background.snr_db": when("background", q["background.snr_db"]),
    }
    return torch.stack([cols[name] for name in PARAM_NAMES], dim=1)


def _span(p: float, neutral: float, values: tuple[float, ...]) -> tuple[float, float]:
    """Smallest and largest value of a column: ``values`` when the transform may run
    (``p > 0``), ``neutral`` when it may not (``p < 1``)."""
    seen = ([neutral] if p < 1 else []) + (list(values) if p > 0 else [])
    return min(seen), max(seen)


def param_ranges(cfg: AugmentConfig) -> tuple[Tensor, Tensor]:
    """``(lo, hi)``, each ``(len(PARAM_NAMES),)`` float32: the values each column of
    :func:`applied_params` can take under ``cfg``."""
    f, share = cfg.filter, cfg.filter.highpass_share
    cutoffs = ([f.min_highpass_hz, f.max_highpass_hz] if share > 0 else []) + (
        [f.min_lowpass_hz, f.max_lowpass_hz] if share < 1 else []
    )
    pitch = cfg.pitch
    grid_hi = pitch.min_semitones + pitch.semitone_step * math.floor(
        (pitch.max_semitones - pitch.min_semitones) / pitch.semitone_step + 1e-6
    )
    on_off = (0.0, 1.0)
    spans = {
        "pitch.semitones": _span(pitch.p, 0.0, (pitch.min_semitones, grid_hi)),
        "filter.highpass": _span(f.p, 0.0, tuple({float(share > 0), float(share == 1)})),
        "filter.lowpass": _span(f.p, 0.0, tuple({float(share < 1), float(share == 0)})),
        "filter.log2_cutoff_hz": _span(f.p, 0.0, tuple(math.log2(c) for c in cutoffs)),
        "gain.gain_db": _span(cfg.gain.p, 0.0, (cfg.gain.min_gain_db, cfg.gain.max_gain_db)),
        "delay.active": _span(cfg.delay.p, 0.0, on_off[1:]),
        "reverb.wet": _span(cfg.reverb.p, 0.0, (cfg.reverb.min_wet, cfg.reverb.max_wet)),
        "reverb.rt60_s": _span(cfg.reverb.p, 0.0, (cfg.reverb.min_rt60_s, cfg.reverb.max_rt60_s)),
        "polarity.sign": _span(cfg.polarity.p, 1.0, (-1.0,)),
        "noise.active": _span(cfg.noise.p, 0.0, on_off[1:]),
        "noise.snr_db": _span(cfg.noise.p, 0.0, (cfg.noise.min_snr_db, cfg.noise.max_snr_db)),
        "background.active": _span(cfg.background.p, 0.0, on_off[1:]),
        "background.snr_db": _span(
            cfg.background.p, 0.0, (cfg.background.min_snr_db, cfg.background.max_snr_db)
        ),
    }
    lo, hi = zip(*(spans[name] for name in PARAM_NAMES), strict=True)
    return torch.tensor(lo, dtype=torch.float32), torch.tensor(hi, dtype=torch.float32)
