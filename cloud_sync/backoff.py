"""Exponential backoff with jitter, so a fleet of pedals does not retry in lockstep."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays that double per consecutive failure up to ``cap_s``, each drawn from [d/2, d].

    "Equal jitter": never shorter than half the nominal delay (a down server gets real rest)
    and spread over the other half (pedals that lost the link together come back apart).
    """

    def __init__(self, base_s: float = 2.0, cap_s: float = 300.0, rng: Callable[[], float] = random.random) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before the next try."""
        self.failures += 1
        nominal = min(self.cap_s, self.base_s * 2.0 ** min(self.failures - 1, 32))
        return nominal / 2 + self._rng() * nominal / 2

    def reset(self) -> None:
        self.failures = 0
