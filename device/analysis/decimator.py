"""Streaming integer decimation: guitar fundamentals live below 1.4 kHz, so tracking runs at
~11–12 kHz where aubio's per-frame cost is a quarter of the native rate's."""

from __future__ import annotations

import numpy as np
from scipy.signal import firwin, upfirdn

__all__ = ["Decimator", "decimation_factor"]

_TARGET_RATE = 11025


def decimation_factor(sample_rate: int) -> int:
    """The largest integer factor that keeps the tracking rate at or above ~11 kHz."""
    return max(1, sample_rate // _TARGET_RATE)


class Decimator:
    """Low-pass FIR + keep every ``factor``-th sample, with state carried across blocks.

    Each output sample is the same dot product of the same inputs however the stream is cut
    into blocks, so streaming and whole-file analysis agree to the bit.
    """

    def __init__(self, factor: int, taps_per_phase: int = 16) -> None:
        self.factor = factor
        self.taps = (
            firwin(taps_per_phase * factor + 1, 0.8 / factor).astype(np.float32)
            if factor > 1
            else np.ones(1, dtype=np.float32)
        )
        # Inputs still needed by outputs not yet produced, and the input index of history[0].
        self._history = np.zeros(len(self.taps) - 1, dtype=np.float32)
        self._history_start = -(len(self.taps) - 1)
        self._next_out = 0  # input index of the next output sample

    @property
    def delay_samples(self) -> float:
        """Group delay of the filter, in input samples (linear phase)."""
        return (len(self.taps) - 1) / 2

    def process(self, block: np.ndarray) -> np.ndarray:
        if self.factor == 1:
            return np.asarray(block, dtype=np.float32)
        buf = np.concatenate((self._history, np.asarray(block, dtype=np.float32)))
        end = self._history_start + len(buf)  # one past the last input index held
        # Output at input index n needs inputs n-L+1..n: y[n] = sum_k h[k] x[n-k].
        first = self._next_out
        last = end - 1
        if last < first:
            out = np.zeros(0, dtype=np.float32)
        else:
            lo = first - (len(self.taps) - 1) - self._history_start
            seg = buf[lo : last - self._history_start + 1]
            full = upfirdn(self.taps, seg, 1, self.factor)
            # upfirdn's k-th output is the full convolution at seg index k*factor; the first
            # one with a complete window sits at index L-1 of seg.
            skip = -(-(len(self.taps) - 1) // self.factor)
            count = (last - first) // self.factor + 1
            out = full[skip : skip + count].astype(np.float32)
            self._next_out = first + count * self.factor
        keep = len(self.taps) - 1 + (end - self._next_out)
        keep = min(keep, len(buf))
        self._history = buf[len(buf) - keep :].copy()
        self._history_start = end - keep
        return out
