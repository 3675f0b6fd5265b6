"""A preallocated single-producer/single-consumer ring of float32 frames that never blocks its writer.

The writer is the PortAudio callback (or a file pacer standing in for it); the reader is the
analysis thread. The writer takes no lock and allocates no sample memory: it converts the frames it
is given straight into the preallocated array, so an int16 or float32 PortAudio buffer lands in the
ring in one pass.

When the reader falls behind and the ring is full, the **oldest** frames are overwritten: the live
scores and the note-to-screen latency are about what the guitarist plays now, so after a stall the
analysis resumes on the most recent ``capacity`` frames rather than working through stale audio
(and staying that far behind). Every write that overwrites unread frames counts one overrun; the
frames the reader skips are counted in ``dropped_frames``.

Dropping the oldest frames means the writer moves past frames the reader may be copying at that
moment. No lock is needed for that, by a seqlock-style claim: before touching the array the writer
publishes how far it is about to write (``_claim``); after copying, the reader compares its range
with that claim and discards (and counts) any prefix the writer may have overwritten meanwhile.
Counters are plain Python ints whose loads and stores are atomic under the GIL; this module relies
on the GIL for that (free-threaded builds would need atomics).

``wait_readable`` and ``wait_writable`` wake the other side with :class:`threading.Event`; the
writer only calls ``set()`` when the reader has cleared the event to wait, so the common case costs
one attribute read.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["RingBuffer", "RingRead"]

Frames = npt.NDArray[np.float32]

_NO_TIME: Final = math.nan


@dataclass(frozen=True, slots=True, eq=False)
class RingRead:
    """Frames taken from the ring: ``frames[i]`` is frame ``start + i`` of the writer's timeline
    (frames written since the ring was made), after ``dropped`` frames the reader never saw."""

    frames: Frames
    start: int
    dropped: int


class RingBuffer:
    """``capacity`` frames of ``channels`` float32 samples each; one writer thread, one reader thread."""

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.capacity: Final = capacity
        self.channels: Final = channels
        self._buf: Frames = np.zeros((capacity, channels), np.float32)
        # Writer-owned: frames published, frames about to be written, overrun events, and the
        # (frame index, clock) pair of the last write, for mapping frames to time.
        self._write_end = 0
        self._claim = 0
        self._overruns = 0
        self._stamp: tuple[int, float] = (0, _NO_TIME)
        # Reader-owned.
        self._read_pos = 0
        self._dropped = 0
        self._readable = threading.Event()
        self._writable = threading.Event()

    # --- the writer's side --------------------------------------------------------------------

    def write(self, frames: npt.NDArray[np.generic], scale: float = 1.0, timestamp: float = _NO_TIME) -> int:
        """Store ``frames`` (shape ``(n, channels)``, any real dtype, any strides) times ``scale``.

        Never blocks and never fails for want of space: unread frames are overwritten oldest first.
        ``timestamp`` (the caller's clock when the last of these frames arrived) is kept with the
        frame index for :attr:`stamp`. Returns the number of frames written.
        """
        n = int(frames.shape[0])
        if n == 0:
            return 0
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(f"expected frames of shape (n, {self.channels}), got {frames.shape}")
        cap = self.capacity
        w = self._write_end
        if n > cap:
            # Only the newest ``cap`` frames can be kept; the rest pass by as if overwritten at once.
            w += n - cap
            frames = frames[n - cap :]
            n = cap
        end = w + n
        if end - self._read_pos > cap:
            self._overruns += 1
        self._claim = end  # published before the array is touched: see the module docstring
        i = w % cap
        first = min(n, cap - i)
        factor = np.float32(scale)
        _store(self._buf[i : i + first], frames[:first], factor)
        if first < n:
            _store(self._buf[: n - first], frames[first:], factor)
        self._stamp = (end, timestamp)
        self._write_end = end
        if not self._readable.is_set():
            self._readable.set()
        return n

    def wait_writable(self, frames: int, timeout: float | None = None) -> bool:
        """Wait until ``frames`` can be written without overwriting unread ones (for lossless
        producers such as a file read as fast as possible). False on timeout."""
        need = min(frames, self.capacity)
        if self.free >= need:
            return True
        self._writable.clear()
        # Re-check after clearing: the reader may have made room in between.
        if self.free >= need:
            return True
        return self._writable.wait(timeout) and self.free >= need

    # --- the reader's side --------------------------------------------------------------------

    def read(self, max_frames: int, *, stop_at: int | None = None) -> RingRead:
        """Up to ``max_frames`` of the oldest unread frames (fewer, possibly none, if fewer are
        there), never past frame ``stop_at`` of the writer's timeline."""
        cap = self.capacity
        w = self._write_end
        r = self._read_pos
        dropped = 0
        if w - r > cap:
            dropped = w - cap - r
            r = w - cap
        n = max(0, min(w - r, max_frames))
        if stop_at is not None and stop_at > r:
            n = min(n, stop_at - r)
        out: Frames = np.empty((n, self.channels), np.float32)
        i = r % cap
        first = min(n, cap - i)
        out[:first] = self._buf[i : i + first]
        if first < n:
            out[first:] = self._buf[: n - first]
        # Anything the writer claimed past ``r + cap`` may have been overwritten while we copied.
        lost = min(n, self._claim - cap - r)
        if lost > 0:
            out = out[lost:]
            dropped += lost
            r += lost
            n -= lost
        self._read_pos = r + n
        self._dropped += dropped
        if not self._writable.is_set():
            self._writable.set()
        return RingRead(out, r, dropped)

    def wait_readable(self, timeout: float | None = None) -> bool:
        """Wait until at least one unread frame is there. False on timeout."""
        if self._write_end > self._read_pos:
            return True
        self._readable.clear()
        if self._write_end > self._read_pos:
            return True
        return self._readable.wait(timeout) and self._write_end > self._read_pos

    def wake(self) -> None:
        """Release any waiting reader or writer (on stop), whatever the ring holds."""
        self._readable.set()
        self._writable.set()

    # --- counters (readable from any thread) ---------------------------------------------------

    @property
    def available(self) -> int:
        """Unread frames still in the ring."""
        return min(self._write_end - self._read_pos, self.capacity)

    @property
    def free(self) -> int:
        """Frames that can be written before unread ones are overwritten."""
        return self.capacity - (self._write_end - self._read_pos)

    @property
    def frames_written(self) -> int:
        """Frames written since the ring was made (the writer's timeline)."""
        return self._write_end

    @property
    def read_position(self) -> int:
        """The writer-timeline index of the next frame the reader will get (before any skip)."""
        return self._read_pos

    @property
    def overruns(self) -> int:
        """Writes that overwrote frames not yet read."""
        return self._overruns

    @property
    def dropped_frames(self) -> int:
        """Frames the reader skipped because they were overwritten first."""
        return self._dropped

    @property
    def stamp(self) -> tuple[int, float]:
        """``(end, timestamp)`` of the last write: frame ``end - 1`` arrived at ``timestamp``."""
        return self._stamp


def _store(dst: Frames, src: npt.NDArray[np.generic], scale: np.float32) -> None:
    # Cast straight from the caller's buffer (strided, int16 or float32) into the ring, then scale
    # in place: a fused ``multiply(src, scale, out=dst)`` would allocate a casting buffer per call.
    np.copyto(dst, src, casting="unsafe")
    if scale != 1.0:
        dst *= scale
