"""The pedal when its audio interface is unplugged mid-session and plugged back in.

The real app, Listener thread and PyAudioSource, over a fake PortAudio whose stream calls the
source's callback from its own thread with a guitar phrase, like a Scarlett Solo's instrument
input (channel 2 of 2). Unplugging stops the stream and empties the device list, as PortAudio
on Linux does; the source notices, says so, and retries until the interface is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synth import midi_hz, pluck

from device.analysis import parse_scale
from device.app import MANUAL_SCALES, Mode, Parts, PedalApp, rule_planner
from device.audio import open_source
from device.audio.pyaudio_source import PA_CONTINUE, PA_FLOAT32
from device.listening import Listener
from device.session import Recorder, SessionStore
from device.ui.views import ErrorKind, ErrorView, LiveView, SummaryView, View
from hardware.display import open_display
from hardware.footswitch import FootswitchEvent, Gesture, ScriptedFootswitch

RATE = 48_000
PERIOD = 256  # frames per callback, as the service opens the stream
SPEED = 2.0  # the fake interface plays twice as fast as real time: a shorter test
IOI_S = 0.25
ROLLING_S = 1.0  # the live screen's scores cover the last second: about four notes
SOLO = "Scarlett Solo USB: Audio (hw:1,0)"


def guitar_loop() -> np.ndarray:
    """A steady phrase of A minor pentatonic, looping seamlessly: one note every IOI_S."""
    scale = parse_scale(MANUAL_SCALES[0])
    midis = [m for m in range(57, 70) if scale.contains(m)]
    return np.concatenate([pluck(midi_hz(m), IOI_S, RATE) for m in midis])


@dataclass
class Interface:
    """The USB interface as PortAudio sees it; shared by every FakePortAudio made from it."""

    signal: np.ndarray = field(default_factory=guitar_loop)
    plugged: bool = True
    position: int = 0  # the guitar goes on only while the interface listens
    inits: int = 0
    streams: list[FakeStream] = field(default_factory=list)

    def factory(self) -> FakePortAudio:
        return FakePortAudio(self)

    def frames(self, n: int) -> bytes:
        idx = (self.position + np.arange(n)) % len(self.signal)
        self.position += n
        mic = np.zeros(n, np.float32)  # channel 1: an idle mic input
        return np.stack([mic, self.signal[idx]], axis=1).astype(np.float32).tobytes()


class FakeStream:
    def __init__(self, interface: Interface, callback: Callable[..., tuple[None, int]]) -> None:
        self.interface = interface
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start_stream(self) -> None:
        self._thread.start()

    def stop_stream(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def close(self) -> None:
        self.stop_stream()

    def is_active(self) -> bool:
        return self.interface.plugged and not self._stop.is_set()

    def get_input_latency(self) -> float:
        return 0.004

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set() and self.interface.plugged:
            assert self.callback(self.interface.frames(PERIOD), PERIOD, {}, 0) == (None, PA_CONTINUE)
            due += PERIOD / RATE / SPEED
            self._stop.wait(max(0.0, due - time.monotonic()))


class FakePortAudio:
    """Like PortAudio on Linux, it sees the devices present when it was initialised."""

    def __init__(self, interface: Interface) -> None:
        interface.inits += 1
        self.interface = interface
        self.devices = [SOLO] if interface.plugged else []

    def get_device_count(self) -> int:
        return len(self.devices)

    def get_device_info_by_index(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.devices):
            raise OSError(-9996, "Invalid device")
        return {"index": index, "name": SOLO, "maxInputChannels": 2, "defaultSampleRate": float(RATE)}

    def get_default_input_device_info(self) -> dict[str, Any]:
        return self.get_device_info_by_index(0)

    def is_format_supported(self, rate: float, **kwargs: Any) -> bool:
        return rate == RATE and kwargs["input_format"] == PA_FLOAT32 and kwargs["input_channels"] <= 2

    def open(self, **kwargs: Any) -> FakeStream:
        assert kwargs["channels"] == 2 and kwargs["frames_per_buffer"] == PERIOD
        stream = FakeStream(self.interface, kwargs["stream_callback"])
        self.interface.streams.append(stream)
        return stream

    def terminate(self) -> None:
        pass


@dataclass
class Rig:
    app: PedalApp
    interface: Interface
    store_path: Path
    views: list[View]

    def step(self, gesture: Gesture | None = None) -> None:
        self.app.step(None if gesture is None else FootswitchEvent(gesture))

    def until(self, what: Callable[[], bool], limit_s: float = 10.0) -> None:
        """Run the main loop (real time) until ``what`` holds."""
        give_up = time.monotonic() + limit_s
        while not what():
            assert time.monotonic() < give_up, "timed out"
            time.sleep(0.005)
            self.step()

    @property
    def shown(self) -> View:
        return self.views[-1]

    def notes(self) -> int:
        return self.app.p.listener.heard().session.notes_played


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    interface = Interface()
    source = open_source(
        "pyaudio",
        device="scarlett",
        channel=2,
        block_frames=PERIOD,
        retry_interval_s=0.1,
        stall_timeout_s=0.5,
        pa_factory=interface.factory,
    )
    store = SessionStore.open(tmp_path / "fretcoach.db")
    views: list[View] = []
    parts = Parts(
        user_id="ana",
        display=open_display("dummy"),
        footswitch=ScriptedFootswitch([]),
        listener=Listener(source, window_s=ROLLING_S),
        store=store,
        recorder=Recorder(store, user_id="ana", device_id="pedal-1"),
        planner=rule_planner(store),
        on_frame=lambda view, now: views.append(view),
    )
    app = PedalApp(parts)
    app.boot()
    yield Rig(app, interface, store.path, views)
    interface.plugged = True  # let a stream thread finish
    app.close()
    store.close()


def test_an_unplugged_interface_shows_no_audio_keeps_the_session_and_comes_back(rig: Rig) -> None:
    rig.until(lambda: rig.app.p.listener.heard().source_state == "running")
    rig.step(Gesture.DOUBLE)
    rig.step(Gesture.HOLD)  # a manual session of A minor pentatonic
    assert rig.app.s.mode is Mode.SESSION
    rig.until(lambda: rig.notes() >= 8)
    before = rig.app.p.listener.heard().session
    assert rig.app.p.listener.heard().rolling.notes_played <= ROLLING_S / IOI_S + 2
    assert before.wrong_notes == 0 and before.timing_stability is not None and before.timing_stability > 85

    rig.interface.plugged = False  # the cable comes out
    rig.until(lambda: isinstance(rig.shown, ErrorView))
    error = rig.shown
    assert isinstance(error, ErrorView) and error.kind is ErrorKind.NO_AUDIO
    assert "plug in your audio interface" in error.detail
    inits = rig.interface.inits
    rig.until(lambda: rig.interface.inits >= inits + 3)  # retried, and retried again
    assert rig.app.s.mode is Mode.SESSION and isinstance(rig.shown, ErrorView)
    rig.step(Gesture.PRESS)  # a press behind the NO AUDIO screen does not pause unseen
    assert rig.app.s.mode is Mode.SESSION
    lost = rig.notes()
    assert lost >= before.notes_played  # nothing heard before the unplug is forgotten

    rig.interface.plugged = True  # and back in
    rig.until(lambda: isinstance(rig.shown, LiveView))
    assert rig.app.p.listener.heard().source_state == "running"
    rig.until(lambda: rig.notes() >= lost + 8)
    # The live scores cover the last second of playing, across the gap as before it.
    rolling = rig.app.p.listener.heard().rolling
    assert 2 <= rolling.notes_played <= ROLLING_S / IOI_S + 2
    rig.step(Gesture.HOLD)  # stop

    summary = rig.shown
    assert isinstance(summary, SummaryView) and summary.notes_played >= lost + 8
    (record,) = rig.app.s.sessions
    assert record.total_notes == summary.notes_played and record.bad_notes == 0
    # Notes from before and after the unplug sit on one timeline: the steady phrase still
    # scores as steady (the one interval across the gap aside).
    assert record.timing_stability is not None and record.timing_stability > 75
    stored = rig.app.p.store.get_session(record.session_id)
    assert stored is not None and stored["status"] == "ended" and stored["total_notes"] == record.total_notes


def test_without_audio_a_hold_from_home_does_nothing_unseen(rig: Rig) -> None:
    rig.until(lambda: rig.app.p.listener.heard().source_state == "running")
    rig.interface.plugged = False
    rig.until(lambda: isinstance(rig.shown, ErrorView))
    rig.step(Gesture.HOLD)  # would open the tuner behind the NO AUDIO screen
    rig.step(Gesture.PRESS)  # would ask for a plan
    assert rig.app.s.mode is Mode.HOME
