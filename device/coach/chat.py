"""The chat coach: a tool-calling agent that answers questions about the player's own history.

Built with LangChain's agent builder (``langchain.agents.create_agent``, a LangGraph graph)
around the feature's ChatOpenAI. Three tools, all bound to one user before the model sees
them — the model chooses *what* to ask, never *whose* data, and never writes SQL:

* ``get_recent_sessions(limit)`` — the latest sessions with their scores;
* ``analyze_performance(days)`` — averages, trend, weakest area, per-scale breakdown
  (:mod:`device.coach.performance`);
* ``generate_practice_plan()`` — the rule-based next plan from the last 5 sessions, saved
  where the history lives so the pedal offers it in AI Mode.

The history is the local store on the pedal's host or PostgreSQL for the dashboard
(:mod:`device.coach.history`). Every model call inside the agent loop goes through our
retry layer with what is left of the feature's 30 s deadline as its timeout (a middleware),
so a whole answer — however many tool rounds — stays within the budget. Without an LLM, or
when it fails, :func:`offline_answer` states the facts and the plan from the same tools.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from device.analysis.metrics import METRIC_LABELS
from device.coach.history import SessionHistory
from device.coach.performance import analyze_performance
from device.coach.prompts import chat_system_prompt, clean_answer, content_text
from device.coach.providers import CoachModel, OfflineReason, build_chat_model
from device.coach.recommendation import rule_based_plan, to_plan_record
from device.coach.retry import Deadline, RetryPolicy, call_with_retries
from device.coach.tracing import Tracing, TracingConfig, callbacks_for
from device.config import Settings
from device.errors import CoachError, CoachResponseError, CoachTimeoutError
from device.session.models import SessionRecord

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["ChatCoach", "ChatReply", "build_tools", "offline_answer"]

log = logging.getLogger(__name__)

# Tool rounds per answer: enough for "look up, analyse, plan, answer", not enough to loop.
MAX_STEPS: Final = 12
_MAX_SESSIONS: Final = 20
_MAX_DAYS: Final = 365
# Earlier turns kept as context (question + answer pairs; tool traffic is not carried over).
_KEPT_TURNS: Final = 6


@dataclass(frozen=True, slots=True)
class ChatReply:
    text: str
    source: str  # "llm" or "rules"
    tools_used: tuple[str, ...] = ()
    reason: str | None = None  # why the rules answered


def _session_facts(s: SessionRecord) -> dict[str, Any]:
    local = s.start_timestamp + timedelta(minutes=s.utc_offset_minutes)
    return {
        "date": f"{local:%Y-%m-%d %H:%M}",
        "scale": s.scale_chosen,
        "minutes": round(s.duration_seconds / 60.0, 1),
        "notes": s.total_notes,
        "notes_outside_scale": s.bad_notes,
        "pitch_accuracy": s.pitch_accuracy,
        "scale_conformity": s.scale_conformity,
        "timing_stability": s.timing_stability,
        "strictness": s.strictness,
        "bpm": s.bpm,
    }


def _clamp(value: Any, lo: int, hi: int, default: int) -> int:
    try:
        return max(lo, min(hi, int(value)))
    except (TypeError, ValueError):
        return default


class _Tools:
    """The three tools' logic, bound to one user and one history (plain Python, testable)."""

    def __init__(self, history: SessionHistory, user_id: str, now: Callable[[], datetime]) -> None:
        self.history = history
        self.user_id = user_id
        self.now = now
        self.used: list[str] = []

    def _guard(self, name: str, fn: Callable[[], Any], *, record: bool = True) -> str:
        if record:
            self.used.append(name)
        try:
            return json.dumps(fn(), default=str)
        except Exception as exc:  # a tool answers with the problem; the agent says so
            log.warning("chat tool %s failed: %s", name, exc)
            return json.dumps({"error": f"the practice history is unavailable right now ({type(exc).__name__})"})

    def recent_sessions(self, limit: int = 5) -> str:
        n = _clamp(limit, 1, _MAX_SESSIONS, 5)
        return self._guard(
            "get_recent_sessions", lambda: [_session_facts(s) for s in self.history.recent(self.user_id, n)]
        )

    def performance(self, days: int = 30, *, record: bool = True) -> str:
        d = _clamp(days, 1, _MAX_DAYS, 30)

        def run() -> dict[str, Any]:
            now = self.now()
            return analyze_performance(self.history.since(self.user_id, now - timedelta(days=d)), d, now).as_dict()

        return self._guard("analyze_performance", run, record=record)

    def plan(self, *, save: bool = True) -> str:
        def run() -> dict[str, Any]:
            rec = rule_based_plan(self.history.recent(self.user_id, 5))
            if not save:
                return rec.model_dump()
            record = to_plan_record(rec, self.user_id, "rules", self.now())
            self.history.save_plan(record)
            return {"practice_id": record.practice_id, **rec.model_dump(), "saved": True}

        return self._guard("generate_practice_plan", run)


