"""Typed configuration of the augmentation chain (YAML key ``augment``).

One small dataclass per transform: ``p`` is the probability of applying it and nothing else;
every range carries its unit in its name. Defaults are the CLMR chain (Spijkervet & Burgess,
2021); the spectrogram options (``time_mask``, ``freq_mask``) and ``background`` mixing are
off by default (``p = 0``). Chain order: background, polarity, noise, gain, filter, delay,
pitch, reverb (crop is done by :class:`audioclr.data.pairs.PairDataset`).

Example:
    >>> from audioclr.config import load_config
    >>> cfg = load_config(AugmentConfig, None, ["gain.p=0.5", "pitch.max_semitones=4"])
    >>> cfg.gain.p, cfg.pitch.max_semitones
    (0.5, 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audioclr.config import require

_PREFIX = "augment"
MASK_FILLS = ("mean", "zero")
PITCH_METHODS = ("stft", "grain")


def _check_p(section: str, p: float) -> None:
    require(0.0 <= p <= 1.0, f"{_PREFIX}.{section}.p", p, "must be a probability in [0, 1]")


def _check_fill(section: str, fill: str) -> None:
    require(
        fill in MASK_FILLS, f"{_PREFIX}.{section}.fill", fill, f"must be one of {list(MASK_FILLS)}"
    )


def _check_range(
    section: str, name: str, lo: float, hi: float, min_ok: float, max_ok: float
) -> None:
    """Check ``min_<name> <= max_<name>`` and both inside ``[min_ok, max_ok]``."""
    lo_key, hi_key = f"{_PREFIX}.{section}.min_{name}", f"{_PREFIX}.{section}.max_{name}"
    require(min_ok <= lo <= max_ok, lo_key, lo, f"must be in [{min_ok}, {max_ok}]")
    require(min_ok <= hi <= max_ok, hi_key, hi, f"must be in [{min_ok}, {max_ok}]")
    require(lo <= hi, lo_key, lo, f"must be <= {hi_key} ({hi})")


@dataclass
class PolarityConfig:
    """Flip the sign of the waveform."""

    p: float = 0.8

    def __post_init__(self) -> None:
        _check_p("polarity", self.p)


@dataclass
class NoiseConfig:
    """Add white Gaussian noise at a signal-to-noise ratio drawn uniformly in dB."""

    p: float = 0.01
    min_snr_db: float = 10.0
    max_snr_db: float = 40.0

    def __post_init__(self) -> None:
        _check_p("noise", self.p)
        _check_range("noise", "snr_db", self.min_snr_db, self.max_snr_db, -40.0, 100.0)


@dataclass
class GainConfig:
    """Multiply by a gain drawn uniformly in dB."""

    p: float = 0.3
    min_gain_db: float = -20.0
    max_gain_db: float = -1.0

    def __post_init__(self) -> None:
        _check_p("gain", self.p)
        _check_range("gain", "gain_db", self.min_gain_db, self.max_gain_db, -96.0, 24.0)


@dataclass
class FilterConfig:
    """Butterworth-magnitude high-pass or low-pass; cutoff drawn uniformly on the mel scale.

    ``highpass_share`` is the chance that an applied filter is the high-pass (else low-pass).
    ``rolloff_db_per_octave`` (multiple of 6) is the slope past the cutoff.
    """

    p: float = 0.8
    highpass_share: float = 0.5
    min_highpass_hz: float = 200.0
    max_highpass_hz: float = 1200.0
    min_lowpass_hz: float = 2200.0
    max_lowpass_hz: float = 4000.0
    rolloff_db_per_octave: int = 24

    def __post_init__(self) -> None:
        _check_p("filter", self.p)
        require(
            0.0 <= self.highpass_share <= 1.0,
            f"{_PREFIX}.filter.highpass_share",
            self.highpass_share,
            "must be in [0, 1]",
        )
        _check_range(
            "filter", "highpass_hz", self.min_highpass_hz, self.max_highpass_hz, 1.0, 96000.0
        )
        _check_range("filter", "lowpass_hz", self.min_lowpass_hz, self.max_lowpass_hz, 1.0, 96000.0)
        require(
            self.rolloff_db_per_octave > 0 and self.rolloff_db_per_octave % 6 == 0,
            f"{_PREFIX}.filter.rolloff_db_per_octave",
            self.rolloff_db_per_octave,
            "must be a positive multiple of 6 (6 dB/octave per filter order)",
        )


@dataclass
class DelayConfig:
    """Echoes: ``y = (x + sum_k v^k x[n - k d]) / (1 + sum_k v^k)`` for ``k = 1..echoes``."""

    p: float = 0.3
    min_delay_ms: float = 200.0
    max_delay_ms: float = 450.0
    min_volume: float = 0.3
    max_volume: float = 0.7
    echoes: int = 2

    def __post_init__(self) -> None:
        _check_p("delay", self.p)
        _check_range("delay", "delay_ms", self.min_delay_ms, self.max_delay_ms, 1.0, 5000.0)
        _check_range("delay", "volume", self.min_volume, self.max_volume, 0.0, 1.0)
        require(
            1 <= self.echoes <= 16, f"{_PREFIX}.delay.echoes", self.echoes, "must be in [1, 16]"
        )


@dataclass
class PitchConfig:
    """Pitch shift by semitones drawn uniformly on a grid of ``semitone_step``; length kept.

    ``method`` picks the batched algorithm. ``"grain"`` (the default) resamples each clip exactly
    in the FFT pass it shares with the filter, and plays it back at its length with
    two read heads that take turns over ``grain_ms`` grains; a tone dips briefly where the heads
    crossfade and partials' levels move by about 1 dB (a few at worst: the heads comb-filter).
    ``"stft"`` is a phase vocoder: steady tones, but the whole batched chain takes about 4x as
    long on CPU. The CPU path always uses audiomentations' signalsmith shifter.

    With ``grain``, each distinct shift in a batch costs one inverse FFT call, so a finer
    ``semitone_step`` is slower: for 64 clips of 2.7 s on 2 CPU cores, a step of 0.5 took 15 %
    longer a batch than the default 1 and a step of 0.1 took 80 % longer (one run).
    """

    p: float = 0.6
    min_semitones: float = -7.0
    max_semitones: float = 7.0
    semitone_step: float = 1.0
    method: str = "grain"
    grain_ms: float = 185.0

    def __post_init__(self) -> None:
        _check_p("pitch", self.p)
        _check_range("pitch", "semitones", self.min_semitones, self.max_semitones, -24.0, 24.0)
        require(
            self.semitone_step >= 0.05,
            f"{_PREFIX}.pitch.semitone_step",
            self.semitone_step,
            "must be >= 0.05",
        )
        require(
            self.method in PITCH_METHODS,
            f"{_PREFIX}.pitch.method",
            self.method,
            f"must be one of {list(PITCH_METHODS)}",
        )
        require(
            10.0 <= self.grain_ms <= 1000.0,
            f"{_PREFIX}.pitch.grain_ms",
            self.grain_ms,
            "must be in [10, 1000]",
        )


@dataclass
class ReverbConfig:
    """Convolution with a synthetic impulse response: exponentially decaying white noise.

    The decay reaches -60 dB after ``rt60_s`` seconds; ``wet`` is the mix of the reverberant
    signal (``y = (1 - wet) x + wet (x * h)``, ``h`` of unit energy).

    ``irs_per_batch`` (batched path): the batch draws this many responses (each its own noise
    and ``rt60_s``) and each example takes one of them at random, with its own ``wet``; one FFT
    per response instead of one per example. ``0`` draws one response per example. The CPU path
    always draws one per example.
    """

    p: float = 0.6
    min_rt60_s: float = 0.2
    max_rt60_s: float = 1.0
    min_wet: float = 0.1
    max_wet: float = 0.5
    irs_per_batch: int = 8

    def __post_init__(self) -> None:
        _check_p("reverb", self.p)
        require(
            self.irs_per_batch >= 0,
            f"{_PREFIX}.reverb.irs_per_batch",
            self.irs_per_batch,
            "must be >= 0 (0 = one impulse response per example)",
        )
        _check_range("reverb", "rt60_s", self.min_rt60_s, self.max_rt60_s, 0.01, 5.0)
        _check_range("reverb", "wet", self.min_wet, self.max_wet, 0.0, 1.0)


@dataclass
class BackgroundConfig:
    """Mix in another clip of the batch at an SNR drawn uniformly in dB (batched path only)."""

    p: float = 0.0
    min_snr_db: float = 0.0
    max_snr_db: float = 20.0

    def __post_init__(self) -> None:
        _check_p("background", self.p)
        _check_range("background", "snr_db", self.min_snr_db, self.max_snr_db, -40.0, 100.0)


@dataclass
class TimeMaskConfig:
    """SpecAugment time masking: ``masks`` masks of width uniform in ``[0, max_frames]``.

    ``fill``: ``"mean"`` (the example's mean, right for log-mel) or ``"zero"``.
    """

    p: float = 0.0
    max_frames: int = 20
    masks: int = 2
    fill: str = "mean"

    def __post_init__(self) -> None:
        _check_p("time_mask", self.p)
        _check_fill("time_mask", self.fill)
        require(
            self.max_frames >= 0, f"{_PREFIX}.time_mask.max_frames", self.max_frames, "must be >= 0"
        )
        require(self.masks >= 0, f"{_PREFIX}.time_mask.masks", self.masks, "must be >= 0")


@dataclass
class FreqMaskConfig:
    """SpecAugment frequency masking: ``masks`` masks of width uniform in ``[0, max_mels]``.

    ``fill``: ``"mean"`` (the example's mean, right for log-mel) or ``"zero"``.
    """

    p: float = 0.0
    max_mels: int = 16
    masks: int = 2
    fill: str = "mean"

    def __post_init__(self) -> None:
        _check_p("freq_mask", self.p)
        _check_fill("freq_mask", self.fill)
        require(self.max_mels >= 0, f"{_PREFIX}.freq_mask.max_mels", self.max_mels, "must be >= 0")
        require(self.masks >= 0, f"{_PREFIX}.freq_mask.masks", self.masks, "must be >= 0")


@dataclass
class AugmentConfig:
    """The whole view-generation chain; one field per transform (see the module docstring)."""

    polarity: PolarityConfig = field(default_factory=PolarityConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    gain: GainConfig = field(default_factory=GainConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    delay: DelayConfig = field(default_factory=DelayConfig)
    pitch: PitchConfig = field(default_factory=PitchConfig)
    reverb: ReverbConfig = field(default_factory=ReverbConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    time_mask: TimeMaskConfig = field(default_factory=TimeMaskConfig)
    freq_mask: FreqMaskConfig = field(default_factory=FreqMaskConfig)


def identity_config() -> AugmentConfig:
    """An ``AugmentConfig`` with every ``p = 0`` (views are plain crops).

    Example:
        >>> identity_config().pitch.p
        0.0
    """
    cfg = AugmentConfig()
    for name in vars(cfg):
        getattr(cfg, name).p = 0.0
    return cfg
