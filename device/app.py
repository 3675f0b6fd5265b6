"""The pedal: a state machine driven by the footswitch, showing its state on the OLED.

Idle (home) → press → AI Mode: a plan (from the coach; the rule-based plan when offline) →
press → session (live scores; press = pause/resume; hold = stop) → summary (saved) → idle.
From idle: hold = tuner, double press = manual mode (pick a scale), hold 5 s or both switches
= safe shutdown. The main loop is :meth:`PedalApp.step`: gestures in, transitions, one frame
out when the view changed. Slow work (the plan, the LLM, the sync) runs on workers; the
analysis runs on its own thread (device.listening).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from device.analysis import Metrics, Scale, parse_scale
from device.coach.recommend import Plan, Recommender
from device.errors import DiskFullError, FretCoachError
from device.listening import Listener
from device.session import Recorder, SessionRecord, SessionStore
from device.ui import screens
from device.ui.views import (
    BootView,
    ErrorKind,
    ErrorView,
    HomeView,
    LastSession,
    LiveView,
    PauseView,
    PlanningView,
    PlanView,
    PowerWarning,
    SaveState,
    ScalePickerView,
    Scores,
    ShutdownView,
    SummaryView,
    SyncState,
    SyncStatus,
    TunerView,
    View,
)
from hardware.footswitch import Footswitch, FootswitchEvent, Gesture

__all__ = ["MANUAL_SCALES", "Mode", "Parts", "PedalApp", "Planner", "rule_planner"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MANUAL_SCALES = (
    "A minor pentatonic",
    "E minor pentatonic",
    "A natural minor",
    "E natural minor",
    "C major",
    "G major",
    "D major",
    "G major pentatonic",
)
_FRAME_S = 0.05  # ≤ 20 fps while something moves
# The main loop's longest wait between turns. The analysis thread wakes it whenever it heard
# something new (so a new note is drawn at once); gestures wait in the footswitch's queue.
LOOP_WAIT_S = 0.02
_SYNC_STATUS_S = 1.0
# The firmware's power flags change slowly and reading them may run vcgencmd: every few seconds.
_POWER_STATUS_S = 5.0


class Mode(StrEnum):
    BOOT = "boot"
    HOME = "home"
    PLANNING = "planning"
    PLAN = "plan"
    SESSION = "session"
    PAUSED = "paused"
    SUMMARY = "summary"
    TUNER = "tuner"
    PICKER = "picker"
    SHUTDOWN = "shutdown"


class Planner(Protocol):
    def __call__(self, user_id: str, *, new: bool) -> Plan: ...


def rule_planner(store: SessionStore, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Planner:
    """The offline AI Mode: reuse a fresh pending plan, else the rule-based plan (saved)."""
    return Recommender(store, now=now)


class Coach(Protocol):
    """The live coach as the app uses it (device.coach.LiveCoach)."""

    def tick(self, now_s: float, metrics: Metrics, context: Any) -> None: ...
    def current_line(self) -> Any: ...
    def reset(self) -> None: ...
    def close(self, timeout_s: float = ...) -> None: ...


class SyncLike(Protocol):
    def poke(self) -> None: ...
    def check_clock(self) -> bool: ...
    def status(self) -> Any: ...


@dataclass
class Parts:
    """Everything the app drives, built from config (device.runtime) or by a test."""

    user_id: str
    display: Any  # hardware.display.Display
    footswitch: Footswitch
    listener: Listener
    store: SessionStore
    recorder: Recorder
    planner: Planner
    strictness: float = 0.5
    sensitivity: float = 0.5
    coach: Coach | None = None
    coach_context: Callable[[str, str], Any] | None = None  # (scale, session_id) → context
    sync: SyncLike | None = None
    clock: Callable[[], float] = time.monotonic
    on_ready: Callable[[], None] = lambda: None
    on_watchdog: Callable[[], None] = lambda: None
    power_off: Callable[[], None] = lambda: None
    # Undervoltage/throttling for the home screen (hardware.power.PowerMonitor); None: not shown.
    power_status: Callable[[], PowerWarning | None] | None = None
    on_frame: Callable[[View, float], None] | None = None
    version: str = "0.1.0"


@dataclass
class _State:
    mode: Mode = Mode.BOOT
    since: float = 0.0
    plan: Plan | None = None
    plan_job: Future[Plan] | None = None
    scale: Scale | None = None
    bpm: float | None = None
    summary: SummaryView | None = None
    picker: int = 0
    error: ErrorView | None = None
    last_session: LastSession | None = None
    coach_text: str = ""
    coach_since: float = 0.0
    hold_from_home: bool = False
    sessions: list[SessionRecord] = field(default_factory=list)


class PedalApp:
    def __init__(self, parts: Parts) -> None:
        self.p = parts
        self.s = _State()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fretcoach-plan")
        self._last_view: View | None = None
        self._last_frame_at = -1.0
        self._animated = False
        self._shutdown_done = False
        # The view is built every turn of the loop (up to 200 a second): the store's sync
        # counts are read at most once a second (and afresh after every change of screen), the
        # firmware's power flags (which may run vcgencmd) every few seconds.
        self._sync = _Every(_SYNC_STATUS_S, self._read_sync_status)
        self._power = _Every(_POWER_STATUS_S, self._read_power_warning)
        self._session_id = ""
        self.frames = 0
        self._wake = threading.Event()
        parts.listener.on_change = self._wake.set

    # -- life cycle ---------------------------------------------------------------------------

    def boot(self) -> None:
        now = self.p.clock()
        self._show(BootView(self.p.version, "starting…"), now)
        recovered = self.p.recorder.recover()
        if recovered:
            log.info("recovered %d session(s) a power cut left running", len(recovered))
            self._poke_sync()
        recent = self.p.store.recent_sessions(self.p.user_id, 1)
        if recent:
            self.s.last_session = _last(recent[0])
        self.p.listener.start()
        self.p.on_ready()  # systemd READY=1: the splash is on screen
        self._enter(Mode.HOME, now)
        self._render(now)

    def close(self) -> None:
        if self.s.mode in (Mode.SESSION, Mode.PAUSED):
            self._stop_session(self.p.clock())
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.p.coach is not None:
            self.p.coach.close()
        close_planner = getattr(self.p.planner, "close", None)
        if callable(close_planner):
            close_planner()  # flushes its tracer (bounded)
        self.p.listener.stop()

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        self.boot()
        try:
            while not until():
                self._wake.wait(LOOP_WAIT_S)
                self._wake.clear()  # before step() reads what the listener heard
                events = self.p.footswitch.events()
                for event in events:
                    self.step(event)
                if not events:
                    self.step()
        finally:
            self.close()

    # -- one turn of the main loop ------------------------------------------------------------

    def step(self, event: FootswitchEvent | None = None) -> None:
        now = self.p.clock()
        if event is not None:
            self._on_gesture(event.gesture, now)
        self._advance(now)
        self.p.on_watchdog()
        if self.p.sync is not None:
            self.p.sync.check_clock()
        self._render(now)

    def _on_gesture(self, g: Gesture, now: float) -> None:
        mode = self.s.mode
        if g in (Gesture.BOTH_HOLD,) or (g is Gesture.HOLD_LONG and self.s.hold_from_home):
            self._shutdown(now)
            return
        if self.s.error is not None and mode is Mode.HOME:
            self.s.error = None  # any press acknowledges an error screen
            return
        if mode is not Mode.BOOT and self.p.listener.heard().source_state in ("no-device", "error"):
            # The screen says NO AUDIO: nothing the player cannot see may happen behind it
            # (a hold opening the tuner unseen). Stopping a session still works: it saves.
            if mode in (Mode.SESSION, Mode.PAUSED) and g is Gesture.HOLD:
                self._stop_session(now)
            return
        if mode is Mode.HOME:
            if g is Gesture.PRESS:
                self._request_plan(now, new=False)
            elif g is Gesture.HOLD:
                self.s.hold_from_home = True
                self._enter(Mode.TUNER, now)
            elif g is Gesture.DOUBLE:
                self._enter(Mode.PICKER, now)
        elif mode is Mode.PLAN:
            if g is Gesture.PRESS and self.s.plan is not None:
                rec = self.s.plan.recommendation
                self._start_session(parse_scale(rec.scale_name), rec.strictness, rec.sensitivity, now)
            elif g is Gesture.HOLD:
                self._request_plan(now, new=True)
            elif g is Gesture.DOUBLE:
                self._enter(Mode.HOME, now)
        elif mode is Mode.PLANNING:
            if g is Gesture.DOUBLE:
                self._enter(Mode.HOME, now)
        elif mode is Mode.SESSION:
            if g is Gesture.PRESS:
                self.p.listener.pause(True)
                self.p.recorder.pause(self.p.listener.heard().session)
                self._enter(Mode.PAUSED, now)
            elif g is Gesture.HOLD:
                self._stop_session(now)
        elif mode is Mode.PAUSED:
            if g is Gesture.PRESS:
                self.p.recorder.resume()
                self.p.listener.pause(False)
                self._enter(Mode.SESSION, now)
            elif g is Gesture.HOLD:
                self._stop_session(now)
        elif mode is Mode.SUMMARY:
            if g in (Gesture.PRESS, Gesture.HOLD):
                self._enter(Mode.HOME, now)
        elif mode is Mode.TUNER:
            if g in (Gesture.PRESS, Gesture.HOLD, Gesture.DOUBLE):
                self.s.hold_from_home = False
                self._enter(Mode.HOME, now)
        elif mode is Mode.PICKER:
            if g is Gesture.PRESS:
                self.s.picker = (self.s.picker + 1) % len(MANUAL_SCALES)
            elif g is Gesture.HOLD:
                scale = parse_scale(MANUAL_SCALES[self.s.picker])
                self._start_session(scale, self.p.strictness, self.p.sensitivity, now)
            elif g is Gesture.DOUBLE:
                self._enter(Mode.HOME, now)

    def _advance(self, now: float) -> None:
        job = self.s.plan_job
        if self.s.mode is Mode.PLANNING and job is not None and job.done():
            self.s.plan_job = None
            try:
                self.s.plan = job.result()
                self._enter(Mode.PLAN, now)
            except FretCoachError as exc:
                self._fail(ErrorKind.GENERIC, str(exc), now)
            except Exception as exc:  # the planner must never take the pedal down
                log.exception("planner failed")
                self._fail(ErrorKind.GENERIC, f"could not make a plan: {exc}", now)
        if self.s.mode is Mode.SESSION:
            heard = self.p.listener.heard()
            try:
                self.p.recorder.update(heard.session)
            except DiskFullError as exc:
                self._abort_session(str(exc), now)
                return
            if self.p.coach is not None and self.s.scale is not None:
                ctx = self._coach_context()
                self.p.coach.tick(self.p.recorder.elapsed_s(), heard.rolling, ctx)
                line = self.p.coach.current_line()
                text = getattr(line, "text", "") if line is not None else ""
                if text != self.s.coach_text:
                    self.s.coach_text, self.s.coach_since = text, now
        if self.s.mode is Mode.SHUTDOWN and now - self.s.since > 0.5 and not self._shutdown_done:
            self._shutdown_done = True
            self.p.power_off()

    # -- transitions --------------------------------------------------------------------------

    def _enter(self, mode: Mode, now: float) -> None:
        self.s.mode, self.s.since = mode, now
        self._sync.reset()

    def _request_plan(self, now: float, *, new: bool) -> None:
        self.s.plan = None
        self.s.plan_job = self._pool.submit(self.p.planner, self.p.user_id, new=new)
        self._enter(Mode.PLANNING, now)

    def _start_session(self, scale: Scale, strictness: float, sensitivity: float, now: float) -> None:
        practice_id = self.s.plan.record.practice_id if self.s.plan is not None else None
        if self.s.mode is Mode.PICKER:
            practice_id = None
        try:
            running = self.p.recorder.start(
                scale, strictness=strictness, sensitivity=sensitivity, bpm=self.s.bpm, practice_id=practice_id
            )
        except DiskFullError as exc:
            self._fail(ErrorKind.DISK_FULL, str(exc), now)
            return
        self.s.scale = scale
        self.p.listener.begin_session(scale, strictness=strictness, sensitivity=sensitivity, bpm=self.s.bpm)
        if self.p.coach is not None:
            self.p.coach.reset()
        self.s.coach_text, self.s.coach_since = "", now
        self._session_id = running.session_id
        self._enter(Mode.SESSION, now)

    def _coach_context(self) -> Any:
        scale = self.s.scale.name if self.s.scale is not None else ""
        if self.p.coach_context is not None:
            return self.p.coach_context(scale, self._session_id)
        return {"scale": scale, "session_id": self._session_id}

    def _stop_session(self, now: float) -> None:
        final = self.p.listener.end_session()
        save = SaveState.SAVED
        try:
            record = self.p.recorder.end(final)
        except DiskFullError as exc:
            self._abort_session(str(exc), now)
            return
        self.s.sessions.append(record)
        self.s.last_session = _last(record)
        if self.p.sync is not None:
            save = SaveState.WILL_SYNC
            self._poke_sync()
        self.s.summary = SummaryView(
            scores=Scores.from_metrics(final),
            notes_played=final.notes_played,
            correct_notes=final.correct_notes,
            wrong_notes=final.wrong_notes,
            duration_s=record.duration_seconds,
            weakest=final.weakest,
            save=save,
        )
        self.s.plan = None
        self._enter(Mode.SUMMARY, now)

    def _abort_session(self, message: str, now: float) -> None:
        self.p.listener.end_session()
        self.p.recorder.current = None  # nothing more can be written; the last checkpoint stands
        self._fail(ErrorKind.DISK_FULL, message, now)

    def _fail(self, kind: ErrorKind, detail: str, now: float) -> None:
        self.s.error = ErrorView(kind, detail)
        self._enter(Mode.HOME, now)

    def _shutdown(self, now: float) -> None:
        if self.s.mode in (Mode.SESSION, Mode.PAUSED):
            self._stop_session(now)
        self._enter(Mode.SHUTDOWN, now)

    def _poke_sync(self) -> None:
        if self.p.sync is not None:
            self.p.sync.poke()

    # -- the view -----------------------------------------------------------------------------

    def view(self, now: float) -> View:
        s, heard = self.s, self.p.listener.heard()
        t = now - s.since
        if s.mode is Mode.SHUTDOWN:
            return ShutdownView(done=self._shutdown_done, t=t)
        if heard.source_state in ("no-device", "error") and s.mode is not Mode.BOOT:
            return ErrorView(ErrorKind.NO_AUDIO, heard.source_message, t=t)
        if s.mode is Mode.BOOT:
            return BootView(self.p.version, "starting…")
        if s.mode is Mode.HOME:
            if s.error is not None:
                return ErrorView(s.error.kind, s.error.detail, t=t)
            return HomeView(self.p.user_id, self._sync_status(now), s.last_session, self._power_warning(now), t=t)
        if s.mode is Mode.PLANNING:
            return PlanningView(t=t)
        if s.mode is Mode.PLAN and s.plan is not None:
            r = s.plan.recommendation
            return PlanView(
                r.scale_name,
                s.plan.record.practice_plan.get("metric", r.focus_area),
                r.reasoning,
                r.strictness,
                r.sensitivity,
                offline=s.plan.offline,
                t=t,
            )
        if s.mode is Mode.SESSION:
            snd = heard.sounding
            return LiveView(
                Scores.from_metrics(heard.rolling if heard.rolling.notes_played else heard.session),
                float(int(self.p.recorder.elapsed_s())),  # the screen shows whole seconds
                note=snd.name if snd else None,
                cents=snd.cents if snd else None,
                in_scale=snd.in_scale if snd else None,
                coach_line=s.coach_text,
                scale=s.scale.name if s.scale else "",
                t=now - s.coach_since,
            )
        if s.mode is Mode.PAUSED:
            return PauseView(float(int(self.p.recorder.elapsed_s())), s.scale.name if s.scale else "", t=t)
        if s.mode is Mode.SUMMARY and s.summary is not None:
            return s.summary
        if s.mode is Mode.TUNER:
            snd = heard.sounding
            return TunerView(snd.name if snd else None, snd.cents if snd else None, heard.sounding_hz, t=t)
        if s.mode is Mode.PICKER:
            return ScalePickerView(MANUAL_SCALES, s.picker, t=t)
        return HomeView(self.p.user_id, self._sync_status(now), s.last_session, self._power_warning(now), t=t)

    def _sync_status(self, now: float) -> SyncStatus:
        return self._sync.get(now)

    def _power_warning(self, now: float) -> PowerWarning | None:
        # Asked only while home is shown (the one screen with the icon).
        return self._power.get(now) if self.p.power_status is not None else None

    def _read_power_warning(self) -> PowerWarning | None:
        assert self.p.power_status is not None
        try:
            return self.p.power_status()
        except Exception:  # a status icon must never take the pedal down
            log.exception("reading the power status failed")
            return None

    def _read_sync_status(self) -> SyncStatus:
        status = self.p.store.status()
        if self.p.sync is None:
            return SyncStatus(SyncState.OFF, queued=status.queued)
        st = self.p.sync.status()
        ago = None
        if status.last_sync_ok_at is not None:
            ago = max(0.0, (datetime.now(UTC) - status.last_sync_ok_at).total_seconds())
        state = {
            "ok": SyncState.SYNCED,
            "syncing": SyncState.SYNCING,
            "offline": SyncState.OFFLINE,
            "error": SyncState.ERROR,
        }.get(getattr(st, "state", ""), SyncState.SYNCED if ago is not None else SyncState.SYNCING)
        return SyncStatus(state, ago, status.queued)

    def _render(self, now: float) -> None:
        view = self.view(now)
        last = self._last_view
        if last is not None:
            # A still frame does not depend on t: only its content decides a redraw.
            same = view == last if self._animated else _still(view) == _still(last)
            # A new screen or a new note is drawn at once (note-to-screen latency); anything
            # else that moves (a needle, a score, scrolling text) at most 20 times a second.
            if same or (not _urgent(view, last) and now - self._last_frame_at < _FRAME_S):
                return
        self._show(view, now)

    def _show(self, view: View, now: float) -> None:
        frame = screens.compose(view)
        self._animated = frame.animated
        self.p.display.show(frame.image)
        self._last_view = view
        self._last_frame_at = now
        self.frames += 1
        if self.p.on_frame is not None:
            self.p.on_frame(view, now)


def _still(view: View) -> View:
    return replace(view, t=0.0)


class _Every(Generic[T]):
    """``read()``'s value, read again only when ``interval_s`` has passed (or after reset)."""

    def __init__(self, interval_s: float, read: Callable[[], T]) -> None:
        self.interval_s = interval_s
        self._read = read
        self._cached: tuple[float, T] | None = None

    def get(self, now: float) -> T:
        if self._cached is not None and now - self._cached[0] < self.interval_s:
            return self._cached[1]
        value = self._read()
        self._cached = (now, value)
        return value

    def reset(self) -> None:
        self._cached = None


def _urgent(view: View, last: View) -> bool:
    """Whether ``view`` differs from ``last`` in what the player waits for: the screen itself,
    or the note being played (the live screen's name and in-scale mark, the tuner's name)."""
    if type(view) is not type(last):
        return True
    if isinstance(view, LiveView) and isinstance(last, LiveView):
        return (view.note, view.in_scale) != (last.note, last.in_scale)
    if isinstance(view, TunerView) and isinstance(last, TunerView):
        return view.note != last.note
    return False


def _last(record: SessionRecord) -> LastSession:
    return LastSession(
        record.scale_chosen,
        Scores(record.pitch_accuracy, record.scale_conformity, record.timing_stability),
    )
