"""The AI coach: providers, retries, tracing, the live coach and its rule-based fallbacks.

Importing this package is cheap: langchain-openai and opik are imported only when a model
or a tracer is first built, which the live coach does on its own worker thread.
"""

from __future__ import annotations

from device.coach.fallbacks import RULE_VARIANTS, no_notes_line, rule_line
from device.coach.live import (
    DEFAULT_FALLBACK_AFTER_S,
    DEFAULT_INTERVAL_S,
    ONE_SHOT_WAIT_S,
    CoachContext,
    CoachLine,
    LiveCoach,
    ask_live_line,
    coach_line,
)
from device.coach.prompts import LINE_LIMIT, LiveFacts, clean_answer, fit_line, live_messages
from device.coach.providers import (
    FEATURES,
    PROVIDERS,
    CoachModel,
    Feature,
    FeatureProfile,
    OfflineReason,
    ProviderChoice,
    ProviderName,
    ProviderSpec,
    build_chat_model,
    resolve_provider,
)
from device.coach.retry import Deadline, RetryPolicy, call_with_retries, is_retryable, retry_after_s
from device.coach.tracing import Tracing, TracingConfig, callbacks_for

__all__ = [
    "DEFAULT_FALLBACK_AFTER_S",
    "DEFAULT_INTERVAL_S",
    "FEATURES",
    "LINE_LIMIT",
    "ONE_SHOT_WAIT_S",
    "PROVIDERS",
    "RULE_VARIANTS",
    "CoachContext",
    "CoachLine",
    "CoachModel",
    "Deadline",
    "Feature",
    "FeatureProfile",
    "LiveCoach",
    "LiveFacts",
    "OfflineReason",
    "ProviderChoice",
    "ProviderName",
    "ProviderSpec",
    "RetryPolicy",
    "Tracing",
    "TracingConfig",
    "ask_live_line",
    "build_chat_model",
    "call_with_retries",
    "callbacks_for",
    "clean_answer",
    "coach_line",
    "fit_line",
    "is_retryable",
    "live_messages",
    "no_notes_line",
    "resolve_provider",
    "retry_after_s",
    "rule_line",
]
