"""``fretcoach doctor``: is this pedal ready to play? One pass/fail line per part, with a hint.

Each ``check_*`` function probes one thing and returns a :class:`Check`; the outside thing it
probes (PortAudio, gpiozero's pin factory, the OLED's bus, the firmware flags, the clock) is a
parameter, so tests drive the real code against stand-ins. A check never raises: its own
errors become its failure line. :func:`run_checks` also runs each one on a worker thread with
a time limit, so a driver that hangs (PortAudio, an I2C bus, a TCP peer that never answers)
costs that check its limit and the run goes on; network checks have their own shorter
timeouts inside.

What counts (``required``): the clock, the session store, free disk, the audio interface and
capturing from it, the OLED when a panel is configured, the footswitch pins when GPIO
footswitches are used. The cloud database, the LLM provider and Opik are "skip" when not
configured (the pedal works offline by design) and required once configured: a URL or key
that does not work is something to fix. A few findings are warnings only (``warn``): a quiet
or clipping input (the player may not be playing), undervoltage or throttling (a hardware
fact no setting changes), a cloud schema newer than this pedal. The exit code is non-zero
when a required check fails.

Run it with the pedal service stopped (``sudo systemctl stop fretcoach-pedal``): the service
holds the audio interface and the footswitch pins, which then fail here as busy.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import sqlite3
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec

from device.config import Settings

if TYPE_CHECKING:
    from cloud_sync.connection import Timeouts
    from device.audio.pyaudio_source import InputDevice, PaFactory, PyAudioLike

__all__ = [
    "MIN_FREE_BYTES",
    "MIN_YEAR",
    "TIMESYNC_FLAG",
    "Check",
    "Probes",
    "check_audio_interface",
    "check_clock",
    "check_cloud",
    "check_disk",
    "check_display",
    "check_footswitch",
    "check_input_level",
    "check_llm",
    "check_opik",
    "check_power",
    "check_store",
    "report",
    "run_checks",
    "summary",
]

Status = Literal["ok", "FAIL", "warn", "skip"]
P = ParamSpec("P")

CLOCK = "clock"
STORE = "session store"
DISK = "free disk"
AUDIO = "audio interface"
LEVEL = "input level"
DISPLAY = "OLED"
FOOTSWITCH = "footswitch pins"
POWER = "power"
CLOUD = "cloud database"
LLM = "LLM provider"
OPIK = "Opik tracing"
_NAME_WIDTH: Final = 16

#: A clock before this year was never set (the Pi has no battery-backed clock, bar the Pi 5's option).
MIN_YEAR: Final = 2025
#: systemd-timesyncd creates this once it has synchronised the clock since boot.
TIMESYNC_FLAG: Final = Path("/run/systemd/timesync/synchronized")
#: Below this the doctor complains; the store itself refuses a new session under 8 MiB.
MIN_FREE_BYTES: Final = 64 * 1024 * 1024
# Rates reported for the interface; the pedal itself captures at 48 or 44.1 kHz.
_PROBED_RATES: Final = (44_100, 48_000, 88_200, 96_000)
# "auto"/"mix": at most this many inputs are measured, one second each.
_LEVEL_CHANNELS: Final = 4
_CLIP_DBFS: Final = -0.5
_SILENT_DBFS: Final = -50.0  # the quietest notes the pedal counts at the default sensitivity
_OPIK_CLOUD_URL: Final = "https://www.comet.com/opik/api/"
_PANELS: Final = ("ssd1306", "sh1106")
_STOP_SERVICE: Final = "if the pedal service is running it holds it: `sudo systemctl stop fretcoach-pedal` first"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding. ``ok`` false with ``required`` fails the run; ``skipped`` means not configured."""

    name: str
    ok: bool
    required: bool = True
    detail: str = ""
    hint: str = ""
    skipped: bool = False

    @property
    def status(self) -> Status:
        if self.skipped and self.ok:
            return "skip"
        if self.ok:
            return "ok"
        return "FAIL" if self.required else "warn"

    def line(self) -> str:
        """One line: status, name, what was found and, when something is wrong, what to do."""
        text = f"{self.status:<4}  {self.name:<{_NAME_WIDTH}}  {_one_line(self.detail)}"
        if not self.ok and self.hint:
            text += f" → {_one_line(self.hint)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def _ok(name: str, detail: str) -> Check:
    return Check(name, True, True, detail)