def build_tools(tools: _Tools) -> list[BaseTool]:
    """The LangChain tools over ``tools`` (imports langchain-core: call off the audio path)."""
    from langchain_core.tools import StructuredTool

    def get_recent_sessions(limit: int = 5) -> str:
        """The player's latest practice sessions, newest first (at most 20): local date and time,
        scale, minutes, notes, notes outside the scale, and the three scores 0-100."""
        return tools.recent_sessions(limit)

    def analyze_performance(days: int = 30) -> str:
        """The player's performance over the last `days` days (1-365): averages of the three
        scores weighted by notes, trend (newer half of the period minus older half; positive is
        better), the weakest area, minutes practised and a per-scale breakdown."""
        return tools.performance(days)

    def generate_practice_plan() -> str:
        """Make and save the player's next practice plan from their last 5 sessions: scale,
        focus area, reasoning, strictness and sensitivity. The pedal offers it in AI Mode."""
        return tools.plan()

    return [StructuredTool.from_function(f) for f in (get_recent_sessions, analyze_performance, generate_practice_plan)]


def _budget_middleware(model: CoachModel, deadline: Deadline, policy: RetryPolicy | None) -> Any:
    """Each model call of the agent: our retries, with what is left of the deadline as timeout."""
    from langchain.agents.middleware import AgentMiddleware

    class _Budget(AgentMiddleware):
        def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
            left = deadline.remaining()
            if left <= (policy or RetryPolicy()).min_attempt_s:
                raise CoachTimeoutError(f"chat ({model.provider} {model.model}): no answer in time")

            def attempt(remaining_s: float) -> Any:
                settings = {**request.model_settings, "timeout": model.timeout(remaining_s)}
                return handler(request.override(model_settings=settings))

            return call_with_retries(
                attempt, deadline_s=left, what=f"chat ({model.provider} {model.model})", policy=policy
            )

    return _Budget()


def offline_answer(tools: _Tools, reason: str) -> ChatReply:
    """What the rules can say without an LLM: the month in numbers and the next plan."""
    facts = json.loads(tools.performance(30))
    # Shown, not saved: a question about timing should not leave a plan waiting on the pedal.
    plan = json.loads(tools.plan(save=False))
    if "error" in facts or "error" in plan:
        text = "Your practice history is unavailable right now; try again when the pedal is back online."
        return ChatReply(text, "rules", tuple(tools.used), reason)
    if not facts.get("sessions"):
        summary = "No sessions in the last 30 days."
    else:
        avg = facts["averages"]
        scores = ", ".join(
            f"{METRIC_LABELS[k].lower()} {round(v)}" for k, v in avg.items() if v is not None
        )
        weakest = METRIC_LABELS.get(facts.get("weakest") or "", "none").lower()
        summary = (
            f"Last 30 days: {facts['sessions']} sessions, {facts['minutes']:.0f} min; {scores}. "
            f"Weakest: {weakest}."
        )
    text = f"{summary} Next: {plan['scale_name']}, focus on {plan['focus_area']}. {plan['reasoning']}"
    return ChatReply(text, "rules", tuple(tools.used), reason)


