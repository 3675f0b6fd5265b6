"""The audio-source seam: live input, a file or the demo take, all read the same way.

Every source has a producer that only copies frames into a :class:`~device.audio.ring_buffer.RingBuffer`
(the PortAudio callback, or a thread pacing a file at real time) and one consumer API for the
analysis thread, so the analysis cannot tell a file from a live input::

    with open_source("pyaudio", device="scarlett", channel=2) as source:
        while running:
            block = source.read(4096, timeout=0.1)   # mono float32 at block.sample_rate
            if block.gap:
                ...                                   # audio was lost just before this block
            notes = tracker.feed(block.samples)
            if block.ended:
                break                                 # a file ran out, or the source was closed

``state`` / ``message`` tell the UI what is going on ("no-device": show "plug in your audio
interface"); ``overflows`` counts lost audio, which is never fatal.

**Timestamps, for the note-to-screen latency.** ``block.frame`` numbers samples on the *delivered*
timeline: the count of samples ``read`` returned before this block, which is exactly the timeline a
:class:`~device.analysis.note_tracker.NoteTracker` fed every block measures ``Note.onset_s`` on.
``block.time`` estimates, on the source's clock (``time.monotonic`` unless injected), when the
block's first sample reached the input jack: the producer stamps each write with the clock, the
reader steps back one sample period per frame from that stamp, and a live source also subtracts
PortAudio's reported input latency (``input_latency_s``). So for a note::

    t_onset = source.time_of(round(note.onset_s * rate))   # when the string was picked
    latency = time.monotonic() - t_onset                    # ... at the moment the screen shows it

``time_of`` keeps anchors for roughly the last minute of audio and must be called from the
reading thread. Lost audio (a ``gap``) makes the delivered timeline skip; anchors are kept per
block, so times stay right on both sides of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt

from device.audio.file_reader import ChannelSpec
from device.audio.ring_buffer import RingBuffer
from device.errors import ConfigError

if TYPE_CHECKING:
    from device.audio.pyaudio_source import PaFactory

__all__ = [
    "DEFAULT_BLOCK_FRAMES",
    "DEFAULT_CAPACITY_S",
    "AudioBlock",
    "AudioSource",
    "RingSource",
    "SourceKind",
    "SourceState",
    "SourceStatus",
    "open_source",
]

SourceKind: TypeAlias = Literal["pyaudio", "file", "demo"]
SourceState: TypeAlias = Literal["idle", "running", "no-device", "error", "ended", "closed"]
"""``idle`` before ``start``; ``running`` while audio flows (or a live input waits for sound);
``no-device``: the interface is unplugged or missing, retried periodically; ``error``: open or
capture failed otherwise (also retried for a live input); ``ended``: a file was read to the end;
``closed`` after ``close``."""

Samples: TypeAlias = npt.NDArray[np.float32]

# 512 frames is ~11 ms at 44.1/48 kHz: short enough for a low note-to-screen latency, long
# enough that a Python callback per block costs well under 1% of a core.
DEFAULT_BLOCK_FRAMES: Final = 512
# The ring absorbs an analysis stall this long before the oldest audio is dropped.
DEFAULT_CAPACITY_S: Final = 2.0
# Time anchors are kept no closer than this, and this many: about a minute of history.
_ANCHOR_SPACING_S: Final = 0.05
_ANCHOR_COUNT: Final = 1200
_EMPTY: Final[Samples] = np.zeros(0, np.float32)
_EMPTY.flags.writeable = False


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A source's state and a one-line message for the screen or the log ("" when all is well)."""

    state: SourceState
    message: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class AudioBlock:
    """Mono float32 samples from a source, with where they sit in time.

    ``frame`` is the index of ``samples[0]`` on the delivered timeline (samples returned before
    it); ``time`` the estimated capture time of ``samples[0]`` on the source's clock (NaN when
    unknown); ``dropped`` the frames lost from the ring just before it; ``gap`` is true when any
    audio was lost just before it (ring overflow, or the stream was reopened after an unplug);
    ``ended`` is true once no more audio will come: a file source has delivered its last sample,
    or the source was closed.
    """

    samples: Samples
    sample_rate: int
    frame: int
    time: float
    dropped: int = 0
    gap: bool = False
    ended: bool = False

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0

    def time_of(self, frame: int) -> float:
        """Capture time of delivered frame ``frame``, extrapolated from this block."""
        return self.time + (frame - self.frame) / self.sample_rate


