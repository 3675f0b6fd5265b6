"""Pixel fonts for the 128×64 mono OLED: no FreeType, no font files, the same pixels everywhere.

Three faces, all bitmaps, so a frame is identical on every machine and golden PNGs never
drift with a FreeType or libraqm version (the trouble pi-stomp works around by forcing
Pillow's basic layout; a bitmap font has no layout engine to force):

``SMALL``
    Pillow's built-in bitmap font (``ImageFont.load_default_imagefont()``, a bold Courier-like
    face): 6 px per character, an 11 px line, Latin-1 only. 21 characters fit across the
    panel. It is the smallest text the pedal ever shows. A few glyphs Latin-1 lacks and the
    screens need (``…``, ``✓``, ``✗``) are drawn from tables here in the same style.
``BIG`` / ``HUGE``
    a 5×7 block font (digits, capitals, a little punctuation) defined below as text, drawn
    at ×2 (14 px tall) and ×3 (21 px tall) for scores, times and note names: readable from
    standing height, which is where a guitarist looks at a pedal from.

Every font maps text it cannot draw through :meth:`Font.clean` first (typographic quotes
and dashes to ASCII, accents folded where the face has no such letter, anything else to
``?``); :meth:`Font.width`, :meth:`Font.ink` and :meth:`Font.draw` agree with one another
character by character, so a measured line is exactly the line drawn.
"""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Final

from PIL import Image, ImageDraw, ImageFont

__all__ = ["BIG", "HUGE", "SMALL", "BlockFont", "BuiltinFont", "Font", "InkBox"]

#: ``(x0, y0, x1, y1)``, x1/y1 exclusive, as Pillow's ``getbbox``.
InkBox = tuple[int, int, int, int]

# Typographic characters an LLM or a user name is likely to contain, spelt with what the
# small font has. Anything not here and not drawable is NFKD-folded, then becomes "?".
_FOLD: Final[Mapping[str, str]] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2032": "'",
    "\u2033": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2022": "·",
    "\u2219": "·",
    "\u266f": "#",
    "\u266d": "b",
    "\u00a0": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u2026": "…",
    "\u2713": "✓",
    "\u2714": "✓",
    "\u2717": "✗",
    "\u2718": "✗",
    "\u00d7": "x",
}
_FALLBACK: Final = "?"


def _rows_to_image(rows: Sequence[str], scale: int = 1) -> Image.Image:
    """A mode-"1" glyph image from rows of ``#`` (lit) and ``.`` (dark), each pixel ×scale."""
    width = len(rows[0])
    image = Image.new("1", (width * scale, len(rows) * scale), 0)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"glyph rows differ in width: {rows!r}")
        for x, cell in enumerate(row):
            if cell == "#":
                draw.rectangle((x * scale, y * scale, x * scale + scale - 1, y * scale + scale - 1), fill=1)
    return image


