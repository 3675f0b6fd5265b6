"""Footswitch gestures: the pure recogniser on tables of edges, then the gpiozero, scripted and
keyboard footswitches on gpiozero's mock pins, a manual clock, and a pseudo-terminal."""

from __future__ import annotations

import io
import os
import sys
import termios
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from device.errors import ConfigError, FootswitchError, FretCoachError
from hardware.clock import ManualClock
from hardware.footswitch import (
    Footswitch,
    FootswitchEvent,
    Gesture,
    GestureRecogniser,
    GestureTimings,
    GpioFootswitch,
    ScriptedFootswitch,
)
from hardware.keyboard_footswitch import KeyboardFootswitch, KeyRepeatDecoder, KeyRepeatTimings

PRESS, DOUBLE, HOLD, HOLD_LONG, BOTH_HOLD = (
    Gesture.PRESS,
    Gesture.DOUBLE,
    Gesture.HOLD,
    Gesture.HOLD_LONG,
    Gesture.BOTH_HOLD,
)

# Binary-exact times so "exactly at the threshold" means exactly, with no float rounding.
EXACT = GestureTimings(debounce_s=1 / 64, double_s=0.25, hold_s=0.5, hold_long_s=2.0, both_hold_s=1.0)

Edge = tuple[float, bool] | tuple[float, bool, int]


def bounce(t0: float, pressed: bool, edges: int = 5, span: float = 0.008) -> list[Edge]:
    """A contact that chatters ``edges`` times over ``span`` seconds and settles at ``pressed``."""
    levels = [pressed if (edges - 1 - k) % 2 == 0 else not pressed for k in range(edges)]
    return [(t0 + k * span / (edges - 1), level) for k, level in enumerate(levels)]


def run(
    edges: Sequence[Edge],
    until: float,
    *,
    timings: GestureTimings | None = None,
    switches: int = 1,
    poll_every: float | None = None,
) -> list[FootswitchEvent]:
    """Feed ``edges`` (time order) and poll up to ``until``, optionally polling in between."""
    rec = GestureRecogniser(switches, timings)
    out: list[FootswitchEvent] = []
    t = 0.0
    for edge in [*edges, (until, False, -1)]:
        if poll_every is not None:
            while t + poll_every < edge[0]:
                t += poll_every
                out += rec.poll(t)
        if edge[2:] == (-1,):
            break
        out += rec.feed(edge[1], edge[0], edge[2] if len(edge) == 3 else 0)
    out += rec.poll(until)
    return out


def kinds(events: Sequence[FootswitchEvent]) -> list[tuple[Gesture, int | None]]:
    return [(e.gesture, e.switch) for e in events]


def tap(t: float, length: float = 0.1, switch: int = 0) -> list[Edge]:
    return [(t, True, switch), (t + length, False, switch)]


# --- the recogniser, one switch, default timings ---------------------------------------------

