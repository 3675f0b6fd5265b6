"""Fixtures for the hardware tests: gpiozero's mock pins and a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hardware.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    # Not zero: a bug that treats 0.0 as "no time" must not hide behind the start value.
    return ManualClock(start=100.0)


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """A fresh MockFactory as gpiozero's default for one test (gpiozero's own fixture pattern).

    Installed here, never at import time, and torn down after the test so no pin or
    reservation leaks into the next one.
    """
    saved = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        # MockFactory keeps some state at class level; reset() clears it.
        factory.reset()
        Device.pin_factory = saved