class Font(ABC):
    """A bitmap face: per-character advances, ink boxes and glyphs; no kerning, no layout engine.

    ``height`` is the line cell: text drawn at ``y`` never lights a pixel outside
    ``y … y + height − 1``. ``max_advance`` is the widest character, the narrowest window
    :func:`device.ui.text.wrap` can fill.
    """

    name: str
    height: int

    def __init__(self, name: str, height: int, advances: Mapping[str, int], inks: Mapping[str, InkBox | None]) -> None:
        self.name = name
        self.height = height
        self._advance = dict(advances)
        self._ink = dict(inks)
        self.max_advance = max(self._advance.values())

    def supports(self, ch: str) -> bool:
        return ch in self._advance

    def clean(self, text: str) -> str:
        """``text`` spelt with characters this font draws; whitespace and controls become spaces."""
        if all(ch in self._advance for ch in text):
            return text
        # Composed first, so "e" + combining acute becomes the "é" the font has.
        return "".join(self._clean_char(ch) for ch in unicodedata.normalize("NFC", text))

    def _clean_char(self, ch: str) -> str:
        if ch in self._advance:
            return ch
        if ch.isspace() or unicodedata.category(ch).startswith("C"):
            return " "
        if unicodedata.combining(ch):
            return ""  # an accent left over after composing: the letter stands without it
        folded = _FOLD.get(ch)
        if folded is not None and all(c in self._advance for c in folded):
            return folded
        # "é" → "e" + combining accent; keep the base letters the face has (ligatures too).
        decomposed = "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c) and c in self._advance
        )
        return decomposed or _FALLBACK

    def _char(self, ch: str) -> str:
        # Unknown characters are measured and drawn as the fallback, one for one, so width(),
        # ink() and draw() agree even for text that skipped clean().
        return ch if ch in self._advance else _FALLBACK

    #: Blank pixels every advance carries after its glyph that the last character does not need.
    _trail: int = 0

    def width(self, text: str) -> int:
        """Pixels ``text`` takes: the sum of its advances, less the last one's trailing gap."""
        if not text:
            return 0
        adv = self._advance
        fallback = adv[_FALLBACK]
        return sum(adv.get(ch, fallback) for ch in text) - self._trail

    def fitting(self, text: str, width: int) -> int:
        """How many leading characters of ``text`` fit in ``width`` pixels."""
        adv = self._advance
        fallback = adv[_FALLBACK]
        total = -self._trail
        for i, ch in enumerate(text):
            total += adv.get(ch, fallback)
            if total > width:
                return i
        return len(text)

    def ink(self, text: str) -> InkBox | None:
        """The box of pixels ``text`` can light, relative to the pen at ``(0, 0)``; ``None`` if blank."""
        x = 0
        box: InkBox | None = None
        for raw in text:
            ch = self._char(raw)
            glyph = self._ink[ch]
            if glyph is not None:
                gx0, gy0, gx1, gy1 = glyph
                if box is None:
                    box = (x + gx0, gy0, x + gx1, gy1)
                else:
                    box = (min(box[0], x + gx0), min(box[1], gy0), max(box[2], x + gx1), max(box[3], gy1))
            x += self._advance[ch]
        return box

    @abstractmethod
    def draw(self, draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, fill: int = 1) -> None:
        """Draw ``text`` with its cell's top-left corner at ``xy``."""


class BuiltinFont(Font):
    """Pillow's built-in bitmap font, plus a few glyphs from tables in the same 6×11 cell.

    Pillow draws a string into a mask exactly as wide as its advances, and some glyphs reach
    one column past their cell (the serifs of "A", "n", "p"… sit at x = −1, "®" ends at 7).
    Inside a string those columns land in the neighbour's cell; at either end of the string
    they are cut off by the mask. :meth:`ink` models exactly that, so the measured box is
    the drawn box, and text never lights a pixel outside ``[x, x + width)``.
    """

    # Drawn to sit on the built-in font's baseline (row 8) at its capital height (rows 3–8).
    EXTRA_GLYPHS: Final[Mapping[str, tuple[str, ...]]] = {
        "…": ("......", "......", "......", "......", "......", "......", "......", "......",
              "#.#.#.", "......", "......"),
        # Taller than the letters (rows 1–9) so they do not read as "v" and "x".
        "✓": ("......", ".....#", ".....#", "....##", "....#.", "#..##.", "##.#..", ".###..",
              ".##...", "..#...", "......"),
        "✗": ("......", "......", "#....#", "##..##", ".####.", "..##..", ".####.", "##..##",
              "#....#", "......", "......"),
    }  # fmt: skip

    def __init__(self) -> None:
        self._pil = ImageFont.load_default_imagefont()
        chars = [chr(c) for c in (*range(0x20, 0x7F), *range(0xA0, 0x100))]
        advances: dict[str, int] = {}
        inks: dict[str, InkBox | None] = {}
        height = 0
        pad = 12
        for ch in chars:
            advances[ch] = round(self._pil.getlength(ch))
            height = max(height, self._pil.getbbox(ch)[3])
            # Probed between spaces, so a column reaching into a neighbour's cell is seen.
            probe = Image.new("1", (advances[ch] + 2 * pad + 12, 16), 0)
            ImageDraw.Draw(probe).text((pad - 6, 0), f" {ch} ", font=self._pil, fill=1)
            box = probe.getbbox()
            inks[ch] = None if box is None else (box[0] - pad, box[1], box[2] - pad, box[3])
        self._extras: dict[str, Image.Image] = {}
        for ch, rows in self.EXTRA_GLYPHS.items():
            image = _rows_to_image(rows)
            self._extras[ch] = image
            advances[ch] = image.width
            inks[ch] = image.getbbox()
        super().__init__("small", height, advances, inks)

    def _runs(self, text: str) -> list[tuple[int, str, bool]]:
        """``(x, run, is_extra)``: maximal runs of Pillow's characters, and each extra glyph."""
        runs: list[tuple[int, str, bool]] = []
        x = 0
        start = 0
        current: list[str] = []
        for raw in text:
            ch = self._char(raw)
            if ch in self._extras:
                if current:
                    runs.append((start, "".join(current), False))
                    current = []
                runs.append((x, ch, True))
                start = x + self._advance[ch]
            else:
                current.append(ch)
            x += self._advance[ch]
        if current:
            runs.append((start, "".join(current), False))
        return runs

    def ink(self, text: str) -> InkBox | None:
        box: InkBox | None = None
        for x, run, _ in self._runs(text):
            run_box = super().ink(run)
            if run_box is None:
                continue
            # What Pillow's mask cuts off at the run's ends (see the class docstring).
            x0, y0, x1, y1 = max(0, run_box[0]), run_box[1], min(self.width(run), run_box[2]), run_box[3]
            if x0 >= x1:
                continue
            x0, x1 = x0 + x, x1 + x
            box = (
                (x0, y0, x1, y1)
                if box is None
                else (min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1))
            )
        return box

    def draw(self, draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, fill: int = 1) -> None:
        x, y = xy
        for dx, run, is_extra in self._runs(text):
            if is_extra:
                draw.bitmap((x + dx, y), self._extras[run], fill=fill)
            else:
                # One Pillow call per run of ordinary characters: ~10 µs for a full 21-character line.
                draw.text((x + dx, y), run, font=self._pil, fill=fill)


