"""Fonts and text helpers: measuring, wrapping, eliding, scrolling, paging, number formats."""

from __future__ import annotations

import itertools
import math
import random
import string

import pytest
from PIL import Image, ImageDraw

from device.analysis.scales import SCALE_KINDS, parse_scale
from device.ui.fonts import BIG, HUGE, SMALL, Font
from device.ui.text import (
    ELLIPSIS,
    MARQUEE_GAP,
    MARQUEE_PAUSE_S,
    MARQUEE_SPEED,
    fit,
    fits,
    format_ago,
    format_cents,
    format_count,
    format_elapsed,
    format_hz,
    format_percent,
    format_score,
    marquee,
    measure,
    page,
    scroll_offset,
    wrap,
)

FONTS = [SMALL, BIG, HUGE]
# Text as it arrives from an LLM or a user: curly quotes, dashes, accents, emoji, CJK, tabs.
ALPHABET = string.ascii_letters + string.digits + "     .,;:!?'\"#-+/()" + "éüñÅß’“”—–…•♯♭✓✗€😀中\t\n\u00a0\u0301"


def random_text(rng: random.Random, max_len: int = 120) -> str:
    n = rng.randint(0, max_len)
    if rng.random() < 0.2:
        # One unbreakable word, to exercise hard breaks.
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def drawn_bbox(font: Font, text: str) -> tuple[int, int, int, int] | None:
    """Where ``font.draw`` really lights pixels for ``text`` at (0, 0), found on a big canvas."""
    canvas = Image.new("1", (font.width(text) + 200, font.height + 40), 0)
    font.draw(ImageDraw.Draw(canvas), (100, 20), text)
    box = canvas.getbbox()
    return None if box is None else (box[0] - 100, box[1] - 20, box[2] - 100, box[3] - 20)


# ---- fonts -----------------------------------------------------------------------------------


def test_small_font_is_pillows_builtin_six_by_eleven_cell() -> None:
    assert SMALL.height == 11
    assert {SMALL.width(ch) for ch in string.printable.strip()} == {6}
    assert SMALL.width("F# minor pentatonic") == 114
    # 21 characters across the panel: the budget every one-line text is designed to.
    assert SMALL.width("x" * 21) <= 128 < SMALL.width("x" * 22)


def test_block_fonts_are_the_small_font_or_larger() -> None:
    assert BIG.height == 14 and HUGE.height == 21
    assert BIG.width("100") == 34
    assert HUGE.width("C#4") == 51


@pytest.mark.parametrize("font", FONTS, ids=lambda f: f.name)
def test_every_glyph_stays_inside_its_cell(font: Font) -> None:
    for ch in font._advance:
        box = drawn_bbox(font, ch)
        assert box == font.ink(ch), ch
        if box is not None:
            x0, y0, x1, y1 = box
            assert x0 >= 0 and x1 <= font.width(ch), ch
            assert y0 >= 0 and y1 <= font.height, ch


@pytest.mark.parametrize("font", FONTS, ids=lambda f: f.name)
def test_measured_ink_is_exactly_what_draw_lights(font: Font) -> None:
    rng = random.Random(7)
    for _ in range(150):
        text = font.clean(random_text(rng, 30))
        assert drawn_bbox(font, text) == font.ink(text), text


@pytest.mark.parametrize("font", FONTS, ids=lambda f: f.name)
def test_clean_leaves_only_drawable_characters_and_keeps_length_of_plain_text(font: Font) -> None:
    rng = random.Random(3)
    for _ in range(300):
        text = random_text(rng)
        clean = font.clean(text)
        assert all(font.supports(ch) for ch in clean), clean
        assert font.clean(clean) == clean
    assert font.clean("A minor 7") == ("A MINOR 7" if font is not SMALL else "A minor 7")


def test_clean_spells_typographic_characters_the_small_font_lacks() -> None:
    assert SMALL.clean("Don’t rush — it’s “fine”…") == "Don't rush - it's \"fine\"…"
    assert SMALL.clean("F♯ and B♭") == "F# and Bb"
    assert SMALL.clean("tab\tnew\nline") == "tab new line"
    assert SMALL.clean("é") == "é"  # Latin-1 has it
    assert SMALL.clean("e\u0301") == "é"  # composed first
    assert SMALL.clean("q\u0301") == "q"  # no such letter: the accent is dropped
    assert SMALL.clean("ő") == "o"  # folded to its base letter
    assert SMALL.clean("😀中") == "??"
    assert BIG.clean("c#4 ♯") == "C#4 #"


def test_unknown_characters_measure_and_draw_as_the_fallback() -> None:
    # Text that skipped clean() must still measure exactly as it draws.
    assert SMALL.width("😀") == SMALL.width("?")
    assert drawn_bbox(SMALL, "a😀b") == SMALL.ink("a?b")


# ---- wrap ------------------------------------------------------------------------------------