SINGLE_CASES: list[tuple[str, list[Edge], float, list[tuple[Gesture, int | None]]]] = [
    ("clean tap", tap(0.0), 1.0, [(PRESS, 0)]),
    ("bouncy tap: 5 edges in 8 ms down and up", [*bounce(0.0, True), *bounce(0.15, False)], 1.0, [(PRESS, 0)]),
    ("bouncy tap: 9 edges in 4 ms", [*bounce(0.0, True, 9, 0.004), *bounce(0.12, False, 9, 0.004)], 1.0, [(PRESS, 0)]),
    ("two taps in the window", [*tap(0.0, 0.08), *tap(0.2, 0.08)], 1.0, [(DOUBLE, 0)]),
    ("very fast double tap, 30 ms apart", [*tap(0.0, 0.04), *tap(0.07, 0.04)], 1.0, [(DOUBLE, 0)]),
    (
        "bouncy double tap",
        [*bounce(0.0, True), *bounce(0.1, False), *bounce(0.25, True), *bounce(0.33, False)],
        1.0,
        [(DOUBLE, 0)],
    ),
    (
        "taps closer than the debounce merge into one",
        [(0.0, True), (0.05, False), (0.06, True), (0.1, False)],
        1.0,
        [(PRESS, 0)],
    ),
    ("second tap after the window: two presses", [*tap(0.0), *tap(0.5)], 1.5, [(PRESS, 0), (PRESS, 0)]),
    (
        "three quick taps: a double, then a press",
        [*tap(0.0, 0.05), *tap(0.15, 0.05), *tap(0.3, 0.05)],
        1.5,
        [(DOUBLE, 0), (PRESS, 0)],
    ),
    ("double whose second tap is held: no hold", [*tap(0.0, 0.05), (0.2, True), (3.0, False)], 4.0, [(DOUBLE, 0)]),
    ("long press: hold, and nothing on release", [(0.0, True), (1.0, False)], 2.0, [(HOLD, 0)]),
    ("5 s press: hold then hold-long", [(0.0, True), (6.0, False)], 7.0, [(HOLD, 0), (HOLD_LONG, 0)]),
    ("press still held at the end: hold only", [(0.0, True)], 3.0, [(HOLD, 0)]),
    ("bouncy long press", [*bounce(0.0, True), *bounce(1.0, False)], 2.0, [(HOLD, 0)]),
    (
        "noise spike while held is no release",
        [(0.0, True), (0.3, False), (0.305, True), (1.0, False)],
        2.0,
        [(HOLD, 0)],
    ),
    ("noise spikes while held in a tap", [(0.0, True), (0.03, False), (0.035, True), (0.1, False)], 1.0, [(PRESS, 0)]),
    ("noise spike while idle is nothing", [(0.0, True), (0.005, False)], 1.0, []),
    ("spike burst while idle is nothing", bounce(0.0, False, 6, 0.01), 1.0, []),
    ("tap right after a hold", [(0.0, True), (1.0, False), *tap(1.1)], 2.0, [(HOLD, 0), (PRESS, 0)]),
    (
        "double right after a hold",
        [(0.0, True), (1.0, False), *tap(1.05, 0.05), *tap(1.2, 0.05)],
        2.0,
        [(HOLD, 0), (DOUBLE, 0)],
    ),
    (
        "tap right after a hold-long",
        [(0.0, True), (5.5, False), *tap(5.6)],
        6.5,
        [(HOLD, 0), (HOLD_LONG, 0), (PRESS, 0)],
    ),
    ("a release with no press is nothing", [(0.0, False)], 1.0, []),
]


@pytest.mark.parametrize("poll_every", [None, 0.001, 0.07], ids=["no-polls", "poll-1ms", "poll-70ms"])
@pytest.mark.parametrize(
    ("edges", "until", "expected"), [c[1:] for c in SINGLE_CASES], ids=[c[0] for c in SINGLE_CASES]
)
def test_recogniser_reports_each_gesture_once_however_often_polled(
    edges: list[Edge], until: float, expected: list[tuple[Gesture, int | None]], poll_every: float | None
) -> None:
    assert kinds(run(edges, until, poll_every=poll_every)) == expected


EXACT_CASES: list[tuple[str, list[Edge], float, list[tuple[Gesture, int | None]]]] = [
    ("held exactly hold_s is a hold", [(0.0, True), (0.5, False)], 2.0, [(HOLD, 0)]),
    ("held just under hold_s is a tap", [(0.0, True), (0.5 - 1 / 128, False)], 2.0, [(PRESS, 0)]),
    (
        "second tap exactly double_s after the release is too late",
        [*tap(0.0, 0.125), *tap(0.375, 0.125)],
        2.0,
        [(PRESS, 0), (PRESS, 0)],
    ),
    (
        "second tap just inside double_s is a double",
        [*tap(0.0, 0.125), *tap(0.375 - 1 / 128, 0.125)],
        2.0,
        [(DOUBLE, 0)],
    ),
    ("a pulse exactly debounce_s long counts", [(0.0, True), (1 / 64, False)], 2.0, [(PRESS, 0)]),
    ("a pulse just under debounce_s is bounce", [(0.0, True), (1 / 128, False)], 2.0, []),
    (
        "a dropout exactly debounce_s long while held is a release",
        [(0.0, True), (0.125, False), (0.125 + 1 / 64, True), (0.25, False)],
        2.0,
        [(DOUBLE, 0)],
    ),
    ("held exactly hold_long_s is a hold-long", [(0.0, True), (2.0, False)], 3.0, [(HOLD, 0), (HOLD_LONG, 0)]),
    ("held just under hold_long_s is only a hold", [(0.0, True), (2.0 - 1 / 128, False)], 3.0, [(HOLD, 0)]),
    (
        "both held exactly both_hold_s",
        [(0.0, True, 0), (0.0, True, 1), (1.0, False, 0), (1.0, False, 1)],
        2.0,
        [(BOTH_HOLD, None)],
    ),
    (
        "both held just under both_hold_s is nothing",
        [(0.0, True, 0), (0.0, True, 1), (1.0 - 1 / 128, False, 0), (1.0, False, 1)],
        2.0,
        [],
    ),
]


