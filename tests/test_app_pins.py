"""Every transition of the pedal's state machine, driven as the hardware drives it.

The real :class:`PedalApp` with a real :class:`GpioFootswitch` on gpiozero's mock pins (the
test presses and releases them) and a manual clock the test moves, a luma dummy display, a real
SQLite store and a real :class:`Listener` whose analysis thread is the test itself: it feeds
synthetic guitar notes block by block, so what the screen and the store end up with is exact.
Outcomes are read where a player or the cloud would see them: the view on the display, the
frame the display holds, and the rows in the SQLite file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image
from synth import phrase

from device.analysis import Scale, parse_scale
from device.app import MANUAL_SCALES, Mode, Parts, PedalApp, Plan, Planner, rule_planner
from device.audio import AudioBlock, open_source
from device.errors import DiskFullError
from device.listening import Listener
from device.session import Recorder, SessionStore
from device.ui.views import (
    BootView,
    ErrorKind,
    ErrorView,
    HomeView,
    LiveView,
    PauseView,
    PlanningView,
    PlanView,
    ScalePickerView,
    ShutdownView,
    SummaryView,
    TunerView,
    View,
)
from hardware.clock import ManualClock
from hardware.display import open_display
from hardware.footswitch import GpioFootswitch

RATE = 44_100
PINS = (17, 27)
STEP_S = 0.01  # one turn of the main loop per 10 ms of the manual clock


class FedListener(Listener):
    """The real Listener with no thread of its own: the test is its analysis thread."""

    def start(self) -> None:
        pass


@dataclass
class Pedal:
    """The app on mock pins; the test moves the clock and the feet."""

    app: PedalApp
    clock: ManualClock
    factory: MockFactory
    footswitch: GpioFootswitch
    store_path: Path
    views: list[View] = field(default_factory=list)
    powered_off: list[float] = field(default_factory=list)
    frames_fed: int = 0

    # -- time and the main loop ----------------------------------------------------------

    def turn(self) -> None:
        """One turn of the main loop: the footswitch's timers, then every gesture waiting."""
        self.footswitch.poll()
        events = self.footswitch.events()
        for event in events:
            self.app.step(event)
        if not events:
            self.app.step()

    def run(self, seconds: float) -> None:
        end = self.clock() + seconds
        while self.clock() < end - 1e-9:
            self.clock.advance(min(STEP_S, end - self.clock()))
            self.turn()

    def until(self, mode: Mode, limit_s: float = 5.0) -> None:
        """Turn the loop (clock and real time both moving) until the app is in ``mode``.

        Plans are made on the planner's worker thread, which runs on real time.
        """
        give_up = time.monotonic() + limit_s
        while self.app.s.mode is not mode:
            assert time.monotonic() < give_up, f"still {self.app.s.mode}, waiting for {mode}"
            time.sleep(0.002)
            self.clock.advance(STEP_S)
            self.turn()

    # -- feet ------------------------------------------------------------------------------

    def down(self, switch: int = 0) -> None:
        self.factory.pin(PINS[switch]).drive_low()  # wired pin-to-ground: pressed is low
        self.turn()

    def up(self, switch: int = 0) -> None:
        self.factory.pin(PINS[switch]).drive_high()
        self.turn()

    def tap(self, switch: int = 0) -> None:
        """A short press; the app hears it once the double-press window has closed."""
        self.down(switch)
        self.run(0.1)
        self.up(switch)
        self.run(0.4)

    def double(self, switch: int = 0) -> None:
        self.down(switch)
        self.run(0.08)
        self.up(switch)
        self.run(0.1)
        self.down(switch)
        self.run(0.08)
        self.up(switch)
        self.run(0.1)

    def hold(self, seconds: float = 1.0, switch: int = 0) -> None:
        self.down(switch)
        self.run(seconds)
        self.up(switch)
        self.run(0.05)

    # -- the guitar ------------------------------------------------------------------------

    def play(self, midis: list[float], ioi: float = 0.25) -> None:
        """Play notes into the listener as the audio thread would, the loop turning meanwhile."""
        samples = phrase(midis, ioi, RATE, lead=0.1)
        block = 512
        for i in range(0, len(samples), block):
            chunk = samples[i : i + block]
            self.app.p.listener.process(AudioBlock(chunk, RATE, self.frames_fed, float("nan")))
            self.frames_fed += len(chunk)
            self.clock.advance(len(chunk) / RATE)
            self.turn()

    # -- what shows ------------------------------------------------------------------------

    @property
    def shown(self) -> View:
        """The view of the frame on the display now."""
        assert self.views, "nothing shown yet"
        image = self.app.p.display.last_image
        assert isinstance(image, Image.Image) and image.size == (128, 64)
        return self.views[-1]

    def saw(self, kind: type) -> list[Any]:
        return [v for v in self.views if isinstance(v, kind)]

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Rows as another process would read them from the SQLite file."""
        conn = sqlite3.connect(self.store_path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
        finally:
            conn.close()


def make_pedal(
    tmp_path: Path,
    factory: MockFactory,
    *,
    switches: int = 1,
    planner: Callable[[SessionStore], Planner] | None = None,
) -> Pedal:
    clock = ManualClock(start=1000.0)
    store = SessionStore.open(tmp_path / "fretcoach.db")
    footswitch = GpioFootswitch(PINS[:switches], pin_factory=factory, clock=clock, poll_interval=None)
    views: list[View] = []
    parts = Parts(
        user_id="ana",
        display=open_display("dummy"),
        footswitch=footswitch,
        listener=FedListener(open_source("demo", speed=0)),
        store=store,
        recorder=Recorder(store, user_id="ana", device_id="pedal-1", monotonic=clock),
        planner=(planner or rule_planner)(store),
        clock=clock,
        on_frame=lambda view, now: views.append(view),
    )
    pedal = Pedal(PedalApp(parts), clock, factory, footswitch, store.path, views)
    parts.power_off = lambda: pedal.powered_off.append(clock())
    return pedal


@pytest.fixture
def pedal(tmp_path: Path, mock_factory: MockFactory) -> Iterator[Pedal]:
    p = make_pedal(tmp_path, mock_factory)
    p.app.boot()
    yield p
    p.app.close()
    p.footswitch.close()
    p.app.p.store.close()


@pytest.fixture
def two_switch_pedal(tmp_path: Path, mock_factory: MockFactory) -> Iterator[Pedal]:
    p = make_pedal(tmp_path, mock_factory, switches=2)
    p.app.boot()
    yield p
    p.app.close()
    p.footswitch.close()
    p.app.p.store.close()


def in_scale(scale: Scale, count: int) -> list[float]:
    """``count`` notes of ``scale`` walking up from A2."""
    notes = [m for m in range(45, 80) if scale.contains(m)]
    return [float(m) for m in notes[:count]]


def sessions(pedal: Pedal) -> list[dict[str, Any]]:
    return pedal.rows("sessions")


# --- AI Mode ---------------------------------------------------------------------------------


def test_boot_shows_the_splash_then_home(pedal: Pedal) -> None:
    assert isinstance(pedal.views[0], BootView)
    assert isinstance(pedal.shown, HomeView) and pedal.shown.user == "ana"
    pedal.run(2.0)  # nothing pressed: nothing happens
    assert pedal.app.s.mode is Mode.HOME and isinstance(pedal.shown, HomeView)


def test_a_tap_at_home_makes_a_plan_and_shows_it(pedal: Pedal) -> None:
    pedal.down()
    pedal.run(0.1)
    pedal.up()
    pedal.run(0.25)
    assert pedal.app.s.mode is Mode.HOME  # a single tap counts once the double window closes
    pedal.run(0.15)
    pedal.until(Mode.PLAN)
    assert pedal.saw(PlanningView)
    plan = pedal.shown
    assert isinstance(plan, PlanView) and plan.offline
    assert pedal.app.s.plan is not None
    (row,) = pedal.rows("plans")
    assert row["practice_id"] == pedal.app.s.plan.record.practice_id and row["executed_session_id"] is None
    assert parse_scale(plan.scale).name == plan.scale


def test_a_hold_on_the_plan_asks_for_a_new_one_and_a_double_goes_home(pedal: Pedal) -> None:
    pedal.tap()
    pedal.until(Mode.PLAN)
    assert pedal.app.s.plan is not None
    first = pedal.app.s.plan.record.practice_id
    planning_before = len(pedal.saw(PlanningView))
    pedal.hold(0.8)
    pedal.until(Mode.PLAN)
    assert len(pedal.saw(PlanningView)) > planning_before
    assert pedal.app.s.plan is not None and pedal.app.s.plan.record.practice_id != first
    assert isinstance(pedal.shown, PlanView)
    assert len(pedal.rows("plans")) == 2
    pedal.double()
    assert pedal.app.s.mode is Mode.HOME and isinstance(pedal.shown, HomeView)


def test_a_double_while_the_plan_is_being_made_goes_home(tmp_path: Path, mock_factory: MockFactory) -> None:
    gate = threading.Event()

    def slow(store: SessionStore) -> Planner:
        rules = rule_planner(store)

        def plan(user_id: str, *, new: bool) -> Plan:
            gate.wait(5.0)  # an LLM taking its time
            return rules(user_id, new=new)

        return plan

    p = make_pedal(tmp_path, mock_factory, planner=slow)
    p.app.boot()
    try:
        p.tap()
        assert p.app.s.mode is Mode.PLANNING and isinstance(p.shown, PlanningView)
        p.run(1.0)
        assert isinstance(p.shown, PlanningView)
        p.double()
        assert p.app.s.mode is Mode.HOME and isinstance(p.shown, HomeView)
        gate.set()
        time.sleep(0.05)
        p.run(0.5)  # the late plan does not drag the pedal back
        assert p.app.s.mode is Mode.HOME
    finally:
        gate.set()
        p.app.close()
        p.footswitch.close()
        p.app.p.store.close()


def test_a_whole_ai_mode_session_by_foot_is_saved(pedal: Pedal) -> None:
    pedal.tap()
    pedal.until(Mode.PLAN)
    plan = pedal.app.s.plan
    assert plan is not None
    scale = parse_scale(plan.recommendation.scale_name)

    pedal.tap()  # accept: the session starts
    assert pedal.app.s.mode is Mode.SESSION
    live = pedal.shown
    assert isinstance(live, LiveView) and live.scale == scale.name and live.note is None
    first = in_scale(scale, 6)
    pedal.play(first)
    names = {v.note for v in pedal.saw(LiveView) if v.note}
    assert len(names) >= 5  # the notes showed as they sounded
    assert pedal.app.p.listener.heard().session.notes_played == 6

    pedal.tap()  # pause
    assert pedal.app.s.mode is Mode.PAUSED and isinstance(pedal.shown, PauseView)
    paused_at = pedal.shown.elapsed_s
    pedal.play([float(first[0])] * 3)  # noodling while paused does not count
    pedal.run(60.0)
    assert isinstance(pedal.shown, PauseView) and pedal.shown.elapsed_s == paused_at

    pedal.tap()  # resume
    assert pedal.app.s.mode is Mode.SESSION and isinstance(pedal.shown, LiveView)
    pedal.play(in_scale(scale, 4))
    active = pedal.app.p.recorder.elapsed_s()

    pedal.hold(0.8)  # stop
    assert pedal.app.s.mode is Mode.SUMMARY
    summary = pedal.shown
    assert isinstance(summary, SummaryView)
    assert summary.notes_played == 10 and summary.wrong_notes == 0
    (row,) = sessions(pedal)
    assert row["status"] == "ended" and row["scale_chosen"] == scale.name
    assert row["total_notes"] == 10 and row["bad_notes"] == 0
    assert row["practice_id"] == plan.record.practice_id
    assert row["duration_seconds"] == pytest.approx(active, abs=0.7)  # the minute of pause is out
    assert row["pitch_accuracy"] == pytest.approx(summary.scores.pitch_accuracy)
    (plan_row,) = pedal.rows("plans")
    assert plan_row["executed_session_id"] == row["session_id"]

    pedal.tap()
    assert pedal.app.s.mode is Mode.HOME
    home = pedal.shown
    assert isinstance(home, HomeView) and home.last_session is not None
    assert home.last_session.scale == scale.name


def test_a_hold_on_the_summary_also_goes_home(pedal: Pedal) -> None:
    pedal.double()
    pedal.hold(0.8)
    assert pedal.app.s.mode is Mode.SESSION
    pedal.hold(0.8)
    assert isinstance(pedal.shown, SummaryView)
    pedal.hold(0.8)
    assert pedal.app.s.mode is Mode.HOME and isinstance(pedal.shown, HomeView)


# --- tuner, manual mode -------------------------------------------------------------------


def test_a_hold_at_home_opens_the_tuner_and_a_tap_or_hold_closes_it(pedal: Pedal) -> None:
    pedal.down()
    pedal.run(0.55)
    assert pedal.app.s.mode is Mode.HOME
    pedal.run(0.1)  # 0.6 s down (after the debounce): a hold, reported while still held
    assert pedal.app.s.mode is Mode.TUNER and isinstance(pedal.shown, TunerView)
    pedal.up()
    pedal.run(0.5)
    assert isinstance(pedal.shown, TunerView) and pedal.shown.note is None
    pedal.play([45.0])  # the open A string
    tuned = [v for v in pedal.saw(TunerView) if v.note is not None]
    assert tuned and {v.note for v in tuned} == {"A2"}
    assert all(abs(v.cents) < 10 and abs(v.hz - 110.0) < 1.0 for v in tuned)
    pedal.tap()
    assert pedal.app.s.mode is Mode.HOME and isinstance(pedal.shown, HomeView)
    pedal.hold(0.8)
    assert pedal.app.s.mode is Mode.TUNER
    pedal.hold(0.8)
    assert pedal.app.s.mode is Mode.HOME and isinstance(pedal.shown, HomeView)
    assert not pedal.powered_off and sessions(pedal) == []


def test_a_double_at_home_picks_a_scale_for_a_manual_session(pedal: Pedal) -> None:
    pedal.double()
    assert pedal.app.s.mode is Mode.PICKER
    picker = pedal.shown
    assert isinstance(picker, ScalePickerView) and picker.options == MANUAL_SCALES and picker.selected == 0
    pedal.tap()
    pedal.tap()
    assert isinstance(pedal.shown, ScalePickerView) and pedal.shown.selected == 2
    pedal.hold(0.8)  # start with the scale shown
    scale = parse_scale(MANUAL_SCALES[2])
    assert pedal.app.s.mode is Mode.SESSION
    assert isinstance(pedal.shown, LiveView) and pedal.shown.scale == scale.name
    outside = next(m for m in range(57, 70) if not scale.contains(m))
    pedal.play([*in_scale(scale, 5), float(outside)])
    played = [v for v in pedal.saw(LiveView) if v.note is not None]
    assert any(v.in_scale is False for v in played) and any(v.in_scale for v in played)
    pedal.tap()
    assert pedal.app.s.mode is Mode.PAUSED
    pedal.hold(0.8)  # stop from the pause
    assert isinstance(pedal.shown, SummaryView) and pedal.shown.wrong_notes == 1
    (row,) = sessions(pedal)
    assert row["scale_chosen"] == scale.name and row["practice_id"] is None
    assert row["total_notes"] == 6 and row["correct_notes"] == 5 and row["bad_notes"] == 1
    assert pedal.rows("plans") == []  # manual mode asks for no plan


def test_the_picker_wraps_around_and_a_double_goes_home(pedal: Pedal) -> None:
    pedal.double()
    for _ in MANUAL_SCALES:
        pedal.tap()
    assert isinstance(pedal.shown, ScalePickerView) and pedal.shown.selected == 0
    pedal.double()
    assert pedal.app.s.mode is Mode.HOME and isinstance(pedal.shown, HomeView)


# --- shutdown ---------------------------------------------------------------------------------


def test_holding_five_seconds_at_home_shuts_down(pedal: Pedal) -> None:
    pedal.down()
    pedal.run(1.0)
    assert pedal.app.s.mode is Mode.TUNER  # on the way: a hold opens the tuner
    pedal.run(3.9)
    assert pedal.app.s.mode is Mode.TUNER
    pedal.run(0.2)  # 5 s down
    assert pedal.app.s.mode is Mode.SHUTDOWN
    view = pedal.shown
    assert isinstance(view, ShutdownView) and not view.done and not pedal.powered_off
    pedal.up()
    pedal.run(1.0)
    assert len(pedal.powered_off) == 1
    assert isinstance(pedal.shown, ShutdownView) and pedal.shown.done
    pedal.tap()  # nothing undoes a shutdown
    assert pedal.app.s.mode is Mode.SHUTDOWN and len(pedal.powered_off) == 1


def test_both_switches_held_save_the_running_session_and_shut_down(two_switch_pedal: Pedal) -> None:
    pedal = two_switch_pedal
    pedal.double(switch=1)  # either switch works the menus
    pedal.hold(0.8, switch=0)
    assert pedal.app.s.mode is Mode.SESSION
    pedal.play(in_scale(parse_scale(MANUAL_SCALES[0]), 5))
    pedal.down(0)
    pedal.run(0.2)
    pedal.down(1)
    pedal.run(0.9)
    assert pedal.app.s.mode is Mode.SESSION  # not yet a second with both down
    pedal.run(0.2)
    assert pedal.app.s.mode is Mode.SHUTDOWN and isinstance(pedal.shown, ShutdownView)
    (row,) = sessions(pedal)
    assert row["status"] == "ended" and row["total_notes"] == 5
    pedal.up(0)
    pedal.up(1)
    pedal.run(1.0)
    assert len(pedal.powered_off) == 1 and isinstance(pedal.shown, ShutdownView) and pedal.shown.done


# --- error screens --------------------------------------------------------------------------


def test_a_full_disk_refuses_a_session_with_a_screen_a_tap_clears(
    pedal: Pedal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pedal.app.p.store, "free_bytes", lambda: 4096)
    pedal.double()
    pedal.hold(0.8)
    assert pedal.app.s.mode is Mode.HOME
    error = pedal.shown
    assert isinstance(error, ErrorView) and error.kind is ErrorKind.DISK_FULL and "4 KiB free" in error.detail
    pedal.run(3.0)
    assert isinstance(pedal.shown, ErrorView)  # stays until acknowledged
    pedal.tap()
    assert isinstance(pedal.shown, HomeView) and pedal.app.s.mode is Mode.HOME
    assert sessions(pedal) == []


def test_a_disk_that_fills_mid_session_stops_it_on_the_disk_full_screen(
    pedal: Pedal, monkeypatch: pytest.MonkeyPatch
) -> None:
    pedal.double()
    pedal.hold(0.8)
    scale = parse_scale(MANUAL_SCALES[0])
    pedal.play(in_scale(scale, 4))
    pedal.app.p.recorder.checkpoint(pedal.app.p.listener.heard().session)  # the last one that fits

    def full(*args: object) -> None:
        raise DiskFullError("disk full: recording stopped, saved data is intact")

    monkeypatch.setattr(pedal.app.p.store, "checkpoint", full)
    pedal.run(40.0)  # the next periodic checkpoint finds the disk full
    assert pedal.app.s.mode is Mode.HOME
    error = pedal.shown
    assert isinstance(error, ErrorView) and error.kind is ErrorKind.DISK_FULL
    (row,) = sessions(pedal)
    assert row["status"] == "running" and row["total_notes"] == 4  # recovered at the next boot
    pedal.tap()
    assert isinstance(pedal.shown, HomeView)


def test_a_planner_that_fails_shows_an_error_and_a_tap_goes_home(tmp_path: Path, mock_factory: MockFactory) -> None:
    calls: list[bool] = []

    def broken(store: SessionStore) -> Planner:
        def plan(user_id: str, *, new: bool) -> Plan:
            calls.append(new)
            raise RuntimeError("the coach fell over")

        return plan

    p = make_pedal(tmp_path, mock_factory, planner=broken)
    p.app.boot()
    try:
        p.tap()
        p.until(Mode.HOME)
        error = p.shown
        assert isinstance(error, ErrorView) and error.kind is ErrorKind.GENERIC
        assert "could not make a plan" in error.detail and "fell over" in error.detail
        p.tap()
        assert isinstance(p.shown, HomeView)
        p.tap()  # and the next tap asks again
        p.until(Mode.HOME)
        assert len(calls) == 2 and isinstance(p.shown, ErrorView)
    finally:
        p.app.close()
        p.footswitch.close()
        p.app.p.store.close()

