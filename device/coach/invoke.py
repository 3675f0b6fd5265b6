"""One traced, retried, deadline-bound LLM call: how every coach feature talks to its model."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from device.coach.providers import CoachModel
from device.coach.retry import RetryPolicy, call_with_retries
from device.coach.tracing import Tracing, callbacks_for

__all__ = ["invoke_model"]


def invoke_model(
    model: CoachModel,
    messages: list[dict[str, str]],
    *,
    what: str,
    deadline_s: float,
    user_id: str,
    tracing: Tracing | None = None,
    metadata: Mapping[str, Any] | None = None,
    thread_id: str | None = None,
    runnable: Any = None,
    policy: RetryPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``runnable`` (default: the model itself; e.g. the model with tools bound) invoked on
    ``messages`` with an Opik tracer for the feature, each attempt's HTTP timeout set to what
    is left of ``deadline_s``, retried as :func:`call_with_retries` decides. Returns the
    reply message; raises a :class:`~device.errors.CoachError` leaf."""
    target = model.llm if runnable is None else runnable
    callbacks = callbacks_for(
        tracing,
        feature=model.feature,
        user_id=user_id,
        provider=model.provider,
        model=model.model,
        metadata=metadata,
        thread_id=thread_id,
    )

    def attempt(remaining_s: float) -> Any:
        return target.invoke(
            messages,
            config={"callbacks": callbacks, "run_name": model.feature},
            timeout=model.timeout(remaining_s),
        )

    return call_with_retries(attempt, deadline_s=deadline_s, what=what, policy=policy, clock=clock, sleep=sleep)