@pytest.mark.parametrize(("edges", "until", "expected"), [c[1:] for c in EXACT_CASES], ids=[c[0] for c in EXACT_CASES])
def test_recogniser_thresholds_are_inclusive(
    edges: list[Edge], until: float, expected: list[tuple[Gesture, int | None]]
) -> None:
    assert kinds(run(edges, until, timings=EXACT, switches=2)) == expected


def test_press_comes_when_the_double_window_closes_not_before() -> None:
    rec = GestureRecogniser()
    assert rec.feed(True, 0.0) == []
    assert rec.feed(False, 0.1) == []
    assert rec.poll(0.419) == []  # release settles at 0.12; the window closes at 0.42
    assert rec.poll(0.5) == [FootswitchEvent(PRESS, 0, pytest.approx(0.42))]
    assert rec.poll(5.0) == []


def test_hold_is_reported_while_still_held_and_its_release_reports_nothing() -> None:
    rec = GestureRecogniser()
    rec.feed(True, 0.0)
    assert rec.poll(0.6) == []  # the press settled at 0.02, so the hold is due at 0.62
    assert rec.poll(0.7) == [FootswitchEvent(HOLD, 0, pytest.approx(0.62))]
    assert rec.is_pressed(0)
    assert rec.feed(False, 1.0) == []
    assert rec.poll(10.0) == []
    assert not rec.is_pressed(0)


def test_double_is_reported_as_the_second_tap_settles() -> None:
    rec = GestureRecogniser()
    rec.feed(True, 0.0)
    rec.feed(False, 0.08)
    rec.feed(True, 0.2)
    assert rec.poll(0.219) == []
    assert rec.poll(0.22) == [FootswitchEvent(DOUBLE, 0, pytest.approx(0.22))]


def test_bounce_delays_the_press_until_the_contact_settles() -> None:
    events = run([*bounce(0.0, True), *bounce(0.15, False)], 1.0)
    # The last release edge is at 0.158; it settles at 0.178 and the window closes at 0.478.
    assert events == [FootswitchEvent(PRESS, 0, pytest.approx(0.478))]


def test_repeated_levels_do_not_restart_the_debounce() -> None:
    rec = GestureRecogniser()
    rec.feed(True, 0.0)
    rec.feed(True, 0.015)
    rec.poll(0.021)
    assert rec.is_pressed(0)


def test_time_going_backwards_is_taken_as_now() -> None:
    rec = GestureRecogniser()
    rec.feed(True, 1.0)
    rec.poll(1.05)
    rec.feed(False, 1.04)  # e.g. a callback's clock read racing the poll thread's
    assert kinds(rec.poll(2.0)) == [(PRESS, 0)]


def test_zero_double_window_reports_press_on_release() -> None:
    rec = GestureRecogniser(timings=GestureTimings(double_s=0.0))
    rec.feed(True, 0.0)
    rec.feed(False, 0.1)
    assert rec.poll(0.125) == [FootswitchEvent(PRESS, 0, pytest.approx(0.12))]


def test_hold_long_can_be_switched_off() -> None:
    timings = GestureTimings(hold_long_s=None)
    assert kinds(run([(0.0, True), (9.0, False)], 10.0, timings=timings)) == [(HOLD, 0)]


def test_hold_long_threshold_is_configurable() -> None:
    events = run([(0.0, True), (4.0, False)], 5.0, timings=GestureTimings(hold_long_s=3.0))
    assert kinds(events) == [(HOLD, 0), (HOLD_LONG, 0)]
    assert events[1].t == pytest.approx(3.02)


def test_next_deadline_says_when_to_poll() -> None:
    rec = GestureRecogniser()
    assert rec.next_deadline() is None
    rec.feed(True, 0.0)
    assert rec.next_deadline() == pytest.approx(0.02)  # the press settles
    rec.poll(0.02)
    assert rec.next_deadline() == pytest.approx(0.62)  # the hold
    rec.feed(False, 0.1)
    rec.poll(0.125)
    assert rec.next_deadline() == pytest.approx(0.42)  # the window closes
    rec.poll(0.42)
    assert rec.next_deadline() is None


