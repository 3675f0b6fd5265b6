"""The terminal preview: exact half-block rendering, plain and in-place (ANSI) output."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from hardware.display import open_display
from hardware.terminal_display import TerminalDisplay, render_blocks

BLANK_LINE = " " * 128


def frame(*pixels: tuple[int, int]) -> Image.Image:
    image = Image.new("1", (128, 64))
    for xy in pixels:
        image.putpixel(xy, 1)
    return image


def expected(cells: dict[tuple[int, int], str]) -> str:
    """The 32×128 rendering with ``cells[(column, row)]`` set and spaces elsewhere."""
    rows = [list(BLANK_LINE) for _ in range(32)]
    for (column, row), glyph in cells.items():
        rows[row][column] = glyph
    return "\n".join("".join(row) for row in rows)


class RecordingStream(io.StringIO):
    """A text stream that keeps every write and can claim to be a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.writes: list[str] = []
        self.flushes = 0

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)

    def flush(self) -> None:
        self.flushes += 1


@pytest.mark.parametrize(
    ("pixels", "glyph"),
    [
        ((), " "),
        (((0, 0),), "▀"),
        (((0, 1),), "▄"),
        (((0, 0), (0, 1)), "█"),
    ],
)
def test_two_stacked_pixels_make_one_half_block_cell(pixels: tuple[tuple[int, int], ...], glyph: str) -> None:
    assert render_blocks(frame(*pixels)) == expected({(0, 0): glyph})


def test_a_known_pattern_renders_exactly_128_columns_by_32_rows() -> None:
    text = render_blocks(frame((7, 0), (8, 1), (5, 2), (5, 3), (64, 33), (127, 63)))
    lines = text.split("\n")
    assert len(lines) == 32
    assert {len(line) for line in lines} == {128}
    # (7,0)/(8,1) straddle a packed-byte boundary; row 1 holds pixel rows 2 and 3.
    assert text == expected({(7, 0): "▀", (8, 0): "▄", (5, 1): "█", (64, 16): "▄", (127, 31): "▄"})


def test_a_full_frame_is_all_full_blocks() -> None:
    text = render_blocks(Image.new("1", (128, 64), 1))
    assert text == "\n".join(["█" * 128] * 32)


@pytest.mark.parametrize("image", [Image.new("L", (128, 64)), Image.new("1", (64, 32))])
def test_render_blocks_accepts_only_display_frames(image: Image.Image) -> None:
    with pytest.raises(ValueError, match="mode '1' 128×64"):
        render_blocks(image)


def test_a_plain_stream_gets_changed_frames_separated_by_a_blank_line() -> None:
    stream = RecordingStream(tty=False)
    display = open_display("terminal", stream=stream)
    assert isinstance(display, TerminalDisplay)
    assert not display.ansi
    display.show(frame((0, 0)))
    display.show(frame((0, 0)))
    display.show(frame((0, 1)))
    display.close()
    first, second = expected({(0, 0): "▀"}), expected({(0, 0): "▄"})
    assert stream.writes == [first + "\n\n", second + "\n\n"]  # one write per frame, none on close
    assert stream.getvalue() == f"{first}\n\n{second}\n\n"
    assert display.frames_sent == 2


def test_a_tty_is_redrawn_in_place_and_gets_its_cursor_back_on_close() -> None:
    stream = RecordingStream(tty=True)
    with open_display("terminal", stream=stream) as display:
        assert isinstance(display, TerminalDisplay)
        assert display.ansi
        display.show(frame((0, 0)))
        display.show(frame((0, 0), (0, 1)))
    assert stream.writes == [
        "\x1b[?25l\x1b[2J\x1b[H" + expected({(0, 0): "▀"}),  # hide cursor, clear, home
        "\x1b[H" + expected({(0, 0): "█"}),  # home, overwrite
        "\n\x1b[?25h",  # below the frame, cursor shown
    ]
    assert stream.flushes == 3


def test_closing_before_any_frame_writes_nothing() -> None:
    stream = RecordingStream(tty=True)
    TerminalDisplay(stream).close()
    assert stream.writes == []


def test_ansi_can_be_forced_either_way() -> None:
    assert TerminalDisplay(RecordingStream(tty=False), ansi=True).ansi
    assert not TerminalDisplay(RecordingStream(tty=True), ansi=False).ansi


def test_the_default_stream_is_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    display = open_display("terminal")
    assert isinstance(display, TerminalDisplay)
    assert display.stream is sys.stdout
    display.show(frame((127, 63)))
    display.close()
    assert capsys.readouterr().out == expected({(127, 31): "▄"}) + "\n\n"
