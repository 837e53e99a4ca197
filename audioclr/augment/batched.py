"""The fast path: the whole augmentation chain on a batch, on the training device.

Each transform draws per-example parameters with ``randomize(batch, generator)`` (tensors on the
generator's device) and applies them with ``apply(x, params, generator)``; no Python loop runs per
example; costly transforms run only on the examples they apply to.

With ``return_params=True`` it also returns what each example received, ``(batch, P)``
float32 with the columns of :data:`audioclr.augment.params.PARAM_NAMES` (applied values; neutral
where a transform did not run); the views are the same, bit for bit.

Example:
    >>> aug = BatchedAugment(AugmentConfig(), sample_rate=22050)
    >>> g = torch.Generator().manual_seed(0)
    >>> views = aug(torch.randn(8, 22050), g)        # (batch, samples) -> (batch, samples)
    >>> views, params = aug(torch.randn(8, 22050), g, return_params=True)   # params (8, P)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from audioclr.augment import functional as F
from audioclr.augment import spectral as S
from audioclr.augment.config import AugmentConfig, FreqMaskConfig, TimeMaskConfig
from audioclr.augment.params import applied_params

Params = dict[str, Tensor]


def coin(p: float, batch: int, generator: torch.Generator) -> Tensor:
    """``(batch,)`` bool, each true with probability ``p``."""
    return torch.rand(batch, generator=generator, device=generator.device) < p


def uniform(lo: float, hi: float, batch: int, generator: torch.Generator) -> Tensor:
    """``(batch,)`` float32 uniform in ``[lo, hi]``."""
    return lo + (hi - lo) * torch.rand(batch, generator=generator, device=generator.device)


def hz_to_mel(f: float) -> float:
    """HTK mel scale (as audiomentations draws filter cutoffs)."""
    return 2595.0 * math.log10(1.0 + f / 700.0)


def semitone_grid(lo: float, hi: float, step: float) -> Tensor:
    """The shifts drawn by the pitch transform: ``lo, lo + step, ... <= hi``."""
    return lo + step * torch.arange(int(math.floor((hi - lo) / step + 1e-6)) + 1)


class BatchedAugment(nn.Module):
    """The chain of :class:`AugmentConfig` on ``(batch, samples)``; same device and dtype out.

    ``sample_params`` and ``apply`` are public so a caller (``augment-preview``) can show what
    was drawn; ``forward`` is the two in a row.
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int) -> None:
        super().__init__()
        self.cfg, self.sample_rate = cfg, sample_rate
        self.ir_samples = max(1, int(math.ceil(cfg.reverb.max_rt60_s * sample_rate)))
        self.semitones = semitone_grid(
            cfg.pitch.min_semitones, cfg.pitch.max_semitones, cfg.pitch.semitone_step
        )

    def forward(
        self, x: Tensor, generator: torch.Generator, return_params: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``(batch, samples) -> (batch, samples)``, parameters drawn from ``generator``; with
        ``return_params``, also the applied parameters ``(batch, P)`` (see ``params.py``)."""
        q = self.sample_params(x.shape[0], generator)
        y = self.apply(x, q, generator)
        return (y, applied_params(q).to(y.device)) if return_params else y

    def sample_params(self, batch: int, generator: torch.Generator) -> Params:
        """Draw every transform's per-example parameters; keys ``<transform>.<name>``."""
        c, g, b = self.cfg, generator, batch
        mel_hp = (hz_to_mel(c.filter.min_highpass_hz), hz_to_mel(c.filter.max_highpass_hz))
        mel_lp = (hz_to_mel(c.filter.min_lowpass_hz), hz_to_mel(c.filter.max_lowpass_hz))
        highpass = coin(c.filter.highpass_share, b, g)
        mel = torch.where(highpass, uniform(*mel_hp, b, g), uniform(*mel_lp, b, g))
        pick = torch.randint(len(self.semitones), (b,), generator=g, device=g.device)
        irs = c.reverb.irs_per_batch or b  # responses drawn for the batch, shared at random
        ir = (
            torch.randint(irs, (b,), generator=g, device=g.device)
            if c.reverb.irs_per_batch
            else torch.arange(b, device=g.device)
        )
        return {
            "background.active": coin(c.background.p, b, g) & (b > 1),
            "background.snr_db": uniform(c.background.min_snr_db, c.background.max_snr_db, b, g),
            "background.partner": (
                torch.arange(b, device=g.device)
                + torch.randint(1, max(b, 2), (b,), generator=g, device=g.device)
            )
            % b,
            "polarity.active": coin(c.polarity.p, b, g),
            "noise.active": coin(c.noise.p, b, g),
            "noise.snr_db": uniform(c.noise.min_snr_db, c.noise.max_snr_db, b, g),
            "gain.active": coin(c.gain.p, b, g),
            "gain.gain_db": uniform(c.gain.min_gain_db, c.gain.max_gain_db, b, g),
            "filter.active": coin(c.filter.p, b, g),
            "filter.highpass": highpass,
            "filter.cutoff_hz": 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0),
            "delay.active": coin(c.delay.p, b, g),
            "delay.delay_ms": uniform(c.delay.min_delay_ms, c.delay.max_delay_ms, b, g),
            "delay.volume": uniform(c.delay.min_volume, c.delay.max_volume, b, g),
            "pitch.active": coin(c.pitch.p, b, g),
            "pitch.semitones": self.semitones.to(g.device)[pick],
            "reverb.active": coin(c.reverb.p, b, g),
            "reverb.ir": ir,
            "reverb.rt60_s": uniform(c.reverb.min_rt60_s, c.reverb.max_rt60_s, irs, g)[ir],
            "reverb.wet": uniform(c.reverb.min_wet, c.reverb.max_wet, b, g),
        }

    def apply(self, x: Tensor, params: Params, generator: torch.Generator) -> Tensor:
        """Apply drawn ``params`` to ``x`` ``(batch, samples)`` in the chain order.

        Costly transforms run on the sub-batch of examples they apply to.
        """
        q = {k: v.to(x.device) for k, v in params.items()}
        c = self.cfg
        if q["background.active"].any():
            x = F.mix_background(
                x, q["background.partner"], q["background.snr_db"], q["background.active"]
            )
        x = F.polarity_gain(x, q["polarity.active"], q["gain.gain_db"] * q["gain.active"])
        x = on_subset(
            x,
            q["noise.active"],
            lambda v, i: F.add_noise(v, q["noise.snr_db"][i], generator, torch.ones_like(i) > 0),
        )
        samples = torch.round(q["delay.delay_ms"] * self.sample_rate / 1000.0).long()
        x = on_subset(
            x,
            q["delay.active"],
            lambda v, i: F.echoes(v, samples[i], q["delay.volume"][i], c.delay.echoes),
        )
        x = self._filter_pitch(x, q)
        if c.pitch.method == "stft":
            x = on_subset(
                x,
                q["pitch.active"] & (q["pitch.semitones"] != 0),
                lambda v, i: F.pitch_shift(v, q["pitch.semitones"][i]),
            )
        return on_subset(
            x,
            q["reverb.active"],
            lambda v, i: self._reverb(v, q, i, generator),
            sort_by=q["reverb.ir"],
        )

    def _reverb(self, x: Tensor, q: Params, rows: Tensor, generator: torch.Generator) -> Tensor:
        """Reverb on ``x`` (the examples ``rows`` of the batch): one synthetic response per
        distinct ``reverb.ir`` among them."""
        used, which = torch.unique(q["reverb.ir"][rows], return_inverse=True)  # sorted rows: slices
        rt60 = torch.zeros(len(used), device=x.device).scatter_(0, which, q["reverb.rt60_s"][rows])
        ir = F.synthetic_ir(rt60, min(self.ir_samples, x.shape[-1]), self.sample_rate, generator)
        return F.reverb(x, ir, which, q["reverb.wet"][rows])

    def _filter_pitch(self, x: Tensor, q: Params) -> Tensor:
        """Filter and (``pitch.method: grain``) pitch shift in one FFT round trip for the
        examples that get either (the others go through untouched)."""
        c = self.cfg
        shift = q["pitch.semitones"] * (q["pitch.active"] & (c.pitch.method == "grain"))
        todo = q["filter.active"] | (shift != 0)
        filt = S.FilterParams(
            q["filter.cutoff_hz"],
            q["filter.highpass"],
            q["filter.active"],
            c.filter.rolloff_db_per_octave // 6,
        )
        grain = max(2, round(c.pitch.grain_ms * self.sample_rate / 1000.0))
        grid = tuple(self.semitones.tolist()) if c.pitch.method == "grain" else ()
        return on_subset(
            x,
            todo,
            lambda v, i: S.filter_shift(
                v, S.select(filt, i), shift[i], grid, self.sample_rate, grain
            ),
        )


