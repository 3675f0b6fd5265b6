"""Text on a 128-pixel line: measure, wrap, elide, scroll, and the number formats the screens use.

Nothing here reads a clock: scrolling positions come from a time ``t`` (seconds) the caller
passes in, so the same arguments always give the same pixels. All functions take text as
it comes (an LLM's curly quotes, a user's accents, newlines) and pass it through the font's
:meth:`~device.ui.fonts.Font.clean` first; the strings they return are clean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from PIL import Image, ImageDraw

from device.ui.fonts import Font

__all__ = [
    "ELLIPSIS",
    "MARQUEE_GAP",
    "MARQUEE_PAUSE_S",
    "MARQUEE_SPEED",
    "PAGE_DWELL_S",
    "fit",
    "fits",
    "format_ago",
    "format_cents",
    "format_count",
    "format_elapsed",
    "format_hz",
    "format_percent",
    "format_score",
    "marquee",
    "measure",
    "page",
    "scroll_offset",
    "wrap",
]

ELLIPSIS: Final = "…"
#: Blank pixels between the end of a scrolling text and its next start.
MARQUEE_GAP: Final = 24
#: Pixels per second. At the UI's 20 fps this is one pixel a frame: smooth, and slow enough
#: to read at a glance down at the floor.
MARQUEE_SPEED: Final = 20.0
#: The start of a scrolling text rests this long before it moves, at every lap.
MARQUEE_PAUSE_S: Final = 1.5
#: How long a page of a vertically scrolled text stays before it moves on by one line.
PAGE_DWELL_S: Final = 2.5


def measure(text: str, font: Font) -> int:
    """The width in pixels of ``text`` as ``font`` draws it (after cleaning)."""
    return font.width(font.clean(text))


def fits(text: str, font: Font, width: int) -> bool:
    return measure(text, font) <= width


def wrap(text: str, font: Font, width: int) -> list[str]:
    """Lines no wider than ``width``: broken at spaces, words wider than a line hard-broken.

    Newlines in ``text`` start a new line; runs of spaces collapse; blank lines are dropped
    (a 5-line screen has no room for them). Every non-space character of the cleaned text
    appears, in order, in the lines returned. ``[]`` for blank text. Raises ``ValueError`` if
    ``width`` cannot hold the font's widest character.
    """
    if width < font.max_advance:
        raise ValueError(f"a {width} px line cannot hold a {font.max_advance} px character of the {font.name} font")
    lines: list[str] = []
    for paragraph in text.splitlines():
        current = ""
        for whole_word in font.clean(paragraph).split():
            word = whole_word
            if current and font.width(f"{current} {word}") <= width:
                current = f"{current} {word}"
                continue
            if current:
                lines.append(current)
            # A word wider than the line is cut into line-wide pieces; the last piece stays
            # open so the next word can join it.
            while font.width(word) > width:
                piece = _longest_prefix(word, font, width)
                lines.append(piece)
                word = word[len(piece) :]
            current = word
        if current:
            lines.append(current)
    return lines


def _longest_prefix(text: str, font: Font, width: int) -> str:
    """The longest prefix of ``text`` no wider than ``width`` (at least one character)."""
    return text[: max(1, font.fitting(text, width))]


def fit(text: str, font: Font, width: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` (cleaned) if it fits in ``width``, else its longest prefix that fits with ``ellipsis``.

    Only for fields where a shortened text is acceptable (a user name); everything else
    wraps or scrolls. Raises ``ValueError`` if not even the ellipsis fits.
    """
    clean = font.clean(text)
    if font.width(clean) <= width:
        return clean
    room = width - font.width(ellipsis)
    if room < 0:
        raise ValueError(f"a {width} px line cannot hold {ellipsis!r} in the {font.name} font")
    n = font.fitting(clean, room)
    # A font with a gap between characters needs one more gap before the ellipsis.
    while n > 0 and font.width(clean[:n].rstrip() + ellipsis) > width:
        n -= 1
    return clean[:n].rstrip() + ellipsis


