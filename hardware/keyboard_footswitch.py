"""The terminal as a footswitch: space is the switch, for the demo on a laptop.

A terminal sends characters, never key-up: a tap is one character, a held key is one
character, a pause (the auto-repeat delay), then a stream of repeats. :class:`KeyRepeatDecoder`
turns that back into the switch's down and up edges, at the times they happened, and feeds
them to the same :class:`~hardware.footswitch.GestureRecogniser` a real switch uses, so
tapping, double-tapping and holding space behave as on the pedal.

The price: a lone tap and the start of a hold look the same until the auto-repeat delay has
passed, so a keyboard PRESS arrives about ``repeat_delay_s`` after the tap (a DOUBLE or a
HOLD as soon as it is certain).
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import math
import os
import select
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any

from device.errors import ConfigError
from hardware.clock import Clock
from hardware.footswitch import (
    FootswitchEvent,
    GestureRecogniser,
    GestureTimings,
    QueuedFootswitch,
    validate_switch_count,
)

__all__ = ["KeyRepeatDecoder", "KeyRepeatTimings", "KeyboardFootswitch"]


@dataclass(frozen=True, slots=True)
class KeyRepeatTimings:
    """How the terminal's auto-repeat looks, in seconds.

    ``repeat_delay_s`` must cover the longest pause before the first repeat (X11 defaults to
    660 ms, GNOME 500 ms, the Linux console 250 ms); ``repeat_gap_s`` the longest interval
    between repeats (X11 40 ms, macOS about 85 ms by default) while staying under a quick
    double tap (~150 ms or more). ``tap_s`` is how long a tap is taken to last, since
    terminals send no key-up: longer than the debounce, shorter than any hold.
    """

    tap_s: float = 0.05
    repeat_gap_s: float = 0.12
    repeat_delay_s: float = 0.7

    def __post_init__(self) -> None:
        if not (
            all(math.isfinite(v) for v in (self.tap_s, self.repeat_gap_s, self.repeat_delay_s))
            and 0 < self.tap_s < self.repeat_gap_s < self.repeat_delay_s
        ):
            raise ConfigError(
                "key repeat timings need 0 < tap_s < repeat_gap_s < repeat_delay_s, got "
                f"{self.tap_s}, {self.repeat_gap_s}, {self.repeat_delay_s}"
            )


class _KeyPhase(Enum):
    UP = "up"
    TAPPED = "tapped"  # one character: a tap, or a hold whose first repeat is still to come
    MAYBE_REPEAT = "maybe_repeat"  # a second character after a pause: first repeat or second tap
    HELD = "held"  # repeats seen: the key is down


@dataclass(slots=True)
class _Key:
    phase: _KeyPhase = _KeyPhase.UP
    first: float = 0.0  # the character that pressed the key
    second: float = 0.0  # the character after the pause (MAYBE_REPEAT)
    last: float = 0.0  # the latest repeat (HELD)


class KeyRepeatDecoder:
    """Key characters (with auto-repeat) in, gestures out; pure, no terminal, no threads.

    Call :meth:`key` for every character of switch ``switch`` and :meth:`poll` now and then.
    Edges are reconstructed at their true times but the recogniser only advances to the
    earliest instant still in doubt, so gestures come out as soon as they are certain.
    """

    def __init__(
        self,
        switches: int = 1,
        timings: GestureTimings | None = None,
        repeat: KeyRepeatTimings | None = None,
    ) -> None:
        self._recogniser = GestureRecogniser(validate_switch_count(switches), timings)
        self._repeat = repeat if repeat is not None else KeyRepeatTimings()
        debounce = self._recogniser.timings.debounce_s
        if not (self._repeat.tap_s > debounce and self._repeat.repeat_gap_s - self._repeat.tap_s > debounce):
            raise ConfigError("key repeat tap_s and the gap after it must each outlast the debounce")
        self._keys = [_Key() for _ in range(switches)]
        self._edges: list[tuple[float, int, bool]] = []  # heap of (t, switch, pressed)
        self._now = -math.inf

    @property
    def recogniser(self) -> GestureRecogniser:
        return self._recogniser

    def key(self, switch: int, t: float) -> list[FootswitchEvent]:
        """A character for ``switch`` arrived at ``t``; return the gestures now certain."""
        if not 0 <= switch < len(self._keys):
            raise ValueError(f"switch {switch} out of range for {len(self._keys)} key(s)")
        t = max(t, self._now)
        self._timeouts(t)
        k = self._keys[switch]
        gap = self._repeat.repeat_gap_s
        if k.phase is _KeyPhase.UP:
            k.phase, k.first = _KeyPhase.TAPPED, t
            heapq.heappush(self._edges, (t, switch, True))
        elif k.phase is _KeyPhase.TAPPED:
            if t - k.first < gap:
                k.phase, k.last = _KeyPhase.HELD, t
            else:
                k.phase, k.second = _KeyPhase.MAYBE_REPEAT, t
        else:
            # MAYBE_REPEAT: a quick follower proves the pause was the auto-repeat delay.
            # HELD: another repeat.
            k.phase, k.last = _KeyPhase.HELD, t
        return self._release(t)

    def poll(self, t: float) -> list[FootswitchEvent]:
        """Return the gestures certain by ``t``."""
        t = max(t, self._now)
        self._timeouts(t)
        return self._release(t)

    def _deadline(self, k: _Key) -> float | None:
        r = self._repeat
        if k.phase is _KeyPhase.TAPPED:
            return k.first + r.repeat_delay_s
        if k.phase is _KeyPhase.MAYBE_REPEAT:
            return k.second + r.repeat_gap_s
        if k.phase is _KeyPhase.HELD:
            return k.last + r.repeat_gap_s
        return None

    def _floor(self, k: _Key) -> float:
        """The earliest time at which this key may still produce an edge."""
        if k.phase in (_KeyPhase.TAPPED, _KeyPhase.MAYBE_REPEAT):
            return k.first + self._repeat.tap_s
        deadline = self._deadline(k)
        return math.inf if deadline is None else deadline

    def _timeouts(self, now: float) -> None:
        while True:
            due = [(d, i) for i, k in enumerate(self._keys) if (d := self._deadline(k)) is not None and d <= now]
            if not due:
                return
            t, i = min(due)
            k = self._keys[i]
            if k.phase is _KeyPhase.HELD:
                k.phase = _KeyPhase.UP
                heapq.heappush(self._edges, (t, i, False))
                continue
            # No repeat followed: the first character was a tap.
            heapq.heappush(self._edges, (k.first + self._repeat.tap_s, i, False))
            if k.phase is _KeyPhase.MAYBE_REPEAT:
                k.phase, k.first = _KeyPhase.TAPPED, k.second
                heapq.heappush(self._edges, (k.second, i, True))
            else:
                k.phase = _KeyPhase.UP

    def _release(self, now: float) -> list[FootswitchEvent]:
        """Hand the recogniser every edge up to the earliest instant still in doubt."""
        self._now = now
        safe = min([now, *(self._floor(k) for k in self._keys)])
        events: list[FootswitchEvent] = []
        while self._edges and self._edges[0][0] <= safe:
            t, switch, pressed = heapq.heappop(self._edges)
            events += self._recogniser.feed(pressed, t, switch)
        events += self._recogniser.poll(safe)
        return events


def _tty_fd(stream: IO[Any]) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        # Replaced or captured streams (pytest, StringIO) have no descriptor: no keyboard.
        return None
    return fd if os.isatty(fd) else None


class KeyboardFootswitch(QueuedFootswitch):
    """Keys of a terminal as footswitches: ``keys[i]`` is switch ``i`` (default: space).

    While open, the terminal is in cbreak mode (keys arrive at once, unechoed; Ctrl-C still
    interrupts); :meth:`close` restores it, and so does interpreter exit if close was missed.
    If ``stream`` (default ``sys.stdin``) is not a terminal, nothing is read and no gesture
    ever comes: :attr:`active` is False.
    """

    def __init__(
        self,
        *,
        keys: str = " ",
        stream: IO[Any] | None = None,
        timings: GestureTimings | None = None,
        repeat: KeyRepeatTimings | None = None,
        clock: Clock = time.monotonic,
        poll_interval: float = 0.02,
    ) -> None:
        super().__init__(len(keys))
        if len(set(keys)) != len(keys) or not all(c.isascii() and c.isprintable() for c in keys):
            raise ConfigError(f"footswitch keys must be distinct printable ASCII characters, got {keys!r}")
        self._key_bytes = keys.encode("ascii")
        self._decoder = KeyRepeatDecoder(len(keys), timings, repeat)
        self._clock = clock
        self._poll_interval = poll_interval
        self._fd = _tty_fd(stream if stream is not None else sys.stdin)
        self._saved: list[Any] | None = None
        self._thread: threading.Thread | None = None
        if self._fd is not None:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
            atexit.register(self._restore)
            self._thread = threading.Thread(target=self._run, name="keyboard-footswitch", daemon=True)
            self._thread.start()

    @property
    def active(self) -> bool:
        """True while a terminal is being read."""
        return self._thread is not None and not self.closed

    def close(self) -> None:
        super().close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._restore()

    def _restore(self) -> None:
        with self._cond:
            saved, self._saved = self._saved, None
        if saved is None or self._fd is None:
            return
        atexit.unregister(self._restore)
        # A terminal that has gone away has no mode left to restore.
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)

    def _run(self) -> None:
        fd = self._fd
        assert fd is not None
        at_eof = False
        while not self.closed:
            data = b""
            if at_eof:
                time.sleep(self._poll_interval)
            else:
                try:
                    ready, _, _ = select.select([fd], [], [], self._poll_interval)
                    if ready:
                        data = os.read(fd, 64)
                        at_eof = not data
                except OSError:
                    at_eof = True  # the terminal hung up: keep delivering what is pending
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                for byte in data:
                    switch = self._key_bytes.find(byte)
                    if switch >= 0:
                        self._emit(self._decoder.key(switch, now))
                self._emit(self._decoder.poll(now))