def test_wrap_breaks_at_spaces() -> None:
    text = "Keep your wrist loose and let the pick follow through."
    lines = wrap(text, SMALL, 128)
    assert lines == ["Keep your wrist loose", "and let the pick", "follow through."]


def test_wrap_hard_breaks_a_word_wider_than_the_line() -> None:
    assert wrap("sqlite3.OperationalError: locked", SMALL, 60) == ["sqlite3.Op", "erationalE", "rror:", "locked"]


def test_wrap_keeps_newlines_and_drops_blank_lines() -> None:
    assert wrap("one\n\n  two  three\n", SMALL, 128) == ["one", "two three"]
    assert wrap("", SMALL, 128) == []
    assert wrap(" \n\t ", SMALL, 128) == []


def test_wrap_refuses_a_width_narrower_than_a_character() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        wrap("x", SMALL, 5)


@pytest.mark.parametrize("font", FONTS, ids=lambda f: f.name)
def test_wrapped_lines_fit_and_keep_every_character_in_order(font: Font) -> None:
    rng = random.Random(11)
    for _ in range(400):
        text = random_text(rng, 200)
        width = rng.randint(font.max_advance, 128)
        lines = wrap(text, font, width)
        for line in lines:
            assert font.width(line) <= width, (line, width)
            assert line == line.strip() and line
        squeeze = "".join(font.clean(text).split())
        assert "".join("".join(lines).split()) == squeeze


def test_wrap_is_greedy_no_line_could_take_the_next_word() -> None:
    rng = random.Random(5)
    for _ in range(200):
        words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 30))]
        lines = wrap(" ".join(words), SMALL, 128)
        for line, following in itertools.pairwise(lines):
            assert SMALL.width(line + " " + following.split(" ")[0]) > 128


# ---- fit -------------------------------------------------------------------------------------


def test_fit_returns_text_that_fits_unchanged() -> None:
    assert fit("alex", SMALL, 128) == "alex"
    assert fit("x" * 21, SMALL, 126) == "x" * 21


def test_fit_elides_with_the_longest_prefix_that_fits() -> None:
    name = "alexander.the.great@example.com"
    shown = fit(name, SMALL, 117)
    assert shown == "alexander.the.grea…"
    assert SMALL.width(shown) <= 117
    # One more character would not have fitted.
    assert SMALL.width(name[: len(shown)] + ELLIPSIS) > 117


def test_fit_drops_trailing_spaces_before_the_ellipsis() -> None:
    assert fit("abc defghij", SMALL, 30) == "abc…"


def test_fit_refuses_a_width_that_cannot_hold_the_ellipsis() -> None:
    with pytest.raises(ValueError):
        fit("abc", SMALL, 5)


@pytest.mark.parametrize("font", FONTS, ids=lambda f: f.name)
def test_fit_random_texts_always_fit_and_are_prefixes(font: Font) -> None:
    rng = random.Random(9)
    for _ in range(300):
        text = random_text(rng)
        width = rng.randint(font.width(ELLIPSIS), 128)
        shown = fit(text, font, width)
        assert font.width(shown) <= width
        clean = font.clean(text)
        assert shown == clean or (shown.endswith(ELLIPSIS) and clean.startswith(shown[:-1]))


def test_every_scale_name_fits_a_list_row_without_eliding() -> None:
    # The narrowest place a scale name is shown is the picker row: 124 px inside its highlight.
    tonics = ["A", "Bb", "B", "C", "C#", "Db", "D", "Eb", "E", "F", "F#", "G", "G#"]
    names = [parse_scale(f"{tonic} {kind.value}").name for tonic in tonics for kind in SCALE_KINDS]
    longest = max(names, key=len)
    assert SMALL.width(longest) == SMALL.width("F# minor pentatonic") == 114
    assert all(fits(name, SMALL, 124) for name in names)


# ---- marquee and scroll_offset ---------------------------------------------------------------


def full_render(text: str, font: Font) -> Image.Image:
    image = Image.new("1", (font.width(text), font.height), 0)
    font.draw(ImageDraw.Draw(image), (0, 0), text)
    return image


def test_marquee_of_fitting_text_is_static_and_left_aligned() -> None:
    a = marquee("hello", SMALL, 60, 0)
    b = marquee("hello", SMALL, 60, 37)
    assert a.size == (60, SMALL.height) and a.mode == "1"
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() == full_render("hello", SMALL).crop((0, 0, 60, SMALL.height)).tobytes()


def test_marquee_window_is_the_text_shifted_by_the_offset() -> None:
    text = "Watch the bends on the G string: you land a little flat."
    full = full_render(SMALL.clean(text), SMALL)
    for offset in (0, 1, 17, 200):
        strip = marquee(text, SMALL, 128, offset)
        assert strip.tobytes() == full.crop((offset, 0, offset + 128, SMALL.height)).tobytes(), offset