def _skip(name: str, detail: str) -> Check:
    return Check(name, True, False, detail, skipped=True)


def _fail(name: str, detail: str, hint: str = "", *, required: bool = True) -> Check:
    return Check(name, False, required, detail, hint)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(exc: BaseException) -> str:
    text = _one_line(exc)
    return text if text else type(exc).__name__


def _never_raises(name: str) -> Callable[[Callable[P, Check]], Callable[P, Check]]:
    """A check's own failure is its failure line, never a traceback."""

    def wrap(fn: Callable[P, Check]) -> Callable[P, Check]:
        @functools.wraps(fn)
        def checked(*args: P.args, **kwargs: P.kwargs) -> Check:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return _fail(name, f"{type(exc).__name__}: {_reason(exc)}", "unexpected; please report this line")

        return checked

    return wrap


# --- clock, store, disk -----------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


@_never_raises(CLOCK)
def check_clock(now: Callable[[], datetime] = _utc_now, synced_flag: Path = TIMESYNC_FLAG) -> Check:
    """Set if systemd-timesyncd says so, or at least plausibly set (the year is ``MIN_YEAR`` or later)."""
    t = now().astimezone(UTC)
    stamp = t.strftime("%Y-%m-%d %H:%M UTC")
    if synced_flag.exists():
        return _ok(CLOCK, f"{stamp}, synchronised by systemd-timesyncd")
    if t.year >= MIN_YEAR:
        return _ok(CLOCK, f"{stamp} (not confirmed by systemd-timesyncd)")
    return _fail(
        CLOCK,
        f"{stamp}: the clock was never set",
        "connect the pedal to the network once so systemd-timesyncd sets it; sessions need real times to sync",
    )


@_never_raises(STORE)
def check_store(path: Path) -> Check:
    """``PRAGMA quick_check`` on the store, opened read-only: the doctor never moves a file aside."""
    if not path.exists():
        return _ok(STORE, f"no store yet at {path} (made on the first run)")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    hint = "the pedal moves a damaged store aside at its next start and begins a fresh one (copy it off first)"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        return _fail(STORE, f"{path}: cannot open ({_reason(exc)})", "run doctor as the pedal's user, or with sudo")
    try:
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            # Only damage is the store's business; a file we may not read (or a locked one) is ours.
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                return _fail(STORE, f"{path} is not a readable database ({_reason(exc)})", hint)
            return _fail(STORE, f"{path}: cannot read ({_reason(exc)})", "run doctor as the pedal's user, or with sudo")
        if rows != [("ok",)]:
            first = rows[0][0] if rows else "no answer"
            return _fail(STORE, f"{path} is damaged ({_one_line(first)})", hint)
        return _ok(STORE, f"{path}: intact{_store_counts(conn)}")
    finally:
        conn.close()


def _store_counts(conn: sqlite3.Connection) -> str:
    # What the maintainer wants to know next; an older or foreign schema just leaves it out.
    try:
        sessions = conn.execute("SELECT count(*) FROM sessions WHERE status = 'ended'").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM outbox WHERE quarantined_at IS NULL").fetchone()[0]
    except sqlite3.Error:
        return ""
    return f", {sessions} sessions, {queued} queued for the cloud"


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@_never_raises(DISK)
def check_disk(data_dir: Path, min_free: int = MIN_FREE_BYTES) -> Check:
    """Free space where the store lives (its nearest existing directory before the first run)."""
    where = _existing(data_dir)
    free = shutil.disk_usage(where).free
    detail = f"{_size(free)} free on {where}"
    if free < min_free:
        return _fail(
            DISK,
            detail,
            f"free at least {_size(min_free)}: the pedal stops recording below 8 MiB (old recordings, apt clean)",
        )
    return _ok(DISK, detail)


# --- audio ------------------------------------------------------------------------------------


def _portaudio(pa_factory: PaFactory | None) -> PaFactory:
    if pa_factory is not None:
        return pa_factory
    # The pedal's own PortAudio start: it hides the ~60 lines of ALSA probing PortAudio prints.
    from device.audio.pyaudio_source import _default_factory

    return _default_factory


