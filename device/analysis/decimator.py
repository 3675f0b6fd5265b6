"""Streaming integer decimation: guitar fundamentals live below 1.4 kHz, so tracking runs at
~11–12 kHz where aubio's per-frame cost is a quarter of the native rate's.

Plain numpy, computing exactly what ``scipy.signal.firwin`` + ``upfirdn`` computed here before
(same taps, same float32 sums in the same order; a test checks it bit for bit): importing
``scipy.signal`` costs the pedal ~0.7 s of start-up and ~85 MB of memory for two functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Decimator", "decimation_factor", "lowpass_taps"]

_TARGET_RATE = 11025


def decimation_factor(sample_rate: int) -> int:
    """The largest integer factor that keeps the tracking rate at or above ~11 kHz."""
    return max(1, sample_rate // _TARGET_RATE)


def lowpass_taps(numtaps: int, cutoff: float) -> np.ndarray:
    """A linear-phase low-pass FIR: ``scipy.signal.firwin(numtaps, cutoff)`` (windowed sinc,
    Hamming window, unit gain at DC; ``cutoff`` relative to Nyquist), in float64."""
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m)
    h *= 0.54 + 0.46 * np.cos(np.linspace(-np.pi, np.pi, numtaps))  # symmetric Hamming
    return np.asarray(h / np.sum(h))


class Decimator:
    """Low-pass FIR + keep every ``factor``-th sample, with state carried across blocks.

    Each output sample is the same dot product of the same inputs however the stream is cut
    into blocks, so streaming and whole-file analysis agree to the bit.
    """

    def __init__(self, factor: int, taps_per_phase: int = 16) -> None:
        self.factor = factor
        self.taps = (
            lowpass_taps(taps_per_phase * factor + 1, 0.8 / factor).astype(np.float32)
            if factor > 1
            else np.ones(1, dtype=np.float32)
        )
        # Oldest input first: each output sums its window from the oldest sample on.
        self._flipped = np.ascontiguousarray(self.taps[::-1])
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
            count = (last - first) // self.factor + 1
            out = self._fir(buf[lo:], count)
            self._next_out = first + count * self.factor
        keep = len(self.taps) - 1 + (end - self._next_out)
        keep = min(keep, len(buf))
        self._history = buf[len(buf) - keep :].copy()
        self._history_start = end - keep
        return out

    def _fir(self, seg: np.ndarray, count: int) -> np.ndarray:
        """Outputs whose windows start at ``seg[0]``, ``seg[factor]``, … (``count`` of them).

        Row ``m`` of the (taps × outputs) product holds tap ``m`` (oldest first) times its input
        sample; numpy sums a C-ordered array along axis 0 row by row, in float32, which is the
        order scipy's upfirdn adds them in, so the results are the same to the bit. A single
        column would be summed pairwise (it is contiguous): accumulate, which never is.
        """
        step = seg.itemsize
        window = np.ndarray((len(self._flipped), count), np.float32, seg, strides=(step, step * self.factor))
        product = np.multiply(self._flipped[:, None], window, order="C")
        summed = np.add.accumulate(product[:, 0])[-1:] if count == 1 else np.add.reduce(product, axis=0)
        return np.asarray(summed, dtype=np.float32)