def on_subset(
    x: Tensor,
    mask: Tensor,
    fn: Callable[[Tensor, Tensor], Tensor],
    sort_by: Tensor | None = None,
) -> Tensor:
    """``fn(x[i], i)`` written back, in place, at the indices ``i`` where ``mask`` ``(batch,)``
    is true (``x`` is a tensor of the chain's own, never the caller's input). With ``sort_by``
    ``(batch,)``, ``i`` is in ascending order of it (stable), so ``fn`` sees groups as slices."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return x
    if sort_by is not None:
        idx = idx[torch.argsort(sort_by[idx], stable=True)]
    if idx.numel() == x.shape[0] and bool((idx == torch.arange(len(idx), device=idx.device)).all()):
        return fn(x, idx)
    return x.index_copy_(0, idx, fn(x.index_select(0, idx), idx))


def describe(params: Params, i: int) -> str:
    """One line naming what was applied to example ``i`` (for previews and logs)."""
    p: dict[str, Any] = {k: v[i].item() for k, v in params.items()}
    parts = []
    if p["background.active"]:
        parts.append(
            f"background(snr={p['background.snr_db']:.1f} dB, clip {p['background.partner']})"
        )
    if p["polarity.active"]:
        parts.append("polarity")
    if p["noise.active"]:
        parts.append(f"noise(snr={p['noise.snr_db']:.1f} dB)")
    if p["gain.active"]:
        parts.append(f"gain({p['gain.gain_db']:.1f} dB)")
    if p["filter.active"]:
        kind = "highpass" if p["filter.highpass"] else "lowpass"
        parts.append(f"{kind}({p['filter.cutoff_hz']:.0f} Hz)")
    if p["delay.active"]:
        parts.append(f"delay({p['delay.delay_ms']:.0f} ms, volume={p['delay.volume']:.2f})")
    if p["pitch.active"] and p["pitch.semitones"] != 0:
        parts.append(f"pitch({p['pitch.semitones']:+.1f} st)")
    if p["reverb.active"]:
        parts.append(f"reverb(rt60={p['reverb.rt60_s']:.2f} s, wet={p['reverb.wet']:.2f})")
    return ", ".join(parts) or "identity"


class SpecAugment(nn.Module):
    """Time and frequency masking on ``(batch, mels, frames)`` with per-example masks.

    Own implementation because ``torchaudio.transforms.TimeMasking`` draws from the global RNG.

    Example:
        >>> sa = SpecAugment(TimeMaskConfig(p=1.0), FreqMaskConfig(p=1.0))
        >>> out = sa(torch.rand(4, 64, 100), torch.Generator().manual_seed(0))
    """

    def __init__(self, time_mask: TimeMaskConfig, freq_mask: FreqMaskConfig) -> None:
        super().__init__()
        self.time_mask, self.freq_mask = time_mask, freq_mask

    def forward(self, spec: Tensor, generator: torch.Generator) -> Tensor:
        """Mask ``spec`` ``(batch, mels, frames)``; returns a new tensor of the same shape."""
        f, t = self.freq_mask, self.time_mask
        spec = self._mask(spec, generator, 1, f.p, f.max_mels, f.masks, f.fill)
        return self._mask(spec, generator, 2, t.p, t.max_frames, t.masks, t.fill)

    @staticmethod
    def _mask(
        spec: Tensor, g: torch.Generator, axis: int, p: float, width: int, masks: int, fill: str
    ) -> Tensor:
        batch, size = spec.shape[0], spec.shape[axis]
        if p == 0 or masks == 0 or width == 0:
            return spec
        width = min(width, size)
        active = coin(p, batch, g)[:, None]
        widths = torch.randint(0, width + 1, (batch, masks), generator=g, device=g.device) * active
        starts = (
            torch.rand((batch, masks), generator=g, device=g.device) * (size - widths + 1)
        ).long()
        value = spec.mean(dim=(1, 2)) if fill == "mean" else spec.new_zeros(batch)
        return F.mask_along(spec, starts.to(spec.device), widths.to(spec.device), axis, value)
