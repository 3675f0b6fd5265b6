"""Files and the bundled demo take as live-like sources: same ring, same consumer API.

A pacer thread stands in for the PortAudio callback: it decodes the take block by block (with
:func:`~device.audio.file_reader.iter_audio_blocks`, so channel choice and damage checks are the
file reader's) and writes each block into the ring when it would have finished arriving from a
live input (``speed`` 1.0 = real time, 2.0 = twice as fast). At ``speed`` 0 or inf it writes as
fast as the reader takes the audio.

Overflow policy: a paced source behaves as a live input does, dropping the oldest audio if the
reader falls behind (so the app sees the same overflows it would see live); an unpaced one waits
for room instead, because a test or a batch analysis wants every sample.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Literal

from device.audio.assets import DEMO_TAKE
from device.audio.file_reader import AudioBlocks, ChannelSpec, iter_audio_blocks
from device.audio.ring_buffer import RingBuffer
from device.audio.source import DEFAULT_BLOCK_FRAMES, DEFAULT_CAPACITY_S, RingSource, SourceKind, SourceStatus
from device.errors import AudioError, ConfigError

__all__ = ["DemoSource", "FileSource"]

_WAIT_SLICE_S = 0.05  # how often a producer waiting for room checks for stop


class FileSource(RingSource):
    """A WAV/FLAC take played into the ring at ``speed`` times real time, optionally looping.

    The file is checked (and "auto" resolved) when the source is built, so a missing or damaged
    file raises :class:`~device.errors.AudioFileError` here; damage found later while decoding
    sets ``state`` to "error" with the reader's one-line message and ends the stream.
    """

    kind: SourceKind = "file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        channel: ChannelSpec = "auto",
        *,
        speed: float = 1.0,
        loop: bool = False,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        capacity_s: float = DEFAULT_CAPACITY_S,
        lossless: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(speed, int | float) or math.isnan(speed) or speed < 0:
            raise ConfigError(f"speed must be 0, inf or a positive number, got {speed!r}")
        if not isinstance(capacity_s, int | float) or not capacity_s > 0:
            raise ConfigError(f"capacity_s must be positive, got {capacity_s!r}")
        self.path = Path(path)
        self.speed = float(speed)
        self.loop = loop
        self._paced = 0.0 < self.speed < math.inf
        # See the module docstring for why unpaced means lossless.
        self._lossless = (not self._paced) if lossless is None else lossless
        self._blocks: AudioBlocks = iter_audio_blocks(path, block_frames, channel)
        self._rate = self._blocks.sample_rate
        capacity = max(int(capacity_s * self._rate), block_frames)
        self._ring = RingBuffer(capacity, 1)
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sample_rate(self) -> int:
        return self._blocks.sample_rate

    @property
    def channel(self) -> int | Literal["mix"]:
        return self._blocks.channel

    @property
    def duration_s(self) -> float | None:
        """Length of one pass through the take, if the file records it."""
        return self._blocks.duration_s

    def _start(self) -> None:
        self._status = SourceStatus("running")
        self._thread = threading.Thread(target=self._run, name=f"fretcoach-{self.kind}-source", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._stop_event.set()
        if self._ring is not None:
            self._ring.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        ring = self._ring
        assert ring is not None
        stop = self._stop_event
        step = 1.0 / (self._blocks.sample_rate * self.speed) if self._paced else 0.0
        t0 = time.monotonic()
        played = 0
        try:
            while not stop.is_set():
                for block in self._blocks:
                    n = len(block)
                    if self._paced:
                        # Due when its last sample would have arrived live; scheduled from t0 so
                        # sleep overshoots do not accumulate into drift.
                        delay = t0 + (played + n) * step - time.monotonic()
                        if delay > 0 and stop.wait(delay):
                            return
                    if self._lossless:
                        while not ring.wait_writable(n, _WAIT_SLICE_S):
                            if stop.is_set():
                                return
                    if stop.is_set():
                        return
                    ring.write(block.reshape(-1, 1), 1.0, time.monotonic())
                    played += n
                if not self.loop:
                    break
        except AudioError as exc:
            self._status = SourceStatus("error", str(exc))
        except Exception as exc:  # a thread must not die with a traceback; the app reads state
            self._status = SourceStatus("error", f"{self._blocks.path}: {type(exc).__name__}: {exc}")
        finally:
            self._producer_done = True
            ring.wake()
            self._wake.set()


class DemoSource(FileSource):
    """The bundled demo take (:data:`device.audio.assets.DEMO_TAKE`), looping by default."""

    kind: SourceKind = "demo"

    def __init__(
        self,
        channel: ChannelSpec = "auto",
        *,
        speed: float = 1.0,
        loop: bool = True,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        capacity_s: float = DEFAULT_CAPACITY_S,
        lossless: bool | None = None,
    ) -> None:
        super().__init__(
            DEMO_TAKE,
            channel,
            speed=speed,
            loop=loop,
            block_frames=block_frames,
            capacity_s=capacity_s,
            lossless=lossless,
        )
