"""Shared test helpers: synthetic audio written to tmp_path, small and seeded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def tone(freq: float, sample_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine of ``freq`` Hz, ``(samples,)``."""
    t = np.arange(int(round(sample_rate * seconds))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(path: Path, x: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    """Write ``x`` ((samples,) or (samples, channels)) with soundfile; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sample_rate, subtype=subtype)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator."""
    return np.random.default_rng(1234)


@pytest.fixture
def one_faiss_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread for the test: tests run beside other work on few cores, where
    OpenMP spinning makes 2 threads far slower. Use with ``pytest.mark.usefixtures``."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
