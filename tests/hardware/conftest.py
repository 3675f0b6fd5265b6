"""Fixtures for the hardware tests: a clock the test moves by hand (mock pins: tests/conftest.py)."""

from __future__ import annotations

import pytest

from hardware.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    # Not zero: a bug that treats 0.0 as "no time" must not hide behind the start value.
    return ManualClock(start=100.0)
