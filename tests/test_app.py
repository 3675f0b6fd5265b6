"""The pedal's state machine driven like a player would: footswitch gestures and the clock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from device.app import MANUAL_SCALES, Mode, Parts, PedalApp, rule_planner
from device.audio import open_source
from device.config import Settings
from device.errors import DiskFullError
from device.listening import Listener
from device.runtime import build_demo
from device.session import Recorder, SessionStore
from device.ui.views import ErrorKind, ErrorView, HomeView, SyncState
from hardware.display import open_display
from hardware.footswitch import FootswitchEvent, Gesture, ScriptedFootswitch


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def app(tmp_path: Path) -> PedalApp:
    clock = Clock()
    store = SessionStore.open(tmp_path / "f.db")
    parts = Parts(
        user_id="ana",
        display=open_display("dummy"),
        footswitch=ScriptedFootswitch([]),
        listener=Listener(open_source("demo", speed=0)),  # never started: no audio in these tests
        store=store,
        recorder=Recorder(store, user_id="ana", device_id="p", monotonic=clock),
        planner=rule_planner(store),
        clock=clock,
    )
    a = PedalApp(parts)
    a.p.listener.start = lambda: None  # type: ignore[method-assign]
    a.boot()
    return a


def _press(app: PedalApp, g: Gesture, advance: float = 0.1) -> None:
    app.p.clock.t += advance  # type: ignore[attr-defined]
    app.step(FootswitchEvent(g))


def _settle(app: PedalApp) -> None:
    for _ in range(200):
        app.step()
        if app.s.mode is not Mode.PLANNING:
            return
        app.p.clock.t += 0.01  # type: ignore[attr-defined]
        time.sleep(0.005)  # the plan is made on the planner's worker thread


def test_the_ai_mode_flow_from_home_to_summary(app: PedalApp) -> None:
    assert app.s.mode is Mode.HOME and app.frames >= 2  # the splash, then home
    _press(app, Gesture.PRESS)
    _settle(app)
    assert app.s.mode is Mode.PLAN and app.s.plan is not None and app.s.plan.offline
    plan_id = app.s.plan.record.practice_id
    _press(app, Gesture.PRESS)
    assert app.s.mode is Mode.SESSION
    _press(app, Gesture.PRESS, advance=30)
    assert app.s.mode is Mode.PAUSED
    _press(app, Gesture.PRESS, advance=60)  # a minute of pause does not count
    assert app.s.mode is Mode.SESSION
    _press(app, Gesture.HOLD, advance=10)
    assert app.s.mode is Mode.SUMMARY and app.s.summary is not None
    (record,) = app.s.sessions
    assert record.duration_seconds == pytest.approx(40.0, abs=0.5)
    assert record.practice_id == plan_id
    plan = app.p.store.get_plan(plan_id)
    assert plan is not None and plan.executed_session_id == record.session_id
    _press(app, Gesture.PRESS)
    assert app.s.mode is Mode.HOME and app.s.last_session is not None


def test_hold_for_a_new_plan_and_double_to_go_back(app: PedalApp) -> None:
    _press(app, Gesture.PRESS)
    _settle(app)
    first = app.s.plan
    assert first is not None
    _press(app, Gesture.HOLD)
    _settle(app)
    assert app.s.plan is not None and app.s.plan.record.practice_id != first.record.practice_id
    _press(app, Gesture.DOUBLE)
    assert app.s.mode is Mode.HOME
    # A fresh pending plan is offered again rather than a new one.
    _press(app, Gesture.PRESS)
    _settle(app)
    assert app.s.plan is not None and app.s.plan.record.practice_id != first.record.practice_id


def test_tuner_picker_and_shutdown_from_home(app: PedalApp) -> None:
    _press(app, Gesture.HOLD)
    assert app.s.mode is Mode.TUNER
    _press(app, Gesture.PRESS)
    assert app.s.mode is Mode.HOME
    _press(app, Gesture.DOUBLE)
    assert app.s.mode is Mode.PICKER
    _press(app, Gesture.PRESS)
    _press(app, Gesture.PRESS)
    _press(app, Gesture.HOLD)
    assert app.s.mode is Mode.SESSION and app.s.scale is not None
    assert app.s.scale.name == MANUAL_SCALES[2]
    powered: list[bool] = []
    app.p.power_off = lambda: powered.append(True)
    _press(app, Gesture.BOTH_HOLD)  # a running session is saved first
    assert app.s.mode is Mode.SHUTDOWN and len(app.s.sessions) == 1
    _press(app, Gesture.PRESS, advance=1.0)
    assert powered == [True]


def test_a_full_disk_refuses_to_start_and_says_so(app: PedalApp) -> None:
    def full(min_free: int = 0) -> None:
        raise DiskFullError("disk almost full")

    app.p.store.ensure_room = full  # type: ignore[method-assign]
    _press(app, Gesture.DOUBLE)
    _press(app, Gesture.HOLD)
    assert app.s.mode is Mode.HOME and app.s.error is not None
    view = app.view(app.p.clock())
    assert isinstance(view, ErrorView) and view.kind is ErrorKind.DISK_FULL and "almost full" in view.detail
    _press(app, Gesture.PRESS)  # acknowledged
    assert app.s.error is None


def test_the_demo_plays_a_whole_session_and_saves_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    demo = build_demo(settings, speed=8.0, display="dummy")
    clock = demo.parts.clock
    end = clock() + demo.length_s
    demo.app.run(until=lambda: clock() >= end)
    assert demo.app.s.mode is Mode.SUMMARY
    (record,) = demo.app.s.sessions
    # The take is 40 notes of A minor pentatonic, 2 of them outside the scale, looping.
    assert record.total_notes >= 30 and record.bad_notes >= 1
    assert record.scale_chosen == "A minor pentatonic"
    assert record.pitch_accuracy is not None and record.pitch_accuracy > 80
    shown = demo.parts.display.last_image
    assert isinstance(shown, Image.Image) and shown.size == (128, 64)
    store = SessionStore.open(settings.store_path)
    assert store.status().queued == 3  # the plan, the session, the plan marked played
    store.close()


def test_fretcoach_demo_prints_the_summary_and_records_a_gif(tmp_path: Path) -> None:
    env = {**os.environ, "FRETCOACH_DATA_DIR": str(tmp_path / "data")}
    gif = tmp_path / "oled.gif"
    proc = subprocess.run(
        [sys.executable, "-m", "device.cli", "demo", "--speed", "8", "--gif", str(gif)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("session saved: A minor pentatonic")
    assert "pitch accuracy" in proc.stdout and "OLED recording" in proc.stdout
    with Image.open(gif) as im:
        assert im.size == (128, 64) and getattr(im, "n_frames", 1) > 10


class FakeSync:
    def __init__(self) -> None:
        self.pokes = 0
        self.clock_checks = 0

    def poke(self) -> None:
        self.pokes += 1

    def check_clock(self) -> bool:
        self.clock_checks += 1
        return False

    def status(self) -> object:
        from cloud_sync.scheduler import SyncStatus as SchedulerStatus

        return SchedulerStatus("offline", None, None, "cannot reach the database", 2)


def test_a_session_end_pokes_the_sync_and_home_shows_it_offline_with_the_queue(app: PedalApp) -> None:
    sync = FakeSync()
    app.p.sync = sync
    _press(app, Gesture.DOUBLE)
    _press(app, Gesture.HOLD)
    _press(app, Gesture.HOLD, advance=20)
    assert sync.pokes == 1 and sync.clock_checks >= 3
    assert app.s.summary is not None and app.s.summary.save.value == "will sync"
    _press(app, Gesture.PRESS)
    view = app.view(app.p.clock())
    assert isinstance(view, HomeView)
    assert view.sync.state is SyncState.OFFLINE and view.sync.queued == 1
