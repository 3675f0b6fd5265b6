"""A terminal preview of the OLED: 128×64 pixels as 128 columns × 32 rows of half blocks.

Each character cell shows two pixels stacked vertically: ``"▀"`` (top lit), ``"▄"`` (bottom
lit), ``"█"`` (both) or ``" "`` (neither). On a TTY the frame is redrawn in place (ANSI
cursor-home, cursor hidden until :meth:`TerminalDisplay.close`); on anything else (a pipe, a
log, ``io.StringIO``) frames are written one after the other, each followed by a blank line.
The terminal must be at least 128 columns wide or the lines wrap.

Rendering is a handful of numpy operations on the packed frame (tens of microseconds), and
each frame is a single ``write`` so a preview never tears or floods the UI thread.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Final, TextIO

import numpy as np
from PIL import Image

from hardware.display import HEIGHT, WIDTH, Display, FrameHook

__all__ = ["BLOCKS", "TerminalDisplay", "render_blocks"]

#: Cell glyph by code ``top | bottom << 1``: neither, top, bottom, both.
BLOCKS: Final = (" ", "▀", "▄", "█")

_ROWS: Final = HEIGHT // 2
# Code points, so a frame becomes text with one numpy ``take`` and one UTF-32 decode.
_GLYPHS: Final = np.array([ord(c) for c in BLOCKS], dtype="<u4")
_NEWLINE: Final = ord("\n")

_CLEAR_AND_HIDE_CURSOR: Final = "\x1b[?25l\x1b[2J\x1b[H"
_CURSOR_HOME: Final = "\x1b[H"
_SHOW_CURSOR: Final = "\x1b[?25h"


def render_blocks(image: Image.Image) -> str:
    """The 32 lines of 128 half-block characters for a mode-"1" 128×64 image, joined by "\\n".

    Also handy in a failing test's message: it prints a frame legibly.
    """
    if image.mode != "1" or image.size != (WIDTH, HEIGHT):
        raise ValueError(f"render_blocks needs a mode '1' {WIDTH}×{HEIGHT} image, got {image.mode!r} {image.size}")
    # Packed rows, most significant bit = leftmost pixel; any non-zero bit is a lit pixel.
    bits = np.unpackbits(np.frombuffer(image.tobytes(), dtype=np.uint8)).reshape(_ROWS, 2, WIDTH)
    codes = bits[:, 0] | (bits[:, 1] << 1)
    # One extra column holds the newlines; the last one is cut off after encoding.
    cells = np.full((_ROWS, WIDTH + 1), _NEWLINE, dtype="<u4")
    np.take(_GLYPHS, codes, out=cells[:, :WIDTH])
    return cells.tobytes()[:-4].decode("utf-32-le")


class TerminalDisplay(Display):
    """Draws each changed frame on ``stream`` (default ``sys.stdout``) with half blocks.

    ``ansi`` chooses in-place redrawing; by default it follows ``stream.isatty()``.
    The stream is not closed by :meth:`close`: it belongs to the caller.
    """

    kind = "terminal"

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        ansi: bool | None = None,
        on_frame: FrameHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(on_frame=on_frame, clock=clock)
        self.stream: TextIO = stream if stream is not None else sys.stdout
        self.ansi = _is_tty(self.stream) if ansi is None else ansi
        self._drawn = False

    def _send(self, frame: Image.Image) -> None:
        text = render_blocks(frame)
        if self.ansi:
            # The first frame clears the screen so nothing old shows around or below it.
            prefix = _CURSOR_HOME if self._drawn else _CLEAR_AND_HIDE_CURSOR
            self.stream.write(prefix + text)
        else:
            self.stream.write(text + "\n\n")
        self.stream.flush()
        self._drawn = True

    def _close(self) -> None:
        if self.ansi and self._drawn:
            # Leave the prompt below the last frame, with a visible cursor.
            self.stream.write("\n" + _SHOW_CURSOR)
            self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # an object without isatty, or a closed stream
        return False
