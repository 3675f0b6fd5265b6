"""The status LED: the score-to-blink mapping, and the gpiozero LED on mock pins."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gpiozero
import pytest
from gpiozero.pins.mock import MockFactory

from device.errors import ConfigError, LedError
from hardware.led import BLINK_TIMES, GpioStatusLed, LedState, NullLed, StatusLed, led_state_for

NAN = float("nan")


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        (None, LedState.OFF),
        ([], LedState.OFF),
        ([None, None, None], LedState.OFF),
        ([NAN, None], LedState.OFF),
        ([95.0, 88.0, 71.0], LedState.STEADY),
        ([70.0, 100.0, 70.0], LedState.STEADY),  # exactly good is good
        ([69.9, 100.0, 100.0], LedState.SLOW_BLINK),
        ([90.0, 40.0, 90.0], LedState.SLOW_BLINK),  # exactly poor is not poor
        ([90.0, 90.0, 39.9], LedState.FAST_BLINK),
        ([None, 12.0, 95.0], LedState.FAST_BLINK),  # unmeasured scores are skipped
        ([NAN, 80.0], LedState.STEADY),
        ((s for s in (55.0, 85.0)), LedState.SLOW_BLINK),  # any iterable
        ([0.0], LedState.FAST_BLINK),
    ],
)
def test_led_mirrors_the_weakest_score(scores: Any, expected: LedState) -> None:
    assert led_state_for(scores) is expected


def test_led_thresholds_are_configurable() -> None:
    assert led_state_for([85.0], good=90.0, poor=80.0) is LedState.SLOW_BLINK
    assert led_state_for([75.0], good=90.0, poor=80.0) is LedState.FAST_BLINK
    assert led_state_for([50.0], good=50.0, poor=50.0) is LedState.STEADY


@pytest.mark.parametrize(("good", "poor"), [(40.0, 70.0), (101.0, 40.0), (70.0, -1.0), (NAN, 40.0)])
def test_led_nonsense_thresholds_are_config_errors(good: float, poor: float) -> None:
    with pytest.raises(ConfigError):
        led_state_for([50.0], good=good, poor=poor)
    with pytest.raises(ConfigError):
        NullLed(good=good, poor=poor)


def test_blinking_is_faster_when_weaker() -> None:
    slow, fast = BLINK_TIMES[LedState.SLOW_BLINK], BLINK_TIMES[LedState.FAST_BLINK]
    assert sum(fast) < sum(slow)


def test_null_led_remembers_what_it_would_show() -> None:
    with NullLed() as led:
        assert isinstance(led, StatusLed)
        assert led.state is LedState.OFF
        assert led.show([30.0, 90.0]) is LedState.FAST_BLINK
        assert led.state is LedState.FAST_BLINK
        led.set(LedState.STEADY)
        assert led.state is LedState.STEADY
    assert led.state is LedState.OFF


@pytest.fixture
def led(mock_factory: MockFactory) -> Iterator[GpioStatusLed]:
    status = GpioStatusLed(22, pin_factory=mock_factory)
    yield status
    status.close()


def test_gpio_led_is_off_idle_and_on_when_all_scores_are_good(led: GpioStatusLed, mock_factory: MockFactory) -> None:
    pin = mock_factory.pin(22)
    assert isinstance(led, StatusLed)
    assert pin.state == 0
    assert led.show([80.0, 90.0, 75.0]) is LedState.STEADY
    assert pin.state == 1
    assert led.show(None) is LedState.OFF
    assert pin.state == 0


def test_gpio_led_blinks_when_a_score_is_weak(led: GpioStatusLed, mock_factory: MockFactory) -> None:
    pin = mock_factory.pin(22)
    pin.clear_states()
    assert led.show([90.0, 20.0, 90.0]) is LedState.FAST_BLINK
    time.sleep(0.4)  # about three 125 ms half-periods
    levels = [s.state for s in pin.states]
    assert levels.count(True) >= 2
    assert levels.count(False) >= 2
    led.show([90.0, 90.0, 90.0])
    assert pin.state == 1  # blinking stopped, steady on


def test_gpio_led_touches_the_pin_only_when_the_state_changes(
    led: GpioStatusLed, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[float, float]] = []
    real_blink = gpiozero.LED.blink

    def counting_blink(self: Any, on_time: float = 1, off_time: float = 1, **kwargs: Any) -> None:
        calls.append((on_time, off_time))
        real_blink(self, on_time=on_time, off_time=off_time, **kwargs)

    monkeypatch.setattr(gpiozero.LED, "blink", counting_blink)
    for weakest in (60.0, 55.0, 50.0, 45.0):
        led.show([weakest, 90.0])
    assert calls == [BLINK_TIMES[LedState.SLOW_BLINK]]
    led.show([10.0])
    assert calls == [BLINK_TIMES[LedState.SLOW_BLINK], BLINK_TIMES[LedState.FAST_BLINK]]


def test_gpio_led_close_turns_it_off_and_releases_the_pin(mock_factory: MockFactory) -> None:
    status = GpioStatusLed(22, pin_factory=mock_factory)
    status.show([10.0])
    status.close()
    status.close()  # idempotent
    assert status.state is LedState.OFF
    status.show([90.0])  # after close: remembered as off, the pin is not driven
    assert status.state is LedState.OFF
    again = gpiozero.LED(22, pin_factory=mock_factory)
    assert again.value == 0
    again.close()


def test_gpio_led_uses_gpiozero_default_factory(mock_factory: MockFactory) -> None:
    with GpioStatusLed(23) as status:
        status.show([99.0])
        assert mock_factory.pin(23).state == 1


@pytest.mark.parametrize("pin", [-1, True, "22", 99])
def test_gpio_led_bad_pin_is_a_config_error(pin: Any, mock_factory: MockFactory) -> None:
    with pytest.raises(ConfigError):
        GpioStatusLed(pin, pin_factory=mock_factory)


def test_gpio_led_pin_in_use_is_a_hardware_error(mock_factory: MockFactory) -> None:
    taken = gpiozero.LED(22, pin_factory=mock_factory)
    try:
        with pytest.raises(LedError, match="GPIO 22"):
            GpioStatusLed(22, pin_factory=mock_factory)
    finally:
        taken.close()