# --- the recogniser, two switches -------------------------------------------------------------

TWO_CASES: list[tuple[str, list[Edge], float, list[tuple[Gesture, int | None]]]] = [
    ("a tap on each switch says which", [*tap(0.0, 0.1, 1), *tap(1.0, 0.1, 0)], 2.0, [(PRESS, 1), (PRESS, 0)]),
    (
        "both held together",
        [(0.0, True, 0), (0.05, True, 1), (2.0, False, 0), (2.1, False, 1)],
        3.0,
        [(BOTH_HOLD, None)],
    ),
    (
        "both held, pressed with a slow second foot",
        [(0.0, True, 0), (0.5, True, 1), (2.0, False, 0), (2.1, False, 1)],
        3.0,
        [(BOTH_HOLD, None)],
    ),
    (
        "both held 6 s: one both-hold, no single holds",
        [(0.0, True, 0), (0.0, True, 1), (6.0, False, 0), (6.0, False, 1)],
        7.0,
        [(BOTH_HOLD, None)],
    ),
    ("both pressed briefly is nothing", [(0.0, True, 0), (0.02, True, 1), (0.3, False, 0), (0.35, False, 1)], 2.0, []),
    (
        "one foot lifts early: nothing, and the other is ignored until released",
        [(0.0, True, 0), (0.0, True, 1), (0.5, False, 1), (3.0, False, 0)],
        4.0,
        [],
    ),
    (
        "switch 0 held past its hold, then switch 1: both-hold, no hold-long",
        [(0.0, True, 0), (1.0, True, 1), (6.0, False, 0), (6.0, False, 1)],
        7.0,
        [(HOLD, 0), (BOTH_HOLD, None)],
    ),
    (
        "a tap on one while the other is held is swallowed",
        [(0.0, True, 0), *tap(1.0, 0.1, 1), (1.3, False, 0)],
        2.0,
        [(HOLD, 0)],
    ),
    (
        "tap on 0, then hold on 1 in 0's window: press 0 and hold 1",
        [*tap(0.0, 0.1, 0), (0.2, True, 1), (1.5, False, 1)],
        2.0,
        [(PRESS, 0), (HOLD, 1)],
    ),
    (
        "after a both-hold each switch taps again",
        [(0.0, True, 0), (0.0, True, 1), (1.5, False, 0), (1.5, False, 1), *tap(2.0, 0.1, 0), *tap(3.0, 0.1, 1)],
        4.0,
        [(BOTH_HOLD, None), (PRESS, 0), (PRESS, 1)],
    ),
    (
        "bouncy both-hold",
        [
            *[(t, p, 0) for t, p in bounce(0.0, True)],
            *[(t, p, 1) for t, p in bounce(0.03, True)],
            (1.5, False, 0),
            (1.5, False, 1),
        ],
        2.0,
        [(BOTH_HOLD, None)],
    ),
]


@pytest.mark.parametrize(("edges", "until", "expected"), [c[1:] for c in TWO_CASES], ids=[c[0] for c in TWO_CASES])
def test_two_switch_gestures(edges: list[Edge], until: float, expected: list[tuple[Gesture, int | None]]) -> None:
    assert kinds(run(edges, until, switches=2)) == expected
    assert kinds(run(edges, until, switches=2, poll_every=0.01)) == expected


def test_both_hold_is_timed_from_the_second_foot() -> None:
    events = run([(0.0, True, 0), (0.4, True, 1)], 3.0, switches=2)
    assert events == [FootswitchEvent(BOTH_HOLD, None, pytest.approx(1.42))]


def test_recogniser_rejects_unknown_switches() -> None:
    with pytest.raises(ValueError, match="out of range"):
        GestureRecogniser(1).feed(True, 0.0, switch=1)
    for count in (0, 3):
        with pytest.raises(ConfigError, match="1 or 2"):
            GestureRecogniser(count)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"debounce_s": -0.01},
        {"double_s": float("nan")},
        {"hold_s": float("inf")},
        {"hold_s": 0.01, "debounce_s": 0.02},
        {"hold_long_s": 0.5},
        {"hold_long_s": 0.6},
        {"both_hold_s": -1.0},
    ],
)
def test_nonsense_timings_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError) as info:
        GestureTimings(**kwargs)
    assert isinstance(info.value, FretCoachError)
    assert isinstance(info.value, ValueError)


