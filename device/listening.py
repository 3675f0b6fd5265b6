"""The analysis thread: audio blocks in, notes and scores out, published as snapshots.

The audio callback only fills the source's ring buffer; this thread is the one consumer. It
feeds the note tracker, adds finished notes to the session's scorer while a session counts,
and publishes an immutable :class:`Heard` snapshot that the UI thread reads without waiting.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from device.analysis import Metrics, Note, NoteTracker, Scale, Scorer, Sounding, TrackerSettings
from device.audio.source import AudioBlock, RingSource

__all__ = ["Heard", "Listener"]

log = logging.getLogger(__name__)

_EMPTY = Metrics(None, None, None, 0, 0, 0, None)


@dataclass(frozen=True, slots=True)
class Heard:
    """What the pedal hears now: for one frame of the UI."""

    sounding: Sounding | None = None
    sounding_hz: float | None = None
    rolling: Metrics = _EMPTY
    session: Metrics = _EMPTY
    #: Monotonic capture time of the sounding note's onset (for note-to-screen latency).
    onset_time: float | None = None
    source_state: str = "idle"
    source_message: str = ""
    overflows: int = 0
    version: int = 0  # bumps on every change the screen might show


class Listener:
    """Runs the analysis thread over a started (or startable) source."""

    def __init__(
        self,
        source: RingSource,
        *,
        a4_hz: float = 440.0,
        window_s: float = 15.0,
        block_frames: int = 512,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.a4_hz = a4_hz
        self.window_s = window_s
        self.block_frames = block_frames
        #: Called on the analysis thread after a change the screen might show (the app sets it
        #: to wake its loop, so a new note is drawn without waiting for the loop's next turn).
        self.on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._heard = Heard()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._tracker: NoteTracker | None = None
        self._scorer: Scorer | None = None
        self._scale: Scale | None = None
        self._sensitivity = 0.5
        self._counting = False
        self._rate: int | None = None
        self._position = 0  # frames fed to the tracker
        self._block_time = math.nan  # capture time of the tracker's frame 0 (for latency)
        # Where the tracker's frame 0 sits on the listener's one timeline, which runs on across
        # tracker restarts (lost audio): the scorer orders notes and measures their intervals.
        self._origin_s = 0.0
        self._restart_tracker = True

    # -- control (any thread) ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fretcoach-analysis", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        self.source.close()  # wakes a blocked read
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def begin_session(self, scale: Scale, *, strictness: float, sensitivity: float, bpm: float | None) -> None:
        """Score from now on against ``scale`` (a new tracker: nothing from before counts)."""
        with self._lock:
            self._scale = scale
            self._sensitivity = sensitivity
            self._scorer = Scorer(strictness=strictness, bpm=bpm, window_s=self.window_s)
            self._counting = True
            self._restart_tracker = True

    def pause(self, paused: bool) -> None:
        with self._lock:
            self._counting = not paused and self._scorer is not None

    def end_session(self) -> Metrics:
        """Stop counting; the session's final scores."""
        with self._lock:
            self._counting = False
            scorer, self._scorer = self._scorer, None
            self._scale = None
            self._restart_tracker = True
        return scorer.session() if scorer is not None else _EMPTY

    def heard(self) -> Heard:
        with self._lock:
            return self._heard

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.source.state == "idle":
                self.source.start()
            while not self._stop.is_set():
                block = self.source.read(self.block_frames * 4, timeout=0.1)
                self.process(block)
                if block.ended and self.source.state in ("ended", "closed"):
                    self._publish()
                    return
        except Exception:  # the thread must not die silently: the UI shows the state
            log.exception("analysis thread failed")
            with self._lock:
                self._heard = replace(self._heard, source_state="error", source_message="analysis failed")

    def process(self, block: AudioBlock) -> None:
        """Analyse one block (the thread calls this; tests may call it directly)."""
        if len(block) == 0:
            self._publish()
            return
        lost: list[Note] = []  # the notes a gap ended
        with self._lock:
            if self._restart_tracker or self._rate != block.sample_rate or block.gap:
                old = self._tracker
                if old is not None and self._rate:
                    ran_s = self._position / self._rate
                    if not self._restart_tracker:
                        # Audio was lost (an overflow, or the interface came back): the note
                        # that was sounding ended there, and counts.
                        lost = _shifted(old.flush(), self._origin_s)
                    # The time lost with the audio keeps the timeline true to the clock.
                    gap_s = block.time - (self._block_time + ran_s)
                    if not math.isfinite(gap_s) or gap_s < 0:
                        gap_s = block.dropped / block.sample_rate
                    self._origin_s += ran_s + gap_s
                self._rate = block.sample_rate
                settings = TrackerSettings(a4_hz=self.a4_hz, sensitivity=self._sensitivity)
                self._tracker = NoteTracker(block.sample_rate, settings, self._scale)
                self._position = 0
                self._block_time = block.time
                self._restart_tracker = False
            tracker = self._tracker
            assert tracker is not None
        notes = tracker.feed(block.samples)
        self._position += len(block)
        with self._lock:
            if self._counting and self._scorer is not None and (notes or lost):
                self._scorer.add(lost + _shifted(notes, self._origin_s))
        self._publish(notes or lost)

    def _publish(self, notes: list[Note] | None = None) -> None:
        with self._lock:
            tracker, scorer, old = self._tracker, self._scorer, self._heard
            sounding = tracker.sounding if tracker is not None else None
            now_s = self._origin_s + self._position / self._rate if self._rate else 0.0
            rolling = scorer.rolling(now_s) if scorer is not None and notes else old.rolling
            session = scorer.session() if scorer is not None and notes else old.session
            if scorer is None:
                rolling = session = _EMPTY
            onset_time = None
            hz = None
            if sounding is not None and self._rate:
                onset_time = self._block_time + sounding.onset_s
                hz = self.a4_hz * 2 ** ((sounding.midi + sounding.cents / 100 - 69) / 12)
            new = Heard(
                sounding=sounding,
                sounding_hz=hz,
                rolling=rolling,
                session=session,
                onset_time=onset_time,
                source_state=self.source.state,
                source_message=self.source.message or "",
                overflows=self.source.overflows,
                version=old.version,
            )
            changed = _visible(new) != _visible(old)
            self._heard = replace(new, version=old.version + 1) if changed else old
        callback = self.on_change
        if changed and callback is not None:
            callback()


def _shifted(notes: list[Note], origin_s: float) -> list[Note]:
    """``notes`` with their onsets moved from a tracker's timeline onto the listener's."""
    if not origin_s:
        return notes
    return [replace(n, onset_s=round(n.onset_s + origin_s, 4)) for n in notes]


def _visible(h: Heard) -> tuple[object, ...]:
    s = h.sounding
    return (
        None if s is None else (s.midi, round(s.cents), s.in_scale),
        h.rolling,
        h.session,
        h.source_state,
        h.source_message,
    )

