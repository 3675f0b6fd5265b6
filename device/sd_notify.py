"""systemd's notify protocol (READY, WATCHDOG, STOPPING) over its datagram socket.

No dependency: a few bytes to the socket systemd names in NOTIFY_SOCKET (passed in from the
settings, read at the edge). Without a socket every call is a no-op, so the same code runs
under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

__all__ = ["Notifier"]


class Notifier:
    def __init__(
        self, socket_path: str | None, watchdog_usec: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.socket_path = socket_path
        # Pet at half the period systemd allows, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec else None
        self._clock = clock
        self._last_pet = -1e18
        self.sent: list[str] = []

    def _send(self, message: str) -> None:
        if not self.socket_path:
            return
        address = self.socket_path
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), address)
            self.sent.append(message)

    def ready(self) -> None:
        self._send("READY=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Call from the main loop as often as you like; pets at most at half the period."""
        if self.watchdog_interval_s is None:
            return
        now = self._clock()
        if now - self._last_pet >= self.watchdog_interval_s:
            self._last_pet = now
            self._send("WATCHDOG=1")