# --- GpioFootswitch on gpiozero's mock pins ---------------------------------------------------


@pytest.fixture
def switch(mock_factory: MockFactory, clock: ManualClock) -> Iterator[GpioFootswitch]:
    fs = GpioFootswitch((17,), pin_factory=mock_factory, clock=clock, poll_interval=None)
    yield fs
    fs.close()


@pytest.fixture
def pair(mock_factory: MockFactory, clock: ManualClock) -> Iterator[GpioFootswitch]:
    fs = GpioFootswitch((17, 27), pin_factory=mock_factory, clock=clock, poll_interval=None)
    yield fs
    fs.close()


class Foot:
    """Drives a mock pin as a foot on a switch wired pin-to-ground, with contact bounce."""

    def __init__(self, factory: MockFactory, pin: int, clock: ManualClock) -> None:
        self.pin = factory.pin(pin)
        self.clock = clock

    def _level(self, pressed: bool) -> None:
        if pressed:
            self.pin.drive_low()
        else:
            self.pin.drive_high()

    def down(self, edges: int = 1, span: float = 0.008) -> None:
        self._edges(True, edges, span)

    def up(self, edges: int = 1, span: float = 0.008) -> None:
        self._edges(False, edges, span)

    def _edges(self, pressed: bool, edges: int, span: float) -> None:
        for k, (_, level) in enumerate(bounce(0.0, pressed, edges, span) if edges > 1 else [(0.0, pressed)]):
            if k:
                self.clock.advance(span / (edges - 1))
            self._level(level)


def settle(fs: GpioFootswitch, clock: ManualClock, seconds: float, step: float = 0.005) -> list[FootswitchEvent]:
    """Let ``seconds`` pass, polling as the poll thread would, and return what came out."""
    end = clock() + seconds
    while clock() < end:
        clock.advance(min(step, end - clock()))
        fs.poll()
    return fs.events()


def test_gpio_bouncy_press_is_one_press(switch: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock) -> None:
    foot = Foot(mock_factory, 17, clock)
    foot.down(edges=5, span=0.008)
    settle(switch, clock, 0.12)
    foot.up(edges=5, span=0.008)
    events = settle(switch, clock, 1.0)
    assert kinds(events) == [(PRESS, 0)]
    assert switch.get(timeout=0) is None


def test_gpio_tap_tap_is_one_double_and_no_press(
    switch: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock
) -> None:
    foot = Foot(mock_factory, 17, clock)
    foot.down(edges=3)
    events = settle(switch, clock, 0.08)
    foot.up(edges=3)
    events += settle(switch, clock, 0.1)
    foot.down(edges=3)
    events += settle(switch, clock, 0.08)
    assert kinds(events) == [(DOUBLE, 0)]  # as the second tap lands
    foot.up(edges=3)
    assert settle(switch, clock, 1.0) == []


def test_gpio_long_press_holds_while_held_and_release_says_nothing(
    switch: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock
) -> None:
    foot = Foot(mock_factory, 17, clock)
    start = clock()
    foot.down(edges=5)
    clock.advance(0.7)
    switch.poll()
    event = switch.get(timeout=0)
    assert event == FootswitchEvent(HOLD, 0, pytest.approx(start + 0.008 + 0.02 + 0.6))
    assert mock_factory.pin(17).state == 0  # still held
    foot.up(edges=5)
    assert settle(switch, clock, 2.0) == []


def test_gpio_five_second_hold_is_hold_long(
    switch: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock
) -> None:
    foot = Foot(mock_factory, 17, clock)
    foot.down()
    assert kinds(settle(switch, clock, 4.9, step=0.1)) == [(HOLD, 0)]
    assert kinds(settle(switch, clock, 0.2, step=0.1)) == [(HOLD_LONG, 0)]
    foot.up()
    assert settle(switch, clock, 1.0) == []


def test_gpio_tap_right_after_a_hold_is_a_press(
    switch: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock
) -> None:
    foot = Foot(mock_factory, 17, clock)
    foot.down()
    settle(switch, clock, 1.0)
    foot.up(edges=3)
    settle(switch, clock, 0.05)
    foot.down(edges=3)
    settle(switch, clock, 0.1)
    foot.up(edges=3)
    assert kinds(settle(switch, clock, 1.0)) == [(PRESS, 0)]


