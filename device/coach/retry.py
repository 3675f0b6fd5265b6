"""Retries for LLM calls: exponential backoff with jitter, Retry-After honoured, deadline-bound.

The provider clients are built with ``max_retries=0``; this module is the only retry layer,
so one budget governs everything: the total time of all attempts *and* all waits never
exceeds the feature's deadline. Before each wait we check that the wait plus a minimal
attempt still fits; if a server's ``Retry-After`` asks for longer than what is left we give
up at once rather than sleep into a deadline we cannot meet. Each attempt is handed the time
that remains, which the caller uses as that attempt's HTTP timeout.

Retried: HTTP 408, 409, 429, 5xx, timeouts, connection errors (what OpenAI's own client
retries). Not retried: 400, 401, 403, 404, 422, validation or parsing errors, malformed or
empty answers — trying again would fail the same way and only burn the budget.

Final failures become one-line :class:`~device.errors.CoachError` leaves:
``CoachUnavailableError`` (unreachable, 5xx, 429 out of time), ``CoachTimeoutError`` (the
deadline ran out), ``CoachAuthError`` (401/403), ``CoachRequestError`` (400/404/422: model
name or request rejected) and ``CoachResponseError`` (malformed, empty or invalid answer).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import tenacity

from device.errors import (
    CoachAuthError,
    CoachError,
    CoachRequestError,
    CoachResponseError,
    CoachTimeoutError,
    CoachUnavailableError,
)

__all__ = [
    "Deadline",
    "RetryPolicy",
    "call_with_retries",
    "is_retryable",
    "retry_after_s",
    "status_of",
    "translate_error",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff shape. ``base_s·2^(n-1)`` capped at ``max_backoff_s``, plus up to ``jitter_s``.

    ``min_attempt_s``: never start an attempt with less time than this left (it could not
    succeed, and it would push the caller past its deadline).
    """

    base_s: float = 0.5
    max_backoff_s: float = 8.0
    jitter_s: float = 0.5
    min_attempt_s: float = 0.25
    max_attempts: int = 6


class Deadline:
    """A fixed point in time on an injectable monotonic clock."""

    def __init__(self, budget_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.budget_s = budget_s
        self.start_s = clock()
        self.at_s = self.start_s + budget_s

    def remaining(self) -> float:
        return self.at_s - self._clock()

    def elapsed(self) -> float:
        return self._clock() - self.start_s


def status_of(exc: BaseException) -> int | None:
    """The HTTP error status an error carries (openai ``APIStatusError``, httpx), if any.

    A 2xx/3xx is not an error status: a JSON decoding error can carry the 200 response it
    failed to read, and that is an unusable answer, not a rejected request.
    """
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) and status >= 400 else None


def _headers(exc: BaseException) -> Any:
    return getattr(getattr(exc, "response", None), "headers", None)


def retry_after_s(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``Retry-After`` as seconds or
    as an HTTP-date (relative to ``now``, wall-clock). ``None`` if absent or unreadable."""
    headers = _headers(exc)
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _is_timeout(exc: BaseException) -> bool:
    import httpx
    import openai

    return isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | TimeoutError)


def _is_connection(exc: BaseException) -> bool:
    import httpx
    import openai

    return isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError)


def is_retryable(exc: BaseException) -> bool:
    """True for transient failures: 408/409/429/5xx, timeouts, connection errors."""
    status = status_of(exc)
    if status is not None:
        return status in _RETRY_STATUSES or status >= 500
    return _is_timeout(exc) or _is_connection(exc)


def translate_error(exc: BaseException, what: str, *, gave_up: str = "") -> CoachError:
    """One-line :class:`CoachError` for a final failure of ``what`` (e.g. 'live coach (openai gpt-4o-mini)')."""
    status = status_of(exc)
    suffix = f"; {gave_up}" if gave_up else ""
    if status in (401, 403):
        return CoachAuthError(f"{what}: the provider refused the API key (HTTP {status})")
    if status == 404:
        return CoachRequestError(f"{what}: model or endpoint not found (HTTP 404); check the model name and base URL")
    if status == 429:
        return CoachUnavailableError(f"{what}: rate-limited (HTTP 429){suffix}")
    if status is not None and status >= 500:
        return CoachUnavailableError(f"{what}: provider error (HTTP {status}){suffix}")
    if status is not None:
        return CoachRequestError(f"{what}: request rejected (HTTP {status}): {_first_line(exc)}")
    if _is_timeout(exc):
        return CoachTimeoutError(f"{what}: no answer in time{suffix}")
    if _is_connection(exc):
        return CoachUnavailableError(f"{what}: cannot reach the provider{suffix}")
    # Malformed JSON, schema validation, parser errors.
    return CoachResponseError(f"{what}: unusable answer ({type(exc).__name__}: {_first_line(exc)})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def call_with_retries(
    attempt: Callable[[float], T],
    *,
    deadline_s: float,
    what: str,
    policy: RetryPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt(remaining_s)`` until it succeeds, fails for good, or the deadline nears.

    ``attempt`` receives the seconds left in the budget and should use them as its timeout.
    The total time including waits stays within ``deadline_s`` (plus the last attempt's own
    overrun if the transport ignores its timeout). Raises :class:`CoachError` (``from`` the
    last low-level error); a :class:`CoachError` raised by ``attempt`` passes through.
    """
    policy = policy or RetryPolicy()
    rng = rng or random.Random()
    deadline = Deadline(deadline_s, clock)
    gave_up = ""

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            server_wait = retry_after_s(exc, wall_clock)
            if server_wait is not None:
                return server_wait
        backoff = min(policy.max_backoff_s, policy.base_s * 2.0 ** (state.attempt_number - 1))
        return backoff + rng.uniform(0.0, policy.jitter_s)

    def stop(state: tenacity.RetryCallState) -> bool:
        nonlocal gave_up
        left = deadline.remaining()
        if state.attempt_number >= policy.max_attempts:
            gave_up = f"gave up after {state.attempt_number} attempts"
            return True
        if left - state.upcoming_sleep < policy.min_attempt_s:
            gave_up = (
                f"next try in {state.upcoming_sleep:.1f} s would pass the {deadline.budget_s:.0f} s deadline"
                if left > policy.min_attempt_s
                else f"the {deadline.budget_s:.0f} s deadline ran out"
            )
            return True
        return False

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "%s: attempt %d failed (%s); retrying in %.2f s",
            what,
            state.attempt_number,
            _first_line(exc) if exc else "?",
            state.upcoming_sleep,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: is_retryable(e) and not isinstance(e, CoachError)),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(lambda: attempt(deadline.remaining()))
    except CoachError:
        raise
    except Exception as exc:
        if not gave_up and is_retryable(exc):
            gave_up = "out of time"
        raise translate_error(exc, what, gave_up=gave_up) from exc
