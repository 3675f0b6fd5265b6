"""The display seam: the UI hands over 128×64 mono frames; a backend puts them somewhere.

The UI renders a state to a PIL image (mode ``"1"``, 128×64) and calls :meth:`Display.show`;
everything about *where* the frame goes lives behind this seam, chosen once by
:func:`open_display` from the ``display`` setting:

``ssd1306`` / ``sh1106``
    the real panel through luma.oled, over I2C (default: port 1, address 0x3C) or SPI.
``dummy``
    luma.core's ``dummy`` device: keeps the last frame in memory (tests, benchmarks).
``terminal``
    a live preview drawn with Unicode half blocks (:mod:`hardware.terminal_display`).
``capture`` / ``gif``
    recordings: numbered PNG frames, or one animated GIF (:mod:`hardware.recording_display`).

Every backend shows a frame only when it differs from the last one sent: a full SSD1306
frame is 1024 bytes, about 23 ms on a 400 kHz I2C bus, so an unchanged redraw is pure waste.
``frames_sent`` counts the frames that actually went out, and an optional
``on_frame(t, image)`` hook, stamped with an injectable clock right after the backend
finished, lets a benchmark measure note-to-screen latency.

Frames that are not mode ``"1"`` are converted with a fixed 50 % threshold (never dithered,
so anti-aliased text turns into the same pixels everywhere and golden images stay stable);
transparent pixels count as black. Frames of any other size than 128×64 are rejected with a
``ValueError``: resizing would silently hide a renderer bug.

``show`` is meant to be called from one thread (the UI thread); nothing here is locked.
"""

from __future__ import annotations

import re
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from os import PathLike
from types import TracebackType
from typing import Any, Final, Literal, Self, TextIO

from PIL import Image

from device.errors import ConfigError, DisplayError

__all__ = [
    "DISPLAY_KINDS",
    "HEIGHT",
    "WIDTH",
    "Display",
    "FrameHook",
    "LumaDisplay",
    "open_display",
]

WIDTH: Final = 128
HEIGHT: Final = 64

#: Every value of the ``display`` setting (``device.config.DisplayKind``), in one place here
#: so the hardware package does not import the config model; a test keeps the two in step.
DISPLAY_KINDS: Final = ("ssd1306", "sh1106", "terminal", "capture", "gif", "dummy")

#: ``on_frame(t, image)``: called after a changed frame was sent; ``t`` comes from the clock.
FrameHook = Callable[[float, Image.Image], None]

# "L" → "1" lookup table: a plain 50 % threshold, deliberately not Pillow's default dither.
_THRESHOLD: Final = [0] * 128 + [255] * 128

# luma's own bus speed check is an ``assert``; we check first to raise a ConfigError instead.
_SPI_SPEEDS_HZ: Final = frozenset(
    int(mhz * 1_000_000) for mhz in (0.5, 1, 2, 4, 8, 16, 20, 24, 28, 32, 36, 40, 44, 48, 50, 52)
)


