"""The note: what the tracker hands the scorer."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from device.analysis.scales import pitch_class_name

__all__ = ["Note", "Sounding", "cents_off", "hz_to_midi_float", "midi_to_hz"]


def hz_to_midi_float(hz: float, a4_hz: float = 440.0) -> float:
    return 69.0 + 12.0 * math.log2(hz / a4_hz)


def midi_to_hz(midi: float, a4_hz: float = 440.0) -> float:
    return a4_hz * 2 ** ((midi - 69.0) / 12.0)


def cents_off(hz: float, a4_hz: float = 440.0) -> tuple[int, float]:
    """Nearest equal-tempered MIDI note and the deviation from it in cents (−50..+50)."""
    m = hz_to_midi_float(hz, a4_hz)
    midi = round(m)
    return midi, (m - midi) * 100.0


@dataclass(frozen=True, slots=True)
class Note:
    """One played note.

    ``cents`` is the deviation from equal temperament (A4 = ``a4_hz`` of the tracker);
    ``level_db`` the note's peak RMS level in dBFS; ``confidence`` the pitch detector's
    median confidence over the note (0–1).
    """

    onset_s: float
    midi: int
    cents: float
    duration_s: float
    in_scale: bool
    confidence: float
    frequency_hz: float
    level_db: float

    @property
    def name(self) -> str:
        return f"{pitch_class_name(self.midi)}{self.midi // 12 - 1}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["name"] = self.name
        return d


@dataclass(frozen=True, slots=True)
class Sounding:
    """The note being played right now (before it has ended): for the live screen and tuner.

    Its cents come from the decimated track without the per-note corrections a finished
    :class:`Note` gets, so they can read a few cents sharp above ~800 Hz.
    """

    onset_s: float
    midi: int
    cents: float
    in_scale: bool | None

    @property
    def name(self) -> str:
        return f"{pitch_class_name(self.midi)}{self.midi // 12 - 1}"
