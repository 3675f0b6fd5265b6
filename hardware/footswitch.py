"""Footswitches: gestures (press, double, hold, hold-long, both-hold) from one or two switches.

Three layers, each replaceable:

* :class:`GestureRecogniser` is pure: fed raw switch edges with their times, and ``poll(t)``
  for timeouts, it returns :class:`FootswitchEvent` s. No threads, no clock of its own, no
  gpiozero. Debounce lives here because gpiozero's mock pins do not simulate bounce, and a
  real contact's bounce must be tested with a clock the test controls.
* :class:`GpioFootswitch` wires gpiozero ``Button`` s (pin factory injectable) to a recogniser
  and a small poll thread for the timeouts.
* :class:`ScriptedFootswitch` (here) and ``KeyboardFootswitch`` (``keyboard_footswitch.py``)
  are stand-ins with the same :class:`Footswitch` API.

The API is pull-based so gestures land on the state machine's thread, never on a GPIO
callback thread: ``get(timeout)`` waits for the next gesture, ``events()`` drains what is
waiting, ``close()`` releases the pins and stops the threads.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from gpiozero import Button, GPIOZeroError, PinInvalidPin

from device.errors import ConfigError, FootswitchError
from hardware.clock import Clock

__all__ = [
    "Footswitch",
    "FootswitchEvent",
    "Gesture",
    "GestureRecogniser",
    "GestureTimings",
    "GpioFootswitch",
    "QueuedFootswitch",
    "ScriptStep",
    "ScriptedFootswitch",
    "validate_switch_count",
]

MAX_SWITCHES = 2


class Gesture(Enum):
    """What the player did with a switch (or with both)."""

    PRESS = "press"
    """A short tap, reported once the double-press window has closed without a second tap."""
    DOUBLE = "double"
    """Two taps within the window; reported as the second tap goes down."""
    HOLD = "hold"
    """Held down for ``hold_s``; reported while still held. The release reports nothing."""
    HOLD_LONG = "hold_long"
    """Still held after ``hold_long_s`` (it follows a HOLD of the same press)."""
    BOTH_HOLD = "both_hold"
    """Both switches held together for ``both_hold_s`` (two-switch pedals; safe shutdown)."""


@dataclass(frozen=True, slots=True)
class FootswitchEvent:
    """One gesture. ``switch`` indexes the caller's pin list; ``None`` means both switches.

    ``t`` is when the gesture became certain, on the footswitch's clock (for a scripted
    footswitch given as a script step: seconds after the start).
    """

    gesture: Gesture
    switch: int | None = 0
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class GestureTimings:
    """Every time the recogniser uses, in seconds. Timeouts are inclusive (elapsed ≥ limit fires).

    Defaults: 20 ms debounce outlasts the 1-10 ms bounce of common stomp switches yet is far
    below the ~80 ms of the quickest deliberate tap; 300 ms is the usual double-click window
    scaled for a foot (shorter makes doubles hard, longer makes every single press feel
    late, since a press is only reported when the window closes); 600 ms separates a hold
    from a firm tap; 5 s is a deliberate "I mean it" hold; 1 s with both feet down cannot
    happen by accident yet does not feel like waiting.
    """

    debounce_s: float = 0.020
    double_s: float = 0.300
    hold_s: float = 0.600
    hold_long_s: float | None = 5.0
    both_hold_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("debounce_s", "double_s", "hold_s", "both_hold_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"footswitch timing {name} must be a finite number ≥ 0, got {value!r}")
        if self.hold_s <= self.debounce_s:
            raise ConfigError(f"footswitch hold_s ({self.hold_s}) must exceed debounce_s ({self.debounce_s})")
        if self.hold_long_s is not None and not (math.isfinite(self.hold_long_s) and self.hold_long_s > self.hold_s):
            raise ConfigError(f"footswitch hold_long_s ({self.hold_long_s}) must exceed hold_s ({self.hold_s})")


def validate_switch_count(count: int) -> int:
    """Return ``count`` if a pedal can have that many switches, else raise ConfigError."""
    if not 1 <= count <= MAX_SWITCHES:
        raise ConfigError(f"a pedal has 1 or {MAX_SWITCHES} footswitches, not {count}")
    return count


class _Phase(Enum):
    IDLE = "idle"  # up, nothing pending
    DOWN = "down"  # first press, not yet a hold
    GAP = "gap"  # tapped once; waiting for a second tap or the window to close
    HELD = "held"  # HOLD reported; HOLD_LONG may follow
    SWALLOW = "swallow"  # gesture already reported (or cancelled): ignore until released


@dataclass(slots=True)
class _Switch:
    raw: bool = False  # last level seen, bounce and all
    level: bool = False  # debounced level
    last_edge: float = -math.inf
    phase: _Phase = _Phase.IDLE
    since: float = 0.0  # start of the phase's timer (press time, or release time in GAP)


class GestureRecogniser:
    """Debounce and gesture timing for one or two switches; pure and single-threaded.

    Feed every raw edge with :meth:`feed` and call :meth:`poll` now and then (at the latest
    by :meth:`next_deadline`); both return the gestures completed up to the given time, in
    time order. Times must not go backwards; an earlier time is treated as the latest seen.

    Debounce: a level counts once it has been stable for ``debounce_s``, so edges that
    reverse sooner (bounce, noise spikes) are ignored, and the recogniser sees each
    transition ``debounce_s`` after its last edge. Press and release are delayed alike, so
    durations are kept. A switch already down when the recogniser starts is ignored until it
    is released (a foot resting on the pedal at boot is not a gesture).

    Per switch: a tap is PRESS once ``double_s`` passes after its release with no second tap;
    a second tap inside that window is DOUBLE (on its press; the rest of that press is
    ignored), so PRESS and DOUBLE are never both reported. Held for ``hold_s`` is HOLD, held for
    ``hold_long_s`` is HOLD_LONG, and the release after a hold reports nothing. A third quick
    tap starts a new gesture.

    Two switches: when both are down at once, whatever each was in the middle of is
    cancelled; held together for ``both_hold_s`` they report BOTH_HOLD (``switch=None``).
    Releasing either earlier reports nothing, and each switch is ignored until released.
    """

    def __init__(self, switches: int = 1, timings: GestureTimings | None = None) -> None:
        self._timings = timings if timings is not None else GestureTimings()
        self._switches = [_Switch() for _ in range(validate_switch_count(switches))]
        self._chord_since: float | None = None
        self._now = -math.inf

    @property
    def timings(self) -> GestureTimings:
        return self._timings

    @property
    def switches(self) -> int:
        return len(self._switches)

    def is_pressed(self, switch: int = 0) -> bool:
        """The debounced level of ``switch``."""
        return self._switches[self._index(switch)].level

    def feed(self, pressed: bool, t: float, switch: int = 0) -> list[FootswitchEvent]:
        """Record a raw edge of ``switch`` at ``t``; return the gestures completed before it."""
        sw = self._switches[self._index(switch)]
        t = max(t, self._now)
        events = self._advance(t)
        # Repeated levels are not edges; they must not restart the debounce timer.
        if pressed != sw.raw:
            sw.raw = pressed
            sw.last_edge = t
        return events

    def poll(self, t: float) -> list[FootswitchEvent]:
        """Return the gestures completed up to ``t`` (timeouts and settled edges)."""
        return self._advance(max(t, self._now))

    def next_deadline(self) -> float | None:
        """When something can next happen without a new edge; ``None`` if nothing is pending."""
        due = self._next_due()
        return None if due is None else due[0]

    def _index(self, switch: int) -> int:
        if not 0 <= switch < len(self._switches):
            raise ValueError(f"switch {switch} out of range for {len(self._switches)} switch(es)")
        return switch

    def _deadline(self, sw: _Switch) -> float | None:
        tm = self._timings
        if sw.phase is _Phase.DOWN:
            return sw.since + tm.hold_s
        if sw.phase is _Phase.GAP:
            return sw.since + tm.double_s
        if sw.phase is _Phase.HELD and tm.hold_long_s is not None:
            return sw.since + tm.hold_long_s
        return None

    def _next_due(self) -> tuple[float, int, int] | None:
        """(time, kind, switch) of the earliest pending item; kind 0 = timeout, 1 = settled edge.

        Timeouts sort before edges at the same instant: "held for exactly hold_s" is a hold,
        and a second tap exactly ``double_s`` after the release is too late.
        """
        due: list[tuple[float, int, int]] = []
        if self._chord_since is not None:
            due.append((self._chord_since + self._timings.both_hold_s, 0, -1))
        for i, sw in enumerate(self._switches):
            deadline = self._deadline(sw)
            if deadline is not None:
                due.append((deadline, 0, i))
            if sw.raw != sw.level:
                due.append((sw.last_edge + self._timings.debounce_s, 1, i))
        return min(due) if due else None

    def _advance(self, now: float) -> list[FootswitchEvent]:
        events: list[FootswitchEvent] = []
        while (due := self._next_due()) is not None and due[0] <= now:
            t, kind, i = due
            if kind == 1:
                sw = self._switches[i]
                sw.level = sw.raw
                self._settled(i, sw.level, t, events)
            elif i < 0:
                self._chord_since = None
                events.append(FootswitchEvent(Gesture.BOTH_HOLD, None, t))
            else:
                self._timed_out(i, t, events)
        self._now = now
        return events

    def _timed_out(self, i: int, t: float, events: list[FootswitchEvent]) -> None:
        sw = self._switches[i]
        if sw.phase is _Phase.DOWN:
            sw.phase = _Phase.HELD
            events.append(FootswitchEvent(Gesture.HOLD, i, t))
        elif sw.phase is _Phase.GAP:
            sw.phase = _Phase.IDLE
            events.append(FootswitchEvent(Gesture.PRESS, i, t))
        elif sw.phase is _Phase.HELD:
            sw.phase = _Phase.SWALLOW
            events.append(FootswitchEvent(Gesture.HOLD_LONG, i, t))

    def _settled(self, i: int, down: bool, t: float, events: list[FootswitchEvent]) -> None:
        sw = self._switches[i]
        if down:
            if len(self._switches) > 1 and all(s.level for s in self._switches):
                for s in self._switches:
                    s.phase = _Phase.SWALLOW
                self._chord_since = t
            elif sw.phase is _Phase.IDLE:
                sw.phase, sw.since = _Phase.DOWN, t
            elif sw.phase is _Phase.GAP:
                sw.phase = _Phase.SWALLOW
                events.append(FootswitchEvent(Gesture.DOUBLE, i, t))
            return
        self._chord_since = None
        if sw.phase is _Phase.DOWN:
            sw.phase, sw.since = _Phase.GAP, t
        elif sw.phase in (_Phase.HELD, _Phase.SWALLOW):
            sw.phase = _Phase.IDLE


@runtime_checkable
class Footswitch(Protocol):
    """What the state machine needs from a footswitch, real or stand-in."""

    @property
    def switches(self) -> int:
        """How many switches (1 or 2)."""
        ...

    def get(self, timeout: float | None = None) -> FootswitchEvent | None:
        """The next gesture, waiting up to ``timeout`` s (None: until one comes or close)."""
        ...

    def events(self) -> list[FootswitchEvent]:
        """Every gesture already waiting, oldest first, without blocking."""
        ...

    def close(self) -> None:
        """Stop and release everything; idempotent. ``get`` then returns None."""
        ...


class QueuedFootswitch:
    """Base of the thread-fed footswitches: a condition-guarded queue behind ``get``/``events``.

    Subclasses guard their own state with ``self._cond`` too, so a gesture is queued in the
    same critical section that recognised it.
    """

    def __init__(self, switches: int) -> None:
        self._switch_count = validate_switch_count(switches)
        self._cond = threading.Condition()
        self._queue: deque[FootswitchEvent] = deque()
        self._closed = False

    @property
    def switches(self) -> int:
        return self._switch_count

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, timeout: float | None = None) -> FootswitchEvent | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed, timeout)
            return self._queue.popleft() if self._queue and not self._closed else None

    def events(self) -> list[FootswitchEvent]:
        with self._cond:
            drained = list(self._queue)
            self._queue.clear()
            return drained

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def _emit(self, events: Iterable[FootswitchEvent]) -> None:
        """Queue ``events`` and wake the waiting readers; the caller holds ``self._cond``."""
        before = len(self._queue)
        self._queue.extend(events)
        if len(self._queue) != before:
            self._cond.notify_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _validate_pins(pins: Sequence[int]) -> tuple[int, ...]:
    pins = tuple(pins)
    validate_switch_count(len(pins))
    for pin in pins:
        if isinstance(pin, bool) or not isinstance(pin, int) or pin < 0:
            raise ConfigError(f"footswitch pins are BCM GPIO numbers like 17 or 27, not {pin!r}")
    if len(set(pins)) != len(pins):
        raise ConfigError(f"footswitch pins must differ, got {pins}")
    return pins


class GpioFootswitch(QueuedFootswitch):
    """One or two switches on GPIO pins (BCM), each wired from its pin to ground.

    Each pin becomes ``gpiozero.Button(pin, pull_up=True, bounce_time=None,
    pin_factory=pin_factory)``; ``pin_factory=None`` means gpiozero's default (real pins on
    the Pi, ``GPIOZERO_PIN_FACTORY=mock`` elsewhere). gpiozero's own debounce stays off: it
    drops edges rather than waiting for the level to settle, and ours is tested.

    Raises ConfigError for a bad pin list and FootswitchError when the pins cannot be claimed.
    Edges are stamped with ``clock()`` on gpiozero's callback thread. A poll thread delivers
    the timeouts; it sleeps until the recogniser's next deadline (at most ``poll_interval``)
    and not at all while nothing is pending. ``poll_interval=None`` starts no thread: call
    :meth:`poll` yourself (tests with a fake clock do).
    """

    def __init__(
        self,
        pins: Sequence[int],
        *,
        timings: GestureTimings | None = None,
        pin_factory: Any = None,
        clock: Clock = time.monotonic,
        poll_interval: float | None = 0.05,
    ) -> None:
        self._pins = _validate_pins(pins)
        super().__init__(len(self._pins))
        self._clock = clock
        self._recogniser = GestureRecogniser(len(self._pins), timings)
        self._poll_interval = poll_interval
        self._buttons: list[Any] = []
        try:
            for i, pin in enumerate(self._pins):
                button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
                self._buttons.append(button)
                button.when_pressed = functools.partial(self._edge, i, True)
                button.when_released = functools.partial(self._edge, i, False)
        except PinInvalidPin as exc:
            self._close_buttons()
            raise ConfigError(f"footswitch on GPIO {self._pins}: {exc}") from exc
        except (GPIOZeroError, OSError) as exc:
            # Pin busy, no pin factory (not a Pi, no GPIOZERO_PIN_FACTORY), or the driver failed.
            self._close_buttons()
            raise FootswitchError(f"footswitch on GPIO {self._pins}: {exc}") from exc
        self._thread: threading.Thread | None = None
        if poll_interval is not None:
            self._thread = threading.Thread(target=self._run, name="footswitch-poll", daemon=True)
            self._thread.start()

    @property
    def pins(self) -> tuple[int, ...]:
        return self._pins

    def poll(self) -> None:
        """Deliver the gestures whose timeouts have passed by ``clock()`` now."""
        with self._cond:
            if not self._closed:
                self._emit(self._recogniser.poll(self._clock()))

    def close(self) -> None:
        super().close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._close_buttons()

    def _close_buttons(self) -> None:
        buttons, self._buttons = self._buttons, []
        for button in buttons:
            button.close()

    def _edge(self, switch: int, pressed: bool) -> None:
        with self._cond:
            if not self._closed:
                # The clock is read under the lock so edges and polls reach the recogniser
                # in time order even though they come from different threads.
                self._emit(self._recogniser.feed(pressed, self._clock(), switch))
                # Wake the poll thread: the edge may have started a timer it must wait for.
                self._cond.notify_all()

    def _run(self) -> None:
        interval = self._poll_interval
        assert interval is not None
        with self._cond:
            while not self._closed:
                self._emit(self._recogniser.poll(self._clock()))
                deadline = self._recogniser.next_deadline()
                # Nothing pending: sleep until an edge or close() notifies.
                self._cond.wait(None if deadline is None else min(interval, max(0.0, deadline - self._clock())))


ScriptStep = FootswitchEvent | tuple[float, Gesture]
"""A scripted gesture: an event whose ``t`` is seconds after the start, or ``(t, gesture)``
for switch 0 (BOTH_HOLD: both switches)."""


class ScriptedFootswitch:
    """Replays gestures at given times after its creation: the demo's player.

    ``speed`` > 1 plays the script faster (a 10-minute session in one minute at 10).
    Event times are ``start + offset`` on ``clock``, like a real switch's.
    """

    def __init__(
        self,
        script: Iterable[ScriptStep],
        *,
        switches: int = 1,
        clock: Clock = time.monotonic,
        speed: float = 1.0,
    ) -> None:
        self._switch_count = validate_switch_count(switches)
        if not (math.isfinite(speed) and speed > 0):
            raise ConfigError(f"script speed must be > 0, got {speed!r}")
        steps = [self._step(s) for s in script]
        steps.sort(key=lambda e: e.t)
        self._steps: deque[FootswitchEvent] = deque(steps)
        self._clock = clock
        self._speed = speed
        self._start = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def switches(self) -> int:
        return self._switch_count

    @property
    def done(self) -> bool:
        """Every step has been delivered."""
        with self._lock:
            return not self._steps

    def get(self, timeout: float | None = None) -> FootswitchEvent | None:
        give_up = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            with self._lock:
                elapsed = (self._clock() - self._start) * self._speed
                if self._steps and self._steps[0].t <= elapsed:
                    return self._stamp(self._steps.popleft())
                wait = (self._steps[0].t - elapsed) / self._speed if self._steps else None
            if give_up is not None:
                left = give_up - time.monotonic()
                if left <= 0:
                    return None
                wait = left if wait is None else min(wait, left)
            self._stop.wait(wait)
        return None

    def events(self) -> list[FootswitchEvent]:
        with self._lock:
            elapsed = (self._clock() - self._start) * self._speed
            due: list[FootswitchEvent] = []
            while self._steps and self._steps[0].t <= elapsed and not self._stop.is_set():
                due.append(self._stamp(self._steps.popleft()))
            return due

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _stamp(self, step: FootswitchEvent) -> FootswitchEvent:
        return FootswitchEvent(step.gesture, step.switch, self._start + step.t / self._speed)

    def _step(self, step: ScriptStep) -> FootswitchEvent:
        if isinstance(step, tuple):
            offset, gesture = step
            step = FootswitchEvent(gesture, None if gesture is Gesture.BOTH_HOLD else 0, offset)
        if not (math.isfinite(step.t) and step.t >= 0):
            raise ConfigError(f"script step times are seconds ≥ 0, got {step.t!r}")
        if (step.switch is None) != (step.gesture is Gesture.BOTH_HOLD):
            raise ConfigError(f"only BOTH_HOLD has switch None: {step}")
        if step.switch is not None and not 0 <= step.switch < self._switch_count:
            raise ConfigError(f"script step for switch {step.switch} on a {self._switch_count}-switch pedal")
        if step.gesture is Gesture.BOTH_HOLD and self._switch_count < 2:
            raise ConfigError("BOTH_HOLD needs two switches")
        return step