def test_gpio_two_switches_report_which_switch(
    pair: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock
) -> None:
    left, right = Foot(mock_factory, 17, clock), Foot(mock_factory, 27, clock)
    right.down(edges=3)
    settle(pair, clock, 0.1)
    right.up(edges=3)
    assert kinds(settle(pair, clock, 1.0)) == [(PRESS, 1)]
    left.down()
    assert kinds(settle(pair, clock, 1.0)) == [(HOLD, 0)]
    left.up()
    assert pair.switches == 2
    assert pair.pins == (17, 27)


def test_gpio_both_switches_held_is_both_hold(
    pair: GpioFootswitch, mock_factory: MockFactory, clock: ManualClock
) -> None:
    left, right = Foot(mock_factory, 17, clock), Foot(mock_factory, 27, clock)
    left.down(edges=5)
    clock.advance(0.1)
    right.down(edges=5)
    events = settle(pair, clock, 1.5)
    assert kinds(events) == [(BOTH_HOLD, None)]
    left.up()
    right.up()
    assert settle(pair, clock, 1.0) == []


def test_gpio_uses_gpiozero_default_factory_when_none_given(mock_factory: MockFactory, clock: ManualClock) -> None:
    with GpioFootswitch([17], clock=clock, poll_interval=None) as fs:
        foot = Foot(mock_factory, 17, clock)
        foot.down()
        clock.advance(0.1)
        foot.up()
        assert kinds(settle(fs, clock, 1.0)) == [(PRESS, 0)]


def test_gpio_close_releases_the_pins(mock_factory: MockFactory, clock: ManualClock) -> None:
    fs = GpioFootswitch((17, 27), pin_factory=mock_factory, clock=clock, poll_interval=None)
    fs.close()
    fs.close()  # idempotent
    assert fs.closed
    foot = Foot(mock_factory, 17, clock)
    foot.down()
    clock.advance(1.0)
    fs.poll()
    assert fs.get(timeout=0) is None
    assert fs.events() == []
    # The pins are free again: nothing else could claim them if close() had leaked them.
    for pin in (17, 27):
        Button(pin, pin_factory=mock_factory).close()


@pytest.mark.parametrize("pins", [(), (17, 17), (17, 27, 22), (-1,), (True,), ("17",)])
def test_gpio_bad_pin_lists_are_config_errors(pins: tuple[object, ...], mock_factory: MockFactory) -> None:
    with pytest.raises(ConfigError):
        GpioFootswitch(pins, pin_factory=mock_factory, poll_interval=None)  # type: ignore[arg-type]


def test_gpio_unknown_pin_is_a_config_error_and_releases_the_pins_it_took(mock_factory: MockFactory) -> None:
    with pytest.raises(ConfigError, match="GPIO"):
        GpioFootswitch((17, 99), pin_factory=mock_factory, poll_interval=None)
    Button(17, pin_factory=mock_factory).close()


def test_gpio_pin_in_use_is_a_hardware_error_and_releases_the_pins_it_took(mock_factory: MockFactory) -> None:
    taken = Button(27, pin_factory=mock_factory)
    try:
        with pytest.raises(FootswitchError, match="GPIO"):
            GpioFootswitch((17, 27), pin_factory=mock_factory, poll_interval=None)
        Button(17, pin_factory=mock_factory).close()  # the pin it took first was given back
    finally:
        taken.close()


def test_gpio_poll_thread_delivers_press_on_real_time(mock_factory: MockFactory) -> None:
    timings = GestureTimings(debounce_s=0.005, double_s=0.05, hold_s=0.3)
    with GpioFootswitch((17,), pin_factory=mock_factory, timings=timings, poll_interval=0.05) as fs:
        assert isinstance(fs, Footswitch)
        pin = mock_factory.pin(17)
        started = time.monotonic()
        pin.drive_low()
        time.sleep(0.03)
        pin.drive_high()
        event = fs.get(timeout=1.0)
        assert event is not None
        assert event.gesture is PRESS
        assert time.monotonic() - started < 0.9
        pin.drive_low()
        event = fs.get(timeout=1.0)
        assert event is not None
        assert event.gesture is HOLD
        assert pin.state == 0  # reported while still held
        pin.drive_high()


