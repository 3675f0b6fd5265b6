"""The status LED: one glance tells how the weakest score is doing.

Mapping (:func:`led_state_for`), on the weakest of the scores given (0-100; ``None`` or NaN
scores, not yet measurable, are skipped):

* no scores at all (idle, or nothing judged yet): **off**
* weakest ≥ ``good`` (default 70): **steady on**
* ``poor`` ≤ weakest < ``good`` (default 40-70): **slow blink**, 1 Hz
* weakest < ``poor``: **fast blink**, 4 Hz

Faster blinking means weaker playing; the screen says which metric it is. The LED is
optional: :class:`NullLed` stands in when there is none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import Enum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from gpiozero import LED, GPIOZeroError, PinInvalidPin

from device.errors import ConfigError, LedError

__all__ = [
    "BLINK_TIMES",
    "DEFAULT_GOOD",
    "DEFAULT_POOR",
    "GpioStatusLed",
    "LedState",
    "NullLed",
    "StatusLed",
    "led_state_for",
]

DEFAULT_GOOD = 70.0
DEFAULT_POOR = 40.0


class LedState(Enum):
    OFF = "off"
    STEADY = "steady"
    SLOW_BLINK = "slow_blink"
    FAST_BLINK = "fast_blink"


BLINK_TIMES: dict[LedState, tuple[float, float]] = {
    LedState.SLOW_BLINK: (0.5, 0.5),
    LedState.FAST_BLINK: (0.125, 0.125),
}
"""(on, off) seconds per blinking state."""


def _check_thresholds(good: float, poor: float) -> None:
    if not (math.isfinite(good) and math.isfinite(poor) and 0.0 <= poor <= good <= 100.0):
        raise ConfigError(f"LED thresholds need 0 ≤ poor ≤ good ≤ 100, got poor={poor!r} good={good!r}")


def led_state_for(
    scores: Iterable[float | None] | None,
    *,
    good: float = DEFAULT_GOOD,
    poor: float = DEFAULT_POOR,
) -> LedState:
    """The LED state for ``scores`` (see the module docstring for the mapping)."""
    _check_thresholds(good, poor)
    known = [s for s in scores or () if s is not None and not math.isnan(s)]
    if not known:
        return LedState.OFF
    weakest = min(known)
    if weakest >= good:
        return LedState.STEADY
    return LedState.SLOW_BLINK if weakest >= poor else LedState.FAST_BLINK


@runtime_checkable
class StatusLed(Protocol):
    @property
    def state(self) -> LedState: ...

    def show(self, scores: Iterable[float | None] | None) -> LedState:
        """Mirror ``scores`` (None: idle); return the state shown."""
        ...

    def set(self, state: LedState) -> None:
        """Show ``state`` directly."""
        ...

    def close(self) -> None: ...


class _LedBase:
    def __init__(self, good: float, poor: float) -> None:
        _check_thresholds(good, poor)
        self._good, self._poor = good, poor
        self._state = LedState.OFF

    @property
    def state(self) -> LedState:
        return self._state

    def show(self, scores: Iterable[float | None] | None) -> LedState:
        self.set(led_state_for(scores, good=self._good, poor=self._poor))
        return self._state

    def set(self, state: LedState) -> None:
        self._state = state

    def close(self) -> None:
        self._state = LedState.OFF

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class NullLed(_LedBase):
    """No LED: remembers the state it would show (the demo and tests read :attr:`state`)."""

    def __init__(self, *, good: float = DEFAULT_GOOD, poor: float = DEFAULT_POOR) -> None:
        super().__init__(good, poor)


class GpioStatusLed(_LedBase):
    """An LED on a GPIO pin (BCM; pin → resistor → LED → ground) through ``gpiozero.LED``.

    ``pin_factory=None`` means gpiozero's default. Raises ConfigError for a bad pin number and
    LedError when the pin cannot be claimed. After :meth:`close` nothing is driven and
    :attr:`state` stays OFF. The pin is only touched when the state
    changes: scores update many times a second, and restarting gpiozero's blink thread on
    each update would make the blinking stutter.
    """

    def __init__(
        self,
        pin: int,
        *,
        pin_factory: Any = None,
        good: float = DEFAULT_GOOD,
        poor: float = DEFAULT_POOR,
    ) -> None:
        super().__init__(good, poor)
        if isinstance(pin, bool) or not isinstance(pin, int) or pin < 0:
            raise ConfigError(f"the status LED pin is a BCM GPIO number like 22, not {pin!r}")
        try:
            self._led: Any = LED(pin, initial_value=False, pin_factory=pin_factory)
        except PinInvalidPin as exc:
            raise ConfigError(f"status LED on GPIO {pin}: {exc}") from exc
        except (GPIOZeroError, OSError) as exc:
            # Pin busy, no pin factory (not a Pi, no GPIOZERO_PIN_FACTORY), or the driver failed.
            raise LedError(f"status LED on GPIO {pin}: {exc}") from exc
        self._pin = pin

    @property
    def pin(self) -> int:
        return self._pin

    def set(self, state: LedState) -> None:
        if self._led is None or state is self._state:
            return
        if state is LedState.OFF:
            self._led.off()
        elif state is LedState.STEADY:
            self._led.on()
        else:
            on_time, off_time = BLINK_TIMES[state]
            self._led.blink(on_time=on_time, off_time=off_time, background=True)
        self._state = state

    def close(self) -> None:
        led, self._led = self._led, None
        if led is not None:
            led.close()
        super().close()
