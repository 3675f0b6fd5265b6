"""Clocks for the hardware seams: the real one is ``time.monotonic``; a manual one for tests and demos."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock", "ManualClock"]

Clock = Callable[[], float]
"""Seconds on a monotonic scale: ``time.monotonic`` on the pedal."""


class ManualClock:
    """A monotonic clock that moves only when told to (tests; demos stepping a session)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (≥ 0) and return the new time."""
        if not seconds >= 0:
            raise ValueError(f"a monotonic clock cannot move by {seconds!r}")
        self._now += seconds
        return self._now
