"""``fretcoach doctor``: each check against the real thing or a real stand-in — SQLite files,
the test PostgreSQL, loopback HTTP servers, gpiozero's mock pins, luma's drivers on a recording
bus, a fake PortAudio that streams a known sine — and the command itself."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory, MockPin
from llm_server import LLMServer
from opik_recorder import OpikRecorder, unused_url
from pg import admin_url, create_database, drop_database, with_dbname
from tcp_proxy import TcpProxy

from cloud_sync import MIGRATIONS, Timeouts
from device import doctor
from device.audio.pyaudio_source import PA_FLOAT32, PA_INT16
from device.cli import main
from device.config import Settings
from device.doctor import (
    Check,
    Probes,
    check_audio_interface,
    check_clock,
    check_cloud,
    check_disk,
    check_display,
    check_footswitch,
    check_input_level,
    check_llm,
    check_opik,
    check_power,
    check_store,
    report,
    run_checks,
    summary,
)
from device.session import SessionStore
from hardware.power import PowerMonitor

if TYPE_CHECKING:
    # Annotations only: which conftest module is importable by that name depends on collection order.
    from conftest import Cloud

SOLO = "Scarlett Solo USB: Audio (hw:1,0)"
LINE = re.compile(r"^(ok|FAIL|warn|skip) {2,}\S.* {2}\S")


def settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings from these values only: nothing from the environment the tests run in."""
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": None,
        "llm_provider": "openai",
        "openai_api_key": None,
        "llm_base_url": None,
        "llm_model": None,
        "opik_url": None,
        "opik_api_key": None,
        "audio_device": None,
        "audio_channel": "auto",
        "display": "dummy",
        "footswitch_pins": (17,),
    }
    base.update(values)
    return Settings.model_construct(**base)


# --- a fake PortAudio that streams a known sine ------------------------------------------------


@dataclass
class FakeDevice:
    name: str
    inputs: int
    default_rate: int = 48_000
    rates: tuple[int, ...] = (44_100, 48_000)


@dataclass
class FakePortAudio:
    """What PortAudio sees now. Input channel ``k`` carries a 480 Hz sine of ``amplitudes[k-1]``
    (100 samples a period at 48 kHz, so a whole number of periods has an exact RMS and peak)."""

    devices: list[FakeDevice] = field(default_factory=list)
    default: int = 0
    amplitudes: tuple[float, ...] = (0.0, 0.1)
    hang: bool = False
    inits: int = 0
    terminates: int = 0

    def factory(self) -> FakePyAudio:
        if self.hang:
            threading.Event().wait()  # a PortAudio init that never returns
        self.inits += 1
        return FakePyAudio(self)