def _pick(inputs: Sequence[InputDevice], device: str | None, pa: PyAudioLike) -> InputDevice | None:
    """The input the pedal would open for ``device`` (the rules of device.audio.pyaudio_source)."""
    wanted = (device or "").strip()
    if not wanted:
        try:
            index = int(pa.get_default_input_device_info().get("index", -1))
        except (OSError, ValueError):
            index = -1  # PortAudio raises when there is no default input
        return next((d for d in inputs if d.index == index), inputs[0] if inputs else None)
    if wanted.isdigit():
        return next((d for d in inputs if d.index == int(wanted)), None)
    exact = [d for d in inputs if d.name.casefold() == wanted.casefold()]
    partial = [d for d in inputs if wanted.casefold() in d.name.casefold()]
    matches = exact or partial
    return matches[0] if matches else None


def _captures(pa: PyAudioLike, rate: int, index: int, channels: int) -> bool:
    from device.audio.pyaudio_source import PA_FLOAT32, PA_INT16

    for fmt in (PA_FLOAT32, PA_INT16):
        try:
            if pa.is_format_supported(rate, input_device=index, input_channels=channels, input_format=fmt):
                return True
        except (OSError, ValueError):  # pyaudio answers "no" by raising
            continue
    return False


_NO_INTERFACE_HINT: Final = (
    "plug in the USB audio interface (`arecord -l` lists what Linux sees); FRETCOACH_AUDIO_DEVICE picks it by name"
)


@_never_raises(AUDIO)
def check_audio_interface(settings: Settings, pa_factory: PaFactory | None = None) -> Check:
    """The configured input is there, has the configured channel, and captures at 44.1 or 48 kHz."""
    from device.audio import PREFERRED_RATES, list_input_devices
    from device.audio.pyaudio_source import MAX_CHANNELS

    factory = _portaudio(pa_factory)
    inputs = list_input_devices(factory)
    if not inputs:
        return _fail(AUDIO, "no audio input found", _NO_INTERFACE_HINT)
    pa = factory()
    try:
        dev = _pick(inputs, settings.audio_device, pa)
        if dev is None:
            seen = ", ".join(f"{d.index} {d.name!r}" for d in inputs[:4])
            return _fail(
                AUDIO, f"no audio input matching {settings.audio_device!r} (inputs: {seen})", _NO_INTERFACE_HINT
            )
        channel = settings.audio_channel
        if isinstance(channel, int) and channel > dev.channels:
            return _fail(
                AUDIO,
                f"{dev.name!r} has {dev.channels} input(s); channel {channel} is configured",
                "set FRETCOACH_AUDIO_CHANNEL to the instrument input (see hardware/README.md)",
            )
        channels = channel if isinstance(channel, int) else min(dev.channels, MAX_CHANNELS)
        rates = [r for r in _PROBED_RATES if _captures(pa, r, dev.index, channels)]
    finally:
        pa.terminate()
    listed = ", ".join(str(r) for r in rates) or "none of " + ", ".join(str(r) for r in _PROBED_RATES)
    detail = f"{dev.name}: {dev.channels} input(s), {listed} Hz"
    if not set(rates) & set(PREFERRED_RATES):
        return _fail(AUDIO, detail, "the pedal captures at 48 or 44.1 kHz: use a USB Audio Class interface")
    return _ok(AUDIO, detail)


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0.0 else -math.inf


def _fmt_db(value: float) -> str:
    return "-inf" if value == -math.inf else f"{value:.1f}"


@dataclass(frozen=True, slots=True)
class _Level:
    channel: int | Literal["mix"]
    rms_dbfs: float
    peak_dbfs: float

    def text(self) -> str:
        where = "mix" if self.channel == "mix" else f"channel {self.channel}"
        if self.peak_dbfs == -math.inf:
            return f"{where}: digital silence"
        return f"{where}: RMS {_fmt_db(self.rms_dbfs)} dBFS, peak {_fmt_db(self.peak_dbfs)} dBFS"


