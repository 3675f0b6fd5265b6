"""Octave arbitration from a note's spectrum.

Yin-style trackers slip by an octave on guitar: a strong second harmonic reads as the
fundamental (an octave up), a weak fundamental as a period of two cycles (an octave down).
The harmonic series decides: a true fundamental f has energy at the odd multiples of f, and
no series starts at f/2.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["settle_octave"]

_MAX_HZ = 4500.0


def _peak(mag: np.ndarray, bin_hz: float, hz: float) -> float:
    lo = max(1, int(hz * 0.97 / bin_hz))
    hi = int(hz * 1.03 / bin_hz) + 2
    return float(mag[lo:hi].max()) if hi <= len(mag) else 0.0


def _series(mag: np.ndarray, bin_hz: float, f0: float, multiples: tuple[float, ...]) -> float:
    vals = [_peak(mag, bin_hz, k * f0) for k in multiples if k * f0 < _MAX_HZ]
    return float(np.mean(vals)) if vals else 0.0


@lru_cache(maxsize=64)
def _hann(n: int) -> np.ndarray:
    return np.hanning(n)


def settle_octave(window: np.ndarray, sample_rate: int, hz: float, min_hz: float) -> int:
    """−1, 0 or +1: the octave shift the spectrum of ``window`` says ``hz`` needs."""
    n = 1 << int(np.ceil(np.log2(len(window) * 2)))
    mag = np.abs(np.fft.rfft(window * _hann(len(window)), n))
    bin_hz = sample_rate / n
    odd = _series(mag, bin_hz, hz, (1, 3, 5))
    even = _series(mag, bin_hz, hz, (2, 4, 6))
    if even > 0 and odd < 0.1 * even:
        return +1
    half = hz / 2
    if half >= min_hz:
        sub = _series(mag, bin_hz, half, (1, 3, 5))
        main = _series(mag, bin_hz, hz, (1, 2, 3))
        if main > 0 and sub > 0.25 * main:
            return -1
    return 0