def scroll_offset(
    t: float,
    text_width: int,
    window_width: int,
    *,
    speed: float = MARQUEE_SPEED,
    pause_s: float = MARQUEE_PAUSE_S,
    gap: int = MARQUEE_GAP,
) -> int:
    """The marquee offset (pixels) at time ``t`` seconds after the text appeared.

    0 when the text fits. Otherwise each lap rests ``pause_s`` at the start, then moves left at
    ``speed`` until the start comes round again (``text_width + gap`` pixels later).
    A non-finite or negative ``t`` counts as 0.
    """
    if text_width <= window_width:
        return 0
    if not math.isfinite(t) or t <= 0:
        return 0
    lap_px = text_width + gap
    lap_s = pause_s + lap_px / speed
    phase = t % lap_s
    if phase < pause_s:
        return 0
    return min(lap_px - 1, int((phase - pause_s) * speed))


def marquee(text: str, font: Font, width: int, offset_px: int, *, gap: int = MARQUEE_GAP) -> Image.Image:
    """A ``width × font.height`` mode-"1" strip of ``text`` scrolled left by ``offset_px``.

    The text loops (``text``, ``gap`` blank pixels, ``text`` again), so any offset shows a
    full window; a text that fits is drawn left-aligned and the offset is ignored.
    """
    if width <= 0:
        raise ValueError(f"a marquee needs a positive width, got {width}")
    clean = font.clean(text)
    strip = Image.new("1", (width, font.height), 0)
    draw = ImageDraw.Draw(strip)
    text_w = font.width(clean)
    if text_w <= width:
        font.draw(draw, (0, 0), clean)
        return strip
    lap = text_w + gap
    x = -(offset_px % lap)
    # Drawn into the strip, not the frame: whatever hangs over its edges is clipped here and
    # the frame only receives the window.
    while x < width:
        font.draw(draw, (x, 0), clean)
        x += lap
    return strip


def page(lines: Sequence[str], rows: int, t: float, *, dwell_s: float = PAGE_DWELL_S) -> list[str]:
    """The ``rows`` consecutive lines to show at time ``t``: all of them if they fit, else a
    window that moves down one line every ``dwell_s`` and starts over (lingering twice as long
    on the first and last page, so both ends can be read)."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    if len(lines) <= rows:
        return list(lines)
    last = len(lines) - rows
    # Positions: 0, 0, 1, 2, …, last, last — doubles at both ends.
    steps = [0, *range(last + 1), last]
    if not math.isfinite(t) or t < 0:
        t = 0.0
    first = steps[int(t / dwell_s) % len(steps)]
    return list(lines[first : first + rows])


# ---- number formats -------------------------------------------------------------------------


def format_score(value: float | None) -> str:
    """A 0–100 score as a whole number (clamped); ``"--"`` when there is none yet."""
    if value is None or not math.isfinite(value):
        return "--"
    return str(round(min(100.0, max(0.0, value))))


def format_elapsed(seconds: float) -> str:
    """``m:ss`` up to 59:59, then ``h:mm:ss``; negative or non-finite counts as 0, capped at 99:59:59."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    total = min(int(seconds), 99 * 3600 + 59 * 60 + 59)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_count(n: int) -> str:
    """A count in at most 4 characters: 0–9999 exactly, then ``12k``, ``999k``, ``1M``…"""
    n = max(0, n)
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{min(999, n // 1000)}k"
    return f"{min(999, n // 1_000_000)}M"


def format_cents(cents: float) -> str:
    """Signed whole cents with the ¢ sign, clamped to ±99 (``+12¢``, ``-3¢``, ``0¢``)."""
    c = round(min(99.0, max(-99.0, cents)))
    return f"{c:+d}¢" if c else "0¢"


def format_hz(hz: float) -> str:
    """``440.0 Hz``: one decimal, clamped to 0–9999.9 so it never outgrows its slot."""
    return f"{min(9999.9, max(0.0, hz)):.1f} Hz"


def format_percent(unit: float) -> str:
    """A 0–1 setting as a whole percentage (clamped)."""
    if not math.isfinite(unit):
        return "--"
    return f"{round(100 * min(1.0, max(0.0, unit)))}%"


def format_ago(seconds: float) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``12 d ago`` (capped at 999 d)."""
    if math.isnan(seconds) or seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(min(999.0, seconds // 86_400))} d ago"
