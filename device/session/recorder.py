"""A practice session's lifecycle on the pedal: start, checkpoints, pause, end, recovery.

Time comes from two injectable clocks: the wall clock only stamps the start (and its UTC
offset), the monotonic clock measures how long the player practised. So a wall clock that
jumps (NTP catching up on a Pi without an RTC) can never make a session end before it began.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from device.analysis import Metrics, Scale
from device.errors import SessionStateError
from device.session.models import SessionRecord, to_iso
from device.session.store import SessionStore

__all__ = ["CHECKPOINT_INTERVAL_S", "Recorder", "RunningSession"]

# The bound: a power cut loses at most this much practice.
CHECKPOINT_INTERVAL_S = 5.0


def _local_now() -> datetime:
    return datetime.now(UTC).astimezone()


@dataclass(slots=True)
class RunningSession:
    session_id: str
    scale: Scale
    strictness: float
    sensitivity: float
    bpm: float | None
    practice_id: str | None
    start: datetime
    utc_offset_minutes: int
    active_s: float = 0.0  # practice time before the current stretch (pauses excluded)
    stretch_started: float | None = None  # monotonic start of the current unpaused stretch
    last_checkpoint: float = 0.0


class Recorder:
    """Records one session at a time into a :class:`SessionStore`."""

    def __init__(
        self,
        store: SessionStore,
        *,
        user_id: str,
        device_id: str,
        wall_clock: Callable[[], datetime] = _local_now,
        monotonic: Callable[[], float] = time.monotonic,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.store = store
        self.user_id = user_id
        self.device_id = device_id
        self._wall = wall_clock
        self._mono = monotonic
        self.checkpoint_interval_s = checkpoint_interval_s
        self.current: RunningSession | None = None

    def recover(self) -> list[SessionRecord]:
        """At start-up: end (as of their last checkpoint) sessions a crash left running."""
        return self.store.recover_running()

    def start(
        self,
        scale: Scale,
        *,
        strictness: float,
        sensitivity: float,
        bpm: float | None = None,
        practice_id: str | None = None,
    ) -> RunningSession:
        if self.current is not None:
            raise SessionStateError("a session is already running")
        self.store.ensure_room()
        wall = self._wall()
        offset = wall.utcoffset() or timedelta(0)
        now = self._mono()
        s = RunningSession(
            session_id=str(uuid.uuid4()),
            scale=scale,
            strictness=strictness,
            sensitivity=sensitivity,
            bpm=bpm,
            practice_id=practice_id,
            start=wall.astimezone(UTC),
            utc_offset_minutes=int(offset.total_seconds() // 60),
            stretch_started=now,
            last_checkpoint=now,
        )
        self.store.insert_running(
            {
                "session_id": s.session_id,
                "user_id": self.user_id,
                "device_id": self.device_id,
                "scale_chosen": scale.name,
                "scale_type": scale.scale_type,
                "strictness": strictness,
                "sensitivity": sensitivity,
                "bpm": bpm,
                "start_timestamp": to_iso(s.start),
                "utc_offset_minutes": s.utc_offset_minutes,
                "practice_id": practice_id,
            }
        )
        self.current = s
        return s

    def elapsed_s(self) -> float:
        s = self._require()
        running = 0.0 if s.stretch_started is None else max(0.0, self._mono() - s.stretch_started)
        return s.active_s + running

    @property
    def paused(self) -> bool:
        return self._require().stretch_started is None

    def pause(self, metrics: Metrics) -> None:
        s = self._require()
        if s.stretch_started is not None:
            s.active_s = self.elapsed_s()
            s.stretch_started = None
            self.checkpoint(metrics)

    def resume(self) -> None:
        s = self._require()
        if s.stretch_started is None:
            s.stretch_started = self._mono()

    def update(self, metrics: Metrics) -> bool:
        """Call on every score update; checkpoints when the interval has passed. True if it did."""
        s = self._require()
        if self._mono() - s.last_checkpoint < self.checkpoint_interval_s:
            return False
        self.checkpoint(metrics)
        return True

    def checkpoint(self, metrics: Metrics) -> None:
        s = self._require()
        elapsed = self.elapsed_s()
        totals = _totals(metrics)
        self.store.checkpoint(
            s.session_id,
            {**totals, "duration_seconds": elapsed},
            {**totals, "elapsed_s": elapsed},
        )
        s.last_checkpoint = self._mono()

    def end(self, metrics: Metrics) -> SessionRecord:
        """Finish the session with its final scores; it is then queued for the cloud."""
        s = self._require()
        duration = self.elapsed_s()
        record = SessionRecord(
            session_id=s.session_id,
            user_id=self.user_id,
            device_id=self.device_id,
            scale_chosen=s.scale.name,
            scale_type=s.scale.scale_type,
            pitch_accuracy=metrics.pitch_accuracy,
            scale_conformity=metrics.scale_conformity,
            timing_stability=metrics.timing_stability,
            total_notes=metrics.notes_played,
            correct_notes=metrics.correct_notes,
            bad_notes=metrics.wrong_notes,
            duration_seconds=duration,
            strictness=s.strictness,
            sensitivity=s.sensitivity,
            start_timestamp=s.start,
            end_timestamp=s.start + timedelta(seconds=duration),
            utc_offset_minutes=s.utc_offset_minutes,
            bpm=s.bpm,
            practice_id=s.practice_id,
        )
        # One transaction: the session ends, is queued, and its plan is marked played.
        self.store.end_session(record)
        self.current = None
        return record

    def _require(self) -> RunningSession:
        if self.current is None:
            raise SessionStateError("no session is running")
        return self.current


def _totals(m: Metrics) -> dict[str, float | int | None]:
    return {
        "pitch_accuracy": m.pitch_accuracy,
        "scale_conformity": m.scale_conformity,
        "timing_stability": m.timing_stability,
        "total_notes": m.notes_played,
        "correct_notes": m.correct_notes,
        "bad_notes": m.wrong_notes,
    }
