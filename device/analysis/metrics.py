"""Notes → the three practice scores (0–100), rolling and for a whole session.

How strictness and the scores relate (documented in the README):

* **Pitch accuracy** — each note scores ``100·2^-(cents/T)²`` where ``T`` is the half-credit
  tolerance ``T = 50 − 35·strictness`` cents (strictness 0 → 50¢, 0.5 → 32.5¢, 1 → 15¢).
  A note dead on scores 100, one ``T`` cents off scores 50. The score is the mean over notes.
* **Timing stability** — each onset scores ``100·2^-(dev/T)²`` with ``T = 70 − 60·strictness`` ms
  (0 → 70 ms, 0.5 → 40 ms, 1 → 10 ms). With a BPM, ``dev`` is the distance to the nearest
  point of the beat grid, the subdivision (1, 2, 3 or 4 per beat) and the grid's phase fitted
  to the player; without one, ``dev`` is how far each inter-onset interval strays from the
  player's own local pulse (divided by √2: an interval carries two onsets' errors).
* **Scale conformity** — the share of notes inside the chosen scale.

Bell-shaped rather than pass/fail so that a little worse always scores a little lower.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from device.analysis.notes import Note

__all__ = [
    "METRIC_LABELS",
    "Metrics",
    "Scorer",
    "pitch_tolerance_cents",
    "score_notes",
    "timing_tolerance_ms",
]

METRIC_LABELS = {
    "pitch_accuracy": "Pitch accuracy",
    "scale_conformity": "Scale conformity",
    "timing_stability": "Timing stability",
}
_SUBDIVISIONS = (1, 2, 3, 4)
# A finer grid always fits at least as well; take it only if it is clearly better.
_SUBDIVISION_MARGIN = 3.0
_PULSE_RATIOS = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])


def pitch_tolerance_cents(strictness: float) -> float:
    return 50.0 - 35.0 * _unit(strictness)


def timing_tolerance_ms(strictness: float) -> float:
    return 70.0 - 60.0 * _unit(strictness)


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def _bell(dev: np.ndarray, half: float) -> np.ndarray:
    return np.asarray(100.0 * np.exp2(-((dev / half) ** 2)))


@dataclass(frozen=True, slots=True)
class Metrics:
    """Scores are ``None`` where there is too little to judge (no notes; timing needs 3)."""

    pitch_accuracy: float | None
    scale_conformity: float | None
    timing_stability: float | None
    notes_played: int
    correct_notes: int
    wrong_notes: int
    weakest: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timing_with_bpm(onsets: np.ndarray, bpm: float, half_ms: float) -> float:
    best: tuple[float, int] | None = None
    for k in _SUBDIVISIONS:
        period = 60.0 / bpm / k
        phases = 2 * np.pi * onsets / period
        # Circular mean finds the grid phase; one robust step centres it on the player.
        phi = math.atan2(float(np.sin(phases).sum()), float(np.cos(phases).sum()))
        offset = phi / (2 * np.pi) * period
        dev = (onsets - offset + period / 2) % period - period / 2
        offset += float(np.median(dev))
        dev = (onsets - offset + period / 2) % period - period / 2
        score = float(_bell(dev * 1000.0, half_ms).mean())
        if best is None or score > best[0] + _SUBDIVISION_MARGIN:
            best = (score, k)
    assert best is not None
    return best[0]


def _timing_free(onsets: np.ndarray, half_ms: float) -> float:
    ioi = np.diff(onsets)
    ioi = ioi[ioi > 0]
    devs = []
    for i, gap in enumerate(ioi):
        # The pulse is the median of the neighbouring intervals, so a slow drift is no fault.
        local = ioi[max(0, i - 4) : i + 5]
        pulse = float(np.median(local))
        nearest = _PULSE_RATIOS[np.argmin(np.abs(_PULSE_RATIOS * pulse - gap))] * pulse
        devs.append((gap - nearest) / math.sqrt(2.0))
    return float(_bell(np.array(devs) * 1000.0, half_ms).mean())


def score_notes(
    notes: Sequence[Note],
    strictness: float = 0.5,
    bpm: float | None = None,
) -> Metrics:
    """The three scores and the counts for these notes (in-scale flags as the tracker set them)."""
    played = len(notes)
    correct = sum(1 for n in notes if n.in_scale)
    if played == 0:
        return Metrics(None, None, None, 0, 0, 0, None)
    cents = np.array([n.cents for n in notes])
    pitch = float(_bell(cents, pitch_tolerance_cents(strictness)).mean())
    conformity = 100.0 * correct / played
    onsets = np.array(sorted(n.onset_s for n in notes))
    timing: float | None = None
    half_ms = timing_tolerance_ms(strictness)
    if bpm is not None and played >= 2:
        timing = _timing_with_bpm(onsets, bpm, half_ms)
    elif played >= 3:
        timing = _timing_free(onsets, half_ms)
    scores = {"pitch_accuracy": pitch, "scale_conformity": conformity, "timing_stability": timing}
    present = {k: v for k, v in scores.items() if v is not None}
    weakest = min(present, key=lambda k: present[k]) if present else None
    return Metrics(
        pitch_accuracy=round(pitch, 1),
        scale_conformity=round(conformity, 1),
        timing_stability=None if timing is None else round(timing, 1),
        notes_played=played,
        correct_notes=correct,
        wrong_notes=played - correct,
        weakest=weakest,
    )


class Scorer:
    """Keeps a session's notes: session totals, and rolling scores over the last seconds."""

    def __init__(
        self,
        strictness: float = 0.5,
        bpm: float | None = None,
        window_s: float = 15.0,
    ) -> None:
        self.strictness = strictness
        self.bpm = bpm
        self.window_s = window_s
        self._notes: list[Note] = []
        self._recent: deque[Note] = deque()

    @property
    def notes(self) -> Sequence[Note]:
        return self._notes

    def add(self, notes: Iterable[Note]) -> None:
        for n in notes:
            self._notes.append(n)
            self._recent.append(n)

    def rolling(self, now_s: float) -> Metrics:
        """Scores of the notes that began in the last ``window_s`` seconds before ``now_s``."""
        while self._recent and self._recent[0].onset_s < now_s - self.window_s:
            self._recent.popleft()
        return score_notes(list(self._recent), self.strictness, self.bpm)

    def session(self) -> Metrics:
        return score_notes(self._notes, self.strictness, self.bpm)
