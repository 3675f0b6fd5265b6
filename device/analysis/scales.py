"""Scales the pedal scores against, and a forgiving parser for their names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from device.errors import UnknownScaleError

__all__ = ["SCALE_KINDS", "Scale", "ScaleKind", "parse_scale", "pitch_class_name"]


class ScaleKind(StrEnum):
    MAJOR = "major"
    NATURAL_MINOR = "natural minor"
    MAJOR_PENTATONIC = "major pentatonic"
    MINOR_PENTATONIC = "minor pentatonic"

    @property
    def scale_type(self) -> str:
        """The cloud schema's ``scale_type``: ``natural`` or ``pentatonic``."""
        return "pentatonic" if "pentatonic" in self.value else "natural"


# Semitones above the tonic.
_INTERVALS: dict[ScaleKind, tuple[int, ...]] = {
    ScaleKind.MAJOR: (0, 2, 4, 5, 7, 9, 11),
    ScaleKind.NATURAL_MINOR: (0, 2, 3, 5, 7, 8, 10),
    ScaleKind.MAJOR_PENTATONIC: (0, 2, 4, 7, 9),
    ScaleKind.MINOR_PENTATONIC: (0, 3, 5, 7, 10),
}
SCALE_KINDS: tuple[ScaleKind, ...] = tuple(ScaleKind)

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Order matters: longer spellings first so "minor pentatonic" is not read as "minor".
_QUALITIES: tuple[tuple[str, ScaleKind], ...] = (
    (r"(?:minor|min|m)\s*(?:pentatonic|pent|penta)", ScaleKind.MINOR_PENTATONIC),
    (r"(?:pentatonic|pent|penta)\s*(?:minor|min|m)", ScaleKind.MINOR_PENTATONIC),
    (r"(?:major|maj)\s*(?:pentatonic|pent|penta)", ScaleKind.MAJOR_PENTATONIC),
    (r"(?:pentatonic|pent|penta)\s*(?:major|maj)?", ScaleKind.MAJOR_PENTATONIC),
    (r"(?:natural\s*minor|minor|min|aeolian|m)", ScaleKind.NATURAL_MINOR),
    (r"(?:natural\s*major|major|maj|ionian)?", ScaleKind.MAJOR),
)
_TONIC = r"(?P<letter>[a-g])\s*(?P<acc>(?:#|♯|b|♭|sharp|flat)?)"
_ACCEPTED = (
    "a tonic A–G with optional # or b, then major, minor (natural minor), "
    "major pentatonic or minor pentatonic — e.g. 'A minor pentatonic', 'Bb major', 'f# minor'"
)


def pitch_class_name(pc: int) -> str:
    return _SHARP_NAMES[pc % 12]


@dataclass(frozen=True, slots=True)
class Scale:
    """A scale in one key: ``tonic`` is the spelling shown to the player."""

    tonic: str
    tonic_pc: int
    kind: ScaleKind

    @property
    def name(self) -> str:
        return f"{self.tonic} {self.kind.value}"

    @property
    def scale_type(self) -> str:
        return self.kind.scale_type

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic_pc + i) % 12 for i in _INTERVALS[self.kind])

    def contains(self, midi: int) -> bool:
        return (midi - self.tonic_pc) % 12 in _INTERVALS[self.kind]

    def __str__(self) -> str:
        return self.name


def _accidental(acc: str) -> tuple[int, str]:
    if acc in ("#", "♯", "sharp"):
        return 1, "#"
    if acc in ("b", "♭", "flat"):
        return -1, "b"
    return 0, ""


def parse_scale(name: str) -> Scale:
    """Parse a scale name forgivingly (case, spacing, ♯/♭, common abbreviations).

    Raises :class:`UnknownScaleError` naming what is accepted when it does not parse.
    """
    text = " ".join(name.strip().lower().replace("-", " ").replace("_", " ").split())
    for pattern, kind in _QUALITIES:
        match = re.fullmatch(_TONIC + r"\s*(?:" + pattern + r")\s*(?:scale)?", text)
        if match is None:
            continue
        shift, spelled = _accidental(match["acc"])
        letter = match["letter"].upper()
        return Scale(tonic=letter + spelled, tonic_pc=(_LETTER_PC[letter] + shift) % 12, kind=kind)
    raise UnknownScaleError(f"unknown scale {name!r}: expected {_ACCEPTED}")
