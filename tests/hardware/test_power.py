"""The firmware's throttled flags: real files holding what the kernel writes, and a stand-in
for vcgencmd's output (its format, as the Raspberry Pi documentation shows it)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from device.ui.views import PowerWarning
from hardware.power import PowerMonitor, describe_flags, parse_throttled, warning_for


def flags_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "get_throttled"
    path.write_text(content)
    return path


class Vcgencmd:
    """Answers like ``vcgencmd get_throttled`` and counts how often it was run."""

    def __init__(self, stdout: str = "throttled=0x0\n", returncode: int = 0, error: BaseException | None = None):
        self.stdout = stdout
        self.returncode = returncode
        self.error = error
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        assert kwargs["timeout"] > 0 and kwargs["check"] is False
        if self.error is not None:
            raise self.error
        return subprocess.CompletedProcess(args, self.returncode, self.stdout, "")


@pytest.mark.parametrize(
    ("text", "flags"),
    [("0\n", 0), ("50005\n", 0x50005), ("80008", 0x80008), ("0x50000", 0x50000), ("throttled=0x50005\n", 0x50005)],
)
def test_the_kernels_hex_and_vcgencmds_output_both_parse(text: str, flags: int) -> None:
    assert parse_throttled(text) == flags


@pytest.mark.parametrize("text", ["", "VCHI initialization failed", "throttled=", "0xZZ"])
def test_anything_else_is_no_value(text: str) -> None:
    assert parse_throttled(text) is None


@pytest.mark.parametrize(
    ("flags", "warning"),
    [
        (0x0, None),
        (0x1, PowerWarning.UNDERVOLTAGE),  # under-voltage now
        (0x10000, PowerWarning.UNDERVOLTAGE),  # a dip since boot: the supply is marginal
        (0x50005, PowerWarning.UNDERVOLTAGE),  # both: undervoltage is the cause to fix
        (0x2, PowerWarning.THROTTLED),  # frequency capped
        (0x4, PowerWarning.THROTTLED),  # throttled
        (0x8, PowerWarning.THROTTLED),  # soft temperature limit
        (0x40000, None),  # throttled earlier, not now: heat comes and goes
        (0x80000, None),
    ],
)
def test_bits_map_to_the_home_screens_warning(flags: int, warning: PowerWarning | None) -> None:
    assert warning_for(flags) is warning


def test_flags_are_described_in_words() -> None:
    assert describe_flags(0) == "none"
    assert describe_flags(0x50005) == "under-voltage now, throttled now, under-voltage since boot, throttled since boot"
    assert describe_flags(0x100000) == "other bits 0x100000"


def test_the_sysfs_file_is_read_on_every_call(tmp_path: Path) -> None:
    path = flags_file(tmp_path, "0\n")
    run = Vcgencmd("throttled=0x4\n")
    monitor = PowerMonitor([path], run=run)
    assert monitor() is None and monitor.source == str(path)
    path.write_text("50005\n")  # a dip: the kernel updates the value in place
    assert monitor() is PowerWarning.UNDERVOLTAGE
    path.write_text("4\n")
    assert monitor() is PowerWarning.THROTTLED
    assert run.calls == []  # the file answered: no process was started


def test_the_second_path_serves_when_the_first_is_missing(tmp_path: Path) -> None:
    pi5 = flags_file(tmp_path, "10000\n")
    monitor = PowerMonitor([tmp_path / "absent", pi5], command=None)
    assert monitor.flags() == 0x10000 and monitor() is PowerWarning.UNDERVOLTAGE


def test_vcgencmd_answers_when_no_file_exists(tmp_path: Path) -> None:
    run = Vcgencmd("throttled=0x50005\n")
    monitor = PowerMonitor([tmp_path / "absent"], run=run)
    assert monitor() is PowerWarning.UNDERVOLTAGE
    assert monitor.source == "vcgencmd" and run.calls == [["vcgencmd", "get_throttled"]]


def test_nothing_available_is_none_and_is_not_asked_again(tmp_path: Path) -> None:
    run = Vcgencmd(error=FileNotFoundError(2, "No such file or directory", "vcgencmd"))
    monitor = PowerMonitor([tmp_path / "absent"], run=run)
    assert monitor() is None and monitor.flags() is None and monitor.source is None
    assert len(run.calls) == 1  # not a Pi: later calls cost nothing


def test_a_failing_or_garbled_vcgencmd_is_none(tmp_path: Path) -> None:
    for run in (Vcgencmd("VCHI initialization failed\n", returncode=255), Vcgencmd("nonsense\n")):
        assert PowerMonitor([tmp_path / "absent"], run=run)() is None


def test_a_hanging_vcgencmd_is_given_up_after_one_timeout(tmp_path: Path) -> None:
    path = flags_file(tmp_path, "1\n")
    run = Vcgencmd(error=subprocess.TimeoutExpired(["vcgencmd", "get_throttled"], 1.0))
    monitor = PowerMonitor([path], run=run)
    assert monitor() is PowerWarning.UNDERVOLTAGE  # from the file
    path.unlink()  # the file goes away: vcgencmd is tried, hangs, and is dropped
    assert monitor() is None
    assert monitor() is None
    assert len(run.calls) == 1


def test_a_directory_or_unreadable_path_is_skipped_not_raised(tmp_path: Path) -> None:
    directory = tmp_path / "get_throttled"
    directory.mkdir()
    assert PowerMonitor([directory], command=None)() is None


def test_a_real_vcgencmd_missing_from_path_is_none(tmp_path: Path) -> None:
    # The real subprocess.run, a command that does not exist: what a laptop sees.
    monitor = PowerMonitor([tmp_path / "absent"], command=["fretcoach-no-such-vcgencmd", "get_throttled"])
    assert monitor() is None