class FakeStream:
    def __init__(self, pa: FakePortAudio, callback: Any, channels: int, frames: int) -> None:
        self.pa, self.callback, self.channels, self.frames = pa, callback, channels, frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = 0
        while not self._stop.is_set():
            i = np.arange(start, start + self.frames)
            sine = np.sin(2 * np.pi * i / 100.0)
            cols = [a * sine for a in self.pa.amplitudes[: self.channels]]
            cols += [np.zeros_like(sine)] * (self.channels - len(cols))
            self.callback(np.stack(cols, axis=1).astype(np.float32).tobytes(), self.frames, {}, 0)
            start += self.frames
            time.sleep(self.frames / 48_000 / 4)  # four times real time: quick, and the ring never overflows

    def start_stream(self) -> None:
        self._thread.start()

    def stop_stream(self) -> None:
        self._stop.set()
        self._thread.join()

    def close(self) -> None:
        self.stop_stream()

    def is_active(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def get_input_latency(self) -> float:
        return 0.0


class FakePyAudio:
    def __init__(self, pa: FakePortAudio) -> None:
        self.pa = pa

    def get_device_count(self) -> int:
        return len(self.pa.devices)

    def get_device_info_by_index(self, index: int) -> dict[str, Any]:
        d = self.pa.devices[index]
        return {
            "index": index,
            "name": d.name,
            "maxInputChannels": d.inputs,
            "defaultSampleRate": float(d.default_rate),
        }

    def get_default_input_device_info(self) -> dict[str, Any]:
        if not self.pa.devices:
            raise OSError(-9996, "No Default Input Device Available")
        return self.get_device_info_by_index(self.pa.default)

    def is_format_supported(self, rate: float, input_device: int, input_channels: int, input_format: int) -> bool:
        d = self.pa.devices[input_device]
        if rate not in d.rates:
            raise ValueError("Invalid sample rate", -9997)
        if input_channels > d.inputs or input_format not in (PA_FLOAT32, PA_INT16):
            raise ValueError("Invalid number of channels", -9998)
        return True

    def open(self, **kw: Any) -> FakeStream:
        assert kw["format"] == PA_FLOAT32 and kw["input"] is True
        return FakeStream(self.pa, kw["stream_callback"], kw["channels"], kw["frames_per_buffer"])

    def terminate(self) -> None:
        self.pa.terminates += 1


@pytest.fixture
def portaudio() -> FakePortAudio:
    """A laptop's own input at index 0 (the default) and the Scarlett Solo at index 1."""
    return FakePortAudio([FakeDevice("HDA Intel PCH: ALC257 Analog (hw:0,0)", 2, 44_100), FakeDevice(SOLO, 2)])


# --- audio interface ----------------------------------------------------------------------------


def test_the_configured_interface_is_found_with_its_rates(tmp_path: Path, portaudio: FakePortAudio) -> None:
    portaudio.devices[1].rates = (44_100, 48_000, 96_000)
    check = check_audio_interface(settings(tmp_path, audio_device="scarlett", audio_channel=2), portaudio.factory)
    assert check.status == "ok"
    assert check.detail == f"{SOLO}: 2 input(s), 44100, 48000, 96000 Hz"
    assert portaudio.inits == portaudio.terminates  # PortAudio released every time


def test_no_input_at_all_fails_with_a_hint(tmp_path: Path) -> None:
    check = check_audio_interface(settings(tmp_path), FakePortAudio().factory)
    assert (check.status, check.detail) == ("FAIL", "no audio input found")
    assert "plug in" in check.hint and "FAIL  audio interface   no audio input found → plug in" in check.line()


def test_a_missing_interface_says_what_is_there(tmp_path: Path, portaudio: FakePortAudio) -> None:
    check = check_audio_interface(settings(tmp_path, audio_device="focusrite"), portaudio.factory)
    assert check.status == "FAIL"
    assert (
        check.detail
        == f"no audio input matching 'focusrite' (inputs: 0 'HDA Intel PCH: ALC257 Analog (hw:0,0)', 1 {SOLO!r})"
    )


def test_a_channel_the_interface_lacks_fails(tmp_path: Path, portaudio: FakePortAudio) -> None:
    check = check_audio_interface(settings(tmp_path, audio_device="1", audio_channel=3), portaudio.factory)
    assert check.status == "FAIL" and "has 2 input(s); channel 3 is configured" in check.detail
    assert "FRETCOACH_AUDIO_CHANNEL" in check.hint


def test_an_interface_without_44k1_or_48k_fails(tmp_path: Path, portaudio: FakePortAudio) -> None:
    portaudio.devices[1].rates = (96_000,)
    check = check_audio_interface(settings(tmp_path, audio_device="scarlett"), portaudio.factory)
    assert check.status == "FAIL" and check.detail.endswith("2 input(s), 96000 Hz") and "48" in check.hint


def test_portaudio_blowing_up_is_a_failure_line_not_a_traceback(tmp_path: Path) -> None:
    def broken() -> Any:
        raise RuntimeError("PortAudio exploded\nwith a second line")

    check = check_audio_interface(settings(tmp_path), broken)
    assert check.status == "FAIL" and check.detail == "RuntimeError: PortAudio exploded with a second line"
    assert "\n" not in check.line()


# --- input level -------------------------------------------------------------------------------


def test_the_level_of_the_configured_channel_in_dbfs(tmp_path: Path, portaudio: FakePortAudio) -> None:
    s = settings(tmp_path, audio_device="scarlett", audio_channel=2)
    check = check_input_level(s, portaudio.factory, seconds=0.25)
    # A sine of amplitude 0.1: peak -20 dBFS, RMS 3 dB lower.
    assert (check.status, check.detail) == ("ok", "channel 2: RMS -23.0 dBFS, peak -20.0 dBFS")


def test_auto_measures_each_input_and_names_the_one_it_would_take(tmp_path: Path, portaudio: FakePortAudio) -> None:
    portaudio.amplitudes = (0.0001, 0.5)  # a hissing mic input beside the guitar
    check = check_input_level(settings(tmp_path, audio_device="scarlett"), portaudio.factory, seconds=0.25)
    assert check.status == "ok"
    assert check.detail == (
        "channel 1: RMS -83.0 dBFS, peak -80.0 dBFS; channel 2: RMS -9.0 dBFS, peak -6.0 dBFS; auto takes channel 2"
    )


def test_silence_is_a_warning_not_a_failure(tmp_path: Path, portaudio: FakePortAudio) -> None:
    portaudio.amplitudes = (0.0, 0.0)
    check = check_input_level(settings(tmp_path, audio_device="scarlett", audio_channel=2), portaudio.factory, 0.25)
    assert (check.status, check.detail) == ("warn", "channel 2: digital silence")
    assert not check.required and "play while doctor listens" in check.hint


def test_clipping_is_a_warning_with_a_gain_hint(tmp_path: Path, portaudio: FakePortAudio) -> None:
    portaudio.amplitudes = (0.0, 1.0)
    check = check_input_level(settings(tmp_path, audio_device="scarlett", audio_channel=2), portaudio.factory, 0.25)
    assert check.status == "warn" and "peak 0.0 dBFS" in check.detail and "gain down" in check.hint


def test_no_capture_is_a_failure(tmp_path: Path) -> None:
    check = check_input_level(settings(tmp_path, audio_channel=2), FakePortAudio().factory, 0.25)
    assert (check.status, check.detail) == (
        "FAIL",
        "cannot capture: no audio input found: plug in your audio interface",
    )


# --- store, disk, clock -----------------------------------------------------------------------


def test_a_healthy_store_passes_read_only(store: SessionStore) -> None:
    store.set_state({"last_sync_error": "x"})  # a write in progress elsewhere must not matter
    check = check_store(store.path)
    assert (check.status, check.detail) == ("ok", f"{store.path}: intact, 0 sessions, 0 queued for the cloud")


def test_no_store_yet_is_fine(tmp_path: Path) -> None:
    check = check_store(tmp_path / "fretcoach.db")
    assert check.status == "ok" and "made on the first run" in check.detail
    assert not (tmp_path / "fretcoach.db").exists()  # the doctor did not create one


def test_a_file_that_is_not_a_database_fails_and_stays_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "fretcoach.db"
    path.write_bytes(b"this is not SQLite, just a text file that took its name" * 100)
    before = path.read_bytes()
    check = check_store(path)
    assert (
        check.status == "FAIL" and "not a readable database" in check.detail and "moves a damaged store" in check.hint
    )
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["fretcoach.db"]


def test_a_store_with_damaged_pages_fails_its_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "fretcoach.db"
    store = SessionStore.open(path)
    for i in range(300):
        store.set_state({f"key-{i}": "x" * 200})
    store.close()
    with path.open("r+b") as f:  # scribble over the middle of the file, past the header page
        f.seek(3 * 4096)
        f.write(b"\xde\xad\xbe\xef" * 2048)
    check = check_store(path)
    assert check.status == "FAIL" and str(path) in check.detail
    assert "damaged" in check.detail or "not a readable database" in check.detail
    assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))


