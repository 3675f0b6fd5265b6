"""PyAudioSource against a fake PyAudio whose stream calls our callback from its own thread, and
once against the real PyAudio on a machine without a sound card."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from device.audio import LiveChannelChooser, PyAudioSource, list_input_devices, open_source
from device.audio.pyaudio_source import PA_CONTINUE, PA_FLOAT32, PA_INPUT_OVERFLOW, PA_INT16
from device.errors import AudioError, ConfigError

Signal = npt.NDArray[np.float32]
Callback = Callable[[bytes | None, int, Any, int], tuple[None, int]]

SOLO = "Scarlett Solo USB: Audio (hw:1,0)"


# --- the fake PortAudio world -----------------------------------------------------------------------


def mic(i: Signal | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Channel 1 of the fake interface: an idle mic input, a few LSBs of hiss (about -84 dBFS)."""
    return (np.asarray(i, np.int64) % 7) - 3


def guitar(i: Signal | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Channel 2: a loud sawtooth that encodes the frame's position (about -15 dBFS)."""
    return (np.asarray(i, np.int64) % 20_001) - 10_000


def expected(start: int, n: int, channel: int | str = 2) -> Signal:
    i = np.arange(start, start + n)
    if channel == 1:
        return (mic(i) / 32768).astype(np.float32)
    if channel == 2:
        return (guitar(i) / 32768).astype(np.float32)
    return ((mic(i) / 32768).astype(np.float32) + (guitar(i) / 32768).astype(np.float32)) / np.float32(2)


@dataclass
class FakeDevice:
    name: str
    inputs: int
    default_rate: int = 48_000
    rates: tuple[int, ...] = (44_100, 48_000)
    formats: tuple[int, ...] = (PA_FLOAT32, PA_INT16)

    def info(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "name": self.name,
            "maxInputChannels": self.inputs,
            "maxOutputChannels": 2,
            "defaultSampleRate": float(self.default_rate),
            "defaultLowInputLatency": 0.005,
        }


@dataclass
class FakeSystem:
    """What is plugged in, and how the fake streams behave. Shared by every FakePyAudio."""

    devices: list[FakeDevice] = field(default_factory=list)
    default: int | None = None
    plugged: bool = True
    block_limit: int = 1_000_000  # callbacks per stream before it idles (still "active")
    interval_s: float = 0.0005  # pause between callbacks
    overflow_every: int = 0  # raise paInputOverflow on every n-th callback
    dead_stream: str = "inactive"  # what an unplugged stream does: "inactive" | "raise" | "hang"
    latency_s: float = 0.0
    frame: int = 0  # the signal's position; continues across streams, as a guitar does
    inits: int = 0
    terminates: int = 0
    streams: list[FakeStream] = field(default_factory=list)

    def factory(self) -> FakePyAudio:
        return FakePyAudio(self)

    def unplug(self) -> None:
        self.plugged = False

    def plug(self) -> None:
        self.plugged = True


class FakeStream:
    def __init__(self, system: FakeSystem, callback: Callback, channels: int, fmt: int, frames: int) -> None:
        self.system = system
        self.callback = callback
        self.channels = channels
        self.format = fmt
        self.frames = frames
        self.durations_ns: list[int] = []
        self.returns: set[tuple[None, int]] = set()
        self.sent = 0
        self.first_frame = system.frame
        self.closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start_stream(self) -> None:
        self._thread.start()

    def stop_stream(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def close(self) -> None:
        self.stop_stream()
        self.closed = True
        if not self.system.plugged and self.system.dead_stream == "raise":
            raise OSError(-9999, "Unanticipated host error")

    def is_active(self) -> bool:
        if not self.system.plugged:
            if self.system.dead_stream == "raise":
                raise OSError(-9999, "Unanticipated host error")
            if self.system.dead_stream == "inactive":
                return False
        return self._thread.is_alive() and not self._stop.is_set()

    def get_input_latency(self) -> float:
        return self.system.latency_s

    def _block(self, start: int) -> bytes:
        i = np.arange(start, start + self.frames)
        cols = np.stack([mic(i), guitar(i)] + [np.zeros_like(i)] * (self.channels - 2), axis=1)[:, : self.channels]
        if self.format == PA_INT16:
            return cols.astype(np.int16).tobytes()
        return (cols / 32768).astype(np.float32).tobytes()

    def _run(self) -> None:
        system = self.system
        while not self._stop.is_set():
            if not system.plugged or self.sent >= system.block_limit:
                self._stop.wait(0.002)  # a dead or idle device: no more callbacks
                continue
            data = self._block(system.frame)
            self.sent += 1
            status = PA_INPUT_OVERFLOW if system.overflow_every and self.sent % system.overflow_every == 0 else 0
            t0 = time.perf_counter_ns()
            ret = self.callback(data, self.frames, {"input_buffer_adc_time": 0.0}, status)
            self.durations_ns.append(time.perf_counter_ns() - t0)
            self.returns.add(ret)
            system.frame += self.frames
            if system.interval_s:
                time.sleep(system.interval_s)


class FakePyAudio:
    """The parts of pyaudio.PyAudio the source uses. Like PortAudio on Linux, it sees the devices
    present when it was created and no later changes."""

    def __init__(self, system: FakeSystem) -> None:
        self.system = system
        system.inits += 1
        self.devices = list(system.devices) if system.plugged else []
        self.default = system.default if system.plugged else None
        self.opened: list[dict[str, Any]] = []

    def get_device_count(self) -> int:
        return len(self.devices)

    def get_device_info_by_index(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.devices):
            raise OSError(-9996, "Invalid device")
        return self.devices[index].info(index)

    def get_default_input_device_info(self) -> dict[str, Any]:
        if self.default is None or self.default >= len(self.devices):
            raise OSError(-9996, "No Default Input Device Available")
        return self.get_device_info_by_index(self.default)

    def is_format_supported(
        self, rate: float, input_device: int, input_channels: int, input_format: int, **_: Any
    ) -> bool:
        dev = self.devices[input_device]
        if rate not in dev.rates:
            raise ValueError("Invalid sample rate", -9997)
        if input_channels > dev.inputs or input_format not in dev.formats:
            raise ValueError("Invalid number of channels", -9998)
        return True

    def open(self, **kwargs: Any) -> FakeStream:
        self.opened.append(kwargs)
        self.system.opened_with = kwargs  # type: ignore[attr-defined]
        assert kwargs["input"] is True and kwargs["start"] is False
        stream = FakeStream(
            self.system, kwargs["stream_callback"], kwargs["channels"], kwargs["format"], kwargs["frames_per_buffer"]
        )
        self.system.streams.append(stream)
        return stream

    def terminate(self) -> None:
        self.system.terminates += 1


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def system() -> FakeSystem:
    """A laptop's own input at index 0, an output-only HDMI device, the Scarlett Solo at index 2."""
    return FakeSystem(
        devices=[
            FakeDevice("HDA Intel PCH: ALC257 Analog (hw:0,0)", 2, 44_100),
            FakeDevice("HDA Intel PCH: HDMI 0 (hw:0,3)", 0),
            FakeDevice(SOLO, 2, 48_000),
        ],
        default=0,
    )


@pytest.fixture
def sources() -> Iterator[list[PyAudioSource]]:
    """Close every source a test made, whatever happens to the test."""
    made: list[PyAudioSource] = []
    yield made
    for s in made:
        s.close()


def make(system: FakeSystem, sources: list[PyAudioSource], **kwargs: Any) -> PyAudioSource:
    kwargs.setdefault("device", "scarlett")
    kwargs.setdefault("channel", 2)
    source = PyAudioSource(pa_factory=system.factory, **kwargs)
    sources.append(source)
    return source


def read_frames(source: PyAudioSource, n: int, limit_s: float = 5.0) -> Signal:
    parts, got = [], 0
    deadline = time.monotonic() + limit_s
    while got < n and time.monotonic() < deadline:
        block = source.read(n - got, timeout=0.2)
        parts.append(block.samples)
        got += len(block)
    assert got == n, f"only {got} of {n} frames arrived (state {source.state}: {source.message})"
    return np.concatenate(parts)


def wait_for(condition: Callable[[], bool], limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


# --- tests ------------------------------------------------------------------------------------------


def test_portaudio_constants_match_pyaudio() -> None:
    import pyaudio

    ours = (PA_FLOAT32, PA_INT16, PA_INPUT_OVERFLOW, PA_CONTINUE)
    assert ours == (pyaudio.paFloat32, pyaudio.paInt16, pyaudio.paInputOverflow, pyaudio.paContinue)


@pytest.mark.parametrize(
    ("device", "index"),
    [("scarlett", 2), ("SCARLETT SOLO", 2), ("hw:1,0", 2), (2, 2), ("2", 2), (0, 0), (None, 0), (SOLO.lower(), 2)],
)
def test_the_device_is_found_by_name_substring_or_index(
    system: FakeSystem, sources: list[PyAudioSource], device: str | int | None, index: int
) -> None:
    source = make(system, sources, device=device)
    source.start()
    assert source.state == "running", source.message
    assert system.opened_with["input_device_index"] == index  # type: ignore[attr-defined]
    assert source.device_name == system.devices[index].name


def test_a_missing_device_says_what_is_there(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    source = make(system, sources, device="focusrite 2i2")
    source.start()
    assert source.state == "no-device"
    assert source.message == (
        "no audio input matching 'focusrite 2i2': plug in your audio interface "
        "(inputs: 0 'HDA Intel PCH: ALC257 Analog (hw:0,0)', 2 'Scarlett Solo USB: Audio (hw:1,0)')"
    )
    source = make(system, sources, device=1)  # HDMI: an output, not an input
    source.start()
    assert source.state == "no-device" and "no audio input at index 1" in source.message
    # Each failed attempt releases PortAudio again.
    assert system.inits == system.terminates == 2


@pytest.mark.parametrize(
    ("default", "rates", "chosen"),
    [
        (44_100, (44_100,), 44_100),  # supports only 44.1 kHz
        (48_000, (44_100,), 44_100),  # a default it then refuses
        (44_100, (44_100, 48_000), 44_100),  # both: the device's default
        (48_000, (44_100, 48_000), 48_000),
        (96_000, (44_100, 48_000, 96_000), 48_000),  # default not 44.1/48: 48 kHz first
    ],
)
def test_the_rate_is_negotiated_with_the_device(
    system: FakeSystem, sources: list[PyAudioSource], default: int, rates: tuple[int, ...], chosen: int
) -> None:
    system.devices[2] = FakeDevice(SOLO, 2, default, rates)
    source = make(system, sources)
    source.start()
    assert source.state == "running"
    assert source.sample_rate == chosen == system.opened_with["rate"]  # type: ignore[attr-defined]
    assert read_frames(source, 1024).size == 1024


def test_a_device_without_44k1_or_48k_fails_clearly(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    system.devices[2] = FakeDevice(SOLO, 2, 96_000, (96_000, 192_000))
    source = make(system, sources)
    with pytest.raises(AudioError) as caught:
        source.start(require_device=True)
    assert str(caught.value) == (
        "'Scarlett Solo USB: Audio (hw:1,0)' cannot capture 2 channels at 48000 or 44100 Hz (its default is 96000 Hz)"
    )
    assert source.state == "closed"


@pytest.mark.parametrize("fmt", [PA_FLOAT32, PA_INT16])
def test_channel_2_of_2_is_extracted_exactly_in_either_format(
    system: FakeSystem, sources: list[PyAudioSource], fmt: int
) -> None:
    system.devices[2] = FakeDevice(SOLO, 2, formats=(fmt,))
    system.block_limit = 40
    source = make(system, sources)
    source.start()
    assert source.sample_format == ("float32" if fmt == PA_FLOAT32 else "int16")
    assert system.opened_with["channels"] == 2 and system.opened_with["format"] == fmt  # type: ignore[attr-defined]
    got = read_frames(source, 40 * 512)
    np.testing.assert_array_equal(got, expected(0, 40 * 512, channel=2))
    assert source.channel == 2 and source.frames_captured == source.frames_read == 40 * 512
    assert source.overflows == 0
    assert system.streams[0].returns == {(None, PA_CONTINUE)}


def test_float32_is_preferred_when_the_device_offers_both(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    source = make(system, sources)
    source.start()
    assert source.sample_format == "float32"


def test_mix_averages_the_inputs(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    system.block_limit = 10
    source = make(system, sources, channel="mix")
    source.start()
    np.testing.assert_allclose(read_frames(source, 5120), expected(0, 5120, "mix"), atol=1e-7)
    assert source.channel == "mix"


def test_auto_settles_on_the_guitar_channel_once_it_has_heard_it(
    system: FakeSystem, sources: list[PyAudioSource]
) -> None:
    source = make(system, sources, channel="auto")
    source.start()
    assert source.channel == "mix"  # nothing heard yet
    first = read_frames(source, 512)
    np.testing.assert_allclose(first, expected(0, 512, "mix"), atol=1e-7)
    read_frames(source, 48_000)  # a second of playing
    assert source.channel == 2
    block = source.read(2048, timeout=1.0)
    start = block.frame + source.dropped_frames
    np.testing.assert_array_equal(block.samples, expected(start, len(block), 2))


def test_auto_ignores_silence_and_waits_for_a_steady_answer() -> None:
    chooser = LiveChannelChooser(2, 48_000)
    silence = np.zeros((48_000, 2), np.float32)
    chooser(silence)
    assert chooser.choice == "mix"
    loud_on_1 = np.zeros((4_800, 2), np.float32)
    loud_on_1[:, 0] = 0.3
    chooser(loud_on_1)  # 0.1 s: not enough to switch
    assert chooser.choice == "mix"
    for _ in range(15):
        chooser(loud_on_1)
    assert chooser.choice == 1
    chooser(silence)  # a pause keeps the choice
    assert chooser.choice == 1


def test_portaudio_overflow_flags_are_counted(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    system.block_limit, system.overflow_every = 100, 10
    source = make(system, sources)
    source.start()
    read_frames(source, 100 * 512)
    assert source.overflows == 10
    assert source.dropped_frames == 0  # the flag says the driver lost audio, not our ring


def test_the_callback_never_waits_for_a_slow_reader(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    """10 s of audio pushed as fast as the fake can into a 0.25 s ring read by a dawdling reader:
    audio is dropped oldest-first and counted, what is delivered is exact, and every callback
    returns quickly."""
    system.interval_s = 0.0002  # ~20x real time
    system.block_limit = 940  # ~10 s at 48 kHz
    source = make(system, sources, capacity_s=0.25)
    source.start()
    stream = system.streams[0]
    skipped = 0
    while stream.sent < system.block_limit or source.frames_read + skipped < source.frames_captured:
        block = source.read(1024, timeout=0.05)
        skipped += block.dropped
        if len(block):
            start = block.frame + skipped
            np.testing.assert_array_equal(block.samples, expected(start, len(block), 2))
        time.sleep(0.01)  # the analysis thread is busy
    durations_us = np.array(stream.durations_ns) / 1000
    assert len(durations_us) == system.block_limit
    assert source.overflows > 10 and source.dropped_frames > 48_000
    assert source.frames_captured == source.frames_read + source.dropped_frames == 940 * 512
    assert float(np.median(durations_us)) < 100
    assert float(durations_us.max()) < 20_000  # a GIL hand-off at worst, never a wait on the reader
    print(
        f"callback µs: median {statistics.median(durations_us):.1f}, "
        f"p99 {np.percentile(durations_us, 99):.1f}, max {durations_us.max():.1f}"
    )


@pytest.mark.parametrize("dead_stream", ["inactive", "raise"])
def test_an_unplugged_interface_is_retried_on_the_clock_until_it_returns(
    system: FakeSystem, sources: list[PyAudioSource], dead_stream: str
) -> None:
    system.dead_stream = dead_stream
    clock = FakeClock()
    source = make(system, sources, clock=clock, retry_interval_s=2.0, stall_timeout_s=None)
    source.start()
    before = read_frames(source, 4096)
    np.testing.assert_array_equal(before, expected(0, 4096))

    system.unplug()
    block = source.read(4096, timeout=0.3)
    while len(block):  # what was captured before the unplug is still delivered
        block = source.read(4096, timeout=0.3)
    assert source.state == "no-device"
    assert source.message == "no audio input matching 'scarlett': plug in your audio interface (no inputs found)"
    assert system.inits == 2  # the stream died: one immediate retry, which found nothing
    assert system.streams[0].closed
    assert system.terminates == 2

    clock.advance(1.9)
    source.read(1, timeout=0.05)
    assert system.inits == 2  # not yet due

    system.plug()
    clock.advance(0.2)
    resumed = source.read(4096, timeout=2.0)
    assert source.state == "running", source.message
    assert system.inits == 3 and source.opens == 2
    assert resumed.gap and resumed.frame == source.frames_read - len(resumed)
    start = system.streams[1].first_frame
    np.testing.assert_array_equal(resumed.samples, expected(start, len(resumed)))


def test_a_stream_that_goes_quiet_is_treated_as_unplugged(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    clock = FakeClock()
    source = make(system, sources, clock=clock, stall_timeout_s=1.0)
    source.start()
    read_frames(source, 2048)
    system.dead_stream = "hang"  # unplugged, yet PortAudio still calls the stream active
    system.unplug()
    time.sleep(0.02)
    source.read(1, timeout=0)
    clock.advance(0.5)
    source.read(1, timeout=0)
    assert source.state == "running"
    clock.advance(0.6)
    source.read(1, timeout=0)
    assert source.state == "no-device"
    assert system.streams[0].closed


def test_a_reconnect_keeps_the_rate_the_reader_was_built_for(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    clock = FakeClock()
    source = make(system, sources, clock=clock)
    source.start()
    assert source.sample_rate == 48_000
    system.unplug()
    source.read(1, timeout=0.1)
    system.devices[2] = FakeDevice(SOLO, 2, 44_100, (44_100,))
    system.plug()
    clock.advance(2.0)
    source.read(1, timeout=0.1)
    assert source.state == "error"
    assert source.message == (
        "'Scarlett Solo USB: Audio (hw:1,0)' no longer captures 2 channels at 48000 Hz: restart the pedal"
    )


def test_block_times_step_back_from_the_callback_time_by_sample_and_latency(
    system: FakeSystem, sources: list[PyAudioSource]
) -> None:
    clock = FakeClock(500.0)
    system.latency_s = 0.01
    system.block_limit = 10
    source = make(system, sources, clock=clock, stall_timeout_s=None)
    source.start()
    wait_for(lambda: system.streams[0].sent == 10)
    block = source.read(5120, timeout=1.0)
    assert len(block) == 5120
    # Every callback ran at t=500: the last frame arrived then; frame 0 came 5120 samples earlier.
    assert block.time == pytest.approx(500.0 - 5120 / 48_000 - 0.01)
    assert source.time_of(2560) == pytest.approx(block.time + 2560 / 48_000)
    assert source.input_latency_s == 0.01


def test_a_channel_the_device_lacks_is_an_error_state(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    source = make(system, sources, channel=3)
    source.start()
    assert source.state == "error"
    assert source.message == "'Scarlett Solo USB: Audio (hw:1,0)' has 2 input channels; channel 3 asked for"


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="channel"):
        PyAudioSource(channel=0)
    with pytest.raises(ConfigError, match="audio device"):
        PyAudioSource(device=-1)


def test_close_releases_the_stream_and_portaudio(system: FakeSystem, sources: list[PyAudioSource]) -> None:
    with open_source("pyaudio", device="scarlett", channel=2, pa_factory=system.factory) as source:
        read_frames(source, 1024)
    assert source.state == "closed"
    assert system.streams[0].closed and system.inits == system.terminates == 1
    # Whatever was still in the ring went with it: a closed source ends at once.
    block = source.read(10, timeout=None)
    assert block.samples.size == 0 and block.ended


def test_without_a_sound_card_the_real_pyaudio_fails_with_one_clear_line() -> None:
    if list_input_devices():
        pytest.skip("this machine has audio inputs")
    for device, message in [
        (None, "no audio input found: plug in your audio interface"),
        ("Scarlett", "no audio input matching 'Scarlett': plug in your audio interface (no inputs found)"),
    ]:
        source = PyAudioSource(device, channel=2)
        with pytest.raises(AudioError) as caught:
            source.start(require_device=True)
        assert str(caught.value) == message
        assert source.state == "closed"
    # Without require_device, the pedal waits for the interface instead.
    with PyAudioSource("Scarlett") as waiting:
        assert waiting.state == "no-device"
        block = waiting.read(512, timeout=0.05)
        assert block.samples.size == 0 and not block.ended
        assert math.isnan(block.time)
