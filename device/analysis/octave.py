"""Register arbitration from a note's spectrum.

Yin-style trackers slip on guitar: a strong second harmonic reads as the fundamental (an octave
up), a weak fundamental as a period of two or more cycles (an octave, a twelfth or two octaves
down), and strings still ringing from earlier notes pull the period to one they share (FluidR3's
steel guitar reads E♭4 over a ringing B♭3 as E♭2). The harmonic series decides: a true
fundamental f has energy at the multiples of f that are not multiples of 2f, 3f or 4f; and a
note's own partials are the ones that rose at its attack, so ringing neighbours are taken out by
subtracting the spectrum from just before the attack.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

__all__ = ["settle_register"]

_MAX_HZ = 4500.0
_MULTIPLES = (2, 3, 4)
# A multiple k·f is the note when f's other partials are this weak against k·f's own...
_OFF_SERIES = 0.05
# ...and k·f's partials are the note's: at least this share of their level is new since the
# attack (a re-picked note of the same pitch rises little and is left alone).
_ROSE = 0.5


def _partials(mag: np.ndarray, bin_hz: float, f0: float, count: int) -> list[float | None]:
    """The spectrum's peak within ±3 % of each of ``f0``'s first ``count`` multiples (index 0
    is f0 itself); None past the top."""
    hz = f0 * np.arange(1, count + 1)
    lo = np.maximum(1, (hz * 0.97 / bin_hz).astype(np.intp))
    hi = (hz * 1.03 / bin_hz).astype(np.intp) + 2
    ok = (hz < _MAX_HZ) & (hi < len(mag))
    peaks = np.maximum.reduceat(mag, np.column_stack((lo[ok], hi[ok])).ravel())[::2]
    return [float(v) for v in peaks] + [None] * (count - len(peaks))


def _mean(partials: list[float | None], multiples: Iterable[int]) -> float:
    """Mean over the given multiples (1-based) that lie inside the spectrum."""
    vals = [v for k in multiples if (v := partials[k - 1]) is not None]
    return sum(vals) / len(vals) if vals else 0.0


@lru_cache(maxsize=64)
def _hann(n: int) -> np.ndarray:
    return np.hanning(n)


def _spectrum(window: np.ndarray, n: int) -> np.ndarray:
    return np.abs(np.fft.rfft(window * _hann(len(window)), n))


def settle_register(
    window: np.ndarray,
    before: np.ndarray | None,
    sample_rate: int,
    hz: float,
    *,
    min_hz: float,
    max_hz: float,
) -> float:
    """The factor (½, 1, 2, 3 or 4) by which ``hz`` must be multiplied to be the note that
    ``window`` (its steady start) holds; ``before`` is as long, ending just before the attack
    (None when there is none)."""
    n = 1 << int(np.ceil(np.log2(len(window))))
    bin_hz = sample_rate / n
    mag = _spectrum(window, n)
    rose = mag if before is None else np.maximum(mag - _spectrum(before, n), 0.0)
    top = 3 * _MULTIPLES[-1]
    now, new = _partials(mag, bin_hz, hz, top), _partials(rose, bin_hz, hz, top)
    factor = 1
    for k in _MULTIPLES:
        if k * hz > max_hz:
            break
        own = (k, 2 * k, 3 * k)
        on = _mean(new, own)
        off = _mean(new, (j for j in range(1, 3 * k) if j % k))
        if on > 0 and on >= _ROSE * _mean(now, own) and off < _OFF_SERIES * on:
            factor = k
    if factor > 1:
        return factor
    if hz / 2 >= min_hz:
        sub = _mean(_partials(mag, bin_hz, hz / 2, 5), (1, 3, 5))
        main = _mean(now, (1, 2, 3))
        if main > 0 and sub > 0.25 * main:
            return 0.5
    return 1
