"""Synthetic guitar-like plucks for unit tests: harmonic, decaying, exactly known."""

from __future__ import annotations

import numpy as np


def pluck(hz: float, dur: float, rate: int, amp: float = 0.5, decay: float = 3.0) -> np.ndarray:
    t = np.arange(int(dur * rate)) / rate
    env = np.exp(-t * decay) * np.minimum(1.0, t / 0.003)
    tone = sum(a * np.sin(2 * np.pi * k * hz * t + k) for k, a in ((1, 0.6), (2, 0.3), (3, 0.15), (4, 0.08)))
    return (amp * env * tone).astype(np.float32)


def glide(freqs: np.ndarray, rate: int, amp: float = 0.4) -> np.ndarray:
    """A continuous tone following ``freqs`` (one value per sample): no new attack."""
    phase = 2 * np.pi * np.cumsum(freqs) / rate
    tone = 0.6 * np.sin(phase) + 0.3 * np.sin(2 * phase + 1) + 0.15 * np.sin(3 * phase + 2)
    return (amp * tone).astype(np.float32)


def midi_hz(m: float) -> float:
    return float(440.0 * 2 ** ((m - 69) / 12))


def phrase(midis: list[float], ioi: float, rate: int, lead: float = 0.3, **kw: float) -> np.ndarray:
    out = np.zeros(int((lead + ioi * len(midis) + 1.0) * rate), dtype=np.float32)
    for i, m in enumerate(midis):
        start = int((lead + i * ioi) * rate)
        note = pluck(midi_hz(m), ioi, rate, **kw)
        out[start : start + len(note)] += note
    return out
