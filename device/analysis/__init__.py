"""The pure analysis core: audio samples in, notes and scores out. No files, no threads."""

from device.analysis.metrics import (
    METRIC_LABELS,
    Metrics,
    Scorer,
    pitch_tolerance_cents,
    score_notes,
    timing_tolerance_ms,
)
from device.analysis.note_tracker import NoteTracker, track_notes
from device.analysis.notes import Note, Sounding
from device.analysis.scales import SCALE_KINDS, Scale, ScaleKind, parse_scale
from device.analysis.settings import TrackerSettings, gate_dbfs

__all__ = [
    "METRIC_LABELS",
    "SCALE_KINDS",
    "Metrics",
    "Note",
    "NoteTracker",
    "Scale",
    "ScaleKind",
    "Scorer",
    "Sounding",
    "TrackerSettings",
    "gate_dbfs",
    "parse_scale",
    "pitch_tolerance_cents",
    "score_notes",
    "timing_tolerance_ms",
    "track_notes",
]