def _listen(settings: Settings, channel: int | Literal["mix"], seconds: float, pa_factory: PaFactory | None) -> _Level:
    """``seconds`` of ``channel`` through the pedal's own capture path; raises AudioError if it cannot."""
    import numpy as np

    from device.audio import PyAudioSource, open_source
    from device.errors import AudioDeviceError

    source = open_source("pyaudio", device=settings.audio_device, channel=channel, pa_factory=_portaudio(pa_factory))
    assert isinstance(source, PyAudioSource)
    try:
        source.start(require_device=True)
        rate = source.sample_rate or 48_000
        want = max(1, int(seconds * rate))
        deadline = time.monotonic() + seconds + 2.0
        parts, got = [], 0
        while got < want and time.monotonic() < deadline:
            block = source.read(want - got, timeout=0.2)
            if block.samples.size:
                parts.append(block.samples)
                got += block.samples.size
            if source.state in ("no-device", "error"):
                raise AudioDeviceError(source.message or "the interface stopped")
        if got == 0:
            raise AudioDeviceError(f"no audio arrived within {seconds + 2.0:g} s ({source.message or source.state})")
    finally:
        source.close()
    samples = np.concatenate(parts).astype(np.float64)
    rms = float(np.sqrt(np.mean(samples * samples)))
    peak = float(np.max(np.abs(samples)))
    return _Level(channel, _dbfs(rms), _dbfs(peak))


def _input_count(settings: Settings, pa_factory: PaFactory | None) -> int:
    from device.audio import list_input_devices

    factory = _portaudio(pa_factory)
    inputs = list_input_devices(factory)
    pa = factory()
    try:
        dev = _pick(inputs, settings.audio_device, pa)
    finally:
        pa.terminate()
    return dev.channels if dev is not None else 1


@_never_raises(LEVEL)
def check_input_level(settings: Settings, pa_factory: PaFactory | None = None, seconds: float = 1.0) -> Check:
    """RMS and peak of ``seconds`` of input: the configured channel, or each input for auto/mix.

    Capturing nothing is a failure; silence or clipping only a warning (nobody may be playing).
    """
    from device.audio import choose_channel
    from device.errors import AudioError

    configured = settings.audio_channel
    try:
        if isinstance(configured, int):
            levels = [_listen(settings, configured, seconds, pa_factory)]
        else:
            count = min(_input_count(settings, pa_factory), _LEVEL_CHANNELS)
            levels = [_listen(settings, ch, seconds, pa_factory) for ch in range(1, count + 1)]
    except AudioError as exc:
        return _fail(LEVEL, f"cannot capture: {_reason(exc)}", _NO_INTERFACE_HINT)
    detail = "; ".join(level.text() for level in levels)
    if configured == "auto" and len(levels) > 1:
        pick = choose_channel([10.0 ** (lv.rms_dbfs / 20.0) for lv in levels])
        detail += f"; auto takes {'the mix' if pick == 'mix' else f'channel {pick}'}"
    loudest = max(levels, key=lambda lv: lv.peak_dbfs)
    if loudest.peak_dbfs >= _CLIP_DBFS:
        return _fail(
            LEVEL, detail, "clipping: turn the input gain down until hard picking peaks around -6 dBFS", required=False
        )
    if loudest.peak_dbfs < _SILENT_DBFS:
        return _fail(
            LEVEL,
            detail,
            "no guitar heard: play while doctor listens; check the cable, the gain and FRETCOACH_AUDIO_CHANNEL",
            required=False,
        )
    return _ok(LEVEL, detail)


# --- OLED, footswitches, power ----------------------------------------------------------------


@_never_raises(DISPLAY)
def check_display(settings: Settings, serial: object | None = None) -> Check:
    """Open the configured display as the pedal does; a panel must answer on its bus.

    ``serial`` stands in for the panel's bus (a luma serial interface), as in
    :func:`hardware.display.open_display`. The panel is left on when closed (luma would switch
    it off), so a doctor run beside a running pedal does not darken its screen.
    """
    from device.errors import ConfigError, DisplayError
    from hardware.display import LumaDisplay, open_display

    kind = settings.display
    if kind in ("capture", "gif"):
        return _skip(DISPLAY, f"no OLED configured (FRETCOACH_DISPLAY={kind} records frames)")
    try:
        display = open_display(kind, serial=serial, stream=io.StringIO())
    except (DisplayError, ConfigError) as exc:
        return _fail(
            DISPLAY,
            _reason(exc),
            "`i2cdetect -y 1` should list 3c (wiring and I2C setup: hardware/README.md)",
        )
    if isinstance(display, LumaDisplay):
        display.device.persist = True  # luma's cleanup() would blank and switch the panel off
    display.close()
    if kind in _PANELS:
        return _ok(DISPLAY, f"{kind} answers on I2C port 1 at 0x3c")
    return _skip(DISPLAY, f"no OLED configured (FRETCOACH_DISPLAY={kind}; the {kind} display opens)")


