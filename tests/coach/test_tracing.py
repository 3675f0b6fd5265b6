"""Opik tracing with the real opik SDK against a loopback recorder: what arrives, and that a
down, failing or hanging Opik never slows down or breaks an LLM call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from llm_server import LLMServer, text
from opik_recorder import OpikRecorder, unused_url

from device.coach.live import ask_live_line
from device.coach.prompts import LiveFacts
from device.coach.providers import CoachModel, build_chat_model
from device.coach.tracing import Tracing, TracingConfig, callbacks_for
from device.config import Settings

pytestmark = [
    # opik 2.2's OpikTracer calls pydantic's deprecated Run.dict(); under -W error that
    # would turn every trace into a swallowed callback error.
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning:opik"),
    # opik hands httpx verify=<path> when SSL_CERT_FILE is set (as on this build machine).
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning:httpx"),
]

FACTS = LiveFacts(
    scale="A minor pentatonic",
    elapsed_s=150,
    scores={"pitch_accuracy": 78, "scale_conformity": 82, "timing_stability": 23},
    notes_played=40,
    correct_notes=33,
    wrong_notes=7,
)


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer() as s:
        s.always(text("Count 1-and-2-and aloud and pick on every count."))
        yield s


@pytest.fixture
def model(llm: LLMServer) -> Iterator[CoachModel]:
    settings = Settings(openai_api_key="sk-test", llm_base_url=llm.url, llm_model="gpt-loopback", user_id="player-7")
    built = build_chat_model(settings, "live-coach")
    assert isinstance(built, CoachModel)
    yield built
    built.close()


def _ask(model: CoachModel, tracing: Tracing | None) -> tuple[str, float]:
    started = time.monotonic()
    line = ask_live_line(model, FACTS, deadline_s=5.0, user_id="player-7", tracing=tracing, session_id="s-1")
    return line, time.monotonic() - started


def _finished_traces(rec: OpikRecorder) -> list[dict[str, Any]]:
    return [t for t in rec.traces() if t.get("end_time") and t.get("output")]


def test_a_traced_call_reaches_opik_with_tags_and_metadata(model: CoachModel) -> None:
    with OpikRecorder() as rec:
        tracing = Tracing.start(TracingConfig(url=rec.url, project_name="fretcoach-test"))
        assert tracing is not None
        try:
            line, _ = _ask(model, tracing)
            assert tracing.flush(timeout_s=5.0)
            assert rec.wait_for(_finished_traces, timeout_s=5.0)
        finally:
            tracing.close(timeout_s=2.0)
        (trace,) = _finished_traces(rec)
        assert trace["name"] == "live-coach"
        assert trace["project_name"] == "fretcoach-test"
        assert trace["tags"] == ["fretcoach", "live-coach"]
        meta = trace["metadata"]
        assert {k: meta[k] for k in ("user_id", "provider", "model", "feature", "session_id")} == {
            "user_id": "player-7",
            "provider": "openai",
            "model": "gpt-loopback",
            "feature": "live-coach",
            "session_id": "s-1",
        }
        assert "Timing stability 23/100" in str(trace["input"])
        assert line in str(trace["output"])
        assert any(span.get("type") == "llm" for span in rec.spans())
        assert any(call.path.startswith("/is-alive/ping") for call in rec.calls)


def test_tracing_is_off_without_opik_config() -> None:
    assert TracingConfig().enabled is False
    assert Tracing.start(TracingConfig()) is None
    assert callbacks_for(None, feature="web-chat", user_id="u", provider="openai", model="m") == []
    settings = Settings(openai_api_key=None)
    assert TracingConfig.from_settings(settings) == TracingConfig()


def test_the_tracer_uses_our_client_not_opiks_global_one(model: CoachModel) -> None:
    from opik.api_objects import opik_client

    with OpikRecorder() as rec:
        tracing = Tracing.start(TracingConfig(url=rec.url))
        assert tracing is not None
        try:
            _ask(model, tracing)
        finally:
            tracing.close(timeout_s=2.0)
        # A global default client would point at Comet's cloud: nothing may create one.
        assert opik_client._global_singleton is None
        assert tracing.callbacks(feature="web-chat", user_id="u", provider="p", model="m") == []  # closed


@pytest.mark.parametrize("mode", ["down", "error", "slow"])
def test_a_broken_opik_never_slows_or_breaks_the_call(model: CoachModel, llm: LLMServer, mode: str) -> None:
    with OpikRecorder(mode="slow" if mode == "slow" else "error" if mode == "error" else "ok", slow_s=30) as rec:
        url = unused_url() if mode == "down" else rec.url
        tracing = Tracing.start(TracingConfig(url=url, flush_timeout_s=1.0))
        assert tracing is not None
        try:
            _, untraced = _ask(model, None)
            timings = [_ask(model, tracing)[1] for _ in range(5)]
        finally:
            started = time.monotonic()
            tracing.close()  # bounded by flush_timeout_s, whatever Opik does
            closing = time.monotonic() - started
        assert max(timings) < untraced + 0.5
        assert closing < 1.5
        # The bounded close left the SDK's own shutdown running in the background: let it end
        # cleanly now, rather than log "client has been closed" during a later test.
        rec.release()
        for thread in threading.enumerate():
            if thread.name == "opik-close":
                thread.join(10.0)
        assert len(llm.chat_requests) == 6


def test_a_tracer_that_throws_is_logged_not_raised(model: CoachModel) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("opik exploded")

    tracing = Tracing(Broken(), TracingConfig(url="http://127.0.0.1:9/"))  # type: ignore[arg-type]
    line, elapsed = _ask(model, tracing)
    assert line.startswith("Count 1-and-2-and")
    assert elapsed < 1.0
    assert tracing.flush(timeout_s=0.5) is False
    assert tracing.close(timeout_s=0.5) is False


def test_the_live_coach_traces_its_calls_and_flushes_on_close(llm: LLMServer) -> None:
    from device.analysis.metrics import Metrics
    from device.coach.live import CoachContext, LiveCoach

    settings = Settings(openai_api_key="sk-test", llm_base_url=llm.url, llm_model="gpt-loopback", user_id="player-7")
    with OpikRecorder() as rec:
        live = LiveCoach(settings, tracing=TracingConfig(url=rec.url, flush_timeout_s=2.0)).start()
        try:
            assert live.wait_ready(20.0)
            live.tick(30.0, Metrics(78.0, 82.0, 23.0, 40, 33, 7, "timing_stability"), CoachContext("A minor", "s-9"))
            deadline = time.monotonic() + 5
            while (line := live.current_line()) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert line is not None and line.source == "llm"
        finally:
            live.close()  # owns the tracing it built: flushes it, bounded
        assert rec.wait_for(_finished_traces, timeout_s=5.0)
        (trace,) = _finished_traces(rec)
        assert trace["tags"] == ["fretcoach", "live-coach"]
        assert trace["metadata"]["session_id"] == "s-9"
        assert trace.get("thread_id") == "s-9"


def test_tracing_config_comes_from_the_proposed_settings_fields() -> None:
    from types import SimpleNamespace

    fields = SimpleNamespace(
        opik_url="http://opik.local:5173/api/",
        opik_api_key="opik-key",
        opik_workspace="band",
        opik_project_name="pedal",
        opik_flush_timeout_s=3.0,
    )
    config = TracingConfig.from_settings(fields)  # type: ignore[arg-type]
    assert config == TracingConfig("http://opik.local:5173/api/", "opik-key", "band", "pedal", 3.0)
    assert config.enabled and "opik-key" not in repr(config)
