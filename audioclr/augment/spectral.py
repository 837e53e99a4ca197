"""Filter and pitch shift of a batch in one FFT round trip.

The filter is linear and time-invariant, so it is a product in the frequency domain. The pitch
shift joins it: resampling is exact there too (keep or zero-pad the first bins and invert at
another FFT size), and a resampled clip is played back at its original length by two
crossfaded read heads that restart every grain (``grain_stretch``). One ``rfft`` and one
``irfft`` per example therefore do both, where separate transforms would need two round trips
plus a resampler; the heads only copy samples (integer indices shared by every example of a
shift). The echoes that come between the filter and the shift in the chain run before this pass
in the time domain (``functional.echoes``): both are linear and time-invariant, so the order
does not matter, and echo room in the FFT would cost every example a third more work.

Examples are grouped by semitone shift (the synthesis FFT size depends on it): one inverse FFT
per distinct shift in the batch, never a loop per example.

Example:
    >>> x = torch.randn(4, 22050)
    >>> f = FilterParams(torch.full((4,), 1000.0), torch.tensor([True, False, True, False]),
    ...                  torch.ones(4, dtype=torch.bool), order=4)
    >>> y = filter_shift(x, f, torch.tensor([0.0, 3.0, 3.0, -2.0]), (-2.0, 0.0, 3.0),
    ...                  sample_rate=22050, grain=4096)
    >>> y.shape
    torch.Size([4, 22050])
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import torch
from torch import Tensor

FILTER_PAD = 1024  # zeros after the clip, so the zero-phase filter's tails do not wrap around
RATIO_TOLERANCE_ST = 0.05  # the FFT sizes' ratio is the pitch ratio within 5 cents
CROSSFADE = 0.2  # share of a grain period over which the two read heads crossfade
RESPONSE_STRIDE = 8  # bins between exact evaluations of the filter's response
EPS = 1e-12


@dataclass
class FilterParams:
    """Per-example Butterworth-magnitude filter: cutoff (Hz), kind and whether it applies."""

    cutoff_hz: Tensor
    highpass: Tensor
    active: Tensor
    order: int


def select(params: FilterParams, index: Tensor) -> FilterParams:
    """The same parameters for the examples at ``index`` only."""
    return replace(
        params,
        cutoff_hz=params.cutoff_hz[index],
        highpass=params.highpass[index],
        active=params.active[index],
    )


@lru_cache(maxsize=8)
def _smooth_sizes(limit: int) -> tuple[int, ...]:
    """Multiples of 8 up to ``limit`` with no prime factor above 11: sizes pocketfft/cuFFT like."""
    sizes = []
    for m in range(8, limit + 1, 8):
        k = m
        for p in (2, 3, 5, 7, 11):
            while k % p == 0:
                k //= p
        if k == 1:
            sizes.append(m)
    return tuple(sizes)


@lru_cache(maxsize=64)
def fft_plan(length: int, shifts: tuple[float, ...]) -> tuple[int, dict[float, int]]:
    """Analysis FFT size ``>= length`` and a synthesis size per shift in semitones.

    ``analysis / synthesis[st]`` is ``2 ** (st / 12)`` within ``RATIO_TOLERANCE_ST`` where sizes
    allow (else as close as analysis sizes up to ``1.3 length`` allow: 0.15 semitone at worst for
    a grid of 0.05 semitone over two octaves); both are smooth. The smallest analysis size that
    meets the tolerance is chosen.

    Example:
        >>> n1, n2 = fft_plan(60000, (-7.0, 0.0, 7.0))
        >>> n1 >= 60000 and abs(12 * math.log2(n1 / n2[7.0]) - 7.0) < 0.05
        True
    """
    top = length * 1.3 * max(2.0 ** (-st / 12.0) for st in (*shifts, 0.0))
    sizes = _smooth_sizes(1 << max(17, math.ceil(math.log2(top)) + 1))
    best: tuple[tuple[bool, float], int, dict[float, int]] | None = None
    for n1 in sizes[bisect.bisect_left(sizes, length) : bisect.bisect_right(sizes, length * 1.3)]:
        n2 = {st: _nearest(sizes, n1 / 2.0 ** (st / 12.0)) for st in shifts}
        worst = max(abs(12.0 * math.log2(n1 / n2[st]) - st) for st in shifts)
        key = (worst > RATIO_TOLERANCE_ST, n1 if worst <= RATIO_TOLERANCE_ST else worst)
        if best is None or key < best[0]:
            best = (key, n1, n2)
    assert best is not None
    return best[1], best[2]


def _nearest(sizes: tuple[int, ...], target: float) -> int:
    """The size closest to ``target`` in ratio."""
    i = bisect.bisect_left(sizes, target)
    return min(sizes[max(0, i - 1) : i + 1], key=lambda m: abs(math.log(m / target)))


def butterworth_response(n_fft: int, sample_rate: int, params: FilterParams) -> Tensor:
    """Magnitude ``(batch, n_fft // 2 + 1)``: ``1 / sqrt(1 + (f / fc) ** 2n)`` (high-pass:
    ``fc / f``); 1 where the filter is off.

    Evaluated every ``RESPONSE_STRIDE`` bins and interpolated linearly in between: the
    response is smooth on that scale (a few Hz), and this costs one pass instead of six.
    """
    bins = n_fft // 2 + 1
    coarse = math.ceil((bins - 1) / RESPONSE_STRIDE)
    device = params.cutoff_hz.device
    freqs = torch.arange(coarse + 1, device=device) * (RESPONSE_STRIDE * sample_rate / n_fft)
    fc = params.cutoff_hz.float()[:, None]
    ratio = torch.where(params.highpass[:, None], fc / freqs, freqs / fc)
    response = torch.rsqrt(1.0 + ratio.pow(2 * params.order))
    response = torch.where(params.active[:, None], response, 1.0)
    fine = torch.nn.functional.interpolate(
        response[:, None], size=coarse * RESPONSE_STRIDE + 1, mode="linear", align_corners=True
    )
    return fine[:, 0, :bins]


@lru_cache(maxsize=64)
def _grain_plan(
    length: int, ratio: float, window: int, source: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Indices ``(2 * length,)`` into a ``source``-sample clip read by the two heads, and the first
    head's weight ``(length,)``.

    Head ``h`` reads the source clip (time ``p``) at ``t - phase_h(t) * window`` with a sawtooth
    ``phase_h = frac((1 - ratio) t / window + h / 2)``: within a grain it advances ``ratio``
    source samples per output sample, i.e. one sample of the clip resampled by ``ratio``. The
    heads take turns: each plays alone for most of its half of the period and they crossfade
    (raised cosine, weights summing to one) over ``CROSSFADE`` of the period after each restart,
    where the restarting head is silent. Before the first restart the heads read one window
    ahead instead of before the start.

    Short crossfades keep the heads' comb filtering (two copies half a grain apart) brief:
    measured on two-partial tones over +-7 semitones, partials' levels move by 1.1 dB on average
    (3.5 dB at worst) against 1.9 (6.0) with crossfades over the whole period.
    """
    t = torch.arange(length, dtype=torch.float64)
    sweep = torch.remainder((1.0 - ratio) * t / window, 1.0)
    index = []
    for offset in (0.0, 0.5):
        phase = torch.remainder(sweep + offset, 1.0)
        position = t - phase * window
        position = torch.where(position < 0, position + window, position)
        index.append(torch.round(position / ratio).long())
    phase = torch.remainder(sweep, 1.0)
    fade_in = torch.sin(0.5 * math.pi * (phase / CROSSFADE).clamp(max=1.0)).square()
    fade_out = torch.sin(0.5 * math.pi * ((phase - 0.5) / CROSSFADE).clamp(0.0, 1.0)).square()
    weight = torch.where(phase < 0.5, fade_in, 1.0 - fade_out)  # the first head's
    both = torch.cat(index).clamp_(max=source - 1)
    return both.to(device), weight.float().to(device)


