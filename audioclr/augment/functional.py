"""Pure tensor functions for waveform augmentation on ``(batch, samples)``.

Every function takes per-example parameter tensors of shape ``(batch,)`` and returns a tensor of
the input's shape, dtype and device; examples whose parameters make the transform an identity
(gain 0 dB, volume 0, wet 0) pass through unchanged. Functions that draw take a ``torch.Generator``.

Example:
    >>> x = torch.randn(4, 22050)
    >>> y = polarity_gain(x, torch.tensor([True, False, True, False]),
    ...                   torch.tensor([0.0, -6.0, -12.0, -20.0]))
    >>> y.shape
    torch.Size([4, 22050])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

EPS = 1e-12


def rms(x: Tensor) -> Tensor:
    """Root-mean-square per example: ``(batch, samples) -> (batch,)``."""
    return x.pow(2).mean(dim=-1).sqrt()


def fast_fft_size(n: int) -> int:
    """Smallest ``256 m >= n`` with ``m = 2^a 3^b 5^c``: FFT sizes that are fast.

    The factor 256 keeps the odd part small: sizes with few factors of two are slow even when
    smooth (60750 = 2 3^5 5^3 runs 2.6x slower than 61440 = 2^12 3 5 on CPU).
    """
    m = max(1, math.ceil(n / 256))
    best, p5 = 1 << max(0, math.ceil(math.log2(m))), 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            best = min(best, p35 * (1 << max(0, math.ceil(math.log2(m / p35)))))
            p35 *= 3
        p5 *= 5
    return 256 * best


def polarity_gain(x: Tensor, flip: Tensor, gain_db: Tensor) -> Tensor:
    """Negate the examples where ``flip`` ``(batch,) bool`` is true and multiply each by
    ``10 ** (gain_db / 20)`` (``(batch,)``): one pass over the batch."""
    factor = torch.pow(10.0, gain_db / 20.0) * (1.0 - 2.0 * flip.to(gain_db.dtype))
    return x * factor.to(x.dtype)[:, None]


def add_noise(x: Tensor, snr_db: Tensor, generator: torch.Generator, active: Tensor) -> Tensor:
    """Add white Gaussian noise at ``snr_db`` ``(batch,)`` where ``active`` ``(batch,) bool``.

    The noise RMS is the example's RMS divided by ``10 ** (snr_db / 20)`` (no noise on silence).
    """
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x)
    scale = rms(x) / torch.pow(10.0, snr_db / 20.0) * active
    return x + noise * scale.to(x.dtype)[:, None]


def echoes(x: Tensor, delay_samples: Tensor, volume: Tensor, count: int) -> Tensor:
    """Echoes ``(x + sum_k v^k x[t - k d]) / (1 + sum_k v^k)``, ``k = 1..count``, cut at the
    clip's end; ``delay_samples`` ``(batch,)`` int, ``volume`` ``(batch,)`` in [0, 1].

    One ``gather`` per echo from the clip padded in front with zeros: no masks, no loop over
    examples.
    """
    n = x.shape[-1]
    d = delay_samples.to(x.device).long()[:, None]
    room = count * int(d.max()) if d.numel() else 0
    padded = torch.nn.functional.pad(x, (room, 0))
    t = torch.arange(room, room + n, device=x.device)[None, :]
    v = volume.to(x.device, x.dtype)[:, None]
    out = x.clone()
    for k in range(1, count + 1):
        out.addcmul_(padded.gather(1, t - k * d), v**k)
    return out.div_(sum(v**k for k in range(count + 1)))


def pitch_shift(x: Tensor, semitones: Tensor, n_fft: int = 1024, hop: int | None = None) -> Tensor:
    """Shift example ``i`` by ``semitones[i]`` ``(batch,)``; length and RMS kept.

    Phase-vocoder pitch shift in one STFT pass for the whole batch (no resampling, no grouping):
    each output bin ``j`` takes the magnitude of input bin ``j / r`` (``r = 2 ** (st / 12)``,
    linear interpolation) and that bin's instantaneous frequency times ``r``; phases are
    re-accumulated from each source bin's first-frame phase taken about the frame centre (so a
    shift of 0 reconstructs the input, and a tone's lobe stays coherent: no beating, no clicks at
    the edges) and the result is inverted with ``istft``. Zero padding at the edges, and a hop of
    ``n_fft // 4`` so instantaneous frequencies within the window's main lobe (+-2 bins) are
    unambiguous (a hop of ``n_fft // 2`` mis-shifts tones by up to a semitone).
    """
    n, hop = x.shape[-1], hop or n_fft // 4
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(
        x.float(), n_fft, hop, window=window, pad_mode="constant", return_complex=True
    )
    mag, phase = spec.abs(), spec.angle()  # (batch, freq, frames)
    nbins = spec.shape[1]
    bins = torch.arange(nbins, device=x.device, dtype=torch.float32)
    expected = (2 * math.pi * hop / n_fft) * bins[:, None]
    dphi = torch.diff(phase, dim=-1).sub_(expected)
    omega = dphi.add_(math.pi).remainder_(2 * math.pi).add_(expected - math.pi)  # rad per hop
    ratio = torch.pow(2.0, semitones.float() / 12.0)[:, None]
    src = bins[None, :] / ratio  # (batch, freq): where each output bin reads from
    lo = src.floor().long().clamp(max=nbins - 1)
    hi = (lo + 1).clamp(max=nbins - 1)
    frac = src - lo
    nearest = torch.where(frac < 0.5, lo, hi)
    inside = (src <= nbins - 1).float()  # bins read from above Nyquist are silent

    def take(v: Tensor, i: Tensor) -> Tensor:
        return v.gather(1, i[..., None].expand(-1, -1, v.shape[-1]))

    out_mag = take(mag, lo).mul_(((1 - frac) * inside)[..., None])
    out_mag.addcmul_(take(mag, hi), (frac * inside)[..., None])
    # first-frame phases relative to the frame centre (removes the (-1)^k of an uncentred window)
    centred = phase[..., :1] + math.pi * bins[:, None]
    start = take(centred, nearest) - math.pi * bins[:, None]
    # phase steps scaled by the ratio, wrapped to [-pi, pi) so the cumsum stays small
    out_phase = torch.empty_like(mag)
    torch.mul(take(omega, nearest), ratio[..., None], out=out_phase[..., 1:])
    out_phase[..., 1:].add_(math.pi).remainder_(2 * math.pi).sub_(math.pi)
    out_phase[..., :1] = start
    out_phase = out_phase.cumsum_(-1)
    out = torch.complex(out_mag * torch.cos(out_phase), out_mag.mul_(torch.sin(out_phase)))
    y = torch.istft(out, n_fft, hop, window=window, length=n)
    return (y * (rms(x.float()) / (rms(y) + EPS))[:, None]).to(x.dtype)


def synthetic_ir(
    rt60_s: Tensor, length: int, sample_rate: int, generator: torch.Generator
) -> Tensor:
    """Impulse responses ``(batch, length)``: noise under ``exp(-6.91 t / rt60)``, unit energy.

    The envelope reaches -60 dB at ``t = rt60``; the first tap is the direct sound.
    """
    device = rt60_s.device
    t = torch.arange(length, device=device, dtype=torch.float32)[None, :] / sample_rate
    noise = torch.randn((rt60_s.shape[0], length), generator=generator, device=generator.device)
    noise = noise.to(device)
    ir = noise.mul_(torch.exp(-math.log(1000.0) * t / rt60_s.float()[:, None]))
    ir[:, 0] = 1.0
    return ir.div_(torch.linalg.vector_norm(ir, dim=-1, keepdim=True))


def reverb(x: Tensor, ir: Tensor, which: Tensor, wet: Tensor) -> Tensor:
    """``(1 - wet) x + wet (x * ir[which])``: linear FFT convolution, truncated to ``x``'s length.

    ``ir`` is ``(responses, ir_samples)``, ``which`` ``(batch,)`` picks each example's response
    (one FFT per response, shared by the examples that pick it), ``wet`` ``(batch,)`` (0 =
    identity). Rows sorted by ``which`` multiply each response's spectrum into their slice in
    place; otherwise the responses' spectra are gathered per row (a copy of the batch's size).
    """
    n = x.shape[-1]
    size = fast_fft_size(n + ir.shape[-1] - 1)
    spectrum = torch.fft.rfft(x.float(), n=size)
    responses = torch.fft.rfft(ir.float(), n=size)
    ascending = bool((which[1:] > which[:-1]).all())
    if ascending and len(which) == len(responses):  # which = 0, 1, ...: one response each
        spectrum *= responses
    elif len(which) and bool((which[1:] >= which[:-1]).all()):
        used, counts = torch.unique_consecutive(which, return_counts=True)
        start = 0
        for j, count in zip(used.tolist(), counts.tolist(), strict=True):
            spectrum[start : start + count] *= responses[j]
            start += count
    else:
        spectrum *= responses[which]
    wet_signal = torch.fft.irfft(spectrum, n=size)[..., :n]
    return torch.lerp(x.float(), wet_signal, wet.float()[:, None]).to(x.dtype)


def mix_background(x: Tensor, partner: Tensor, snr_db: Tensor, active: Tensor) -> Tensor:
    """Add ``x[partner[i]]`` to example ``i`` at ``snr_db`` where ``active`` (all ``(batch,)``)."""
    other = x[partner]
    scale = rms(x) / (rms(other) * torch.pow(10.0, snr_db / 20.0) + EPS) * active
    return x + other * scale.to(x.dtype)[:, None]


def mask_along(spec: Tensor, starts: Tensor, widths: Tensor, axis: int, fill: Tensor) -> Tensor:
    """Set ``[start, start + width)`` along ``axis`` of ``(batch, mels, frames)`` to ``fill``.

    ``axis`` 1 masks mels, 2 masks frames. ``starts``/``widths`` are ``(batch, masks)`` (a width
    of 0 masks nothing); ``fill`` is ``(batch,)``.
    """
    positions = torch.arange(spec.shape[axis], device=spec.device)
    inside = (positions[None, None, :] >= starts[..., None]) & (
        positions[None, None, :] < (starts + widths)[..., None]
    )
    masked = inside.any(dim=1)
    masked = masked[:, :, None] if axis == 1 else masked[:, None, :]
    return torch.where(masked, fill.to(spec.dtype)[:, None, None], spec)
