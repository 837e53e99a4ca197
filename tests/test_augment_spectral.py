"""The fused FFT pass of the batched path, checked against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audioclr.augment import spectral as S
from audioclr.augment.batched import semitone_grid
from audioclr.augment.functional import echoes

SR = 16000


def smooth(m: int) -> bool:
    for p in (2, 3, 5, 7, 11):
        while m % p == 0:
            m //= p
    return m == 1


@pytest.mark.parametrize("length", [16000, 60559, 80404])
def test_fft_plan_ratios_match_every_shift_of_the_grid(length: int) -> None:
    shifts = tuple(semitone_grid(-7.0, 7.0, 1.0).tolist())
    n1, n2 = S.fft_plan(length, shifts)
    assert length <= n1 <= 1.3 * length and smooth(n1)
    for st in shifts:
        assert smooth(n2[st]) and n2[st] % 8 == 0
        assert abs(12 * math.log2(n1 / n2[st]) - st) < 0.06  # 0.05 where sizes allow


def no_filter(batch: int) -> S.FilterParams:
    off = torch.zeros(batch, dtype=torch.bool)
    return S.FilterParams(torch.full((batch,), 1000.0), off, off, order=4)


def test_echoes_equal_the_time_domain_sum() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, SR)).astype(np.float32)
    d, v = np.array([1600, 2400, 4000]), np.array([0.3, 0.5, 0.7])
    y = echoes(torch.from_numpy(x), torch.from_numpy(d), torch.from_numpy(v).float(), 2).numpy()
    for row, xi, di, vi in zip(y, x, d, v, strict=True):
        expected = xi.copy()
        expected[di:] += vi * xi[:-di]
        expected[2 * di :] += vi**2 * xi[: -2 * di]
        np.testing.assert_allclose(row, expected / (1 + vi + vi**2), atol=1e-5)


def test_no_filter_no_shift_gives_the_input_back() -> None:
    x = torch.randn(4, 5000)
    y = S.filter_shift(x, no_filter(4), torch.zeros(4), (3.0,), SR, 2048)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("highpass", [False, True])
def test_interpolated_response_matches_the_butterworth_formula(highpass: bool) -> None:
    cutoff = torch.tensor([250.0, 1000.0, 3000.0])
    params = S.FilterParams(
        cutoff, torch.full((3,), highpass), torch.ones(3, dtype=torch.bool), order=4
    )
    n_fft = 48000
    got = S.butterworth_response(n_fft, SR, params).double()
    f = torch.fft.rfftfreq(n_fft, 1 / SR).double()[None, :]
    ratio = cutoff.double()[:, None] / f if highpass else f / cutoff.double()[:, None]
    exact = (1 + ratio**8).rsqrt()
    error_db = 20 * (got / exact).log10().abs()
    assert error_db[exact > 1e-3].max() < 0.05  # down to -60 dB
    assert error_db[exact > 1e-5].max() < 0.5  # down to -100 dB


def test_shift_groups_leave_unshifted_examples_exact_and_shift_the_rest() -> None:
    t = np.arange(SR) / SR
    x = torch.from_numpy(np.stack([np.sin(2 * np.pi * 500 * t)] * 3)).float()
    shift = torch.tensor([0.0, 12.0, -12.0])
    y = S.filter_shift(x, no_filter(3), shift, (-12.0, 0.0, 12.0), SR, 2960)
    torch.testing.assert_close(y[0], x[0], atol=1e-5, rtol=0)
    for row, hz in zip(y[1:].numpy(), (1000.0, 250.0), strict=True):
        spec = np.abs(np.fft.rfft(row * np.hanning(len(row))))
        assert abs(12 * math.log2(np.argmax(spec) * SR / len(row) / hz)) < 0.1
