"""The home screen shows the Pi's undervoltage/throttling warning, read from a real flags file
through hardware.power, and asks for it only every few seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.app import Mode, Parts, PedalApp, rule_planner
from device.audio import open_source
from device.listening import Listener
from device.session import Recorder, SessionStore
from device.ui.views import HomeView, PowerWarning
from hardware.display import open_display
from hardware.footswitch import FootswitchEvent, Gesture, ScriptedFootswitch
from hardware.power import PowerMonitor


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class CountingMonitor:
    """The real PowerMonitor on a temp file, counting how often the app asks."""

    def __init__(self, path: Path) -> None:
        self.monitor = PowerMonitor([path], command=None)
        self.calls = 0

    def __call__(self) -> PowerWarning | None:
        self.calls += 1
        return self.monitor()


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    path = tmp_path / "get_throttled"
    path.write_text("0\n")
    return path


def make_app(tmp_path: Path, power_status: CountingMonitor | None) -> PedalApp:
    clock = Clock()
    store = SessionStore.open(tmp_path / "f.db")
    parts = Parts(
        user_id="ana",
        display=open_display("dummy"),
        footswitch=ScriptedFootswitch([]),
        listener=Listener(open_source("demo", speed=0)),  # never started: no audio here
        store=store,
        recorder=Recorder(store, user_id="ana", device_id="p", monotonic=clock),
        planner=rule_planner(store),
        clock=clock,
        power_status=power_status,
    )
    app = PedalApp(parts)
    app.p.listener.start = lambda: None  # type: ignore[method-assign]
    app.boot()
    return app


def home_view(app: PedalApp) -> HomeView:
    view = app.view(app.p.clock())
    assert isinstance(view, HomeView)
    return view


def test_the_home_screen_shows_undervoltage_from_the_firmware_flags(tmp_path: Path, flags: Path) -> None:
    monitor = CountingMonitor(flags)
    app = make_app(tmp_path, monitor)
    clock: Clock = app.p.clock  # type: ignore[assignment]
    assert app.s.mode is Mode.HOME and home_view(app).warning is None

    flags.write_text("50005\n")  # the supply sags
    for _ in range(400):  # two seconds of the main loop: the flags are not read again yet
        clock.t += 0.005
        app.step()
    assert home_view(app).warning is None
    asked = monitor.calls
    assert asked <= 2

    frames, before = app.frames, app.p.display.last_image
    clock.t += 5.0
    app.step()
    assert home_view(app).warning is PowerWarning.UNDERVOLTAGE
    assert monitor.calls == asked + 1
    # The icon changed the picture, so exactly one new frame went to the OLED.
    assert app.frames == frames + 1 and app.p.display.last_image.tobytes() != before.tobytes()

    # Away from home the flags are not read at all; back home the warning is still there.
    app.step(FootswitchEvent(Gesture.HOLD))
    assert app.s.mode is Mode.TUNER
    calls = monitor.calls
    for _ in range(100):
        clock.t += 0.1
        app.step()
    assert monitor.calls == calls
    app.step(FootswitchEvent(Gesture.PRESS))
    flags.write_text("4\n")
    clock.t += 5.0
    assert home_view(app).warning is PowerWarning.THROTTLED


def test_without_a_power_reader_or_with_a_failing_one_home_has_no_warning(tmp_path: Path) -> None:
    assert home_view(make_app(tmp_path / "a", None)).warning is None

    def broken() -> PowerWarning | None:
        raise RuntimeError("firmware mailbox exploded")

    app = make_app(tmp_path / "b", broken)  # type: ignore[arg-type]
    app.step()
    assert app.s.mode is Mode.HOME and home_view(app).warning is None