def test_free_disk_is_measured_where_the_store_will_live(tmp_path: Path) -> None:
    check = check_disk(tmp_path / "not" / "made" / "yet")
    assert check.status == "ok" and check.detail.endswith(f"free on {tmp_path}")
    low = check_disk(tmp_path, min_free=1 << 60)
    assert low.status == "FAIL" and "stops recording" in low.hint


def test_the_clock(tmp_path: Path) -> None:
    synced = tmp_path / "synchronized"
    y2024 = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    unset = check_clock(lambda: y2024, synced)
    assert (unset.status, unset.detail) == ("FAIL", "2024-01-01 00:05 UTC: the clock was never set")
    later = check_clock(lambda: datetime(2025, 3, 1, tzinfo=UTC), synced)
    assert later.status == "ok" and "not confirmed" in later.detail
    synced.touch()
    assert check_clock(lambda: y2024, synced).detail == "2024-01-01 00:05 UTC, synchronised by systemd-timesyncd"


# --- OLED, footswitch, power ------------------------------------------------------------------


class RecordingSerial:
    """A luma serial interface: the real ssd1306/sh1106 driver runs and talks to it."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.commands: list[tuple[int, ...]] = []
        self.cleaned_up = False

    def command(self, *cmd: int) -> None:
        if self.fail:
            raise OSError(121, "Remote I/O error")  # nothing acknowledged the address
        self.commands.append(cmd)

    def data(self, data: list[int]) -> None:
        pass

    def cleanup(self) -> None:
        self.cleaned_up = True


def test_the_dummy_display_opens_and_is_reported_as_no_oled(tmp_path: Path) -> None:
    check = check_display(settings(tmp_path, display="dummy"))
    assert (check.status, check.detail) == (
        "skip",
        "no OLED configured (FRETCOACH_DISPLAY=dummy; the dummy display opens)",
    )


@pytest.mark.parametrize("kind", ["ssd1306", "sh1106"])
def test_a_panel_that_answers_passes_and_is_left_switched_on(tmp_path: Path, kind: str) -> None:
    bus = RecordingSerial()
    check = check_display(settings(tmp_path, display=kind), serial=bus)
    assert (check.status, check.detail) == ("ok", f"{kind} answers on I2C port 1 at 0x3c")
    assert bus.cleaned_up and (0xAF,) in bus.commands  # opened (DISPLAYON) and released
    assert (0xAE,) not in bus.commands[bus.commands.index((0xAF,)) :]  # never switched off afterwards


def test_a_panel_that_does_not_answer_fails(tmp_path: Path) -> None:
    check = check_display(settings(tmp_path, display="ssd1306"), serial=RecordingSerial(fail=True))
    assert check.status == "FAIL" and "Remote I/O error" in check.detail and "i2cdetect" in check.hint


def test_a_missing_i2c_bus_fails(tmp_path: Path) -> None:
    if Path("/dev/i2c-1").exists():
        pytest.skip("this machine has an I2C bus 1")
    check = check_display(settings(tmp_path, display="sh1106"))
    assert check.status == "FAIL" and "/dev/i2c-1" in check.detail


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    """gpiozero's mock pins, passed to the check (never installed at import time)."""
    factory = MockFactory()
    yield factory
    factory.close()
    factory.reset()  # MockFactory keeps reservations at class level


