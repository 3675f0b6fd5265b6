"""Tuning of the note tracker: plain values, so the analysis core needs no config library."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "TrackerSettings", "gate_dbfs"]

# Rates the tracker accepts: telephone-band recorders up to high-rate interfaces.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000


def gate_dbfs(sensitivity: float) -> float:
    """The quietest note peak that still counts: sensitivity 0 → −30 dBFS (only firmly picked
    notes), 0.5 → −50 dBFS, 1 → −70 dBFS (ghost notes and a low-output pickup count too)."""
    return -30.0 - 40.0 * min(1.0, max(0.0, sensitivity))


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """Every number the tracker uses, chosen by measurement on rendered guitar (see bench/)."""

    a4_hz: float = 440.0
    sensitivity: float = 0.5
    # Guitar range with room for a detuned low string and a bend above the 22nd fret.
    min_hz: float = 65.0
    max_hz: float = 1500.0
    pitch_method: str = "yinfast"
    pitch_tolerance: float = 0.3
    min_confidence: float = 0.7
    onset_method: str = "hfc"
    onset_window: int = 256
    onset_threshold: float = 0.1
    min_ioi_s: float = 0.05
    # A pitch change held this long without a new attack is a new note (legato); shorter
    # excursions (slides passing through, vibrato, attack transients) are not.
    legato_s: float = 0.055
    legato_semitones: float = 0.6
    min_note_s: float = 0.04
    # A note ends when its level falls this far below its own peak (its tail is not a note).
    release_db: float = 30.0
    # A note that starts without an attack must rise this far above the noise floor.
    floor_margin_db: float = 15.0

    @property
    def gate_dbfs(self) -> float:
        return gate_dbfs(self.sensitivity)