class Display(ABC):
    """Where frames go. Subclasses implement :meth:`_send` (and :meth:`_close` if they hold anything).

    ``frames_sent`` counts frames that differed from the previous one and were handed to the
    backend; ``last_image`` is a private copy of the last such frame (``None`` before the first).
    """

    kind: str = "abstract"

    def __init__(self, *, on_frame: FrameHook | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames_sent = 0
        self.last_image: Image.Image | None = None
        self._last_bytes: bytes | None = None
        self._on_frame = on_frame
        self._clock = clock
        self._closed = False

    @property
    def size(self) -> tuple[int, int]:
        """The frame size every :meth:`show` expects: ``(128, 64)``."""
        return (WIDTH, HEIGHT)

    @property
    def closed(self) -> bool:
        return self._closed

    def show(self, image: Image.Image) -> None:
        """Send ``image`` to the backend unless it is pixel-for-pixel the frame last sent.

        Raises ``ValueError`` if the image is not 128×64 or the display is closed; a backend
        that fails raises a :class:`~device.errors.DisplayError` and the frame is retried
        on the next call (it is not recorded as sent).
        """
        if self._closed:
            raise ValueError(f"{self.kind} display is closed")
        frame = _as_frame(image)
        # tobytes() of a 128×64 mode-"1" image is the packed 1024-byte frame: the cheapest
        # exact comparison there is.
        data = frame.tobytes()
        if data == self._last_bytes:
            return
        if frame is image:
            # Our own copy, because renderers may keep drawing on the image they handed over;
            # taken only now, so an unchanged frame costs no copy at all.
            frame = image.copy()
        self._send(frame)
        self._last_bytes = data
        self.last_image = frame
        self.frames_sent += 1
        if self._on_frame is not None:
            # Stamped after _send returned, so a latency benchmark includes the bus transfer.
            self._on_frame(self._clock(), frame)

    def close(self) -> None:
        """Release the backend (idempotent). Further :meth:`show` calls raise ``ValueError``."""
        if self._closed:
            return
        # Marked first: a backend whose release failed half-way must not be driven again.
        self._closed = True
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def _send(self, frame: Image.Image) -> None:
        """Put one changed frame (mode "1", 128×64, owned by the display) on the backend."""

    def _close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release what the backend holds."""


def _as_frame(image: Image.Image) -> Image.Image:
    """``image`` itself if it is mode "1", else a thresholded (never dithered) mode-"1" version."""
    if image.size != (WIDTH, HEIGHT):
        w, h = image.size
        raise ValueError(f"display frames are {WIDTH}×{HEIGHT} pixels, got {w}×{h}")
    if image.mode == "1":
        return image
    if "A" in image.getbands() or "transparency" in image.info:
        # Transparent means "nothing drawn here", which on an OLED is black.
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        background.alpha_composite(image.convert("RGBA"))
        image = background
    return image.convert("L").point(_THRESHOLD, "1")


@contextmanager
def _luma_getdata_deprecation_ignored() -> Iterator[None]:
    """Silence exactly one known warning from luma.oled 3.16 under Pillow 13.

    ``ssd1306.display`` and ``sh1106.display`` call ``Image.getdata()``, which Pillow 13
    deprecates (removed in Pillow 14, hence ``Pillow<14`` in pyproject). The filter matches
    that message, category and luma's module only; every other warning still goes through.
    ``catch_warnings`` swaps the process-wide filter list, so this must stay around luma calls
    only (the UI thread's, a few milliseconds long).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Image\.Image\.getdata is deprecated",
            category=DeprecationWarning,
            module=r"luma\.",
        )
        yield


class LumaDisplay(Display):
    """A luma device (``ssd1306``, ``sh1106`` or ``dummy``) behind the seam.

    ``device`` is the luma object itself: the ``dummy`` keeps the last frame, as the panel
    holds it (rotation applied), in ``device.image``. Closing blanks and powers down a real
    panel (luma's ``cleanup``), which keeps a stopped pedal from burning in its last screen.
    """

    def __init__(
        self,
        device: Any,
        kind: str,
        *,
        on_frame: FrameHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(on_frame=on_frame, clock=clock)
        self.device = device
        self.kind = kind

    def _send(self, frame: Image.Image) -> None:
        with _luma_errors_translated(self.kind, "lost"), _luma_getdata_deprecation_ignored():
            self.device.display(frame)

    def _close(self) -> None:
        try:
            with _luma_errors_translated(self.kind, "could not be switched off"), _luma_getdata_deprecation_ignored():
                self.device.cleanup()
        finally:
            # luma registers an atexit hook that runs cleanup() again; with persist set it only
            # closes the (already closed) bus instead of driving a released panel.
            self.device.persist = True


@contextmanager
def _luma_errors_translated(kind: str, what: str) -> Iterator[None]:
    """Turn luma and OS errors raised while driving an open panel into one-line DisplayErrors."""
    import luma.core.error

    try:
        yield
    except (luma.core.error.Error, OSError) as exc:
        raise DisplayError(_one_line(f"{kind} display {what}: {exc}")) from exc


def _one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


def open_display(
    kind: str,
    *,
    interface: Literal["i2c", "spi"] = "i2c",
    i2c_port: int = 1,
    i2c_address: int = 0x3C,
    spi_port: int = 0,
    spi_device: int = 0,
    spi_bus_speed_hz: int = 8_000_000,
    gpio_dc: int = 24,
    gpio_rst: int = 25,
    rotate: int = 0,
    serial: object | None = None,
    out_path: str | PathLike[str] | None = None,
    stream: TextIO | None = None,
    max_frames: int | None = None,
    on_frame: FrameHook | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Display:
    """Open the display the ``display`` setting names.

    ``interface``, ``i2c_*``, ``spi_*``, ``gpio_*`` and ``rotate`` apply to the panels;
    ``serial`` injects a luma serial interface instead of opening a bus (tests, odd wiring).
    ``rotate`` is 0 or 2 (180°, a panel mounted upside down): the screens are drawn in
    landscape only, and it applies to the luma devices, not to previews or recordings.
    ``out_path`` is the directory for ``capture`` and the file for ``gif``; ``max_frames``
    caps a GIF recording; ``stream`` is where ``terminal`` draws (default ``sys.stdout``).

    Raises :class:`~device.errors.ConfigError` for a bad kind or parameter and
    :class:`~device.errors.DisplayError` (one line) when the panel cannot be opened.
    """
    if kind not in DISPLAY_KINDS:
        raise ConfigError(f"unknown display {kind!r}; expected one of: {', '.join(DISPLAY_KINDS)}")
    if rotate not in (0, 2):
        raise ConfigError(f"display rotate must be 0 or 2 (180°), got {rotate!r}: the screens are landscape")
    common: dict[str, Any] = {"on_frame": on_frame, "clock": clock}

    if kind in ("ssd1306", "sh1106"):
        return _open_panel(
            kind,
            interface=interface,
            i2c_port=i2c_port,
            i2c_address=i2c_address,
            spi_port=spi_port,
            spi_device=spi_device,
            spi_bus_speed_hz=spi_bus_speed_hz,
            gpio_dc=gpio_dc,
            gpio_rst=gpio_rst,
            rotate=rotate,
            serial=serial,
            **common,
        )
    if kind == "dummy":
        from luma.core.device import dummy

        return LumaDisplay(dummy(width=WIDTH, height=HEIGHT, rotate=rotate, mode="1"), "dummy", **common)
    if kind == "terminal":
        from hardware.terminal_display import TerminalDisplay

        return TerminalDisplay(stream, **common)

    # Recordings: imported here so a pedal that never records never imports them.
    from hardware.recording_display import DEFAULT_MAX_GIF_FRAMES, CaptureDisplay, GifDisplay

    if out_path is None:
        what = "a directory for the PNG frames" if kind == "capture" else "a file for the GIF"
        raise ConfigError(f"display {kind!r} needs out_path ({what})")
    if kind == "capture":
        return CaptureDisplay(out_path, **common)
    return GifDisplay(out_path, max_frames=DEFAULT_MAX_GIF_FRAMES if max_frames is None else max_frames, **common)


def _open_panel(
    kind: str,
    *,
    interface: str,
    i2c_port: int,
    i2c_address: int,
    spi_port: int,
    spi_device: int,
    spi_bus_speed_hz: int,
    gpio_dc: int,
    gpio_rst: int,
    rotate: int,
    serial: object | None,
    on_frame: FrameHook | None,
    clock: Callable[[], float],
) -> LumaDisplay:
    """Open an SSD1306/SH1106 through luma; every failure becomes one line from our error tree."""
    if interface == "i2c":
        # 7-bit addresses outside 0x03–0x77 are reserved; luma would only fail on the bus.
        if not 0x03 <= i2c_address <= 0x77:
            raise ConfigError(f"display I2C address must be within 0x03–0x77, got {i2c_address:#04x}")
        where = f"I2C port {i2c_port} (/dev/i2c-{i2c_port}) at {i2c_address:#04x}"
    elif interface == "spi":
        if spi_bus_speed_hz not in _SPI_SPEEDS_HZ:
            speeds = ", ".join(f"{s / 1e6:g}" for s in sorted(_SPI_SPEEDS_HZ))
            raise ConfigError(f"display SPI bus speed must be one of {speeds} MHz, got {spi_bus_speed_hz} Hz")
        where = f"SPI {spi_port}.{spi_device} (/dev/spidev{spi_port}.{spi_device})"
    else:
        raise ConfigError(f"display interface must be 'i2c' or 'spi', got {interface!r}")

    import luma.core.error
    from luma.core.interface.serial import i2c, spi
    from luma.oled.device import sh1106, ssd1306

    driver = ssd1306 if kind == "ssd1306" else sh1106
    opened_serial: Any = None
    try:
        if serial is None:
            if interface == "i2c":
                opened_serial = i2c(port=i2c_port, address=i2c_address)
            else:
                opened_serial = spi(
                    port=spi_port, device=spi_device, bus_speed_hz=spi_bus_speed_hz, gpio_DC=gpio_dc, gpio_RST=gpio_rst
                )
        # The constructor already sends the init sequence and a blank frame: a missing panel
        # on a present bus fails here (EREMOTEIO, which luma reports as DeviceNotFoundError).
        with _luma_getdata_deprecation_ignored():
            device = driver(serial if serial is not None else opened_serial, width=WIDTH, height=HEIGHT, rotate=rotate)
    except BaseException as exc:
        if opened_serial is not None:
            # Do not leak the bus file descriptor of a panel that never came up.
            _cleanup_quietly(opened_serial)
        _raise_open_error(kind, where, interface, exc, luma.core.error)
        raise  # not an error we translate (KeyboardInterrupt, a bug): let it through unchanged
    return LumaDisplay(device, kind, on_frame=on_frame, clock=clock)


def _raise_open_error(kind: str, where: str, interface: str, exc: BaseException, errors: Any) -> None:
    """Raise the one-line error for a failed panel open, or return if ``exc`` is not ours to translate."""
    prefix = f"{kind} display on {where}"
    bus = "I2C" if interface == "i2c" else "SPI"
    if isinstance(exc, errors.DevicePermissionError | PermissionError):
        raise DisplayError(
            _one_line(f"{prefix}: permission denied ({exc}); add the user to the {interface} and gpio groups")
        ) from exc
    if isinstance(exc, errors.DeviceNotFoundError):
        raise DisplayError(
            _one_line(f"{kind} display not found on {where} ({exc}); enable {bus} in raspi-config, check the wiring")
        ) from exc
    if isinstance(exc, errors.DeviceAddressError | errors.DeviceDisplayModeError):
        raise ConfigError(_one_line(f"{prefix}: {exc}")) from exc
    if isinstance(exc, errors.UnsupportedPlatform):
        raise DisplayError(_one_line(f"{prefix}: {exc} (GPIO is needed for the D/C and reset pins)")) from exc
    if isinstance(exc, errors.Error):
        raise DisplayError(_one_line(f"{prefix}: {exc}")) from exc
    if isinstance(exc, ImportError):
        # luma imports spidev and RPi.GPIO lazily, only for SPI.
        raise DisplayError(_one_line(f"{prefix}: {exc} (SPI needs the spidev and RPi.GPIO packages)")) from exc
    if isinstance(exc, OSError):
        raise DisplayError(_one_line(f"{prefix}: {exc.strerror or exc}")) from exc


def _cleanup_quietly(serial: Any) -> None:
    # Already failing: the original error is the one to report, not a second one from cleanup.
    with suppress(Exception):
        serial.cleanup()
