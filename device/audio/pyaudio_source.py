"""Live capture from the USB audio interface with PyAudio (PortAudio), surviving unplugs.

**The callback only copies.** PortAudio calls :meth:`PyAudioSource._callback` on its own thread
with interleaved frames; the callback views them with ``np.frombuffer`` (no copy), keeps the
wanted column(s) and converts them straight into the preallocated ring (int16 is scaled to ±1 in
the same pass). No lock, no sample allocation, no logging, no waiting: a slow reader only makes
the ring drop its *oldest* frames (see :mod:`device.audio.ring_buffer` for why oldest). PortAudio's
own input-overflow flag (the driver lost audio before we saw it) is counted in ``overflows`` too.

**Device.** ``device`` is an index (an int, or a string of digits as the config gives it), a
case-insensitive substring of the PortAudio device name (``"scarlett"`` finds "Scarlett Solo USB:
Audio (hw:1,0)"; an exact name wins, then the lowest index), or None for the default input.

**Channel.** A number picks that input (a Scarlett Solo's instrument input is channel 2 of 2): the
stream opens that many channels and the callback keeps only that column. ``"mix"`` averages every
input (up to :data:`MAX_CHANNELS`). ``"auto"`` captures them all and decides on the reading thread
with :class:`LiveChannelChooser`: it starts as "mix" (which loses nothing) and switches to the
channel :func:`~device.audio.file_reader.choose_channel` names once that answer has held for a
second of playing above a noise floor; silence never changes the choice.

**Rate and format.** The device's default rate if it is 48 or 44.1 kHz, else 48 kHz, else 44.1 kHz,
each checked with ``is_format_supported``; float32 where the device takes it (PortAudio converts a
24-bit interface's samples to float without losing bits), else int16. Anything else fails with a
one-line message. After an unplug the stream reopens at the same rate and channel count, because
the reader's note tracker was built for them.

**Unplug.** The reading thread checks the stream on every ``read``: stream no longer active, a
callback error, or no callback for ``stall_timeout_s`` all mean the device is gone. The stream is
closed, PortAudio terminated (on Linux it only rescans devices when re-initialised, so each retry
builds a new PyAudio from ``pa_factory``), ``state`` becomes "no-device" (or "error") with a
message for the screen, and opening is retried every ``retry_interval_s`` on ``clock``. The first
block after a reconnect has ``gap`` set.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from device.audio.file_reader import ChannelSpec, choose_channel
from device.audio.ring_buffer import RingBuffer
from device.audio.source import (
    DEFAULT_BLOCK_FRAMES,
    DEFAULT_CAPACITY_S,
    RingSource,
    SourceKind,
    SourceState,
    SourceStatus,
)
from device.errors import AudioDeviceError, ConfigError

__all__ = [
    "MAX_CHANNELS",
    "PREFERRED_RATES",
    "InputDevice",
    "LiveChannelChooser",
    "PaFactory",
    "PyAudioSource",
    "list_input_devices",
]

# PortAudio's ABI constants (portaudio.h), fixed since v19; spelled out so that a fake PyAudio in
# the tests does not need the real module. The tests check them against pyaudio's.
PA_FLOAT32: Final = 0x00000001
PA_INT16: Final = 0x00000008
PA_INPUT_OVERFLOW: Final = 0x00000002
PA_CONTINUE: Final = 0

PREFERRED_RATES: Final = (48_000, 44_100)
# "mix"/"auto" consider at most this many inputs (an 18-input interface's silent inputs would only
# dilute the guitar and cost callback time).
MAX_CHANNELS: Final = 8
_INT16_SCALE: Final = 1.0 / 32768.0
# How often a read that is waiting checks the stream's health and the retry timer.
_POLL_S: Final = 0.25

Samples: TypeAlias = npt.NDArray[np.float32]


class PaStream(Protocol):
    """The part of ``pyaudio.PyAudio.Stream`` used here."""

    def start_stream(self) -> None: ...
    def stop_stream(self) -> None: ...
    def close(self) -> None: ...
    def is_active(self) -> bool: ...


class PyAudioLike(Protocol):
    """The part of ``pyaudio.PyAudio`` used here (a fake implements just this)."""

    def get_device_count(self) -> int: ...
    def get_device_info_by_index(self, device_index: int) -> dict[str, Any]: ...
    def get_default_input_device_info(self) -> dict[str, Any]: ...
    def is_format_supported(self, rate: float, **kwargs: Any) -> bool: ...
    def open(self, **kwargs: Any) -> Any: ...
    def terminate(self) -> None: ...


PaFactory: TypeAlias = Callable[[], PyAudioLike]


@dataclass(frozen=True, slots=True)
class InputDevice:
    """An input PortAudio lists: its index, name, input channels and default rate."""

    index: int
    name: str
    channels: int
    default_rate: int


class _Unavailable(Exception):
    """Opening failed; ``state`` is what the source reports meanwhile."""

    def __init__(self, state: SourceState, message: str) -> None:
        super().__init__(message)
        self.state: SourceState = state
        self.message = message


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(exc: BaseException) -> str:
    # pyaudio raises OSError(-9996, 'Invalid input device ...'): keep both parts, on one line.
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return _one_line(f"{args[1]} [{args[0]}]")
    return _one_line(exc) or type(exc).__name__


def _default_factory() -> PyAudioLike:
    import pyaudio

    # PortAudio's init probes every ALSA and JACK backend and prints ~60 lines of complaints to
    # stderr; an unplugged pedal retries every few seconds, which would flood the journal. Point
    # fd 2 at /dev/null for the init only (our own errors are raised, not printed, meanwhile).
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        pa: PyAudioLike = pyaudio.PyAudio()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return pa


def _device_error(message: str) -> AudioDeviceError:
    # The one place a device failure becomes an exception (start(require_device=True)).
    return AudioDeviceError(message)


def _inputs(pa: PyAudioLike) -> list[InputDevice]:
    found = []
    for i in range(int(pa.get_device_count())):
        try:
            info = pa.get_device_info_by_index(i)
        except (OSError, ValueError):
            continue  # a device that vanished between count and lookup
        device = _as_input(info, i)
        if device is not None:
            found.append(device)
    return found


def _as_input(info: dict[str, Any], index: int) -> InputDevice | None:
    channels = int(info.get("maxInputChannels", 0) or 0)
    if channels < 1:
        return None
    name = info.get("name", "")
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    rate = float(info.get("defaultSampleRate", 0.0) or 0.0)
    return InputDevice(int(info.get("index", index)), _one_line(name), channels, round(rate))


def list_input_devices(pa_factory: PaFactory | None = None) -> list[InputDevice]:
    """Every input PortAudio sees now (for ``fretcoach doctor`` and error messages)."""
    pa = (pa_factory or _default_factory)()
    try:
        return _inputs(pa)
    finally:
        pa.terminate()


def _describe(inputs: Sequence[InputDevice]) -> str:
    if not inputs:
        return "no inputs found"
    shown = ", ".join(f"{d.index} {d.name!r}" for d in inputs[:4])
    return f"inputs: {shown}" + (", ..." if len(inputs) > 4 else "")


def _find(pa: PyAudioLike, device: str | int | None) -> InputDevice:
    """The input ``device`` names, or :class:`_Unavailable` ("no-device") saying what is there."""
    inputs = _inputs(pa)
    if device is None:
        try:
            default = _as_input(pa.get_default_input_device_info(), -1)
        except (OSError, ValueError):
            default = None  # PortAudio raises when there is no default input
        if default is not None:
            return default
        if inputs:
            return inputs[0]
        raise _Unavailable("no-device", "no audio input found: plug in your audio interface")
    if isinstance(device, int):
        for d in inputs:
            if d.index == device:
                return d
        raise _Unavailable(
            "no-device", f"no audio input at index {device}: plug in your audio interface ({_describe(inputs)})"
        )
    wanted = device.casefold()
    exact = [d for d in inputs if d.name.casefold() == wanted]
    partial = [d for d in inputs if wanted in d.name.casefold()]
    if exact or partial:
        return (exact or partial)[0]
    raise _Unavailable(
        "no-device", f"no audio input matching {device!r}: plug in your audio interface ({_describe(inputs)})"
    )


def _supported(pa: PyAudioLike, rate: int, index: int, channels: int, fmt: int) -> bool:
    try:
        return bool(pa.is_format_supported(rate, input_device=index, input_channels=channels, input_format=fmt))
    except (OSError, ValueError):  # pyaudio raises ValueError("Invalid sample rate", ...) for no
        return False


def _negotiate(pa: PyAudioLike, dev: InputDevice, channels: int, required: int | None) -> tuple[int, int]:
    """(rate, PortAudio format) to open ``dev`` with; see the module docstring for the order."""
    if required is not None:
        rates: list[int] = [required]
    else:
        rates = [dev.default_rate] if dev.default_rate in PREFERRED_RATES else []
        rates += [r for r in PREFERRED_RATES if r not in rates]
    for rate in rates:
        for fmt in (PA_FLOAT32, PA_INT16):
            if _supported(pa, rate, dev.index, channels, fmt):
                return rate, fmt
    ch = f"{channels} channel" + ("s" if channels != 1 else "")
    if required is not None:
        raise _Unavailable("error", f"{dev.name!r} no longer captures {ch} at {required} Hz: restart the pedal")
    raise _Unavailable(
        "error",
        f"{dev.name!r} cannot capture {ch} at 48000 or 44100 Hz (its default is {dev.default_rate} Hz)",
    )


def _select(frames: npt.NDArray[np.float32], choice: int | Literal["mix"]) -> Samples:
    if frames.shape[1] == 1:
        return frames.reshape(-1)
    if choice == "mix":
        mixed: Samples = frames.mean(axis=1, dtype=np.float32)
        return mixed
    return np.ascontiguousarray(frames[:, choice - 1])


class LiveChannelChooser:
    """``"auto"`` for a live multi-channel input: which channel carries the guitar, decided as it plays.

    Keeps each channel's mean square, decaying with a ``window_s`` time constant. While the
    loudest channel is above ``floor_dbfs`` RMS, :func:`choose_channel` (one channel at least
    :data:`GUITAR_DOMINANCE_DB` above the rest → that channel, else "mix") proposes a choice; a
    proposal replaces the current one only after it has held for ``hold_s`` of such audio, so a
    single loud pick on the mic channel or a pause cannot make it flap. It starts as "mix".
    """

    def __init__(
        self,
        channels: int,
        sample_rate: int,
        *,
        window_s: float = 0.5,
        hold_s: float = 1.0,
        floor_dbfs: float = -55.0,
    ) -> None:
        self.channels = channels
        self.choice: int | Literal["mix"] = 1 if channels == 1 else "mix"
        self._tau = window_s * sample_rate
        self._hold = hold_s * sample_rate
        self._floor_ms = 10.0 ** (floor_dbfs / 10.0)
        self._ms = np.zeros(channels, np.float64)
        self._pending: int | Literal["mix"] | None = None
        self._pending_frames = 0

    def __call__(self, frames: npt.NDArray[np.float32]) -> Samples:
        """Update the choice with ``frames`` (``(n, channels)``) and return them reduced to it."""
        n = len(frames)
        if n and self.channels > 1:
            self._update(frames, n)
        return _select(frames, self.choice)

    def _update(self, frames: npt.NDArray[np.float32], n: int) -> None:
        block_ms = np.array([float(np.dot(frames[:, k], frames[:, k])) / n for k in range(self.channels)])
        if not np.all(np.isfinite(block_ms)):
            return
        keep = math.exp(-n / self._tau)
        self._ms = self._ms * keep + block_ms * (1.0 - keep)
        if float(self._ms.max()) < self._floor_ms:
            return  # silence (or just noise): nothing to learn from
        proposal = choose_channel([math.sqrt(float(v)) for v in self._ms])
        if proposal == self.choice:
            self._pending, self._pending_frames = None, 0
            return
        if proposal != self._pending:
            self._pending, self._pending_frames = proposal, 0
        self._pending_frames += n
        if self._pending_frames >= self._hold:
            self.choice = proposal
            self._pending, self._pending_frames = None, 0


class PyAudioSource(RingSource):
    """The USB interface through PyAudio; see the module docstring for every policy.

    ``pa_factory`` builds a ``pyaudio.PyAudio`` (the default) or a stand-in; ``clock`` times the
    retries, the stall watchdog and the blocks' timestamps.
    """

    kind: SourceKind = "pyaudio"

    def __init__(
        self,
        device: str | int | None = None,
        channel: ChannelSpec = "auto",
        *,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        capacity_s: float = DEFAULT_CAPACITY_S,
        retry_interval_s: float = 2.0,
        stall_timeout_s: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
        pa_factory: PaFactory | None = None,
    ) -> None:
        super().__init__()
        if isinstance(device, str):
            device = device.strip()
            # The config gives strings: all digits means an index (no interface is named "2").
            device = int(device) if device.isdigit() else (device or None)
        if isinstance(device, bool) or (isinstance(device, int) and device < 0):
            raise ConfigError(f"audio device must be a name or an index from 0, got {device!r}")
        numbered = isinstance(channel, int) and not isinstance(channel, bool) and channel >= 1
        if not (numbered or channel in ("auto", "mix")):
            raise ConfigError(f"channel must be 'auto', 'mix' or a channel number from 1, got {channel!r}")
        if isinstance(block_frames, bool) or not isinstance(block_frames, int) or block_frames < 16:
            raise ConfigError(f"block_frames must be an integer of at least 16, got {block_frames!r}")
        if not capacity_s > 0 or not retry_interval_s > 0 or (stall_timeout_s is not None and not stall_timeout_s > 0):
            raise ConfigError("capacity_s, retry_interval_s and stall_timeout_s must be positive")
        self.device = device
        self.channel_spec: ChannelSpec = channel
        self.block_frames = block_frames
        self.capacity_s = float(capacity_s)
        self.retry_interval_s = float(retry_interval_s)
        self.stall_timeout_s = stall_timeout_s
        self._clock = clock
        self._factory: PaFactory = pa_factory or _default_factory
        self._pa: PyAudioLike | None = None
        self._stream: Any = None
        self._device_name: str | None = None
        self._format: int | None = None
        self._chooser: LiveChannelChooser | None = None
        self._next_retry = -math.inf
        self._opens = 0
        # Written by the callback only.
        self._callbacks = 0
        self._callback_error: str | None = None
        # Read by the reading thread's watchdog.
        self._seen_callbacks = 0
        self._seen_at = 0.0

    # --- what the app and the UI see ----------------------------------------------------------

    @property
    def device_name(self) -> str | None:
        """PortAudio's name for the device in use (or last used)."""
        return self._device_name

    @property
    def sample_format(self) -> Literal["float32", "int16"] | None:
        """The format PortAudio delivers, once open."""
        if self._format is None:
            return None
        return "float32" if self._format == PA_FLOAT32 else "int16"

    @property
    def channel(self) -> int | Literal["mix"] | None:
        if self.channel_spec != "auto":
            return self.channel_spec
        if self._chooser is not None:
            return self._chooser.choice
        return 1 if self._ring is not None else None  # a one-input device: nothing to choose

    @property
    def opens(self) -> int:
        """Streams opened so far (1 + reconnects)."""
        return self._opens

    def start(self, *, require_device: bool = False) -> None:
        """Open the device and start capturing.

        A missing device is not an error by default: ``state`` says "no-device" and ``read``
        retries. With ``require_device`` a failed first open closes the source and raises
        :class:`~device.errors.AudioError` with a one-line message (for the CLI and ``doctor``).
        """
        super().start()
        if require_device and self._stream is None:
            message = self._status.message
            self.close()
            raise _device_error(message)

    # --- RingSource hooks -----------------------------------------------------------------------

    def _start(self) -> None:
        self._open_or_schedule(self._clock())

    def _stop(self) -> None:
        self._teardown(graceful=True)

    def _poll_interval(self) -> float | None:
        return min(_POLL_S, self.retry_interval_s)

    def _reduce(self, frames: npt.NDArray[np.float32]) -> Samples:
        if self._chooser is not None:
            return self._chooser(frames)
        return _select(frames, "mix" if self.channel_spec == "mix" else 1)

    def _poll(self) -> None:
        if not self._started or self._closed or not self._control.acquire(blocking=False):
            return  # a start/close in progress on another thread decides the state
        try:
            if self._closed:
                return
            now = self._clock()
            if self._stream is not None:
                lost = self._health(now)
                if lost is None:
                    return
                # Tell the UI first: closing a dead device can take a moment.
                self._status = SourceStatus(lost[0], lost[1])
                self._teardown(graceful=False)
                self._next_retry = -math.inf  # try once at once: it may be a glitch, not an unplug
            if now >= self._next_retry:
                self._open_or_schedule(now)
        finally:
            self._control.release()

    # --- opening and closing -------------------------------------------------------------------

    def _health(self, now: float) -> tuple[SourceState, str] | None:
        name = self._device_name
        if self._callback_error is not None:
            return "error", f"capture from {name!r} failed ({self._callback_error}): reopening"
        try:
            active = bool(self._stream.is_active())
        except Exception:  # pyaudio raises OSError once the device is gone; a fake may differ
            active = False
        if not active:
            return "no-device", f"audio interface {name!r} stopped (unplugged?): plug it back in"
        count = self._callbacks
        if count != self._seen_callbacks:
            self._seen_callbacks, self._seen_at = count, now
        elif self.stall_timeout_s is not None and now - self._seen_at >= self.stall_timeout_s:
            return "no-device", (
                f"no audio from {name!r} for {now - self._seen_at:.1f} s (unplugged?): plug it back in"
            )
        return None

    def _open_or_schedule(self, now: float) -> None:
        try:
            self._open(now)
        except _Unavailable as exc:
            self._status = SourceStatus(exc.state, exc.message)
            self._next_retry = now + self.retry_interval_s
            self._teardown(graceful=False)

    def _open(self, now: float) -> None:
        try:
            self._pa = self._factory()
        except Exception as exc:  # PortAudio's init failing is a state, not a crash
            raise _Unavailable("error", f"cannot start PortAudio: {_reason(exc)}") from exc
        pa = self._pa
        dev = _find(pa, self.device)
        ring = self._ring
        spec = self.channel_spec
        if isinstance(spec, int):
            if dev.channels < spec:
                have = f"{dev.channels} input channel" + ("s" if dev.channels != 1 else "")
                raise _Unavailable("error", f"{dev.name!r} has {have}; channel {spec} asked for")
            stream_channels, keep = spec, slice(spec - 1, spec)
        else:
            # The ring's width is fixed by the first open; a reconnect must match it.
            stream_channels = ring.channels if ring is not None else min(dev.channels, MAX_CHANNELS)
            if dev.channels < stream_channels:
                raise _Unavailable(
                    "error", f"{dev.name!r} has {dev.channels} inputs, {stream_channels} expected: restart the pedal"
                )
            keep = slice(0, stream_channels)
        rate, fmt = _negotiate(pa, dev, stream_channels, self._rate)
        if ring is None:
            ring_channels = 1 if isinstance(spec, int) else stream_channels
            capacity = max(int(self.capacity_s * rate), 4 * self.block_frames)
            ring = RingBuffer(capacity, ring_channels)
            self._ring, self._rate = ring, rate
            if spec == "auto" and ring_channels > 1:
                self._chooser = LiveChannelChooser(ring_channels, rate)
            self._wake.set()  # a reader waiting for a ring may read now
        self._mark_splice()
        self._callbacks = self._seen_callbacks = 0
        self._callback_error = None
        self._seen_at = now
        callback = self._make_callback(ring, fmt, stream_channels, keep)
        try:
            self._stream = pa.open(
                format=fmt,
                channels=stream_channels,
                rate=rate,
                input=True,
                input_device_index=dev.index,
                frames_per_buffer=self.block_frames,
                stream_callback=callback,
                start=False,
            )
            self._stream.start_stream()
        except Exception as exc:  # OSError from PortAudio ("Device unavailable" and the like)
            raise _Unavailable("error", f"cannot open {dev.name!r}: {_reason(exc)}") from exc
        try:
            self._latency_s = max(0.0, float(self._stream.get_input_latency()))
        except Exception:
            self._latency_s = 0.0  # unknown: block times are then late by the driver's buffering
        self._device_name, self._format = dev.name, fmt
        self._opens += 1
        ch = "mix" if spec == "mix" else ("auto" if spec == "auto" else spec)
        self._status = SourceStatus("running", f"{dev.name} · {rate} Hz · {self.sample_format} · channel {ch}")

    def _teardown(self, *, graceful: bool) -> None:
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        if stream is not None:
            try:
                if graceful:
                    stream.stop_stream()
            except Exception:
                pass  # the device may already be gone; close() still releases PortAudio's side
            with contextlib.suppress(Exception):
                stream.close()  # Pa_CloseStream aborts a stream that is still running
        if pa is not None:
            with contextlib.suppress(Exception):
                pa.terminate()

    def _make_callback(
        self, ring: RingBuffer, fmt: int, channels: int, keep: slice
    ) -> Callable[[bytes | None, int, Any, int], tuple[None, int]]:
        # Everything the callback needs is bound here, so it does no lookups it can avoid and a
        # later reopen cannot change what an old stream's callback writes.
        dtype = np.dtype(np.float32) if fmt == PA_FLOAT32 else np.dtype(np.int16)
        scale = 1.0 if fmt == PA_FLOAT32 else _INT16_SCALE
        clock = self._clock
        frombuffer = np.frombuffer
        write = ring.write

        def callback(in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
            t = clock()
            try:
                if status & PA_INPUT_OVERFLOW:
                    self._extra_overflows += 1
                if in_data:
                    write(frombuffer(in_data, dtype).reshape(-1, channels)[:, keep], scale, t)
            except Exception as exc:  # never let PortAudio abort the stream with a traceback
                if self._callback_error is None:
                    self._callback_error = _one_line(f"{type(exc).__name__}: {exc}")
            self._callbacks += 1
            return None, PA_CONTINUE

        return callback