def test_gpio_close_wakes_a_blocked_get(mock_factory: MockFactory) -> None:
    fs = GpioFootswitch((17,), pin_factory=mock_factory)
    timer = threading.Timer(0.05, fs.close)
    timer.start()
    started = time.monotonic()
    assert fs.get() is None
    assert time.monotonic() - started < 1.0
    timer.join()


# --- ScriptedFootswitch -----------------------------------------------------------------------


def test_scripted_footswitch_plays_its_gestures_on_time(clock: ManualClock) -> None:
    start = clock()
    fs = ScriptedFootswitch([(1.0, HOLD), (0.5, PRESS), FootswitchEvent(DOUBLE, 0, 2.0)], clock=clock)
    assert isinstance(fs, Footswitch)
    assert fs.get(timeout=0) is None
    clock.advance(0.5)
    assert fs.get(timeout=0) == FootswitchEvent(PRESS, 0, start + 0.5)
    assert fs.get(timeout=0) is None
    clock.advance(2.0)
    assert fs.events() == [FootswitchEvent(HOLD, 0, start + 1.0), FootswitchEvent(DOUBLE, 0, start + 2.0)]
    assert fs.done
    fs.close()


def test_scripted_footswitch_speed_compresses_the_script(clock: ManualClock) -> None:
    start = clock()
    fs = ScriptedFootswitch([(10.0, PRESS), (20.0, BOTH_HOLD)], switches=2, clock=clock, speed=10.0)
    clock.advance(1.0)
    assert fs.events() == [FootswitchEvent(PRESS, 0, start + 1.0)]
    clock.advance(1.0)
    assert fs.events() == [FootswitchEvent(BOTH_HOLD, None, start + 2.0)]


def test_scripted_footswitch_waits_in_real_time() -> None:
    fs = ScriptedFootswitch([(0.05, PRESS)])
    started = time.monotonic()
    assert fs.get(timeout=0.01) is None
    event = fs.get(timeout=1.0)
    assert event is not None
    assert event.gesture is PRESS
    assert 0.04 < time.monotonic() - started < 0.9


def test_scripted_footswitch_close_ends_waiting() -> None:
    fs = ScriptedFootswitch([(60.0, PRESS)])
    threading.Timer(0.05, fs.close).start()
    started = time.monotonic()
    assert fs.get() is None
    assert time.monotonic() - started < 1.0
    assert fs.events() == []


@pytest.mark.parametrize(
    ("script", "switches"),
    [
        ([(-1.0, PRESS)], 1),
        ([(1.0, BOTH_HOLD)], 1),
        ([FootswitchEvent(PRESS, 1, 1.0)], 1),
        ([FootswitchEvent(PRESS, None, 1.0)], 2),
        ([FootswitchEvent(BOTH_HOLD, 0, 1.0)], 2),
        ([(float("nan"), PRESS)], 1),
    ],
)
def test_scripted_footswitch_rejects_impossible_scripts(
    script: list[FootswitchEvent | tuple[float, Gesture]], switches: int
) -> None:
    with pytest.raises(ConfigError):
        ScriptedFootswitch(script, switches=switches)


# --- the keyboard: auto-repeat decoding, then a real pseudo-terminal --------------------------

X11 = (0.66, 0.04)  # auto-repeat delay and interval, X11's defaults
CONSOLE = (0.25, 0.033)  # the Linux console's


def held_key(t0: float, until: float, repeat: tuple[float, float]) -> list[float]:
    """The characters a terminal sends while a key is held from ``t0`` to ``until``."""
    delay, interval = repeat
    times = [t0]
    t = t0 + delay
    while t < until:
        times.append(t)
        t += interval
    return times


def decode(chars: Sequence[float | tuple[float, int]], until: float, switches: int = 1) -> list[FootswitchEvent]:
    dec = KeyRepeatDecoder(switches)
    out: list[FootswitchEvent] = []
    for c in chars:
        t, key = (c, 0) if isinstance(c, float) else c
        out += dec.key(key, t)
    return out + dec.poll(until)


