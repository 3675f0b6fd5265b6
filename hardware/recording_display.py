"""Recording displays: every changed frame as a numbered PNG, or one animated GIF.

Both are written with Pillow alone. luma.emulator's ``capture``/``gifanim`` would do the same
job but pull in pygame (and need ``SDL_VIDEODRIVER=dummy`` headless) for nothing we use.

``CaptureDisplay`` writes ``frame_000001.png``, ``frame_000002.png``, … (1-bit PNGs, about
150 bytes each) as the frames come, into a directory that must not already hold frames, so
two runs never interleave. ``GifDisplay`` keeps the frames in memory (1 KiB each) with the
clock's time stamps and writes the GIF, atomically, on ``close()``; each frame lasts until the
next one came. It keeps the first ``max_frames`` frames and counts the rest in
``frames_dropped``: at the UI's ≤ 20 changed frames a second, the default 3000 covers at
least two and a half minutes of constant change, far more of a real session, in ≤ 3 MiB.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Final

from PIL import Image

from device.errors import ConfigError, DisplayError
from hardware.display import HEIGHT, WIDTH, Display, FrameHook

__all__ = ["DEFAULT_MAX_GIF_FRAMES", "CaptureDisplay", "GifDisplay", "gif_durations_ms"]

DEFAULT_MAX_GIF_FRAMES: Final = 3000

_FRAME_GLOB: Final = "frame_*.png"
# GIF delays are whole centiseconds; browsers play delays under 20 ms as 100 ms, and the
# field is 16 bits wide.
_GIF_TICK_MS: Final = 10
_GIF_MIN_MS: Final = 20
_GIF_MAX_MS: Final = 0xFFFF * _GIF_TICK_MS


class CaptureDisplay(Display):
    """Writes each changed frame to ``directory/frame_NNNNNN.png`` (numbered from 1)."""

    kind = "capture"

    def __init__(
        self,
        directory: str | PathLike[str],
        *,
        on_frame: FrameHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(on_frame=on_frame, clock=clock)
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"capture directory {self.directory}: {exc.strerror or exc}") from exc
        if next(self.directory.glob(_FRAME_GLOB), None) is not None:
            raise ConfigError(f"capture directory {self.directory} already holds frames; choose an empty one")

    def frame_path(self, number: int) -> Path:
        """Where frame ``number`` (1 = the first frame sent) is written."""
        return self.directory / f"frame_{number:06d}.png"

    def _send(self, frame: Image.Image) -> None:
        path = self.frame_path(self.frames_sent + 1)
        try:
            frame.save(path, format="PNG")
        except OSError as exc:
            raise DisplayError(f"capture: cannot write {path}: {exc.strerror or exc}") from exc


class GifDisplay(Display):
    """Records changed frames with their times; writes ``path`` as an animated GIF on close.

    Nothing is written if no frame was ever shown.
    """

    kind = "gif"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        max_frames: int = DEFAULT_MAX_GIF_FRAMES,
        on_frame: FrameHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(on_frame=on_frame, clock=clock)
        if max_frames < 1:
            raise ConfigError(f"gif max_frames must be at least 1, got {max_frames}")
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"gif output {self.path} is a directory; give a file name")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"gif output directory {self.path.parent}: {exc.strerror or exc}") from exc
        self.max_frames = max_frames
        self.frames_dropped = 0
        self._frames: list[bytes] = []
        self._times: list[float] = []
        # When recording stopped at max_frames: the last kept frame lasts until then, not until close.
        self._stopped_at: float | None = None

    @property
    def frames_recorded(self) -> int:
        """Frames kept for the GIF (at most ``max_frames``); still right after close."""
        return len(self._times)

    def _send(self, frame: Image.Image) -> None:
        now = self._clock()
        if len(self._frames) >= self.max_frames:
            if self._stopped_at is None:
                self._stopped_at = now
            self.frames_dropped += 1
            return
        # Packed bytes, not Image objects: 1 KiB a frame and nothing for the GC to walk.
        self._frames.append(frame.tobytes())
        self._times.append(now)

    def _close(self) -> None:
        if not self._frames:
            return
        end = self._stopped_at if self._stopped_at is not None else self._clock()
        durations = gif_durations_ms([*self._times, end])
        images = [Image.frombytes("1", (WIDTH, HEIGHT), data) for data in self._frames]
        self._frames.clear()  # the images hold the pixels now; do not keep them twice
        # Written beside the target and renamed, so a reader never sees half a GIF.
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            images[0].save(partial, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
            os.replace(partial, self.path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DisplayError(f"gif: cannot write {self.path}: {exc.strerror or exc}") from exc


def gif_durations_ms(times: list[float]) -> list[int]:
    """Per-frame GIF delays (ms) for frames shown at ``times[:-1]``, the last ending at ``times[-1]``.

    Frame boundaries are rounded on the absolute 10 ms grid, not each delay on its own, so
    rounding never accumulates over a long recording; every delay is at least 20 ms (browsers
    slow shorter ones down to 100 ms) and at most the GIF field's 655.35 s.
    """
    if len(times) < 2:
        raise ValueError("need the start of every frame and the end of the last one")
    start = times[0]
    durations: list[int] = []
    previous = 0
    for t in times[1:]:
        boundary = round((t - start) * 1000 / _GIF_TICK_MS) * _GIF_TICK_MS
        boundary = min(max(boundary, previous + _GIF_MIN_MS), previous + _GIF_MAX_MS)
        durations.append(boundary - previous)
        previous = boundary
    return durations
