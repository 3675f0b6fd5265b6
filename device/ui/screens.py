"""The pedal's screens: pure functions from a view to a 128×64 mode-"1" PIL image.

One ``render_*`` function per screen and :func:`render`, which picks the right one for a
view. They read no clock and do no I/O: time comes in the view (``t``), so the same view
always gives the same pixels, and a frame takes well under a millisecond to draw here.

Layout rules every screen keeps (the tests check them on every golden and on thousands of
random views, through :func:`compose`):

* everything is drawn inside the frame; no two texts or widgets overlap;
* no text is cut: a line that does not fit scrolls (a marquee driven by ``t``) or wraps
  (and pages with ``t`` when the lines outnumber the rows); only a user name, the version
  on the boot splash and an unselected row of the scale list may be shortened with "…"
  (:data:`ELIDABLE_ROLES`);
* the smallest text is Pillow's built-in bitmap font (6×11); scores, times, note names and
  titles use the 5×7 block font at ×2 or ×3.

:func:`compose` returns the image together with what was placed where (:class:`Placed`)
and whether the frame depends on ``t`` (:attr:`Frame.animated`): the app needs to redraw a
screen as time passes only when it is animated, otherwise only when the view changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from PIL import Image, ImageDraw

from device.ui.fonts import BIG, HUGE, SMALL, Font, InkBox
from device.ui.text import (
    fit,
    format_ago,
    format_cents,
    format_count,
    format_elapsed,
    format_hz,
    format_percent,
    format_score,
    marquee,
    page,
    scroll_offset,
    wrap,
)
from device.ui.views import (
    BootView,
    ErrorKind,
    ErrorView,
    HomeView,
    LiveView,
    PauseView,
    PlanningView,
    PlanView,
    PowerWarning,
    SaveState,
    ScalePickerView,
    Scores,
    ShutdownView,
    SummaryView,
    SyncState,
    SyncStatus,
    TunerView,
    View,
)

__all__ = [
    "ELIDABLE_ROLES",
    "HEIGHT",
    "IN_TUNE_CENTS",
    "SHORT_LABELS",
    "WIDTH",
    "Frame",
    "Placed",
    "compose",
    "render",
    "render_boot",
    "render_error",
    "render_home",
    "render_live",
    "render_pause",
    "render_plan",
    "render_planning",
    "render_scale_picker",
    "render_shutdown",
    "render_summary",
    "render_tuner",
    "save_text",
    "sync_text",
]

WIDTH: Final = 128
HEIGHT: Final = 64

#: The metric keys of ``device.analysis.METRIC_LABELS`` in the words that fit a column.
#: (Kept here so drawing a frame never imports the analysis core; a test keeps the keys in step.)
SHORT_LABELS: Final[Mapping[str, str]] = {
    "pitch_accuracy": "pitch",
    "scale_conformity": "scale",
    "timing_stability": "timing",
}
_LETTERS: Final[Mapping[str, str]] = {"pitch_accuracy": "P", "scale_conformity": "S", "timing_stability": "T"}
_METRICS: Final = tuple(SHORT_LABELS)

#: A note this close to the centre reads "in tune" on the tuner.
IN_TUNE_CENTS: Final = 3.0
_NEEDLE_LIMIT_CENTS: Final = 50.0

#: The only roles whose text may be shortened with "…" rather than scrolled or wrapped.
ELIDABLE_ROLES: Final = frozenset({"user", "version", "option"})

# Three equal columns with a one-pixel gutter: [0, 42), [43, 85), [86, 128).
_COLUMNS: Final = (0, 43, 86)
_COLUMN_W: Final = 42

Mode = Literal["text", "elided", "marquee", "graphic"]


@dataclass(frozen=True, slots=True)
class Placed:
    """One thing drawn on a frame.

    ``text`` is the whole (clean) text the element stands for, ``shown`` what this frame
    draws of it: the same for ``"text"``, the shortened form for ``"elided"``, and for a
    ``"marquee"`` the whole text too (it scrolls through its window over time). ``box`` is
    the area the element may light (its ink, its window, its inverted backdrop, or a
    widget's area); ``span`` the pen's horizontal extent for text.
    """

    role: str
    mode: Mode
    text: str
    shown: str
    font: str
    box: InkBox
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image.Image
    placed: tuple[Placed, ...]
    #: True if the frame depends on the view's ``t`` (a marquee that moves, paging, a spinner).
    animated: bool


class _Canvas:
    """A frame being drawn, and the record of what went where."""

    def __init__(self, t: float) -> None:
        self.image = Image.new("1", (WIDTH, HEIGHT), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.t = t
        self.placed: list[Placed] = []
        self.animated = False

    def text(
        self,
        x: int,
        y: int,
        text: str,
        font: Font,
        role: str,
        *,
        mode: Mode = "text",
        whole: str | None = None,
    ) -> int:
        """Draw ``text`` (clean, known to fit) with its cell at ``(x, y)``; returns its width."""
        width = font.width(text)
        font.draw(self.draw, (x, y), text)
        ink = font.ink(text)
        if ink is not None:
            box = (x + ink[0], y + ink[1], x + ink[2], y + ink[3])
            whole = text if whole is None else whole
            self.placed.append(Placed(role, mode, whole, text, font.name, box, (x, x + width)))
        return width

    def line(
        self,
        y: int,
        text: str,
        font: Font,
        role: str,
        *,
        x0: int = 0,
        x1: int = WIDTH,
        align: Literal["left", "center", "right"] = "left",
        overflow: Literal["scroll", "elide"] = "scroll",
    ) -> None:
        """One line of text within ``[x0, x1)``: whole if it fits, else scrolled (or elided)."""
        clean = font.clean(text)
        room = x1 - x0
        width = font.width(clean)
        if width <= room:
            if align == "center":
                x = x0 + (room - width) // 2
            elif align == "right":
                x = x1 - width
            else:
                x = x0
            self.text(x, y, clean, font, role)
        elif overflow == "elide":
            self.text(x0, y, fit(clean, font, room), font, role, mode="elided", whole=clean)
        else:
            self.scroll((x0, y), room, clean, font, role)

    def scroll(self, xy: tuple[int, int], width: int, text: str, font: Font, role: str) -> None:
        """A marquee window ``width`` wide at ``xy`` showing clean ``text`` at ``self.t``."""
        x, y = xy
        offset = scroll_offset(self.t, font.width(text), width)
        strip = marquee(text, font, width, offset)
        self.image.paste(strip, (x, y))
        self.animated = True
        box = (x, y, x + width, y + font.height)
        self.placed.append(Placed(role, "marquee", text, text, font.name, box, (x, x + width)))

    def inverted_line(
        self,
        box: InkBox,
        y: int,
        text: str,
        font: Font,
        role: str,
        *,
        pad: int = 0,
        align: Literal["left", "center"] = "center",
    ) -> None:
        """Dark ``text`` on a lit ``box`` (a highlight), ``pad`` pixels in from its sides.

        Scrolls like :meth:`line` when it does not fit. Recorded as one element, the box.
        """
        bx0, by0, bx1, by1 = box
        self.draw.rectangle((bx0, by0, bx1 - 1, by1 - 1), fill=1)
        x0, x1 = bx0 + pad, bx1 - pad
        clean = font.clean(text)
        width = font.width(clean)
        if width <= x1 - x0:
            x = x0 + (x1 - x0 - width) // 2 if align == "center" else x0
            font.draw(self.draw, (x, y), clean, 0)
            self.placed.append(Placed(role, "text", clean, clean, font.name, box, (x, x + width)))
        else:
            strip = marquee(clean, font, x1 - x0, scroll_offset(self.t, width, x1 - x0))
            self.image.paste(0, (x0, y), strip)
            self.animated = True
            self.placed.append(Placed(role, "marquee", clean, clean, font.name, box, (x0, x1)))

    def graphic(self, box: InkBox, role: str) -> None:
        """Record the area a widget (bar, needle, icon) occupies."""
        self.placed.append(Placed(role, "graphic", "", "", "", box, (box[0], box[2])))

    def frame(self) -> Frame:
        return Frame(self.image, tuple(self.placed), self.animated)


def _centered_x(text: str, font: Font, x0: int = 0, x1: int = WIDTH) -> int:
    return x0 + (x1 - x0 - font.width(text)) // 2


def _footer(c: _Canvas, *hints: str) -> None:
    """Gesture hints on the bottom line(s), centred: the last hint on the last line."""
    # Fixed ASCII without accents: nothing lights a cell's top row, so ten-pixel line
    # spacing cannot collide (the overlap test checks it).
    for i, hint in enumerate(reversed(hints)):
        c.line(HEIGHT - SMALL.height - 10 * i, hint, SMALL, "hint", align="center")


def _score_value(scores: Scores, key: str) -> float | None:
    value: float | None = getattr(scores, key)
    return value


def _score_group(c: _Canvas, x: int, y: int, key: str, value: float | None, *, inverted: bool = False) -> None:
    """A 42-px column: the metric's letter as a small lit tag, then the number, big.

    For screens where the words "pitch", "scale", "timing" do not fit above the numbers. The
    tag keeps the letter from reading as part of the number, and the number starts right
    after its own tag so the three groups read apart. ``inverted`` (the weakest score on the
    summary) draws the whole column dark on lit, the tag lit on dark.
    """
    number = format_score(value)
    number_x = x + 8
    fg = 0 if inverted else 1
    box = (x, y - 1, x + _COLUMN_W, y + BIG.height + 1)
    if inverted:
        c.draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=1)
    # A 7×8 tag, vertically centred on the digits; the letter's capitals are rows 3–8 of its cell.
    c.draw.rectangle((x, y + 3, x + 6, y + 10), fill=fg)
    SMALL.draw(c.draw, (x + 1, y + 1), _LETTERS[key], 1 - fg)
    BIG.draw(c.draw, (number_x, y), number, fg)
    shown = f"{_LETTERS[key]} {number}"
    if inverted:
        c.placed.append(Placed(f"score-{key}", "text", shown, shown, BIG.name, box, (x, x + _COLUMN_W)))
    else:
        ink = (x, y, x + _COLUMN_W, y + BIG.height)
        c.placed.append(Placed(f"score-{key}", "text", shown, shown, BIG.name, ink, (x, x + _COLUMN_W)))


def _score_row(c: _Canvas, y: int, scores: Scores, weakest: str | None = None) -> None:
    """The three scores side by side with letter tags."""
    for x, key in zip(_COLUMNS, _METRICS, strict=True):
        _score_group(c, x, y, key, _score_value(scores, key), inverted=key == weakest)


def _bar(c: _Canvas, x: int, y: int, value: float | None, key: str) -> None:
    """An outlined 42×5 bar filled in proportion to the score; empty while there is none."""
    c.draw.rectangle((x, y, x + _COLUMN_W - 1, y + 4), outline=1, fill=0)
    if value is not None and math.isfinite(value):
        inner = _COLUMN_W - 2
        filled = round(inner * min(100.0, max(0.0, value)) / 100.0)
        if filled > 0:
            c.draw.rectangle((x + 1, y + 1, x + filled, y + 3), fill=1)
    c.graphic((x, y, x + _COLUMN_W, y + 5), f"bar-{key}")


def _needle(c: _Canvas, box: InkBox, cents: float | None, *, zone: bool) -> None:
    """A cents scale filling ``box``: −50…+50, centre mark, a 3-px needle.

    Beyond ±50 the needle stops at the end and is drawn hollow, so "way off" is not mistaken
    for "50 cents off". ``zone`` marks the ±3-cent in-tune window (the tuner).
    """
    x0, y0, x1, y1 = box
    mid_y = (y0 + y1 - 1) // 2
    centre = (x0 + x1 - 1) // 2
    # Symmetric about the centre, and the needle's 3 px stay inside [x0, x1).
    half = min(centre - (x0 + 1), (x1 - 2) - centre)
    lo, hi = centre - half, centre + half
    draw = c.draw
    draw.line((lo, mid_y, hi, mid_y), fill=1)
    draw.line((centre, y0, centre, y1 - 1), fill=1)
    for end in (lo, hi):
        draw.line((end, mid_y - 3, end, mid_y + 3), fill=1)
    for quarter in (centre - half // 2, centre + half // 2):
        draw.line((quarter, mid_y - 1, quarter, mid_y + 1), fill=1)
    if zone:
        dx = max(2, round(IN_TUNE_CENTS / _NEEDLE_LIMIT_CENTS * half))
        for edge in (centre - dx - 1, centre + dx + 1):
            draw.line((edge, mid_y - 4, edge, mid_y + 4), fill=1)
    if cents is not None and math.isfinite(cents):
        clamped = min(_NEEDLE_LIMIT_CENTS, max(-_NEEDLE_LIMIT_CENTS, cents))
        x = centre + round(clamped / _NEEDLE_LIMIT_CENTS * half)
        top, bottom = y0 + 2, y1 - 3
        if abs(cents) > _NEEDLE_LIMIT_CENTS:
            draw.rectangle((x - 1, top, x + 1, bottom), outline=1, fill=0)
        else:
            # A dark outline first, so the needle stands apart from the ticks it crosses.
            draw.rectangle((max(x0, x - 2), top - 1, min(x1 - 1, x + 2), bottom + 1), fill=0)
            draw.rectangle((x - 1, top, x + 1, bottom), fill=1)
    c.graphic(box, "needle")


# ---- texts the screens compose ---------------------------------------------------------------


def sync_text(status: SyncStatus, width: int = WIDTH, font: Font = SMALL) -> str:
    """The sync line on home: the most informative wording that fits ``width``."""
    q = format_count(status.queued)
    queued = status.queued > 0
    ago = None if status.last_synced_ago_s is None else format_ago(status.last_synced_ago_s)
    if status.state is SyncState.OFF:
        candidates = ["sync off"]
    elif status.state is SyncState.OFFLINE:
        candidates = [f"offline · {q} queued"] if queued else ["offline"]
    elif status.state is SyncState.SYNCING:
        candidates = [f"syncing · {q} queued"] if queued else ["syncing…"]
    elif status.state is SyncState.ERROR:
        candidates = [f"sync error · {q} queued", f"error · {q} queued"] if queued else ["sync error"]
    elif ago is None:
        candidates = [f"not synced · {q} queued", f"{q} queued"] if queued else ["not synced yet"]
    else:
        candidates = [f"synced {ago} · {q} queued", f"synced {ago}"] if queued else [f"synced {ago}"]
    for text in candidates:
        if font.width(font.clean(text)) <= width:
            return text
    return candidates[-1]


def save_text(save: SaveState) -> str:
    return {
        SaveState.SAVING: "saving…",
        SaveState.SAVED: "saved",
        SaveState.WILL_SYNC: "saved · will sync",
        SaveState.SYNCED: "saved · synced",
        SaveState.FAILED: "NOT saved",
    }[save]


_ERROR_TITLES: Final[Mapping[ErrorKind, str]] = {
    ErrorKind.NO_AUDIO: "NO AUDIO",
    ErrorKind.NO_NETWORK: "NO NETWORK",
    ErrorKind.DISK_FULL: "DISK FULL",
    ErrorKind.GENERIC: "ERROR",
}
_ERROR_MESSAGES: Final[Mapping[ErrorKind, str]] = {
    ErrorKind.NO_AUDIO: "Plug in your audio interface.",
    ErrorKind.NO_NETWORK: "Play on: sessions stay on the pedal and sync when the network is back.",
    ErrorKind.DISK_FULL: "Storage is full: sessions cannot be saved. Sync, or free some space.",
    ErrorKind.GENERIC: "Something went wrong.",
}

# Warning icons, 7×9: a lightning bolt (undervoltage) and a thermometer (throttled).
_ICONS: Final[Mapping[PowerWarning, tuple[str, ...]]] = {
    PowerWarning.UNDERVOLTAGE: (
        "...###.", "..###..", ".###...", "#######", "...###.", "..###..", ".###...", "##.....", "#......",
    ),
    PowerWarning.THROTTLED: (
        "..###..", "..#.#..", "..#.#..", "..###..", "..###..", ".#####.", ".#####.", ".#####.", "..###..",
    ),
}  # fmt: skip


def _icon(c: _Canvas, x: int, y: int, rows: tuple[str, ...], role: str) -> None:
    for dy, row in enumerate(rows):
        for dx, cell in enumerate(row):
            if cell == "#":
                c.draw.point((x + dx, y + dy), fill=1)
    c.graphic((x, y, x + len(rows[0]), y + len(rows)), role)


# ---- the screens -----------------------------------------------------------------------------


def _boot(c: _Canvas, view: BootView) -> None:
    title = "FRETCOACH"
    c.text(_centered_x(title, BIG), 3, title, BIG, "title")
    # A fretboard: six strings, the nut and four frets, between the name and the version.
    left, right, top = 10, 117, 20
    for s in range(6):
        c.draw.line((left, top + 2 * s, right, top + 2 * s), fill=1)
    c.draw.rectangle((left, top, left + 1, top + 10), fill=1)
    for fret in range(1, 5):
        x = left + fret * (right - left) // 4
        c.draw.line((x, top, x, top + 10), fill=1)
    c.graphic((left, top, right + 1, top + 11), "fretboard")
    if view.status:
        c.line(37, f"v{view.version}", SMALL, "version", align="center", overflow="elide")
        c.line(HEIGHT - SMALL.height, view.status, SMALL, "status", align="center")
    else:
        c.line(34, "guitar practice pedal", SMALL, "tagline", align="center")
        c.line(HEIGHT - SMALL.height, f"v{view.version}", SMALL, "version", align="center", overflow="elide")


def _home(c: _Canvas, view: HomeView) -> None:
    user_x1 = WIDTH
    if view.warning is not None:
        icon = _ICONS[view.warning]
        _icon(c, WIDTH - len(icon[0]), 1, icon, "warning")
        user_x1 = WIDTH - len(icon[0]) - 3
    # A long user name is shortened, not scrolled: home is on screen most of the time and a
    # name is recognisable from its start; a moving line there would also keep the bus busy.
    c.line(0, view.user, SMALL, "user", x1=user_x1, overflow="elide")
    last = view.last_session
    if last is None:
        c.line(12, "no sessions yet", SMALL, "scale", align="center")
        c.line(27, "play to get scores", SMALL, "note", align="center")
    else:
        c.line(12, last.scale, SMALL, "scale", align="center")
        _score_row(c, 25, last.scores)
    c.line(40, sync_text(view.sync), SMALL, "sync", align="center")
    _footer(c, "press: start AI Mode")


def _planning(c: _Canvas, view: PlanningView) -> None:
    title = "AI MODE"
    c.text(_centered_x(title, BIG), 4, title, BIG, "title")
    # The dots grow after a stable left edge, so the word does not jump as they change.
    word = "thinking"
    dots = _tick(view.t, 0.5, 4)
    c.animated = True
    x = _centered_x(word + "...", SMALL)
    c.text(x, 25, word + "." * dots, SMALL, "status")
    c.line(40, "asking the coach", SMALL, "note", align="center")


def _tick(t: float, period_s: float, n: int) -> int:
    """Which of ``n`` animation steps of ``period_s`` each is showing at ``t``."""
    if not math.isfinite(t) or t < 0:
        return 0
    return int(t / period_s) % n


def _plan(c: _Canvas, view: PlanView) -> None:
    c.line(0, view.scale, SMALL, "scale", align="center")
    focus_x1 = WIDTH
    if view.offline:
        badge = "offline"
        badge_w = SMALL.width(badge) + 4
        c.inverted_line((WIDTH - badge_w, 11, WIDTH, 22), 11, badge, SMALL, "offline")
        focus_x1 = WIDTH - badge_w - 2
    prefix = "focus:"
    px = c.text(0, 11, prefix, SMALL, "focus-label")
    focus = SHORT_LABELS.get(view.focus, view.focus)
    c.line(11, focus, SMALL, "focus", x0=px + SMALL.width(" "), x1=focus_x1)
    c.line(22, view.reasoning, SMALL, "reasoning")
    settings = f"strict {format_percent(view.strictness)} · sens {format_percent(view.sensitivity)}"
    c.line(33, settings, SMALL, "settings", align="center")
    _footer(c, "press: start", "hold: new plan")


def _live(c: _Canvas, view: LiveView) -> None:
    for x, key in zip(_COLUMNS, _METRICS, strict=True):
        value = _score_value(view.scores, key)
        c.line(0, SHORT_LABELS[key], SMALL, f"label-{key}", x0=x, x1=x + _COLUMN_W, align="center")
        number = format_score(value)
        c.text(_centered_x(number, BIG, x, x + _COLUMN_W), 11, number, BIG, f"score-{key}")
        _bar(c, x, 26, value, key)
    # Note under "pitch", needle under "scale", elapsed under "timing": fixed slots, so
    # nothing shifts as the clock grows an hour digit.
    note_y = 33
    note = view.note if view.note else "--"
    note_font = BIG if BIG.width(BIG.clean(note)) <= _COLUMN_W - 2 else SMALL
    if view.in_scale is False and view.note:
        # A wrong note is shown dark on lit: visible from the corner of the eye.
        box = (0, note_y - 1, _COLUMN_W, note_y + BIG.height + 1)
        c.inverted_line(box, note_y + (BIG.height - note_font.height) // 2, note, note_font, "note", pad=1)
    else:
        c.line(note_y + (BIG.height - note_font.height) // 2, note, note_font, "note", x1=_COLUMN_W, align="center")
    cents = view.cents if view.note else None
    _needle(c, (_COLUMNS[1], note_y, _COLUMNS[1] + _COLUMN_W, note_y + BIG.height), cents, zone=False)
    c.line(note_y + 1, format_elapsed(view.elapsed_s), SMALL, "elapsed", x0=_COLUMNS[2], align="right")
    bottom = HEIGHT - SMALL.height
    if view.coach_line.strip():
        c.line(bottom, view.coach_line, SMALL, "coach")
    else:
        c.line(bottom, view.scale or "listening…", SMALL, "scale", align="center")


def _pause(c: _Canvas, view: PauseView) -> None:
    title = "PAUSED"
    c.text(_centered_x(title, BIG), 0, title, BIG, "title")
    elapsed = format_elapsed(view.elapsed_s)
    c.text(_centered_x(elapsed, BIG), 17, elapsed, BIG, "elapsed")
    if view.scale:
        c.line(32, view.scale, SMALL, "scale", align="center")
    _footer(c, "press: resume", "hold: stop")


def _summary(c: _Canvas, view: SummaryView) -> None:
    _score_row(c, 3, view.scores, view.weakest)
    duration = format_elapsed(view.duration_s)
    c.line(20, f"{format_count(view.notes_played)} notes · {duration}", SMALL, "notes", align="center")
    counts = f"{format_count(view.correct_notes)} ok · {format_count(view.wrong_notes)} wrong"
    c.line(31, counts, SMALL, "counts", align="center")
    weakest = SHORT_LABELS.get(view.weakest, view.weakest) if view.weakest else "--"
    c.line(42, f"weakest: {weakest}", SMALL, "weakest", align="center")
    bottom = HEIGHT - SMALL.height
    if view.save is SaveState.FAILED:
        c.inverted_line((0, bottom, WIDTH, HEIGHT), bottom, save_text(view.save), SMALL, "save")
    else:
        c.line(bottom, save_text(view.save), SMALL, "save", align="center")


def _tuner(c: _Canvas, view: TunerView) -> None:
    c.text(0, 0, "tuner", SMALL, "title")
    sounding = bool(view.note)
    if sounding and view.hz is not None and math.isfinite(view.hz):
        c.line(0, format_hz(view.hz), SMALL, "hz", x0=40, align="right")
    note = view.note if view.note else "--"
    cents = view.cents if sounding and view.cents is not None and math.isfinite(view.cents) else None
    note_x1 = WIDTH - 26  # the cents column keeps its place whatever the note's width
    note_font = HUGE if HUGE.width(HUGE.clean(note)) <= note_x1 else BIG
    clean_note = note_font.clean(note)
    if note_font.width(clean_note) <= note_x1:
        c.text(_centered_x(clean_note, note_font, 0, note_x1), 12 + (HUGE.height - note_font.height) // 2,
               clean_note, note_font, "note")  # fmt: skip
    else:
        c.line(17, note, SMALL, "note", x1=note_x1, align="center")
    if cents is not None:
        c.line(17, format_cents(cents), SMALL, "cents", x0=note_x1, align="right")
    _needle(c, (0, 36, WIDTH, 51), cents, zone=True)
    bottom = HEIGHT - SMALL.height
    if not sounding:
        c.line(bottom, "play a string", SMALL, "status", align="center")
    elif cents is not None:  # a note without a reading says nothing about its tuning
        if abs(cents) <= IN_TUNE_CENTS:
            c.inverted_line((0, bottom, WIDTH, HEIGHT), bottom, "in tune", SMALL, "status")
        elif cents < 0:
            c.line(bottom, "flat · tune up", SMALL, "status", align="center")
        else:
            c.line(bottom, "sharp · tune down", SMALL, "status", align="center")


_PICKER_ROWS: Final = 3


def _scale_picker(c: _Canvas, view: ScalePickerView) -> None:
    options = view.options
    c.text(0, 0, "pick a scale", SMALL, "title")
    if not options:
        c.line(23, "no scales", SMALL, "option", align="center")
        return
    selected = min(len(options) - 1, max(0, view.selected))
    position = f"{format_count(selected + 1)}/{format_count(len(options))}"
    c.line(0, position, SMALL, "position", x0=74, align="right")
    # The selection sits in the middle row once the list has scrolled.
    first = min(max(0, selected - 1), max(0, len(options) - _PICKER_ROWS))
    for row, index in enumerate(range(first, min(len(options), first + _PICKER_ROWS))):
        y = 12 + row * 12
        if index == selected:
            # The cell plus one row below, so descenders sit inside the highlight; none above
            # (capitals start on the cell's fourth row), which keeps a dark line between the
            # row above's descenders and the highlight.
            box = (0, y, WIDTH, y + SMALL.height + 1)
            c.inverted_line(box, y, options[index], SMALL, "option", pad=2, align="left")
        else:
            c.line(y, options[index], SMALL, "option", x0=2, x1=WIDTH - 2, overflow="elide")
    _footer(c, "press: next  hold: ok")


_ERROR_BODY_ROWS: Final = 4


def _error(c: _Canvas, view: ErrorView) -> None:
    title = _ERROR_TITLES[view.kind]
    c.text(_centered_x(title, BIG), 1, title, BIG, "title")
    body = _ERROR_MESSAGES[view.kind] + ("\n" + view.detail if view.detail.strip() else "")
    lines = wrap(body, SMALL, WIDTH)
    shown = page(lines, _ERROR_BODY_ROWS, view.t)
    if len(lines) > _ERROR_BODY_ROWS:
        c.animated = True
    for i, line in enumerate(shown):
        c.line(17 + i * SMALL.height, line, SMALL, "body", align="center")


def _shutdown(c: _Canvas, view: ShutdownView) -> None:
    if view.done:
        for y, word in ((12, "SAFE TO"), (32, "UNPLUG")):
            c.text(_centered_x(word, BIG), y, word, BIG, "title")
    else:
        for y, word in ((5, "SHUTTING"), (23, "DOWN…")):
            c.text(_centered_x(word, BIG), y, word, BIG, "title")
        c.line(44, "don't unplug yet", SMALL, "note", align="center")


_SCREENS: Final[Mapping[type, Callable[[_Canvas, Any], None]]] = {
    BootView: _boot,
    HomeView: _home,
    PlanningView: _planning,
    PlanView: _plan,
    LiveView: _live,
    PauseView: _pause,
    SummaryView: _summary,
    TunerView: _tuner,
    ScalePickerView: _scale_picker,
    ErrorView: _error,
    ShutdownView: _shutdown,
}


def compose(view: View) -> Frame:
    """Draw ``view`` and report what was placed where (for tests and the app's redraw policy)."""
    screen = _SCREENS.get(type(view))
    if screen is None:
        raise TypeError(f"no screen renders {type(view).__name__}")
    canvas = _Canvas(view.t)
    screen(canvas, view)
    return canvas.frame()


def render(view: View) -> Image.Image:
    """The 128×64 mode-"1" frame for any view."""
    return compose(view).image


def render_boot(view: BootView) -> Image.Image:
    return render(view)


def render_home(view: HomeView) -> Image.Image:
    return render(view)


def render_planning(view: PlanningView) -> Image.Image:
    return render(view)


def render_plan(view: PlanView) -> Image.Image:
    return render(view)


def render_live(view: LiveView) -> Image.Image:
    return render(view)


def render_pause(view: PauseView) -> Image.Image:
    return render(view)


def render_summary(view: SummaryView) -> Image.Image:
    return render(view)


def render_tuner(view: TunerView) -> Image.Image:
    return render(view)


def render_scale_picker(view: ScalePickerView) -> Image.Image:
    return render(view)


def render_error(view: ErrorView) -> Image.Image:
    return render(view)


def render_shutdown(view: ShutdownView) -> Image.Image:
    return render(view)
