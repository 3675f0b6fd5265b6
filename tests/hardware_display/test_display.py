"""The display seam, its factory, the luma backends and the recordings (all without hardware)."""

from __future__ import annotations

import errno
import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar, get_args

import luma.core.error
import pytest
import smbus2
from PIL import Image

from device.config import DisplayKind
from device.errors import ConfigError, DisplayError
from hardware.display import (
    DISPLAY_KINDS,
    Display,
    LumaDisplay,
    _luma_getdata_deprecation_ignored,
    open_display,
)
from hardware.recording_display import CaptureDisplay, GifDisplay, gif_durations_ms


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingSerial:
    """A luma serial interface that keeps what the driver sent (the real driver runs)."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, ...]] = []
        self.writes: list[bytes] = []
        self.cleaned_up = False

    def command(self, *cmd: int) -> None:
        self.commands.append(cmd)

    def data(self, data: list[int]) -> None:
        self.writes.append(bytes(data))

    def cleanup(self) -> None:
        self.cleaned_up = True


def frame(*pixels: tuple[int, int]) -> Image.Image:
    image = Image.new("1", (128, 64))
    for xy in pixels:
        image.putpixel(xy, 1)
    return image


def lit(image: Image.Image) -> set[tuple[int, int]]:
    return {(x, y) for y in range(image.height) for x in range(image.width) if image.getpixel((x, y))}


def absent_i2c_port() -> int:
    port = next(p for p in range(97, 256) if not Path(f"/dev/i2c-{p}").exists())
    return port


# --- the factory -------------------------------------------------------------------------


def test_display_kinds_are_exactly_the_settings_models_choices() -> None:
    assert get_args(DisplayKind) == DISPLAY_KINDS


def test_unknown_kind_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown display 'oled'.*ssd1306, sh1106, terminal, capture, gif, dummy"):
        open_display("oled")


@pytest.mark.parametrize("rotate", [1, 3, 4, -1])
def test_rotation_other_than_upside_down_is_a_config_error(rotate: int) -> None:
    with pytest.raises(ConfigError, match="rotate must be 0 or 2"):
        open_display("dummy", rotate=rotate)


@pytest.mark.parametrize("kind", ["capture", "gif"])
def test_recordings_need_an_output_path(kind: str) -> None:
    with pytest.raises(ConfigError, match="needs out_path"):
        open_display(kind)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"i2c_address": 0x80}, "I2C address must be within"),
        ({"i2c_address": 0x00}, "I2C address must be within"),
        ({"interface": "spi", "spi_bus_speed_hz": 3_000_000}, "SPI bus speed must be one of"),
        ({"interface": "parallel"}, "interface must be 'i2c' or 'spi'"),
    ],
)
def test_bad_panel_parameters_are_config_errors_before_any_bus_is_touched(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_display("ssd1306", **kwargs)


# --- the seam's contract, on the dummy ----------------------------------------------------


def test_dummy_keeps_the_last_frame_in_the_luma_device_and_in_last_image() -> None:
    with open_display("dummy") as display:
        assert isinstance(display, LumaDisplay)
        assert display.size == (128, 64)
        assert display.last_image is None
        display.show(frame((0, 0), (127, 63)))
        assert display.frames_sent == 1
        assert display.device.image.mode == "1"
        assert lit(display.device.image) == {(0, 0), (127, 63)}
        assert display.last_image is not None
        assert lit(display.last_image) == {(0, 0), (127, 63)}


def test_unchanged_frames_are_not_sent_again_even_as_new_image_objects() -> None:
    stamps: list[float] = []
    clock = FakeClock()
    display = open_display("dummy", on_frame=lambda t, _image: stamps.append(t), clock=clock)
    display.show(frame((3, 4)))
    clock.now = 1.0
    display.show(frame((3, 4)))  # equal pixels, different object
    display.show(frame((3, 4)).convert("L"))  # equal after conversion
    clock.now = 2.0
    display.show(frame((5, 6)))
    clock.now = 3.0
    display.show(frame((3, 4)))  # changed back: that is a change
    assert display.frames_sent == 3
    assert stamps == [0.0, 2.0, 3.0]


def test_drawing_on_the_shown_image_afterwards_does_not_alter_the_sent_frame() -> None:
    display = open_display("dummy")
    canvas = frame((1, 1))
    display.show(canvas)
    canvas.putpixel((2, 2), 1)
    assert display.last_image is not None
    assert lit(display.last_image) == {(1, 1)}
    assert lit(display.device.image) == {(1, 1)}
    display.show(canvas)  # the mutated canvas is a new frame
    assert display.frames_sent == 2


def test_non_mono_frames_are_thresholded_at_half_not_dithered() -> None:
    display = open_display("dummy")
    display.show(Image.new("L", (128, 64), 127))
    assert display.last_image is not None
    assert display.last_image.mode == "1"
    assert lit(display.last_image) == set()  # dithering would have lit about half of them
    display.show(Image.new("RGB", (128, 64), (128, 128, 128)))
    assert len(lit(display.last_image)) == 128 * 64


def test_transparent_pixels_count_as_black() -> None:
    display = open_display("dummy")
    image = Image.new("RGBA", (128, 64), (255, 255, 255, 0))
    image.putpixel((10, 20), (255, 255, 255, 255))
    display.show(image)
    assert display.last_image is not None
    assert lit(display.last_image) == {(10, 20)}


@pytest.mark.parametrize("size", [(64, 128), (128, 32), (256, 128)])
def test_frames_of_another_size_are_rejected_not_resized(size: tuple[int, int]) -> None:
    display = open_display("dummy")
    with pytest.raises(ValueError, match=r"128×64 pixels, got \d+×\d+"):
        display.show(Image.new("1", size))
    assert display.frames_sent == 0
    assert display.device.image is None


def test_show_after_close_raises_and_close_is_idempotent() -> None:
    display = open_display("dummy")
    display.close()
    display.close()
    assert display.closed
    with pytest.raises(ValueError, match="closed"):
        display.show(frame())


class _SlowBackend(Display):
    """A backend whose transfer takes 0.023 s of the fake clock and may fail once."""

    def __init__(self, clock: FakeClock, fail_first: bool = False, **kwargs: Any) -> None:
        super().__init__(clock=clock, **kwargs)
        self.fake_clock = clock
        self.fail_next = fail_first
        self.sent: list[bytes] = []

    def _send(self, frame: Image.Image) -> None:
        self.fake_clock.now += 0.023
        if self.fail_next:
            self.fail_next = False
            raise DisplayError("bus hiccup")
        self.sent.append(frame.tobytes())


def test_the_frame_stamp_is_taken_after_the_transfer_finished() -> None:
    stamps: list[tuple[float, set[tuple[int, int]]]] = []
    clock = FakeClock(10.0)
    backend = _SlowBackend(clock, on_frame=lambda t, image: stamps.append((t, lit(image))))
    backend.show(frame((7, 7)))
    assert stamps == [(pytest.approx(10.023), {(7, 7)})]


def test_a_frame_that_failed_to_send_is_sent_on_the_next_call() -> None:
    backend = _SlowBackend(FakeClock(), fail_first=True)
    with pytest.raises(DisplayError, match="bus hiccup"):
        backend.show(frame((1, 2)))
    assert backend.frames_sent == 0
    backend.show(frame((1, 2)))
    assert backend.frames_sent == 1
    assert len(backend.sent) == 1


def test_rotate_2_turns_the_panel_image_upside_down_but_not_the_logical_frame() -> None:
    display = open_display("dummy", rotate=2)
    display.show(frame((0, 0)))
    assert lit(display.device.image) == {(127, 63)}
    assert display.last_image is not None
    assert lit(display.last_image) == {(0, 0)}


# --- the real luma drivers, on a recording serial interface --------------------------------


def test_ssd1306_sends_one_1024_byte_frame_per_change_in_its_page_layout() -> None:
    serial = RecordingSerial()
    display = open_display("ssd1306", serial=serial)
    # luma's init sequence blanks the panel with a full frame.
    assert serial.writes == [bytes(1024)]
    serial.writes.clear()

    display.show(frame((0, 0), (0, 7), (127, 63)))
    display.show(frame((0, 0), (0, 7), (127, 63)))
    assert len(serial.writes) == 1
    sent = serial.writes[0]
    assert len(sent) == 1024
    # Page-major, one byte per column of 8 rows, least significant bit on top.
    assert sent[0] == 0b1000_0001
    assert sent[1023] == 0b1000_0000
    assert sum(bin(b).count("1") for b in sent) == 3
    assert display.frames_sent == 1


def test_sh1106_sends_eight_pages_of_128_bytes_per_change() -> None:
    serial = RecordingSerial()
    display = open_display("sh1106", serial=serial)
    serial.writes.clear()
    display.show(frame((0, 0), (127, 63)))
    display.show(frame((0, 0), (127, 63)))
    assert [len(w) for w in serial.writes] == [128] * 8
    assert serial.writes[0][0] == 0x01
    assert serial.writes[7][127] == 0x80


def test_closing_a_panel_blanks_it_switches_it_off_and_releases_the_bus() -> None:
    serial = RecordingSerial()
    display = open_display("ssd1306", serial=serial)
    display.show(frame((5, 5)))
    serial.writes.clear()
    display.close()
    assert (0xAE,) in serial.commands  # DISPLAYOFF
    assert serial.writes == [bytes(1024)]
    assert serial.cleaned_up
    assert display.device.persist  # luma's atexit hook will not drive the released panel again


def test_the_luma_warning_filter_lets_every_other_warning_through() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _luma_getdata_deprecation_ignored():
            with pytest.raises(DeprecationWarning, match="something else"):
                warnings.warn("something else", DeprecationWarning, stacklevel=1)
            # The very same Pillow deprecation, from our own code rather than luma's, still counts.
            with pytest.raises(DeprecationWarning, match="getdata is deprecated"):
                Image.new("1", (1, 1)).getdata()


# --- panels that are not there: one line from our error tree --------------------------------


def _assert_one_line_open_error(exc: BaseException) -> str:
    assert isinstance(exc, DisplayError)
    assert not isinstance(exc, ConfigError)
    message = str(exc)
    assert message
    assert "\n" not in message
    assert exc.__cause__ is not None
    return message


@pytest.mark.parametrize("kind", ["ssd1306", "sh1106"])
def test_a_missing_i2c_bus_is_a_one_line_error(kind: str) -> None:
    port = absent_i2c_port()
    with pytest.raises(DisplayError) as caught:
        open_display(kind, i2c_port=port)
    message = _assert_one_line_open_error(caught.value)
    assert message.startswith(f"{kind} display not found on I2C port {port}")
    assert f"/dev/i2c-{port}" in message
    assert "raspi-config" in message
    assert isinstance(caught.value.__cause__, luma.core.error.DeviceNotFoundError)


@pytest.mark.skipif(Path("/dev/i2c-1").exists(), reason="this machine has an I2C bus 1")
def test_the_default_bus_is_absent_here_and_says_so() -> None:
    with pytest.raises(DisplayError, match=r"^ssd1306 display not found on I2C port 1 \(/dev/i2c-1\) at 0x3c"):
        open_display("ssd1306")


def test_i2c_permission_denied_names_the_group_to_join(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(port: int) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", f"/dev/i2c-{port}")

    monkeypatch.setattr(smbus2, "SMBus", denied)
    with pytest.raises(DisplayError) as caught:
        open_display("ssd1306")
    message = _assert_one_line_open_error(caught.value)
    assert "permission denied" in message
    assert "i2c and gpio groups" in message
    assert isinstance(caught.value.__cause__, luma.core.error.DevicePermissionError)


class _BusWithoutPanel:
    """An I2C bus that opens but where nothing answers at the address (EREMOTEIO)."""

    instances: ClassVar[list[_BusWithoutPanel]] = []

    def __init__(self, port: int) -> None:
        self.closed = False
        _BusWithoutPanel.instances.append(self)

    def write_i2c_block_data(self, address: int, register: int, data: list[int]) -> None:
        raise OSError(errno.EREMOTEIO, "Remote I/O error")

    def close(self) -> None:
        self.closed = True


def test_a_bus_without_a_panel_is_a_one_line_error_and_the_bus_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    _BusWithoutPanel.instances.clear()
    monkeypatch.setattr(smbus2, "SMBus", _BusWithoutPanel)
    with pytest.raises(DisplayError) as caught:
        open_display("sh1106", i2c_address=0x3D)
    message = _assert_one_line_open_error(caught.value)
    assert "not found on I2C port 1" in message
    assert "0x3D" in message  # luma's own words: nothing answered at that address
    assert [bus.closed for bus in _BusWithoutPanel.instances] == [True]


def test_spi_without_its_gpio_library_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail the same way on every machine, Pi or not.
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(DisplayError) as caught:
        open_display("ssd1306", interface="spi")
    message = _assert_one_line_open_error(caught.value)
    assert message.startswith("ssd1306 display on SPI 0.0 (/dev/spidev0.0)")
    assert "spidev and RPi.GPIO" in message
    assert isinstance(caught.value.__cause__, ImportError)


def test_a_panel_lost_while_running_is_a_one_line_error() -> None:
    class Unplugged(RecordingSerial):
        def data(self, data: list[int]) -> None:
            raise luma.core.error.DeviceNotFoundError("I2C device not found on address: 0x3C")

    serial = RecordingSerial()
    display = open_display("ssd1306", serial=serial)
    display.device._serial_interface = Unplugged()
    with pytest.raises(DisplayError, match=r"^ssd1306 display lost: I2C device not found on address: 0x3C$"):
        display.show(frame((1, 1)))
    assert display.frames_sent == 0


# --- capture: numbered PNG frames -----------------------------------------------------------


def test_capture_writes_each_changed_frame_as_a_numbered_1_bit_png(tmp_path: Path) -> None:
    out = tmp_path / "run" / "frames"
    with open_display("capture", out_path=out) as display:
        assert isinstance(display, CaptureDisplay)
        display.show(frame((0, 0)))
        display.show(frame((0, 0)))
        display.show(frame((9, 9)))
    assert sorted(p.name for p in out.iterdir()) == ["frame_000001.png", "frame_000002.png"]
    with Image.open(out / "frame_000001.png") as first, Image.open(out / "frame_000002.png") as second:
        assert (first.mode, first.size) == ("1", (128, 64))
        assert lit(first) == {(0, 0)}
        assert lit(second) == {(9, 9)}


def test_capture_refuses_a_directory_that_already_holds_frames(tmp_path: Path) -> None:
    (tmp_path / "frame_000001.png").write_bytes(b"old run")
    with pytest.raises(ConfigError, match="already holds frames"):
        open_display("capture", out_path=tmp_path)


def test_capture_into_an_unwritable_place_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="capture directory"):
        open_display("capture", out_path=blocker / "frames")


# --- gif: one animated GIF on close ---------------------------------------------------------


def _gif_frames(path: Path) -> list[tuple[set[tuple[int, int]], int, tuple[int, int]]]:
    """(lit pixels, duration ms, size) of every frame of a GIF, read back with Pillow."""
    frames = []
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append((lit(gif.convert("1")), gif.info["duration"], gif.size))
    return frames


def test_gif_holds_one_frame_per_change_lasting_until_the_next(tmp_path: Path) -> None:
    clock = FakeClock(100.0)
    path = tmp_path / "take.gif"
    display = open_display("gif", out_path=path, clock=clock)
    assert isinstance(display, GifDisplay)
    display.show(frame((0, 0)))
    clock.now = 100.25
    display.show(frame((1, 1)))
    clock.now = 100.5
    display.show(frame((1, 1)))  # unchanged: no frame, the previous one lasts
    clock.now = 101.0
    display.show(frame((2, 2)))
    assert not path.exists()  # written on close, not before
    clock.now = 101.5
    display.close()
    assert _gif_frames(path) == [
        ({(0, 0)}, 250, (128, 64)),
        ({(1, 1)}, 750, (128, 64)),
        ({(2, 2)}, 500, (128, 64)),
    ]
    assert not path.with_name("take.gif.partial").exists()


def test_gif_keeps_the_first_max_frames_and_counts_the_rest(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "long.gif"
    display = open_display("gif", out_path=path, max_frames=2, clock=clock)
    assert isinstance(display, GifDisplay)
    for second, x in enumerate(range(4)):
        clock.now = float(second)
        display.show(frame((x, 0)))
    clock.now = 60.0
    display.close()
    assert (display.frames_sent, display.frames_recorded, display.frames_dropped) == (4, 2, 2)
    # The last kept frame ends when the first dropped one came, not at close.
    assert _gif_frames(path) == [({(0, 0)}, 1000, (128, 64)), ({(1, 0)}, 1000, (128, 64))]


def test_gif_without_any_frame_writes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gif"
    open_display("gif", out_path=path).close()
    assert not path.exists()


def test_gif_output_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        open_display("gif", out_path=tmp_path)


def test_gif_durations_are_rounded_on_the_grid_so_they_never_drift() -> None:
    # 30 fps: each delay alone would round to 30 ms and lose 10 ms every 3 frames.
    times = [i / 30 for i in range(31)]
    durations = gif_durations_ms(times)
    assert sum(durations) == 1000
    assert set(durations) == {30, 40}


def test_gif_durations_are_at_least_20_ms_and_fit_the_16_bit_field() -> None:
    assert gif_durations_ms([0.0, 0.001, 0.5]) == [20, 480]
    assert gif_durations_ms([0.0, 3600.0]) == [655_350]