def test_free_footswitch_pins_pass(tmp_path: Path, pins: MockFactory) -> None:
    check = check_footswitch(settings(tmp_path, footswitch_pins=(17, 27)), pins)
    assert (check.status, check.detail) == ("ok", "GPIO17 free, released, GPIO27 free, released")
    Button(17, pin_factory=pins).close()  # and released again


def test_a_pin_held_by_someone_else_fails(tmp_path: Path, pins: MockFactory) -> None:
    holder = Button(27, pin_factory=pins)
    try:
        check = check_footswitch(settings(tmp_path, footswitch_pins=(17, 27)), pins)
    finally:
        holder.close()
    assert check.status == "FAIL" and check.detail.startswith("GPIO27 cannot be claimed (pin GPIO27 is already in use")
    assert "systemctl stop fretcoach-pedal" in check.hint


class ShortedPin(MockPin):
    """A switch wired normally closed (or shorted): the pin stays low whatever the pull-up."""

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        self.drive_low()


def test_a_switch_that_reads_pressed_at_rest_fails() -> None:
    factory = MockFactory(pin_class=ShortedPin)
    try:
        check = check_footswitch(settings(Path("/nonexistent"), footswitch_pins=(17,)), factory)
    finally:
        factory.close()
        factory.reset()
    assert check.status == "FAIL" and check.detail == "GPIO17 reads pressed" and "normally open" in check.hint