def test_marquee_loops_with_a_gap() -> None:
    text = "x" * 30
    lap = SMALL.width(text) + MARQUEE_GAP
    assert marquee(text, SMALL, 128, lap).tobytes() == marquee(text, SMALL, 128, 0).tobytes()
    # Just before the lap ends, the start of the text is coming in from the right.
    strip = marquee(text, SMALL, 128, lap - 10)
    assert strip.crop((0, 0, 10, SMALL.height)).getbbox() is None
    assert strip.crop((10, 0, 20, SMALL.height)).getbbox() is not None


def test_scroll_offset_rests_then_moves_at_the_set_speed_and_repeats() -> None:
    text_w, window = 300, 128
    assert scroll_offset(0.0, text_w, window) == 0
    assert scroll_offset(MARQUEE_PAUSE_S - 0.01, text_w, window) == 0
    assert scroll_offset(MARQUEE_PAUSE_S + 1.0, text_w, window) == int(MARQUEE_SPEED)
    lap_s = MARQUEE_PAUSE_S + (text_w + MARQUEE_GAP) / MARQUEE_SPEED
    assert scroll_offset(lap_s + MARQUEE_PAUSE_S + 1.0, text_w, window) == int(MARQUEE_SPEED)
    for t in (x / 7 for x in range(500)):
        assert 0 <= scroll_offset(t, text_w, window) < text_w + MARQUEE_GAP


def test_scroll_offset_is_zero_for_fitting_text_and_odd_times() -> None:
    assert scroll_offset(12.3, 100, 128) == 0
    for t in (-5.0, math.nan, math.inf, -math.inf):
        assert scroll_offset(t, 300, 128) == 0


def test_every_character_of_a_long_line_is_shown_during_one_lap() -> None:
    text = "Nice vibrato on the long notes - now try to keep the pick attack even!!"
    text_w = SMALL.width(text)
    seen: set[int] = set()
    t = 0.0
    while t < MARQUEE_PAUSE_S + (text_w + MARQUEE_GAP) / MARQUEE_SPEED:
        offset = scroll_offset(t, text_w, 128)
        seen.update(range(offset, offset + 128))
        t += 0.05
    assert set(range(text_w)) <= seen


# ---- page ------------------------------------------------------------------------------------


def test_page_shows_everything_when_it_fits() -> None:
    assert page(["a", "b"], 4, 99.0) == ["a", "b"]


def test_page_moves_one_line_at_a_time_and_lingers_at_both_ends() -> None:
    lines = [str(i) for i in range(6)]
    windows = [page(lines, 4, k * 2.5) for k in range(6)]
    assert windows == [
        ["0", "1", "2", "3"],
        ["0", "1", "2", "3"],
        ["1", "2", "3", "4"],
        ["2", "3", "4", "5"],
        ["2", "3", "4", "5"],
        ["0", "1", "2", "3"],
    ]
    assert page(lines, 4, math.nan) == lines[:4]
    with pytest.raises(ValueError):
        page(lines, 0, 0.0)


# ---- number formats --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (5.9, "0:05"), (754, "12:34"), (3599, "59:59"), (3600, "1:00:00"), (5025, "1:23:45"),
     (-3, "0:00"), (math.nan, "0:00"), (math.inf, "0:00"), (10**9, "99:59:59")],
)  # fmt: skip
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "--"), (math.nan, "--"), (87.4, "87"), (87.5, "88"), (100, "100"), (104.0, "100"), (-3, "0")],
)
def test_format_score(value: float | None, text: str) -> None:
    assert format_score(value) == text


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0"), (42, "42"), (9999, "9999"), (10_000, "10k"), (999_999, "999k"), (5 * 10**6, "5M"),
                    (10**12, "999M"), (-1, "0")],
)  # fmt: skip
def test_format_count_is_at_most_four_characters(n: int, text: str) -> None:
    assert format_count(n) == text
    assert len(text) <= 4


def test_other_formats() -> None:
    assert [format_cents(c) for c in (0.2, -12.4, 12.6, 250, -250)] == ["0¢", "-12¢", "+13¢", "+99¢", "-99¢"]
    assert format_hz(82.41) == "82.4 Hz" and format_hz(1e9) == "9999.9 Hz" and format_hz(-1) == "0.0 Hz"
    assert [format_percent(u) for u in (0.0, 0.555, 1.0, 7.0, math.nan)] == ["0%", "56%", "100%", "100%", "--"]
    assert [format_ago(s) for s in (0, 59, 60, 300, 3599, 3600, 86_399, 86_400, 10**9, math.inf, math.nan)] == [
        "just now", "just now", "1 min ago", "5 min ago", "59 min ago", "1 h ago", "23 h ago", "1 d ago",
        "999 d ago", "999 d ago", "just now",
    ]  # fmt: skip


def test_measure_cleans_first() -> None:
    assert measure("—", SMALL) == SMALL.width("-") == 6