@_never_raises(FOOTSWITCH)
def check_footswitch(settings: Settings, pin_factory: Any = None) -> Check:
    """Each footswitch pin can be claimed as the pedal claims it, and reads released at rest."""
    from gpiozero import BadPinFactory, Button, PinInvalidPin

    from hardware.footswitch import MAX_SWITCHES

    if settings.display == "terminal":
        return _skip(FOOTSWITCH, "the space bar is the footswitch (FRETCOACH_DISPLAY=terminal): no GPIO used")
    pins = settings.footswitch_pins
    if not 1 <= len(pins) <= MAX_SWITCHES or len(set(pins)) != len(pins):
        return _fail(FOOTSWITCH, f"pins {pins}: a pedal has one or two switches on different pins", "e.g. 17 or 17,27")
    found: list[str] = []
    stuck: list[int] = []
    for pin in pins:
        try:
            # gpiozero warns on stderr for every pin factory it tries before one works.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        except BadPinFactory as exc:
            return _fail(
                FOOTSWITCH,
                f"no GPIO here ({_reason(exc)})",
                "on a Pi install python3-lgpio (a Pi 5 needs it); elsewhere set FRETCOACH_DISPLAY=terminal",
            )
        except PinInvalidPin as exc:
            return _fail(FOOTSWITCH, f"GPIO{pin}: {_reason(exc)}", "FRETCOACH_FOOTSWITCH_PINS takes BCM numbers: 17,27")
        except Exception as exc:  # busy: GPIOPinInUse here, lgpio's "GPIO busy" for another process
            return _fail(FOOTSWITCH, f"GPIO{pin} cannot be claimed ({_reason(exc)})", _STOP_SERVICE)
        try:
            pressed = bool(button.is_pressed)
        finally:
            button.close()
        found.append(f"GPIO{pin} {'reads pressed' if pressed else 'free, released'}")
        if pressed:
            stuck.append(pin)
    detail = ", ".join(found)
    if stuck:
        return _fail(
            FOOTSWITCH,
            detail,
            "a switch reads pressed with nobody on it: it must be momentary and normally open, wired pin to GND",
        )
    return _ok(FOOTSWITCH, detail)


@_never_raises(POWER)
def check_power(read_flags: Callable[[], int | None] | None = None) -> Check:
    """The firmware's undervoltage/throttling flags (a warning, never a failure of the run)."""
    from device.ui.views import PowerWarning
    from hardware.power import PowerMonitor, describe_flags, warning_for

    flags = (read_flags or PowerMonitor().flags)()
    if flags is None:
        return _skip(POWER, "no firmware flags here (not a Raspberry Pi)")
    if flags == 0:
        return _ok(POWER, "no undervoltage or throttling since boot")
    detail = f"{describe_flags(flags)} ({flags:#x})"
    warning = warning_for(flags)
    if warning is PowerWarning.UNDERVOLTAGE:
        hint = "use the official supply and a short, thick cable: voltage dips corrupt SD cards"
        return _fail(POWER, detail, hint, required=False)
    if warning is PowerWarning.THROTTLED:
        return _fail(POWER, detail, "the Pi is too hot: a heatsink, vent holes, or the Pi 5's cooler", required=False)
    return _ok(POWER, f"earlier since boot: {detail}")


# --- the network --------------------------------------------------------------------------------


def _doctor_timeouts() -> Timeouts:
    from cloud_sync.connection import Timeouts

    return Timeouts(connect_s=5, statement_ms=5_000, step_s=8.0)


