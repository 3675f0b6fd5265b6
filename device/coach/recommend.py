"""AI Mode: what to practise next, from the LLM when it answers well, from the rules when not.

:class:`Recommender` is the pedal's planner (the app calls it on a worker) and the engine of
``fretcoach recommend``:

1. Unless a new plan is asked for, a plan not yet played and younger than 24 h is reused
   (made here, or pulled from the dashboard).
2. Otherwise the last 5 sessions (the local store, merged with the cloud's when it is
   configured and answers) go to the LLM, which must answer with a structured
   :class:`~device.coach.recommendation.PracticeRecommendation` through a forced function
   call (the one structured-output method every provider here supports, llama.cpp included;
   see DESIGN's facts). The answer is validated: known scale, scale type matching it, enums
   and ranges.
3. No LLM configured, a failed call, or an invalid answer: the rule-based plan from the same
   rules and the player's own numbers, with the reason kept for the screen and the CLI.
4. The plan is saved with a fresh UUID (queued for ``ai_practice_plans``); the session that
   plays it marks it executed (:class:`device.session.recorder.Recorder`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from device.coach.history import SessionHistory, merge_recent
from device.coach.invoke import invoke_model
from device.coach.prompts import REASONING_LIMIT, clean_answer, fit_line, recommendation_messages
from device.coach.providers import CoachModel, OfflineReason, build_chat_model
from device.coach.recommendation import (
    PracticeRecommendation,
    recommendation_of,
    rule_based_plan,
    to_plan_record,
)
from device.coach.retry import RetryPolicy
from device.coach.tracing import Tracing, TracingConfig
from device.config import Settings
from device.errors import CoachError, CoachResponseError
from device.session.models import PlanRecord, SessionRecord, to_iso
from device.session.store import SessionStore

__all__ = ["PLAN_REUSE", "Plan", "Recommender", "ask_recommendation"]

log = logging.getLogger(__name__)

PLAN_REUSE: Final = timedelta(hours=24)
RECENT_SESSIONS: Final = 5
PlanSource = Literal["llm", "rules"]
_TOOL_NAME: Final = PracticeRecommendation.__name__
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan ready to show: the stored record, what it recommends, and where it came from."""

    record: PlanRecord
    recommendation: PracticeRecommendation
    source: PlanSource
    reused: bool = False
    reason: str | None = None  # why the rules made it (offline, LLM error, invalid answer)

    @property
    def offline(self) -> bool:
        return self.source != "llm"

    def as_dict(self) -> dict[str, Any]:
        return {
            "practice_id": self.record.practice_id,
            "user_id": self.record.user_id,
            **self.recommendation.model_dump(),
            "source": self.source,
            "reused": self.reused,
            "reason": self.reason,
            "generated_at": to_iso(self.record.generated_at),
        }


def _arguments(reply: Any) -> dict[str, Any]:
    """The recommendation's fields from the model's reply: its forced function call, or (small
    local models sometimes answer in the content instead) a JSON object in the text."""
    for call in getattr(reply, "tool_calls", None) or []:
        if call.get("name") == _TOOL_NAME and isinstance(call.get("args"), dict):
            return dict(call["args"])
    bad = getattr(reply, "invalid_tool_calls", None) or []
    content = getattr(reply, "content", "")
    text = _FENCE.sub("", content.strip()) if isinstance(content, str) else ""
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return obj
    if bad:
        raise CoachResponseError(f"malformed function call: {str(bad[0].get('error') or '')[:120]}")
    raise CoachResponseError("the answer had no recommendation in it")


def _validated(args: dict[str, Any]) -> PracticeRecommendation:
    try:
        rec = PracticeRecommendation.model_validate(args).check_consistent()
    except ValueError as exc:
        # pydantic's message runs over many lines; the first error is the one to show.
        first = str(exc).strip().splitlines()
        detail = " ".join(first[1:3]) if len(first) > 1 else (first[0] if first else "invalid")
        raise CoachResponseError(f"invalid recommendation: {detail[:160]}") from exc
    reasoning = fit_line(clean_answer(rec.reasoning), REASONING_LIMIT)
    if len(reasoning.split()) < 3:
        raise CoachResponseError("invalid recommendation: no reasoning")
    return rec.model_copy(update={"reasoning": reasoning})