KEY_CASES: list[tuple[str, list[float], float, list[tuple[Gesture, int | None]]]] = [
    ("one space is a press", [0.0], 2.0, [(PRESS, 0)]),
    ("two spaces 250 ms apart are a double", [0.0, 0.25], 2.0, [(DOUBLE, 0)]),
    ("two spaces 150 ms apart are a double", [0.0, 0.15], 2.0, [(DOUBLE, 0)]),
    ("two spaces a second apart are two presses", [0.0, 1.0], 3.0, [(PRESS, 0), (PRESS, 0)]),
    ("held space on X11 is a hold, no press", held_key(0.0, 1.5, X11), 3.0, [(HOLD, 0)]),
    ("held space on the console is a hold", held_key(0.0, 1.5, CONSOLE), 3.0, [(HOLD, 0)]),
    ("space held 6 s is hold then hold-long", held_key(0.0, 6.0, X11), 8.0, [(HOLD, 0), (HOLD_LONG, 0)]),
    ("a tap right after a hold", [*held_key(0.0, 1.5, X11), 1.8], 4.0, [(HOLD, 0), (PRESS, 0)]),
    ("a double whose second tap is held", [0.0, *held_key(0.2, 2.0, X11)], 4.0, [(DOUBLE, 0)]),
]


@pytest.mark.parametrize(("chars", "until", "expected"), [c[1:] for c in KEY_CASES], ids=[c[0] for c in KEY_CASES])
def test_keyboard_decoding(chars: list[float], until: float, expected: list[tuple[Gesture, int | None]]) -> None:
    assert kinds(decode(chars, until)) == expected


def test_keyboard_press_waits_out_the_repeat_delay_and_hold_comes_on_time() -> None:
    dec = KeyRepeatDecoder()
    dec.key(0, 0.0)
    assert dec.poll(0.69) == []  # could still be a hold whose repeats have not started
    assert kinds(dec.poll(0.7)) == [(PRESS, 0)]
    dec = KeyRepeatDecoder()
    out: list[FootswitchEvent] = []
    for t in held_key(0.0, 0.75, X11):
        out += dec.key(0, t)
    assert kinds(out) == [(HOLD, 0)]
    assert out[0].t == pytest.approx(0.62)  # held from the first character, not the first repeat


def test_keyboard_two_keys_are_two_switches() -> None:
    events = decode([(0.0, 0), (0.3, 1)], 2.0, switches=2)
    assert kinds(events) == [(PRESS, 0), (PRESS, 1)]


def test_keyboard_repeat_timings_are_validated() -> None:
    with pytest.raises(ConfigError):
        KeyRepeatTimings(tap_s=0.2, repeat_gap_s=0.1)
    with pytest.raises(ConfigError, match="debounce"):
        KeyRepeatDecoder(timings=GestureTimings(debounce_s=0.06))


def test_keyboard_footswitch_without_a_terminal_produces_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        os.write(write_end, b"   ")
        for stream in (pipe, io.StringIO("  ")):
            with KeyboardFootswitch(stream=stream) as fs:
                assert not fs.active
                assert fs.get(timeout=0.02) is None
        monkeypatch.setattr(sys, "stdin", pipe)  # the default stream, piped
        with KeyboardFootswitch() as fs:
            assert not fs.active
            assert fs.get(timeout=0.02) is None
    os.close(write_end)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
def test_keyboard_footswitch_reads_a_terminal_and_restores_it() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "rb", buffering=0, closefd=False) as tty_in:
            before = termios.tcgetattr(slave)
            fs = KeyboardFootswitch(
                stream=tty_in,
                timings=GestureTimings(debounce_s=0.005, double_s=0.05, hold_s=0.3),
                repeat=KeyRepeatTimings(tap_s=0.02, repeat_gap_s=0.05, repeat_delay_s=0.15),
            )
            try:
                assert fs.active
                lflag = termios.tcgetattr(slave)[3]
                assert not lflag & termios.ICANON
                assert not lflag & termios.ECHO
                assert lflag & termios.ISIG  # Ctrl-C still interrupts
                os.write(master, b"x ")  # keys that are not switches are ignored
                event = fs.get(timeout=1.0)
                assert event is not None
                assert (event.gesture, event.switch) == (PRESS, 0)
            finally:
                fs.close()
            assert not fs.active
            assert termios.tcgetattr(slave) == before
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize("keys", ["", "  ", "\x1b", "abc"])
def test_keyboard_keys_are_validated(keys: str) -> None:
    with pytest.raises(ConfigError):
        KeyboardFootswitch(keys=keys, stream=io.StringIO())