def grain_stretch(y: Tensor, length: int, ratio: float, window: int, gain: float = 1.0) -> Tensor:
    """Play ``y`` (a clip resampled by ``ratio``) at ``length`` samples: its pitch, the clip's
    duration; RMS that of the part of ``y`` that holds the clip, times ``gain``.

    Example:
        >>> grain_stretch(torch.randn(2, 8000), 10000, 1.25, 2048).shape
        torch.Size([2, 10000])
    """
    index, weight = _grain_plan(length, ratio, window, y.shape[-1], y.device)
    both = y.index_select(1, index).view(y.shape[0], 2, length)
    out = torch.lerp(both[:, 1], both[:, 0], weight)
    held = y[:, : max(1, min(y.shape[-1], round(length / ratio)))]
    level = torch.linalg.vector_norm(held, dim=-1) * (gain * math.sqrt(length / held.shape[-1]))
    return out.mul_((level / (torch.linalg.vector_norm(out, dim=-1) + EPS))[:, None])


def filter_shift(
    x: Tensor,
    filt: FilterParams,
    shift: Tensor,
    shifts: tuple[float, ...],
    sample_rate: int,
    grain: int,
) -> Tensor:
    """Filter, then shift example ``i`` of ``x`` ``(batch, samples)`` by ``shift[i]`` semitones
    (a value of ``shifts``; 0 = none), in one FFT round trip; length kept.

    One ``rfft`` for the batch (sized from the clip length and ``shifts``, not from what the
    batch drew, so a view does not depend on the rest of its batch), one ``irfft`` per distinct
    shift.
    """
    n = x.shape[-1]
    n1, n2s = fft_plan(n + FILTER_PAD, tuple(sorted({0.0, *shifts})))
    order = torch.argsort(shift, stable=True)  # rows of one shift next to each other
    spec = torch.fft.rfft(x.float()[order], n=n1)
    spec *= butterworth_response(n1, sample_rate, select(filt, order))
    values, counts = torch.unique_consecutive(shift[order], return_counts=True)
    out, start = torch.empty_like(x), 0
    for st, count in zip(values.tolist(), counts.tolist(), strict=True):
        piece = _synthesise(spec[start : start + count], n, n1, n2s[st], grain)
        out.index_copy_(0, order[start : start + count], piece.to(x.dtype))
        start += count
    return out


def _synthesise(spec: Tensor, length: int, n1: int, n2: int, grain: int) -> Tensor:
    """Invert ``spec`` (of an ``n1``-point FFT) at ``n2`` points (``irfft`` keeps or zero-pads
    the first bins): the clip resampled by ``n1 / n2``, played at ``length`` samples when
    resampled (``irfft`` divides by ``n2`` where the clip's own scale is ``1 / n1``)."""
    if n2 == n1:
        return torch.fft.irfft(spec, n=n1)[:, :length]
    return grain_stretch(torch.fft.irfft(spec, n=n2), length, n1 / n2, grain, gain=n2 / n1)