@_never_raises(CLOUD)
def check_cloud(settings: Settings, timeouts: Timeouts | None = None) -> Check:
    """The cloud PostgreSQL answers and its schema is the one this pedal syncs with."""
    import psycopg

    from cloud_sync import MIGRATIONS, Deadline, connect, describe_url, schema_version
    from device.errors import FretCoachError

    url = settings.database_url
    if not url:
        return _skip(CLOUD, "not configured (FRETCOACH_DATABASE_URL unset): sessions stay on the pedal")
    timeouts = timeouts or _doctor_timeouts()
    where = describe_url(url)
    try:
        conn = connect(url, timeouts, application_name="fretcoach-doctor")
    except FretCoachError as exc:
        return _fail(
            CLOUD, _reason(exc), "check the network and FRETCOACH_DATABASE_URL; sessions stay queued meanwhile"
        )
    latest = MIGRATIONS[-1].version
    try:
        with conn, Deadline(conn, timeouts.step_s).armed():
            try:
                version = schema_version(conn)
            except psycopg.errors.InsufficientPrivilege:
                # Device roles may read the version list from migration 4 on: older is behind.
                return _fail(
                    CLOUD,
                    f"{where}: reachable; schema older than version 4",
                    "run `fretcoach db migrate --url ADMIN_URL`",
                    required=False,
                )
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _fail(CLOUD, f"{where}: {first}", "check the database URL and its role")
    if version == 0:
        return _fail(CLOUD, f"{where}: no fretcoach schema", "run `fretcoach db migrate --url ADMIN_URL` once")
    if version < latest:
        return _fail(
            CLOUD, f"{where}: schema version {version}, {latest} expected", "run `fretcoach db migrate --url ADMIN_URL`"
        )
    if version > latest:
        return _fail(
            CLOUD,
            f"{where}: schema version {version} is newer than this pedal's ({latest})",
            "update the pedal",
            required=False,
        )
    return _ok(CLOUD, f"{where}: schema version {version}, up to date")


def _http_get(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> Any:
    import httpx

    # Our own client with an explicit timeout (connect capped lower), closed at once.
    with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(3.0, timeout_s))) as client:
        return client.get(url, headers=headers or {})


@_never_raises(LLM)
def check_llm(settings: Settings, timeout_s: float = 5.0) -> Check:
    """The provider is configured and ``GET {base_url}/models`` answers with the key accepted."""
    import httpx

    from device.coach.providers import OfflineReason, resolve_provider

    choice = resolve_provider(settings)
    if isinstance(choice, OfflineReason):
        return _skip(LLM, f"not configured ({choice.detail}): the coach uses its rule-based lines")
    base = choice.base_url.rstrip("/")
    what = f"{choice.provider} at {base}"
    try:
        resp = _http_get(f"{base}/models", timeout_s, {"Authorization": f"Bearer {choice.api_key}"})
    except httpx.TimeoutException:
        return _fail(LLM, f"{what}: no answer within {timeout_s:g} s", "check the network or the server")
    except httpx.HTTPError as exc:
        return _fail(LLM, f"{what}: {_reason(exc)}", "check the network and FRETCOACH_LLM_BASE_URL")
    if resp.status_code in (401, 403):
        return _fail(LLM, f"{what}: the key was refused (HTTP {resp.status_code})", f"check {choice.spec.key_env}")
    if resp.status_code == 404:
        return _ok(LLM, f"{what}: reachable (it lists no models)")
    if resp.status_code >= 400:
        return _fail(LLM, f"{what}: HTTP {resp.status_code}", "the provider is failing; try again later")
    try:
        ids = [str(m.get("id")) for m in resp.json().get("data") or [] if isinstance(m, dict)]
    except (ValueError, AttributeError):
        ids = []
    model = choice.model or (ids[0] if ids else "the server's model")
    note = "" if not ids or model in ids else " (not in its model list)"
    return _ok(LLM, f"{what}: reachable, model {model}{note}")


@_never_raises(OPIK)
def check_opik(settings: Settings, timeout_s: float = 5.0) -> Check:
    """Tracing is configured and the Opik backend answers its ``is-alive/ping``."""
    import httpx

    from device.coach.tracing import TracingConfig

    config = TracingConfig.from_settings(settings)
    if not config.enabled:
        return _skip(OPIK, "not configured (no OPIK_URL_OVERRIDE or OPIK_API_KEY): LLM calls are not traced")
    base = config.url or _OPIK_CLOUD_URL
    ping = urllib.parse.urljoin(base if base.endswith("/") else base + "/", "is-alive/ping")
    try:
        resp = _http_get(ping, timeout_s)
    except httpx.TimeoutException:
        return _fail(OPIK, f"{base}: no answer within {timeout_s:g} s", "check OPIK_URL_OVERRIDE and the network")
    except httpx.HTTPError as exc:
        return _fail(OPIK, f"{base}: {_reason(exc)}", "check OPIK_URL_OVERRIDE and the network")
    if resp.status_code != 200:
        return _fail(OPIK, f"{base}: ping answered HTTP {resp.status_code}", "is this the Opik API URL (…/api/)?")
    return _ok(OPIK, f"{base}: alive, project {config.project_name}")