def test_a_bad_pin_number_and_the_keyboard_footswitch(tmp_path: Path, pins: MockFactory) -> None:
    bad = check_footswitch(settings(tmp_path, footswitch_pins=(99,)), pins)
    assert bad.status == "FAIL" and bad.detail.startswith("GPIO99:") and "BCM" in bad.hint
    assert check_footswitch(settings(tmp_path, display="terminal"), pins).status == "skip"
    for wrong in [(17, 27, 22), (17, 17), ()]:
        check = check_footswitch(settings(tmp_path, footswitch_pins=wrong), pins)
        assert check.status == "FAIL" and "one or two switches" in check.detail


def test_power_flags_from_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "get_throttled"
    read = PowerMonitor([path], command=None).flags
    path.write_text("0\n")
    assert check_power(read).detail == "no undervoltage or throttling since boot"
    path.write_text("50005\n")
    check = check_power(read)
    assert check.status == "warn" and not check.required and "official supply" in check.hint
    assert check.detail == "under-voltage now, throttled now, under-voltage since boot, throttled since boot (0x50005)"
    path.write_text("4\n")
    assert check_power(read).status == "warn"
    path.write_text("40000\n")  # hot earlier, fine now
    assert check_power(read).status == "ok"
    assert check_power(lambda: None).status == "skip"


# --- the cloud database -------------------------------------------------------------------------


def test_an_unconfigured_cloud_is_skipped(tmp_path: Path) -> None:
    check = check_cloud(settings(tmp_path))
    assert check.status == "skip" and "FRETCOACH_DATABASE_URL" in check.detail


def test_the_migrated_cloud_is_up_to_date(tmp_path: Path, cloud: Cloud) -> None:
    check = check_cloud(settings(tmp_path, database_url=cloud.url))
    assert check.status == "ok" and check.detail.endswith(f"schema version {MIGRATIONS[-1].version}, up to date")


def test_a_device_login_reads_the_schema_version(tmp_path: Path, cloud: Cloud) -> None:
    creds = cloud.device("doctor-user")
    check = check_cloud(settings(tmp_path, database_url=cloud.device_url(creds)))
    assert check.status == "ok" and check.detail.endswith(f"schema version {MIGRATIONS[-1].version}, up to date")
    assert creds.password not in check.line()


def test_a_database_without_the_schema_fails_with_the_migrate_hint(tmp_path: Path, cloud_database: Cloud) -> None:
    base = admin_url()
    name = create_database(base)
    try:
        check = check_cloud(settings(tmp_path, database_url=with_dbname(base, name)))
    finally:
        drop_database(base, name)
    assert check.status == "FAIL" and check.detail.endswith("no fretcoach schema") and "db migrate" in check.hint


def test_an_unreachable_or_silent_server_fails_within_its_timeout(tmp_path: Path, cloud: Cloud) -> None:
    refused = check_cloud(settings(tmp_path, database_url="postgresql://postgres@127.0.0.1:1/x"))
    assert refused.status == "FAIL" and refused.detail.startswith("cannot reach the database at postgres@127.0.0.1:1/x")
    info = psycopg.conninfo.conninfo_to_dict(cloud.url)
    with TcpProxy((str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))) as proxy:
        proxy.blackhole()
        t0 = time.monotonic()
        silent = check_cloud(settings(tmp_path, database_url=proxy.url_for(cloud.url)), Timeouts(connect_s=1))
        assert time.monotonic() - t0 < 3.0
    assert silent.status == "FAIL" and "cannot reach" in silent.detail


# --- LLM provider and Opik, on loopback servers --------------------------------------------------


def test_an_unconfigured_llm_is_skipped(tmp_path: Path) -> None:
    check = check_llm(settings(tmp_path))
    assert (check.status, check.detail) == (
        "skip",
        "not configured (no OPENAI_API_KEY set): the coach uses its rule-based lines",
    )


