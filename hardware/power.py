"""Undervoltage and throttling, from the Raspberry Pi firmware's ``get_throttled`` flags.

Where the flags come from, first that works:

1. the firmware driver's sysfs file (``/sys/devices/platform/soc/soc:firmware/get_throttled``,
   or the Pi 5 node name), which holds the value in hex without a prefix (``"50005\\n"``; the
   kernel writes it with ``%x``). Some kernels log a one-time "deprecated, use hwmon" warning
   on the first read; that hwmon file only carries the undervoltage bit, so we keep this one.
2. ``vcgencmd get_throttled`` (``"throttled=0x50005"``): the Pi 5 and kernels without the file.
3. nothing: not a Pi. :meth:`PowerMonitor.flags` returns None, never raises.

Bits (Raspberry Pi documentation of ``vcgencmd get_throttled``): 0 under-voltage now,
1 ARM frequency capped now, 2 throttled now, 3 soft temperature limit now; 16–19 the same
"has occurred since boot".

Mapping to the home screen: under-voltage now **or since boot** shows
:attr:`PowerWarning.UNDERVOLTAGE` — supply dips are short and a poll every few seconds
misses most of them, while the sticky bit catches every one; and it cannot be stale, because
the only fix (another supply or cable) means a power cycle, which clears it. Throttling is
shown only while it lasts (bits 1–3): heat comes and goes. Undervoltage wins when both are set:
it is usually the cause, and the one the player can fix.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from device.ui.views import PowerWarning

__all__ = [
    "THROTTLED_PATHS",
    "VCGENCMD",
    "PowerMonitor",
    "describe_flags",
    "parse_throttled",
    "warning_for",
]

log = logging.getLogger(__name__)

THROTTLED_PATHS: Final = (
    Path("/sys/devices/platform/soc/soc:firmware/get_throttled"),  # Pi 3, 4, Zero 2 W
    Path("/sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled"),  # Pi 5, where present
)
VCGENCMD: Final = ("vcgencmd", "get_throttled")

UNDERVOLTAGE_NOW: Final = 1 << 0
CAPPED_NOW: Final = 1 << 1
THROTTLED_NOW: Final = 1 << 2
SOFT_TEMP_LIMIT_NOW: Final = 1 << 3
UNDERVOLTAGE_OCCURRED: Final = 1 << 16

_BITS: Final = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage since boot",
    17: "frequency capped since boot",
    18: "throttled since boot",
    19: "soft temperature limit since boot",
}
_VALUE = re.compile(r"^(?:throttled\s*=\s*)?(?:0x)?([0-9a-f]+)$", re.IGNORECASE)

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def parse_throttled(text: str) -> int | None:
    """The flags in ``"50005"`` (sysfs), ``"0x50005"`` or ``"throttled=0x50005"`` (vcgencmd); None if neither."""
    match = _VALUE.match(text.strip())
    return int(match.group(1), 16) if match else None


def warning_for(flags: int | None) -> PowerWarning | None:
    """What the home screen shows for ``flags`` (see the module docstring for why)."""
    if flags is None:
        return None
    if flags & (UNDERVOLTAGE_NOW | UNDERVOLTAGE_OCCURRED):
        return PowerWarning.UNDERVOLTAGE
    if flags & (CAPPED_NOW | THROTTLED_NOW | SOFT_TEMP_LIMIT_NOW):
        return PowerWarning.THROTTLED
    return None


def describe_flags(flags: int) -> str:
    """The set bits in words, e.g. ``"under-voltage now, throttled since boot"`` (``"none"`` for 0)."""
    words = [text for bit, text in _BITS.items() if flags & (1 << bit)]
    other = flags & ~sum(1 << bit for bit in _BITS)
    if other:
        words.append(f"other bits {other:#x}")
    return ", ".join(words) or "none"


class PowerMonitor:
    """Reads the firmware flags; call it for the home screen's :class:`PowerWarning`.

    ``paths`` are tried in order, then ``command`` (``None``: never run a command). Once
    neither gives a value the monitor stops trying (not a Pi: nothing will appear later), so
    calling it costs nothing on a desktop. ``vcgencmd`` is given ``timeout_s`` and dropped for
    good after one timeout: a stuck firmware mailbox must not stall the caller every poll.
    Never raises.
    """

    def __init__(
        self,
        paths: Sequence[Path] = THROTTLED_PATHS,
        command: Sequence[str] | None = VCGENCMD,
        *,
        timeout_s: float = 1.0,
        run: Runner = subprocess.run,
    ) -> None:
        self._paths = list(paths)
        self._command = list(command) if command else None
        self._timeout_s = timeout_s
        self._run = run
        self._source: Path | str | None = None  # what worked last
        self._unavailable = False

    @property
    def source(self) -> str | None:
        """Where the last value came from (a path or ``"vcgencmd"``), for ``fretcoach doctor``."""
        return None if self._source is None else str(self._source)

    def __call__(self) -> PowerWarning | None:
        return warning_for(self.flags())

    def flags(self) -> int | None:
        """The raw flags now, or None where the firmware cannot be asked."""
        if self._unavailable:
            return None
        source = self._source
        if isinstance(source, Path):
            value = self._read_file(source)
            if value is not None:
                return value
        for path in self._paths:
            value = self._read_file(path)
            if value is not None:
                self._source = path
                return value
        value = self._ask_vcgencmd()
        if value is not None:
            self._source = "vcgencmd"
            return value
        if self._source is None:
            self._unavailable = True  # never worked: this is not a Pi (or not one we can read)
        return None

    def _read_file(self, path: Path) -> int | None:
        try:
            return parse_throttled(path.read_text(encoding="ascii", errors="replace"))
        except OSError:
            return None  # missing (not this Pi model), or the driver refused the read

    def _ask_vcgencmd(self) -> int | None:
        if self._command is None:
            return None
        try:
            done = self._run(self._command, capture_output=True, text=True, timeout=self._timeout_s, check=False)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s did not answer within %.1f s; not asking it again", " ".join(self._command), self._timeout_s
            )
            self._command = None
            return None
        except OSError:
            self._command = None  # not installed: it will not appear while we run
            return None
        if done.returncode != 0:
            return None
        return parse_throttled(done.stdout)