# The 5×7 block font: rows of "#" (lit) and "." (dark). Widths vary (":" is one column) so
# times and scores take no more room than they need.
_BLOCK_GLYPHS: Final[Mapping[str, tuple[str, ...]]] = {
    " ": ("...",) * 7,
    "0": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    ":": (".", ".", "#", ".", "#", ".", "."),
    ".": (".", ".", ".", ".", ".", ".", "#"),
    "…": (".....", ".....", ".....", ".....", ".....", ".....", "#.#.#"),
    "-": ("....", "....", "....", "####", "....", "....", "...."),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    "#": (".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."),
    "%": ("##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"),
    "!": ("#", "#", "#", "#", "#", ".", "#"),
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
    "/": ("....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."),
    "'": ("#", "#", ".", ".", ".", ".", "."),
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": ("###", ".#.", ".#.", ".#.", ".#.", ".#.", "###"),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
}


class BlockFont(Font):
    """The 5×7 block font drawn at an integer ``scale``; capitals only (text is upper-cased).

    One empty column (×scale) separates characters; :meth:`width` does not count the one
    after the last character, so a measured word is exactly as wide as its ink.
    """

    def __init__(self, scale: int, name: str) -> None:
        self.scale = scale
        self._gap = scale
        self._trail = scale
        self._glyphs: dict[str, Image.Image] = {}
        advances: dict[str, int] = {}
        inks: dict[str, InkBox | None] = {}
        for ch, rows in _BLOCK_GLYPHS.items():
            image = _rows_to_image(rows, scale)
            self._glyphs[ch] = image
            advances[ch] = image.width + self._gap
            inks[ch] = image.getbbox()
        super().__init__(name, 7 * scale, advances, inks)

    def clean(self, text: str) -> str:
        return super().clean(text.upper())

    def draw(self, draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, fill: int = 1) -> None:
        x, y = xy
        for raw in text:
            ch = self._char(raw)
            if ch != " ":
                draw.bitmap((x, y), self._glyphs[ch], fill=fill)
            x += self._advance[ch]


#: Pillow's built-in bitmap font (6×11 cell): everything that is not a big number.
SMALL: Final = BuiltinFont()
#: 5×7 blocks ×2 (14 px): scores, elapsed time, note names on the live screen, titles.
BIG: Final = BlockFont(2, "big")
#: 5×7 blocks ×3 (21 px): the tuner's note name.
HUGE: Final = BlockFont(3, "huge")