@dataclass
class ChatCoach:
    """One conversation with one player. ``ask`` never raises for LLM trouble: it answers
    from the rules and says why in :attr:`ChatReply.reason`.
    """

    settings: Settings | None
    history: SessionHistory
    user_id: str
    tracing: Tracing | None = None
    policy: RetryPolicy | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Callable[[], float] = time.monotonic
    model_factory: Callable[[Settings | None], CoachModel | OfflineReason] | None = None
    conversation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    turns: list[tuple[str, str]] = field(default_factory=list)

    def ask(self, question: str) -> ChatReply:
        question = " ".join(question.split())
        if not question:
            raise CoachResponseError("ask a question")  # the CLI checks first; a clear error anyway
        tools = _Tools(self.history, self.user_id, self.now)
        model = self._model()
        if isinstance(model, OfflineReason):
            return offline_answer(tools, str(model))
        try:
            text = self._run_agent(model, tools, question)
        except CoachError as exc:
            log.warning("%s; answering from the rules", exc)
            return offline_answer(_Tools(self.history, self.user_id, self.now), str(exc))
        finally:
            model.close()
        self.turns = [*self.turns, (question, text)][-_KEPT_TURNS:]
        return ChatReply(text, "llm", tuple(tools.used))

    def _model(self) -> CoachModel | OfflineReason:
        if self.model_factory is not None:
            return self.model_factory(self.settings)
        if self.settings is None:
            return OfflineReason("none", "no LLM configured")
        return build_chat_model(self.settings, "web-chat")

    def _run_agent(self, model: CoachModel, tools: _Tools, question: str) -> str:
        from langchain.agents import create_agent
        from langgraph.errors import GraphRecursionError

        deadline = Deadline(model.profile.deadline_s, self.clock)
        agent: Any = create_agent(
            model.llm,
            build_tools(tools),
            # The month at a glance in the instructions: small models often skip the tools,
            # and even then the answer should rest on the player's numbers.
            system_prompt=chat_system_prompt(f"{self.now():%Y-%m-%d}", tools.performance(30, record=False)),
            middleware=[_budget_middleware(model, deadline, self.policy)],
        )
        messages: list[dict[str, str]] = []
        for q, a in self.turns:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": question})
        callbacks = callbacks_for(
            self.tracing,
            feature=model.feature,
            user_id=self.user_id,
            provider=model.provider,
            model=model.model,
            metadata={"conversation_id": self.conversation_id},
            thread_id=self.conversation_id,
        )
        what = f"chat ({model.provider} {model.model})"
        try:
            result = agent.invoke(
                {"messages": messages},
                config={"callbacks": callbacks, "recursion_limit": MAX_STEPS, "run_name": model.feature},
            )
        except GraphRecursionError as exc:
            raise CoachResponseError(f"{what}: no answer after {MAX_STEPS} steps") from exc
        except CoachError:
            raise
        except Exception as exc:
            # Anything else from inside the graph (a parser, an unexpected reply shape).
            raise CoachResponseError(f"{what}: unusable answer ({type(exc).__name__}: {exc})") from exc
        final = result["messages"][-1] if result.get("messages") else None
        text = clean_answer(content_text(getattr(final, "content", "")))
        if len(text.split()) < 2:
            raise CoachResponseError(f"{what}: empty answer")
        return text


def open_chat(settings: Settings, history: SessionHistory, user_id: str) -> tuple[ChatCoach, Tracing | None]:
    """A chat for ``user_id`` with tracing as Settings say (the caller closes the tracer)."""
    tracing = Tracing.start(TracingConfig.from_settings(settings))
    return ChatCoach(settings, history, user_id, tracing=tracing), tracing
