"""AI Mode's recommendation end to end: the real ChatOpenAI asking the loopback server for a
structured plan, validation and the rule-based fallback, reuse, saving, syncing, executing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from llm_server import LLMServer, empty, error, malformed, structured, text
from opik_recorder import OpikRecorder
from practice import NOW, add_cloud, add_local, session, settings_for

from cloud_sync.history import PostgresHistory
from device.analysis import parse_scale
from device.analysis.metrics import Metrics
from device.coach.recommend import Recommender
from device.coach.retry import RetryPolicy
from device.coach.tracing import Tracing, TracingConfig
from device.session import Recorder, SessionStore

if TYPE_CHECKING:  # the conftest module name is ambiguous at run time (tests/hardware has one)
    from conftest import Cloud

pytestmark = [
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning:opik"),
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning:httpx"),
]

USER = "ana"
GOOD = {
    "scale_name": "E natural minor",
    "scale_type": "natural",
    "focus_area": "timing",
    "reasoning": "Your timing averaged 41: play E natural minor in steady eighths with the click.",
    "strictness": 0.45,
    "sensitivity": 0.6,
}
FAST = RetryPolicy(base_s=0.01, max_backoff_s=0.05, jitter_s=0.0)


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer() as s:
        yield s


@pytest.fixture
def history(store: SessionStore) -> SessionStore:
    # Timing is this player's weak spot, in E minor pentatonic.
    add_local(store, [session(USER, "E minor pentatonic", 85, 92, 40 + i, days_ago=i + 1) for i in range(6)])
    add_local(store, [session("someone-else", "C major", 10, 10, 10, days_ago=0.5)])
    return store


def recommender(store: SessionStore, url: str | None, **kw: Any) -> Recommender:
    kw.setdefault("policy", FAST)
    return Recommender(store, settings_for(url), now=lambda: NOW, **kw)


def test_the_llm_plan_is_asked_for_structurally_validated_saved_and_queued(
    history: SessionStore, llm: LLMServer
) -> None:
    llm.push(structured(GOOD))
    plan = recommender(history, llm.url)(USER)
    assert plan.source == "llm" and not plan.offline and plan.reason is None and not plan.reused
    assert plan.recommendation.model_dump() == GOOD
    (req,) = llm.chat_requests
    # A forced function call with the recommendation's schema, and the token cap for AI Mode.
    (tool,) = req.tools
    assert tool["function"]["name"] == "PracticeRecommendation"
    assert set(tool["function"]["parameters"]["properties"]) == set(GOOD)
    assert req.body["tool_choice"] == {"type": "function", "function": {"name": "PracticeRecommendation"}}
    assert req.body["max_completion_tokens"] == 800
    # The last 5 sessions of this player (not the other one), newest first, and the rules.
    prompt = "\n".join(m["content"] for m in req.messages)
    assert prompt.count("E minor pentatonic") == 5 and "C major" not in prompt
    assert "Timing stability 40" in prompt and "Timing stability 45" not in prompt
    assert "timing weakest -> a natural" in prompt
    stored = history.get_plan(plan.record.practice_id)
    assert stored is not None and stored.practice_plan["source"] == "llm"
    assert stored.practice_plan["scale_name"] == "E natural minor"
    assert stored.practice_plan["metric"] == "timing_stability"
    queued = list(history.db.query("SELECT kind, item_id FROM outbox WHERE kind = 'plan'"))
    assert queued == [{"kind": "plan", "item_id": plan.record.practice_id}]


def test_a_fresh_pending_plan_is_reused_and_new_asks_again(history: SessionStore, llm: LLMServer) -> None:
    llm.push(structured(GOOD), structured({**GOOD, "scale_name": "A natural minor"}))
    rec = recommender(history, llm.url)
    first = rec(USER)
    again = rec(USER)
    assert again.reused and again.record.practice_id == first.record.practice_id and again.source == "llm"
    assert len(llm.chat_requests) == 1
    fresh = rec(USER, new=True)
    assert not fresh.reused and fresh.recommendation.scale_name == "A natural minor"
    assert len(llm.chat_requests) == 2


def test_a_plan_older_than_a_day_is_not_reused(history: SessionStore, llm: LLMServer) -> None:
    llm.always(structured(GOOD))
    first = recommender(history, llm.url)(USER)
    later = Recommender(history, settings_for(llm.url), now=lambda: NOW + timedelta(hours=25), policy=FAST)(USER)
    assert not later.reused and later.record.practice_id != first.record.practice_id


def test_a_played_plan_is_marked_executed_and_not_offered_again(history: SessionStore, llm: LLMServer) -> None:
    llm.always(structured(GOOD))
    rec = recommender(history, llm.url)
    plan = rec(USER)
    recorder = Recorder(history, user_id=USER, device_id="pedal-1")
    recorder.start(parse_scale(plan.recommendation.scale_name), strictness=0.45, sensitivity=0.6,
                   practice_id=plan.record.practice_id)  # fmt: skip
    ended = recorder.end(Metrics(80.0, 90.0, 60.0, 40, 36, 4, "timing_stability"))
    stored = history.get_plan(plan.record.practice_id)
    assert stored is not None and stored.executed_session_id == ended.session_id
    assert rec(USER).record.practice_id != plan.record.practice_id


BAD_ANSWERS = {
    "unknown scale": structured({**GOOD, "scale_name": "pitch75"}),
    "type does not match the scale": structured({**GOOD, "scale_name": "E minor pentatonic"}),
    "strictness out of range": structured({**GOOD, "strictness": 1.5}),
    "unknown focus": structured({**GOOD, "focus_area": "rhythm"}),
    "missing field": structured({k: v for k, v in GOOD.items() if k != "reasoning"}),
    "no reasoning": structured({**GOOD, "reasoning": "ok"}),
    "empty answer": empty(),
    "prose instead of a plan": text("Practise E minor, slowly."),
    "malformed JSON": malformed(),
    "bad request": error(400, "tools not supported"),
}


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_an_invalid_or_failed_answer_falls_back_to_the_players_own_rule_plan(
    history: SessionStore, llm: LLMServer, answer: Any
) -> None:
    llm.push(answer)
    plan = recommender(history, llm.url)(USER)
    assert plan.source == "rules" and plan.offline and plan.reason
    assert "AI Mode (openai gpt-loop)" in plan.reason and "\n" not in plan.reason
    # Not a fixed "C Major": timing is weak in E minor pentatonic → E natural minor, timing.
    r = plan.recommendation
    assert (r.scale_name, r.scale_type, r.focus_area) == ("E natural minor", "natural", "timing")
    assert "over the last 5 sessions" in r.reasoning
    stored = history.get_plan(plan.record.practice_id)
    assert stored is not None and stored.practice_plan["source"] == "rules"
    assert stored.practice_plan["fallback_reason"] == plan.reason
    assert len(llm.chat_requests) == 1  # an invalid answer is not worth a retry


def test_a_plan_in_the_content_instead_of_a_call_is_accepted(history: SessionStore, llm: LLMServer) -> None:
    # Small local models sometimes ignore the forced call and answer with the JSON as text.
    llm.push(text("```json\n" + json.dumps(GOOD) + "\n```"))
    plan = recommender(history, llm.url)(USER)
    assert plan.source == "llm" and plan.recommendation.scale_name == "E natural minor"


def test_long_reasoning_is_cut_for_the_plan_screen(history: SessionStore, llm: LLMServer) -> None:
    long = "Your timing drifts on the runs. " * 20
    llm.push(structured({**GOOD, "reasoning": long}))
    plan = recommender(history, llm.url)(USER)
    assert plan.source == "llm" and 120 <= len(plan.recommendation.reasoning) <= 240


def test_transient_errors_are_retried_and_retry_after_is_honoured(history: SessionStore, llm: LLMServer) -> None:
    llm.push(error(500), error(429, retry_after="0.3"), structured(GOOD))
    started = time.monotonic()
    plan = recommender(history, llm.url)(USER)
    assert plan.source == "llm" and len(llm.chat_requests) == 3
    gap = llm.chat_requests[2].at_s - llm.chat_requests[1].at_s
    assert gap >= 0.3 and time.monotonic() - started < 5


def test_a_hanging_provider_costs_the_deadline_then_the_rule_plan(history: SessionStore, llm: LLMServer) -> None:
    llm.always(structured(GOOD, delay_s=30))
    started = time.monotonic()
    plan = recommender(history, llm.url, deadline_s=1.0)(USER)
    elapsed = time.monotonic() - started
    assert plan.source == "rules" and plan.reason is not None and "no answer in time" in plan.reason
    assert 0.9 <= elapsed < 2.5


def test_offline_needs_no_server_and_says_why(history: SessionStore) -> None:
    plan = recommender(history, None)(USER)
    assert plan.source == "rules" and plan.reason == "offline coach: no OPENAI_API_KEY set"
    assert Recommender(history)(USER).source == "rules"  # no settings at all: the demo's planner


def test_sessions_in_the_cloud_join_the_local_ones(store: SessionStore, cloud: Cloud, llm: LLMServer) -> None:
    add_local(store, [session(USER, "E minor pentatonic", 85, 92, 40, days_ago=3)])
    # Played on another pedal, already in the cloud; and the other player's rows stay out.
    add_cloud(cloud.url, [session(USER, "G major", 70, 95, 80, days_ago=1, device="pedal-2")])
    add_cloud(cloud.url, [session("bo", "D major", 50, 50, 50, days_ago=1)])
    device = cloud.device(USER)
    llm.push(structured(GOOD))
    recommender(store, llm.url, cloud=PostgresHistory(cloud.device_url(device)))(USER)
    prompt = llm.chat_requests[0].messages[1]["content"]
    lines = [line for line in prompt.splitlines() if line.startswith("2026-")]
    assert [line.split(",")[0] for line in lines] == ["2026-11-23: G major", "2026-11-21: E minor pentatonic"]
    assert "D major" not in prompt


def test_an_unreachable_cloud_only_costs_its_own_sessions(history: SessionStore, llm: LLMServer) -> None:
    from cloud_sync.connection import Timeouts

    llm.push(structured(GOOD))
    dead = PostgresHistory("postgresql://nobody@127.0.0.1:1/none", Timeouts(connect_s=1))
    plan = recommender(history, llm.url, cloud=dead)(USER)
    assert plan.source == "llm"
    assert llm.chat_requests[0].messages[1]["content"].count("E minor pentatonic") == 5


def test_the_recommendation_is_traced_with_ai_mode_tags(history: SessionStore, llm: LLMServer) -> None:
    llm.push(structured(GOOD))
    with OpikRecorder() as rec:
        tracing = Tracing.start(TracingConfig(url=rec.url, project_name="fretcoach-test"))
        assert tracing is not None
        try:
            plan = recommender(history, llm.url, tracing=tracing)(USER)
            assert tracing.flush(timeout_s=5.0)
            assert rec.wait_for(lambda r: any(t.get("end_time") for t in r.traces()), timeout_s=5.0)
        finally:
            tracing.close(timeout_s=2.0)
        (trace,) = [t for t in rec.traces() if t.get("end_time")]
        assert trace["tags"] == ["fretcoach", "ai-mode"]
        meta = trace["metadata"]
        assert {k: meta[k] for k in ("user_id", "practice_id", "provider", "model")} == {
            "user_id": USER,
            "practice_id": plan.record.practice_id,
            "provider": "openai",
            "model": "gpt-loop",
        }


def test_the_pedal_shows_the_llm_plan_and_hold_asks_for_another(history: SessionStore, llm: LLMServer) -> None:
    from device.app import Mode, Parts, PedalApp
    from device.audio import open_source
    from device.listening import Listener
    from device.ui.views import PlanView
    from hardware.display import open_display
    from hardware.footswitch import FootswitchEvent, Gesture, ScriptedFootswitch

    llm.push(structured(GOOD), structured({**GOOD, "scale_name": "A natural minor"}))
    shown: list[object] = []
    parts = Parts(
        user_id=USER,
        display=open_display("dummy"),
        footswitch=ScriptedFootswitch([]),
        listener=Listener(open_source("demo", speed=0)),
        store=history,
        recorder=Recorder(history, user_id=USER, device_id="pedal-1"),
        planner=recommender(history, llm.url),
        on_frame=lambda view, _now: shown.append(view),
    )
    app = PedalApp(parts)
    app.p.listener.start = lambda: None  # type: ignore[method-assign]
    app.boot()

    def plan_after(gesture: Gesture) -> PlanView:
        app.step(FootswitchEvent(gesture))
        deadline = time.monotonic() + 10
        while app.s.mode is not Mode.PLAN and time.monotonic() < deadline:
            app.step()
            time.sleep(0.005)
        app.step()
        views = [v for v in shown if isinstance(v, PlanView)]
        assert views
        return views[-1]

    try:
        first = plan_after(Gesture.PRESS)
        assert first.scale == "E natural minor" and not first.offline
        second = plan_after(Gesture.HOLD)
        assert second.scale == "A natural minor" and len(llm.chat_requests) == 2
    finally:
        app.close()