# --- running them all -------------------------------------------------------------------------


@dataclass(frozen=True)
class Probes:
    """The outside world :func:`run_checks` probes; the defaults are the real things."""

    pa_factory: PaFactory | None = None
    pin_factory: Any = None
    display_serial: object | None = None
    power_flags: Callable[[], int | None] | None = None
    now: Callable[[], datetime] = _utc_now
    timesync_flag: Path = TIMESYNC_FLAG
    listen_s: float = 1.0
    http_timeout_s: float = 5.0
    cloud_timeouts: Timeouts | None = None
    #: Upper bound on each check's run time (the last resort; each has shorter timeouts inside).
    limits_s: dict[str, float] = field(default_factory=dict)


_LIMITS_S: Final = {LEVEL: 30.0, CLOUD: 25.0}
_DEFAULT_LIMIT_S: Final = 15.0


def _bounded(name: str, run: Callable[[], Check], limit_s: float) -> Check:
    """``run()`` on a daemon thread; a failure line if it has not finished within ``limit_s``."""
    box: list[Check] = []
    worker = threading.Thread(target=lambda: box.append(run()), name=f"doctor {name}", daemon=True)
    worker.start()
    worker.join(limit_s)
    if box:
        return box[0]
    return _fail(name, f"no answer within {limit_s:g} s", "a driver or the network hangs; " + _STOP_SERVICE)


def run_checks(
    settings: Settings, probes: Probes | None = None, on_check: Callable[[Check], None] | None = None
) -> list[Check]:
    """Every check, in order, each reported to ``on_check`` as soon as it is done."""
    p = probes or Probes()
    plan: list[tuple[str, Callable[[], Check]]] = [
        (CLOCK, lambda: check_clock(p.now, p.timesync_flag)),
        (STORE, lambda: check_store(settings.store_path)),
        (DISK, lambda: check_disk(settings.data_dir)),
        (AUDIO, lambda: check_audio_interface(settings, p.pa_factory)),
        (LEVEL, lambda: check_input_level(settings, p.pa_factory, p.listen_s)),
        (DISPLAY, lambda: check_display(settings, p.display_serial)),
        (FOOTSWITCH, lambda: check_footswitch(settings, p.pin_factory)),
        (POWER, lambda: check_power(p.power_flags)),
        (CLOUD, lambda: check_cloud(settings, p.cloud_timeouts)),
        (LLM, lambda: check_llm(settings, p.http_timeout_s)),
        (OPIK, lambda: check_opik(settings, p.http_timeout_s)),
    ]
    done: list[Check] = []
    for name, run in plan:
        if name == LEVEL and not next(c for c in done if c.name == AUDIO).ok:
            # Listening would only fail again for the same reason: one line per cause.
            result = _skip(LEVEL, "no audio interface to listen to")
        else:
            result = _bounded(name, run, p.limits_s.get(name, _LIMITS_S.get(name, _DEFAULT_LIMIT_S)))
        done.append(result)
        if on_check is not None:
            on_check(result)
    return done


def summary(checks: Sequence[Check]) -> str:
    """The closing line: which required checks failed, or that all passed."""
    failed = [c.name for c in checks if c.status == "FAIL"]
    warned = [c.name for c in checks if c.status == "warn"]
    tail = f" ({len(warned)} warning{'s' if len(warned) != 1 else ''}: {', '.join(warned)})" if warned else ""
    if failed:
        return (
            f"doctor: {len(failed)} required check{'s' if len(failed) != 1 else ''} failed: {', '.join(failed)}{tail}"
        )
    return f"doctor: ready to play{tail}"


def report(checks: Sequence[Check]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {"ok": not any(c.status == "FAIL" for c in checks), "checks": [c.to_dict() for c in checks]}