@runtime_checkable
class AudioSource(Protocol):
    """What the analysis thread and the UI may use, whatever the audio comes from."""

    kind: SourceKind

    @property
    def sample_rate(self) -> int | None:
        """Samples per second of what ``read`` returns; None until a live input first opens."""

    @property
    def status(self) -> SourceStatus: ...

    @property
    def state(self) -> SourceState: ...

    @property
    def message(self) -> str: ...

    @property
    def overflows(self) -> int:
        """Times audio was lost: ring overruns plus PortAudio input-overflow flags."""

    @property
    def dropped_frames(self) -> int:
        """Frames the ring overwrote before they were read."""

    @property
    def frames_captured(self) -> int:
        """Frames the producer delivered into the ring."""

    @property
    def frames_read(self) -> int:
        """Samples ``read`` has returned (the delivered timeline's length)."""

    @property
    def channel(self) -> int | Literal["mix"] | None:
        """The channel analysed (1-based) or "mix"; None while "auto" has nothing to decide on."""

    def start(self) -> None: ...

    def read(self, max_frames: int = ..., timeout: float | None = ...) -> AudioBlock: ...

    def time_of(self, frame: int) -> float: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> AudioSource: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class RingSource:
    """The consumer side every source shares: reading the ring, splicing, timestamps, counters.

    Subclasses set ``_ring`` and ``_rate`` when they know them, implement ``_start`` and ``_stop``
    (called under ``_control``), may override ``_poll`` (called by ``read`` on the reading thread,
    for health checks and reconnection) and ``_reduce`` (ring frames → mono), and set
    ``_producer_done`` once no more frames will come.
    """

    kind: SourceKind

    def __init__(self) -> None:
        self._control = threading.Lock()  # start/stop/reconnect; never taken by the producer
        self._status = SourceStatus("idle")
        self._started = False
        self._closed = False
        self._ring: RingBuffer | None = None
        self._rate: int | None = None
        self._latency_s = 0.0
        self._producer_done = False
        self._extra_overflows = 0
        self._delivered = 0
        # Writer-timeline indices where a new stream began, each with the last stamp of the one
        # before it (frames before the splice are timed from that stamp, not the new stream's).
        self._splices: deque[tuple[int, tuple[int, float]]] = deque()
        self._anchors: deque[tuple[int, float]] = deque(maxlen=_ANCHOR_COUNT)
        self._wake = threading.Event()  # wakes a reader waiting while there is no ring yet

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin capturing. Idempotent; a closed source cannot be restarted."""
        with self._control:
            if self._closed:
                raise RuntimeError(f"{self.kind} source is closed")
            if self._started:
                return
            self._started = True
            self._start()

    def close(self) -> None:
        """Stop capturing and release the device or file. Idempotent; safe from any thread."""
        with self._control:
            if self._closed:
                return
            self._closed = True
            try:
                self._stop()
            finally:
                self._status = SourceStatus("closed")
                if self._ring is not None:
                    self._ring.wake()
                self._wake.set()

    def stop(self) -> None:
        """Same as :meth:`close` (a source is started once)."""
        self.close()

    def __enter__(self) -> RingSource:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _poll(self) -> None:
        """Health check and reconnection, on the reading thread; the default has nothing to do."""

    def _poll_interval(self) -> float | None:
        """How often a waiting ``read`` must call ``_poll``; None: never while waiting."""
        return None

    def _reduce(self, frames: npt.NDArray[np.float32]) -> Samples:
        """Ring frames ``(n, channels)`` → mono; the default takes a one-channel ring as is."""
        return frames.reshape(-1)

    # --- state ----------------------------------------------------------------------------------

    @property
    def status(self) -> SourceStatus:
        status = self._status
        # The done flag is read before the fill level: once done, no write can still be coming.
        if status.state == "running" and self._producer_done:
            ring = self._ring
            if ring is None or ring.available == 0:
                return SourceStatus("ended")
        return status

    @property
    def state(self) -> SourceState:
        return self.status.state

    @property
    def message(self) -> str:
        return self.status.message

    @property
    def sample_rate(self) -> int | None:
        return self._rate

    @property
    def input_latency_s(self) -> float:
        """Input latency the device reports (0 for files); already subtracted in ``block.time``."""
        return self._latency_s

    @property
    def overflows(self) -> int:
        ring = self._ring
        return self._extra_overflows + (ring.overruns if ring is not None else 0)

    @property
    def dropped_frames(self) -> int:
        ring = self._ring
        return ring.dropped_frames if ring is not None else 0

    @property
    def frames_captured(self) -> int:
        ring = self._ring
        return ring.frames_written if ring is not None else 0

    @property
    def frames_read(self) -> int:
        return self._delivered

    @property
    def channel(self) -> int | Literal["mix"] | None:
        return None

    # --- the consumer API -----------------------------------------------------------------------

    def read(self, max_frames: int = 4096, timeout: float | None = 0.1) -> AudioBlock:
        """The oldest unread audio, up to ``max_frames`` samples, as soon as any is there.

        Waits up to ``timeout`` seconds (None: until audio comes or the source ends or closes)
        and returns an empty block if none came; a closed source returns one at once. Never
        raises for a missing or lost device: that shows in ``state``. Call from one thread only
        (the analysis thread).
        """
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if self._closed:
                return self._empty(ended=True)  # and what was left in the ring went with it
            self._poll()
            done = self._producer_done  # before the fill level, as in ``status``
            ring = self._ring
            if ring is not None and ring.available > 0:
                return self._take(ring, max_frames)
            if done:
                return self._empty(ended=True)
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return self._empty(ended=False)
            every = self._poll_interval()
            if every is not None:
                wait = every if wait is None else min(wait, every)
            if ring is None:
                self._wake.wait(wait)
            else:
                ring.wait_readable(wait)

    def time_of(self, frame: int) -> float:
        """Estimated capture time (source clock) of delivered frame ``frame``; NaN if unknown.

        Uses the latest anchor at or before ``frame`` (the earliest kept, for older frames).
        Call from the reading thread.
        """
        rate = self._rate
        if not self._anchors or not rate:
            return math.nan
        anchor = self._anchors[0]
        for a in reversed(self._anchors):
            if a[0] <= frame:
                anchor = a
                break
        return anchor[1] + (frame - anchor[0]) / rate

    def _take(self, ring: RingBuffer, max_frames: int) -> AudioBlock:
        splices = self._splices
        # Drop splices the reader has passed; never read across the next one.
        while splices and splices[0][0] < ring.read_position:
            splices.popleft()
        stop_at = splices[0][0] if splices else None
        got = ring.read(max_frames, stop_at=stop_at)
        gap = got.dropped > 0
        stamp = ring.stamp
        while splices and got.start >= splices[0][0]:
            gap = True  # this block starts a new stream (or skipped into one)
            splices.popleft()
        if splices and got.start < splices[0][0]:
            stamp = splices[0][1]  # frames before the splice: time them by the old stream
        samples = self._reduce(got.frames)
        rate = self._rate or 0
        end, stamped = stamp
        t = stamped - (end - got.start) / rate - self._latency_s if rate else math.nan
        frame = self._delivered
        self._delivered += len(samples)
        anchors = self._anchors
        due = gap or not anchors or (frame - anchors[-1][0]) >= _ANCHOR_SPACING_S * rate
        if due and math.isfinite(t):
            anchors.append((frame, t))
        ended = self._producer_done and ring.available == 0
        return AudioBlock(samples, rate, frame, t, got.dropped, gap, ended)

    def _empty(self, *, ended: bool) -> AudioBlock:
        return AudioBlock(_EMPTY, self._rate or 0, self._delivered, math.nan, 0, False, ended)

    def _mark_splice(self) -> None:
        """Call before a new stream starts writing into the existing ring (reading thread)."""
        ring = self._ring
        if ring is not None and ring.frames_written > 0:
            self._splices.append((ring.frames_written, ring.stamp))


def open_source(
    kind: SourceKind,
    *,
    path: str | PathLike[str] | None = None,
    device: str | int | None = None,
    channel: ChannelSpec = "auto",
    speed: float = 1.0,
    loop: bool | None = None,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    capacity_s: float = DEFAULT_CAPACITY_S,
    retry_interval_s: float = 2.0,
    stall_timeout_s: float | None = 1.0,
    clock: Callable[[], float] | None = None,
    pa_factory: PaFactory | None = None,
) -> RingSource:
    """Build (not start) a source; ``with`` starts and closes it.

    ``"pyaudio"``: the USB interface ``device`` (name substring, case-insensitive, or index; None
    = the default input) and its ``channel``; ``"file"``: the take at ``path``; ``"demo"``: the
    bundled demo take. ``speed`` (files only): 1.0 = real time, 0 or inf = as fast as the reader
    takes it, losslessly. ``loop`` defaults to True for the demo, False for a file. Options that
    do not apply to ``kind`` are ignored, so one set of settings can build any source.

    Raises :class:`ConfigError` for a bad kind or option and
    :class:`~device.errors.AudioFileError` for an unreadable file; a missing live device is not
    an error here (see ``state``).
    """
    if kind == "pyaudio":
        from device.audio.pyaudio_source import PyAudioSource

        return PyAudioSource(
            device,
            channel,
            block_frames=block_frames,
            capacity_s=capacity_s,
            retry_interval_s=retry_interval_s,
            stall_timeout_s=stall_timeout_s,
            clock=clock or time.monotonic,
            pa_factory=pa_factory,
        )
    if kind in ("file", "demo"):
        from device.audio.file_source import DemoSource, FileSource

        if kind == "demo":
            return DemoSource(
                channel,
                speed=speed,
                loop=True if loop is None else loop,
                block_frames=block_frames,
                capacity_s=capacity_s,
            )
        if path is None:
            raise ConfigError("a file source needs a path")
        return FileSource(path, channel, speed=speed, loop=bool(loop), block_frames=block_frames, capacity_s=capacity_s)
    raise ConfigError(f"unknown audio source {kind!r} (expected 'pyaudio', 'file' or 'demo')")