def ask_recommendation(
    model: CoachModel,
    recent: Sequence[SessionRecord],
    *,
    user_id: str,
    practice_id: str | None = None,
    tracing: Tracing | None = None,
    deadline_s: float | None = None,
    policy: RetryPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PracticeRecommendation:
    """The LLM's validated recommendation for the player with these ``recent`` sessions.

    Blocking, bounded by ``deadline_s`` (the feature's budget by default) including retries.
    Raises a :class:`CoachError` leaf when the provider fails or the answer is invalid.
    """
    what = f"AI Mode ({model.provider} {model.model})"
    bound = model.llm.bind_tools([PracticeRecommendation], tool_choice=_TOOL_NAME)
    reply = invoke_model(
        model,
        recommendation_messages(recent),
        what=what,
        deadline_s=model.profile.deadline_s if deadline_s is None else deadline_s,
        user_id=user_id,
        tracing=tracing,
        metadata={"practice_id": practice_id} if practice_id else None,
        runnable=bound,
        policy=policy,
        clock=clock,
        sleep=sleep,
    )
    try:
        return _validated(_arguments(reply))
    except CoachResponseError as exc:
        raise CoachResponseError(f"{what}: {exc}") from exc


def _default_model(settings: Settings | None) -> CoachModel | OfflineReason:
    if settings is None:
        return OfflineReason("none", "rule-based plans only")
    return build_chat_model(settings, "ai-mode")


class Recommender:
    """AI Mode's planner: ``recommender(user_id, new=False)`` → :class:`Plan` (never raises for
    LLM trouble; store errors do raise). Thread-compatible: one call at a time. Without
    ``settings`` it makes rule-based plans only (the demo, tests).

    ``cloud`` (the PostgreSQL history) adds sessions played on other pedals or not yet pulled
    here; it is asked within its own bounded timeouts and skipped when it fails. ``tracing``
    is a running :class:`Tracing` (the caller closes it) or a config this object starts on
    first use and closes in :meth:`close`.
    """

    def __init__(
        self,
        store: SessionStore,
        settings: Settings | None = None,
        *,
        cloud: SessionHistory | None = None,
        tracing: Tracing | TracingConfig | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        model_factory: Callable[[Settings | None], CoachModel | OfflineReason] | None = None,
        policy: RetryPolicy | None = None,
        deadline_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.cloud = cloud
        self._tracing = tracing if isinstance(tracing, Tracing) else None
        self._tracing_config = tracing if isinstance(tracing, TracingConfig) else None
        self._owned: Tracing | None = None
        self._now = now
        self._model_factory = model_factory or _default_model
        self._policy = policy
        self._deadline_s = deadline_s

    @classmethod
    def from_settings(cls, store: SessionStore, settings: Settings) -> Recommender:
        """The pedal's and the CLI's recommender: the configured LLM, the cloud's sessions when
        FRETCOACH_DATABASE_URL is set, and Opik as configured."""
        from cloud_sync.history import PostgresHistory

        cloud = PostgresHistory(settings.database_url) if settings.database_url else None
        return cls(store, settings, cloud=cloud, tracing=TracingConfig.from_settings(settings))

    def __call__(self, user_id: str, *, new: bool = False) -> Plan:
        now = self._now()
        if not new:
            pending = self.store.pending_plan(user_id, now - PLAN_REUSE)
            rec = recommendation_of(pending) if pending is not None else None
            if pending is not None and rec is not None:
                source: PlanSource = "llm" if pending.practice_plan.get("source") == "llm" else "rules"
                return Plan(pending, rec, source, reused=True)
        recent = self.recent(user_id)
        practice_id = str(uuid.uuid4())
        rec, source, reason = self._recommend(user_id, recent, practice_id)
        record = to_plan_record(rec, user_id, source, now, practice_id=practice_id, fallback_reason=reason)
        self.store.save_plan(record)
        return Plan(record, rec, source, reason=reason)

    def recent(self, user_id: str) -> list[SessionRecord]:
        """The last sessions, here and (when configured and reachable) in the cloud."""
        batches = [self.store.recent_sessions(user_id, RECENT_SESSIONS)]
        if self.cloud is not None:
            try:
                batches.append(self.cloud.recent(user_id, RECENT_SESSIONS))
            except Exception as exc:  # the cloud is a bonus: never let it cost the plan
                log.info("cloud history unavailable, planning from this pedal's sessions: %s", exc)
        return merge_recent(batches, RECENT_SESSIONS)

    def _recommend(
        self, user_id: str, recent: Sequence[SessionRecord], practice_id: str
    ) -> tuple[PracticeRecommendation, PlanSource, str | None]:
        model = self._model_factory(self.settings)
        if isinstance(model, OfflineReason):
            return rule_based_plan(recent), "rules", str(model)
        try:
            rec = ask_recommendation(
                model,
                recent,
                user_id=user_id,
                practice_id=practice_id,
                tracing=self._tracer(),
                deadline_s=self._deadline_s,
                policy=self._policy,
            )
        except CoachError as exc:
            log.warning("%s; using the rule-based plan", exc)
            return rule_based_plan(recent), "rules", str(exc)
        finally:
            model.close()
        return rec, "llm", None

    def _tracer(self) -> Tracing | None:
        if self._tracing is None and self._owned is None and self._tracing_config is not None:
            self._owned = Tracing.start(self._tracing_config)
            self._tracing_config = None  # start once, even if it came back None
        return self._tracing or self._owned

    def close(self) -> None:
        """Flush and close the tracer this object started (bounded)."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None
