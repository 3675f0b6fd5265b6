"""Wiring: build the pedal's parts from the one settings model, for the service (`fretcoach
run`) and for the demo (`fretcoach demo`: the bundled take, a scripted footswitch, the OLED in
the terminal)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.app import Parts, PedalApp, rule_planner
from device.coach.recommend import Recommender
from device.config import Settings
from device.listening import Listener
from device.sd_notify import Notifier
from device.session import Recorder, SessionStore
from hardware.footswitch import Gesture, ScriptedFootswitch

__all__ = ["DEMO_SCRIPT", "Demo", "build_demo", "build_service", "scaled_clock"]

# A full AI-Mode session, in seconds of demo time: ask for a plan, accept it, play the take
# through once, stop, look at the summary.
DEMO_SCRIPT: tuple[tuple[float, Gesture], ...] = (
    (1.5, Gesture.PRESS),  # home → AI Mode: the plan
    (4.5, Gesture.PRESS),  # accept: the session starts
    (19.0, Gesture.HOLD),  # stop: the summary
)
DEMO_LENGTH_S = 23.0


def scaled_clock(speed: float, base: Callable[[], float] = time.monotonic) -> Callable[[], float]:
    """A monotonic clock running ``speed`` times faster than real time (demo and tests)."""
    t0 = base()
    return lambda: t0 + (base() - t0) * speed


@dataclass
class Demo:
    app: PedalApp
    parts: Parts
    length_s: float


def _sync(settings: Settings, store: SessionStore) -> Any:
    from cloud_sync.service import make_sync_scheduler

    return make_sync_scheduler(settings, store)


def build_demo(
    settings: Settings,
    *,
    speed: float = 1.0,
    display: str = "terminal",
    gif: Path | None = None,
    script: Sequence[tuple[float, Gesture]] = DEMO_SCRIPT,
    stream: Any = None,
) -> Demo:
    from device.audio import open_source
    from hardware.display import open_display

    clock = scaled_clock(speed)
    store = SessionStore.open(settings.store_path)
    source = open_source("demo", speed=speed, loop=True, block_frames=256)
    shown = open_display("gif" if gif is not None else display, out_path=gif, stream=stream, clock=clock)
    listener = Listener(source, a4_hz=settings.a4_hz)
    parts = Parts(
        user_id=settings.user_id,
        display=shown,
        footswitch=ScriptedFootswitch(list(script), clock=clock),
        listener=listener,
        store=store,
        recorder=Recorder(store, user_id=settings.user_id, device_id=settings.device_id, monotonic=clock),
        planner=rule_planner(store),
        strictness=settings.strictness,
        sensitivity=settings.sensitivity,
        sync=_sync(settings, store),
        clock=clock,
    )
    return Demo(PedalApp(parts), parts, DEMO_LENGTH_S)


def build_service(settings: Settings) -> PedalApp:
    """The real pedal: USB audio, OLED, GPIO footswitch (keyboard with the terminal display)."""
    from device.audio import open_source
    from hardware.display import open_display
    from hardware.footswitch import GpioFootswitch
    from hardware.keyboard_footswitch import KeyboardFootswitch
    from hardware.power import PowerMonitor

    store = SessionStore.open(settings.store_path)
    notifier = Notifier(settings.notify_socket, settings.watchdog_usec)
    # 256-frame periods: ~5 ms of audio per callback keeps note-to-screen latency low.
    source = open_source("pyaudio", device=settings.audio_device, channel=settings.audio_channel, block_frames=256)
    shown = open_display(settings.display)
    # On a terminal (a desktop trying the pedal) the space bar is the footswitch.
    terminal = settings.display == "terminal"
    footswitch: Any = KeyboardFootswitch() if terminal else GpioFootswitch(settings.footswitch_pins)
    sync = _sync(settings, store)
    if sync is not None:
        sync.start()
    coach = _live_coach(settings)
    parts = Parts(
        user_id=settings.user_id,
        display=shown,
        footswitch=footswitch,
        listener=Listener(source, a4_hz=settings.a4_hz),
        store=store,
        recorder=Recorder(store, user_id=settings.user_id, device_id=settings.device_id),
        planner=Recommender.from_settings(store, settings),
        strictness=settings.strictness,
        sensitivity=settings.sensitivity,
        coach=coach,
        coach_context=_coach_context,
        sync=sync,
        on_ready=notifier.ready,
        on_watchdog=notifier.watchdog,
        power_off=_power_off,
        power_status=PowerMonitor(),
    )
    return PedalApp(parts)


def _live_coach(settings: Settings) -> Any:
    from device.coach import LiveCoach, TracingConfig

    return LiveCoach(
        settings, interval_s=settings.live_coach_interval_s, tracing=TracingConfig.from_settings(settings)
    )


def _coach_context(scale: str, session_id: str) -> Any:
    from device.coach import CoachContext

    return CoachContext(scale=scale, session_id=session_id)


def _power_off() -> None:
    # logind, allowed for the service user by the polkit rule install.sh puts in place.
    subprocess.run(["systemctl", "poweroff"], check=False, timeout=10, stdout=sys.stderr)
