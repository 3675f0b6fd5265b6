"""The chat agent: LangChain's agent over the real ChatOpenAI, tool calls scripted on the
loopback server, tools reading real SQLite and PostgreSQL histories scoped to one player."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from llm_server import LLMServer, RecordedRequest, error, text, tool_calls
from opik_recorder import OpikRecorder
from practice import NOW, add_cloud, add_local, session, settings_for

from cloud_sync.history import PostgresHistory
from device.coach.chat import ChatCoach
from device.coach.history import LocalHistory
from device.coach.performance import analyze_performance
from device.coach.recommend import Recommender
from device.coach.retry import RetryPolicy
from device.coach.tracing import Tracing, TracingConfig
from device.session import SessionStore

if TYPE_CHECKING:  # the conftest module name is ambiguous at run time (tests/hardware has one)
    from conftest import Cloud

pytestmark = [
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning:opik"),
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning:httpx"),
]

USER = "ana"
FAST = RetryPolicy(base_s=0.01, max_backoff_s=0.05, jitter_s=0.0)


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer() as s:
        yield s


@pytest.fixture
def history(store: SessionStore) -> SessionStore:
    # Older half of the month: timing in the 40s; newer half: in the 60s. Pitch steady at 85.
    add_local(store, [session(USER, "E minor pentatonic", 85, 92, 40 + i, days_ago=20 + i) for i in range(3)])
    add_local(store, [session(USER, "E natural minor", 85, 90, 60 + i, days_ago=2 + i) for i in range(3)])
    add_local(store, [session("bo", "C major", 10, 10, 10, days_ago=1)])
    return store


def chat(history: Any, url: str | None, **kw: Any) -> ChatCoach:
    return ChatCoach(settings_for(url), history, USER, policy=FAST, now=lambda: NOW, **kw)


def tool_results(req: RecordedRequest) -> dict[str, Any]:
    """The tool messages the agent sent back to the model, by tool call id → parsed JSON."""
    return {m["tool_call_id"]: json.loads(m["content"]) for m in req.messages if m.get("role") == "tool"}


def test_the_agent_calls_a_tool_and_answers_from_its_numbers(history: SessionStore, llm: LLMServer) -> None:
    llm.push(
        tool_calls(("analyze_performance", {"days": 30})),
        text("Timing is your weakest area at 51, but it rose by 20 points. Keep the click on."),
    )
    reply = chat(LocalHistory(history), llm.url).ask("How is my timing this month?")
    assert reply.source == "llm" and reply.reason is None
    assert reply.text == "Timing is your weakest area at 51, but it rose by 20 points. Keep the click on."
    assert reply.tools_used == ("analyze_performance",)
    first, second = llm.chat_requests
    assert {t["function"]["name"] for t in first.tools} == {
        "get_recent_sessions",
        "analyze_performance",
        "generate_practice_plan",
    }
    assert "Today is 2026-11-24" in first.messages[0]["content"]
    assert '"sessions": 6' in first.messages[0]["content"]  # the month at a glance, even if no tool is called
    assert first.body["max_completion_tokens"] == 600
    (facts,) = tool_results(second).values()
    expected = analyze_performance(history.sessions_since(USER, NOW.replace(month=10)), 30, NOW).as_dict()
    assert facts == json.loads(json.dumps(expected))
    assert facts["sessions"] == 6 and facts["weakest"] == "timing_stability"
    assert facts["trend"]["timing_stability"] == 20.0 and facts["trend"]["pitch_accuracy"] == 0.0
    assert [s["scale"] for s in facts["by_scale"]] == ["E minor pentatonic", "E natural minor"]


def test_tools_only_ever_see_the_asking_player(history: SessionStore, llm: LLMServer) -> None:
    # The model tries to ask for another player's sessions: the tool has no such parameter.
    llm.push(tool_calls(("get_recent_sessions", {"limit": 50, "user_id": "bo"})), text("You played six sessions."))
    chat(LocalHistory(history), llm.url).ask("Show me bo's sessions")
    (rows,) = tool_results(llm.chat_requests[1]).values()
    assert len(rows) == 6 and {r["scale"] for r in rows} == {"E minor pentatonic", "E natural minor"}
    params = next(t for t in llm.chat_requests[0].tools if t["function"]["name"] == "get_recent_sessions")
    assert set(params["function"]["parameters"]["properties"]) == {"limit"}


def test_a_plan_made_in_the_chat_waits_for_the_pedal(history: SessionStore, llm: LLMServer) -> None:
    llm.push(tool_calls(("generate_practice_plan", {})), text("Next: E natural minor with a click, focus on timing."))
    reply = chat(LocalHistory(history), llm.url).ask("What should I practice next?")
    assert reply.tools_used == ("generate_practice_plan",)
    (made,) = tool_results(llm.chat_requests[1]).values()
    assert made["saved"] and made["focus_area"] == "timing" and made["scale_name"] == "E natural minor"
    # AI Mode on the pedal offers exactly that plan (no LLM configured there).
    offered = Recommender(history, now=lambda: NOW)(USER)
    assert offered.reused and offered.record.practice_id == made["practice_id"]


def test_the_conversation_carries_earlier_answers(history: SessionStore, llm: LLMServer) -> None:
    llm.push(text("Your timing is the weakest."), text("Play with a click at 70 BPM."))
    c = chat(LocalHistory(history), llm.url)
    c.ask("What is my weakest area?")
    c.ask("How do I fix it?")
    contents = [m["content"] for m in llm.chat_requests[1].messages]
    assert contents[1:] == ["What is my weakest area?", "Your timing is the weakest.", "How do I fix it?"]


def test_over_postgres_for_the_dashboard(cloud: Cloud, llm: LLMServer) -> None:
    add_cloud(cloud.url, [session(USER, "G major", 70, 95, 80, days_ago=i + 1) for i in range(4)])
    add_cloud(cloud.url, [session("bo", "D major", 50, 50, 50, days_ago=1)])
    device = cloud.device(USER)
    llm.push(
        tool_calls(("get_recent_sessions", {"limit": 10}), ("generate_practice_plan", {})),
        text("Four G major sessions; pitch is the one to work on."),
    )
    reply = chat(PostgresHistory(cloud.device_url(device)), llm.url).ask("How did I do?")
    assert reply.source == "llm" and set(reply.tools_used) == {"get_recent_sessions", "generate_practice_plan"}
    rows, plan = tool_results(llm.chat_requests[1]).values()
    assert [r["scale"] for r in rows] == ["G major"] * 4
    # The plan went into ai_practice_plans for this player, where the pedal's pull finds it.
    assert cloud.scalar(
        "SELECT user_id FROM fretcoach.ai_practice_plans WHERE practice_id = %s", [plan["practice_id"]]
    ) == USER


def test_a_failing_provider_gets_the_rules_answer_with_the_reason(history: SessionStore, llm: LLMServer) -> None:
    llm.always(error(503))
    reply = chat(LocalHistory(history), llm.url).ask("How am I doing?")
    assert reply.source == "rules" and reply.reason is not None and "HTTP 503" in reply.reason
    assert "Last 30 days: 6 sessions" in reply.text and "Weakest: timing stability" in reply.text
    assert "Next: E natural minor" in reply.text
    assert history.pending_plan(USER, NOW.replace(year=2025)) is None  # the rules' answer saves nothing


def test_an_agent_that_never_stops_calling_tools_is_cut_off(history: SessionStore, llm: LLMServer) -> None:
    llm.always(tool_calls(("get_recent_sessions", {"limit": 1})))
    reply = chat(LocalHistory(history), llm.url).ask("Loop forever")
    assert reply.source == "rules" and reply.reason is not None and "steps" in reply.reason
    assert len(llm.chat_requests) <= 7


def test_the_whole_answer_stays_within_the_deadline(history: SessionStore, llm: LLMServer) -> None:
    from device.coach.providers import FeatureProfile, build_chat_model

    llm.push(tool_calls(("get_recent_sessions", {})), text("slow answer", delay_s=30))
    profile = FeatureProfile("web-chat", deadline_s=1.5, max_tokens=600)
    started = time.monotonic()
    reply = chat(
        LocalHistory(history), llm.url, model_factory=lambda s: build_chat_model(s, "web-chat", profile=profile)
    ).ask("Anything")
    assert reply.source == "rules" and 1.3 <= time.monotonic() - started < 3.5


def test_offline_answers_from_the_rules_without_any_request(history: SessionStore) -> None:
    reply = chat(LocalHistory(history), None).ask("What should I practice?")
    assert reply.source == "rules" and reply.reason == "offline coach: no OPENAI_API_KEY set"
    assert "6 sessions" in reply.text


def test_chat_is_traced_with_web_chat_tags(history: SessionStore, llm: LLMServer) -> None:
    llm.push(tool_calls(("analyze_performance", {"days": 7})), text("Timing is up this week."))
    with OpikRecorder() as rec:
        tracing = Tracing.start(TracingConfig(url=rec.url, project_name="fretcoach-test"))
        assert tracing is not None
        try:
            c = chat(LocalHistory(history), llm.url, tracing=tracing)
            c.ask("How was my week?")
            assert tracing.flush(timeout_s=5.0)
            assert rec.wait_for(lambda r: any(t.get("end_time") for t in r.traces()), timeout_s=5.0)
        finally:
            tracing.close(timeout_s=2.0)
        traces = [t for t in rec.traces() if t.get("end_time")]
        assert traces and all(t["tags"] == ["fretcoach", "web-chat"] for t in traces)
        meta = traces[0]["metadata"]
        assert meta["user_id"] == USER and meta["conversation_id"] == c.conversation_id
        assert meta["provider"] == "openai" and meta["model"] == "gpt-loop"
        assert sum(1 for s in rec.spans() if s.get("type") == "llm") == 2


# ---- the commands --------------------------------------------------------------------------


def run_cli(args: list[str], data_dir: Path, url: str | None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRETCOACH_", "OPENAI_", "OPIK_"))}
    env.update({"FRETCOACH_DATA_DIR": str(data_dir), "LLM_PROVIDER": "openai-compatible"})
    if url:
        env.update({"FRETCOACH_LLM_BASE_URL": url, "FRETCOACH_LLM_MODEL": "gpt-loop"})
    return subprocess.run(
        [sys.executable, "-m", "device.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = SessionStore.open(tmp_path / "fretcoach.db")
    add_local(store, [session(USER, "E minor pentatonic", 85, 92, 40 + i, days_ago=i + 1) for i in range(5)])
    store.close()
    return tmp_path


def test_fretcoach_chat_answers_one_question(data_dir: Path, llm: LLMServer) -> None:
    llm.push(tool_calls(("get_recent_sessions", {"limit": 5})), text("Five sessions; timing is weakest."))
    out = run_cli(["chat", "--user", USER, "What should I practice next?"], data_dir, llm.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Five sessions; timing is weakest.\n" and out.stderr == ""


def test_fretcoach_chat_interactive_reads_questions_until_eof(data_dir: Path, llm: LLMServer) -> None:
    llm.push(text("Timing is weakest."), text("Use a click."))
    out = run_cli(["chat", "--user", USER], data_dir, llm.url, stdin="Weakest?\n\nHow to fix?\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["Timing is weakest.", "Use a click."]
    assert len(llm.chat_requests) == 2


def test_fretcoach_chat_offline_says_so_on_stderr(data_dir: Path) -> None:
    out = run_cli(["chat", "--user", USER, "How am I doing?"], data_dir, None)
    assert out.returncode == 0 and "5 sessions" in out.stdout
    assert out.stderr.strip().startswith("fretcoach: offline coach:")


def test_fretcoach_recommend_json_then_reuse_then_new(data_dir: Path, llm: LLMServer) -> None:
    from llm_server import structured

    good = {
        "scale_name": "E natural minor",
        "scale_type": "natural",
        "focus_area": "timing",
        "reasoning": "Timing averaged 42 over five sessions: steady eighths with a click.",
        "strictness": 0.4,
        "sensitivity": 0.6,
    }
    llm.push(structured(good), structured({**good, "scale_name": "A natural minor"}))
    first = run_cli(["recommend", "--user", USER, "--json"], data_dir, llm.url)
    assert first.returncode == 0, first.stderr
    plan = json.loads(first.stdout)
    assert {k: plan[k] for k in good} == good and plan["source"] == "llm" and plan["reused"] is False
    again = json.loads(run_cli(["recommend", "--user", USER, "--json"], data_dir, llm.url).stdout)
    assert again["practice_id"] == plan["practice_id"] and again["reused"] is True
    fresh = run_cli(["recommend", "--user", USER, "--new"], data_dir, llm.url)
    assert fresh.returncode == 0 and fresh.stdout.startswith("A natural minor · focus: timing")
    assert "new LLM plan" in fresh.stdout
    assert len(llm.chat_requests) == 2


def test_fretcoach_recommend_offline_and_bad_input(data_dir: Path) -> None:
    out = run_cli(["recommend", "--user", USER], data_dir, None)
    assert out.returncode == 0 and out.stdout.startswith("E natural minor · focus: timing")
    assert "rule-based plan" in out.stdout and "openai-compatible needs FRETCOACH_LLM_BASE_URL" in out.stderr
    bad = run_cli(["recommend", "--user", " "], data_dir, None)
    assert bad.returncode == 1 and bad.stderr == "fretcoach: error: --user must not be empty\n"
    cloud = run_cli(["chat", "--cloud", "hi"], data_dir, None)
    assert cloud.returncode == 1 and cloud.stderr == "fretcoach: error: --cloud needs FRETCOACH_DATABASE_URL\n"