def test_a_configured_llm_answers_its_models_list(tmp_path: Path) -> None:
    with LLMServer(models=["gemma-3-270m"]) as server:
        s = settings(tmp_path, llm_provider="openai-compatible", llm_base_url=server.url + "/")
        check = check_llm(s)
        listed = check_llm(settings(tmp_path, llm_provider="openai", openai_api_key="sk-test", llm_base_url=server.url))
        other = check_llm(s.model_copy(update={"llm_model": "llama-3"}))
    assert (check.status, check.detail) == ("ok", f"openai-compatible at {server.url}: reachable, model gemma-3-270m")
    assert listed.status == "ok" and "model gpt-4o-mini (not in its model list)" in listed.detail
    assert other.detail.endswith("model llama-3 (not in its model list)")
    gets = [r for r in server.requests if r.method == "GET"]
    assert [r.path for r in gets] == ["/v1/models"] * 3
    assert gets[1].headers["authorization"] == "Bearer sk-test"
    assert "sk-test" not in listed.line()


def test_a_configured_llm_that_is_down_or_failing_fails(tmp_path: Path) -> None:
    down = check_llm(settings(tmp_path, llm_provider="openai-compatible", llm_base_url=unused_url() + "v1"))
    assert down.status == "FAIL" and "Connection refused" in down.detail
    with OpikRecorder(mode="error") as failing:  # any server answering 500
        check = check_llm(settings(tmp_path, llm_provider="openai-compatible", llm_base_url=failing.url))
    assert check.status == "FAIL" and check.detail.endswith("HTTP 500")


def test_opik_skipped_alive_failing_and_hanging(tmp_path: Path) -> None:
    assert check_opik(settings(tmp_path)).status == "skip"
    with OpikRecorder() as opik:
        alive = check_opik(settings(tmp_path, opik_url=opik.url.rstrip("/")))
        assert [(c.method, c.path) for c in opik.calls] == [("GET", "/is-alive/ping")]
    assert alive.status == "ok" and alive.detail == f"{opik.url.rstrip('/')}: alive, project fretcoach"
    with OpikRecorder(mode="error") as opik:
        assert check_opik(settings(tmp_path, opik_url=opik.url)).detail.endswith("ping answered HTTP 500")
    with OpikRecorder(mode="slow", slow_s=5.0) as opik:
        t0 = time.monotonic()
        hung = check_opik(settings(tmp_path, opik_url=opik.url), timeout_s=0.3)
        assert time.monotonic() - t0 < 2.0
    assert hung.status == "FAIL" and hung.detail.endswith("no answer within 0.3 s")
    down = check_opik(settings(tmp_path, opik_url=unused_url()))
    assert down.status == "FAIL" and "Connection refused" in down.detail


# --- the whole run and the command ------------------------------------------------------------


def passing_probes(tmp_path: Path, pins: MockFactory, portaudio: FakePortAudio) -> Probes:
    synced = tmp_path / "synchronized"
    synced.touch()
    return Probes(
        pa_factory=portaudio.factory,
        pin_factory=pins,
        power_flags=lambda: 0,
        now=lambda: datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        timesync_flag=synced,
        listen_s=0.25,
    )


def test_a_healthy_pedal_passes_every_required_check(
    tmp_path: Path, pins: MockFactory, portaudio: FakePortAudio, store: SessionStore
) -> None:
    s = settings(tmp_path, data_dir=store.path.parent, audio_device="scarlett", audio_channel=2, display="dummy")
    seen: list[Check] = []
    checks = run_checks(s, passing_probes(tmp_path, pins, portaudio), on_check=seen.append)
    assert seen == checks
    assert [(c.name, c.status) for c in checks] == [
        ("clock", "ok"),
        ("session store", "ok"),
        ("free disk", "ok"),
        ("audio interface", "ok"),
        ("input level", "ok"),
        ("OLED", "skip"),
        ("footswitch pins", "ok"),
        ("power", "ok"),
        ("cloud database", "skip"),
        ("LLM provider", "skip"),
        ("Opik tracing", "skip"),
    ]
    assert report(checks)["ok"] is True and summary(checks) == "doctor: ready to play"
    assert all(LINE.match(c.line()) for c in checks)


def test_a_hanging_check_costs_its_limit_and_the_run_goes_on(tmp_path: Path, pins: MockFactory) -> None:
    probes = passing_probes(tmp_path, pins, FakePortAudio(hang=True))
    probes = dataclasses.replace(probes, limits_s={"audio interface": 0.3})
    t0 = time.monotonic()
    checks = run_checks(settings(tmp_path), probes)
    assert time.monotonic() - t0 < 10.0
    by_name = {c.name: c for c in checks}
    assert by_name["audio interface"].status == "FAIL"
    assert by_name["audio interface"].detail == "no answer within 0.3 s"
    assert by_name["input level"].status == "skip"  # one line per cause
    assert by_name["footswitch pins"].status == "ok" and len(checks) == 11
    assert summary(checks) == "doctor: 1 required check failed: audio interface"


def test_the_doctor_command_prints_one_line_per_check_and_exits_0_when_ready(
    tmp_path: Path,
    pins: MockFactory,
    portaudio: FakePortAudio,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The command builds the real probes; here they are the stand-ins above.
    probes = passing_probes(tmp_path, pins, portaudio)
    monkeypatch.setattr(doctor, "Probes", functools.partial(Probes, **vars(probes)))
    config = tmp_path / "pedal.env"
    config.write_text(
        f"FRETCOACH_DATA_DIR={tmp_path / 'data'}\nFRETCOACH_DISPLAY=dummy\n"
        "FRETCOACH_AUDIO_DEVICE=scarlett\nFRETCOACH_AUDIO_CHANNEL=2\n"
    )
    for name in (
        "FRETCOACH_DATABASE_URL",
        "OPENAI_API_KEY",
        "FRETCOACH_LLM_PROVIDER",
        "LLM_PROVIDER",
        "FRETCOACH_LLM_BASE_URL",
        "OPIK_URL_OVERRIDE",
        "OPIK_API_KEY",
        "FRETCOACH_OPIK_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["--config", str(config), "doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 12 and all(LINE.match(line) for line in out[:-1])
    assert out[3] == f"ok    audio interface   {SOLO}: 2 input(s), 44100, 48000 Hz"
    assert out[-1] == "doctor: ready to play"
    assert main(["--config", str(config), "doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and [c["status"] for c in doc["checks"]][:5] == ["ok"] * 5


def test_fretcoach_doctor_exits_1_on_a_damaged_store_without_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "fretcoach.db").write_bytes(b"garbage" * 1000)
    config = tmp_path / "pedal.env"
    config.write_text(f"FRETCOACH_DATA_DIR={data}\nFRETCOACH_DISPLAY=terminal\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRETCOACH_", "OPIK_", "OPENAI_", "LLM_"))}
    done = subprocess.run(
        [sys.executable, "-m", "device.cli", "--config", str(config), "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 12 and all(LINE.match(line) for line in lines[:-1])
    store_line = next(line for line in lines if "session store" in line)
    assert store_line.startswith("FAIL  session store     ") and "→" in store_line
    assert lines[-1].startswith("doctor: ") and "session store" in lines[-1]
    assert (data / "fretcoach.db").read_bytes() == b"garbage" * 1000  # not moved aside, not touched


def test_a_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "pedal.env"
    config.write_text("FRETCOACH_FOOTSWITCH_PINS=seventeen\n")
    assert main(["--config", str(config), "doctor"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fretcoach: error: invalid setting")


def test_statuses_and_the_line_format() -> None:
    assert Check("clock", False, detail="unset", hint="set it").line() == "FAIL  clock" + " " * 13 + "unset → set it"
    assert Check("clock", True, detail="fine", hint="not shown").line() == "ok    clock" + " " * 13 + "fine"
    assert Check("power", False, required=False, detail="hot").status == "warn"
    assert Check("Opik tracing", True, False, "off", skipped=True).line() == "skip  Opik tracing      off"
    assert Check("x", False, detail="two\nlines").line() == "FAIL  x" + " " * 17 + "two lines"
