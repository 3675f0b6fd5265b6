"""The provider factory and the retry layer, with the real ChatOpenAI against a loopback server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from llm_server import LLMServer, error, malformed, structured, text, tool_calls
from pydantic import BaseModel

from device.coach.providers import FEATURES, PROVIDERS, CoachModel, OfflineReason, build_chat_model, resolve_provider
from device.coach.retry import RetryPolicy, call_with_retries, is_retryable, retry_after_s
from device.config import Settings
from device.errors import CoachError

_KEYS = ("openai_api_key", "google_api_key", "deepseek_api_key", "minimax_api_key")
_KEY_FIELD = {
    "openai": "openai_api_key",
    "gemini": "google_api_key",
    "deepseek": "deepseek_api_key",
    "minimax": "minimax_api_key",
}


def make_settings(**values: Any) -> Settings:
    """Settings with every key explicitly unset unless given (the environment cannot leak in)."""
    base: dict[str, Any] = dict.fromkeys(_KEYS)
    base.update(llm_base_url=None, llm_model=None, user_id="player-7")
    base.update(values)
    return Settings(**base)


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer(models=("qwen2.5-1.5b-instruct", "other")) as s:
        yield s


@pytest.fixture
def built() -> Iterator[Callable[[Settings, str], CoachModel]]:
    """Build models and close them after the test."""
    models: list[CoachModel] = []

    def build(settings: Settings, feature: str = "live-coach") -> CoachModel:
        model = build_chat_model(settings, feature)  # type: ignore[arg-type]
        assert isinstance(model, CoachModel), model
        models.append(model)
        return model

    yield build
    for m in models:
        m.close()


# -- the factory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "token_param"),
    [
        ("openai", "gpt-4o-mini", "max_completion_tokens"),
        ("gemini", "gemini-3.1-flash-lite", "max_tokens"),
        ("deepseek", "deepseek-chat", "max_tokens"),
        ("minimax", "MiniMax-M2", "max_completion_tokens"),
    ],
)
def test_each_provider_sends_its_model_key_and_token_cap(
    server: LLMServer, built: Callable[..., CoachModel], provider: str, model: str, token_param: str
) -> None:
    settings = make_settings(
        llm_provider=provider, llm_base_url=server.url, **{_KEY_FIELD[provider]: f"key-{provider}"}
    )
    coach_model = built(settings)
    assert (coach_model.provider, coach_model.model) == (provider, model)
    server.push(text("Keep the wrist loose."))
    reply = coach_model.llm.invoke([{"role": "user", "content": "hi"}])
    assert reply.content == "Keep the wrist loose."
    (req,) = server.chat_requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer key-{provider}"
    assert req.body["model"] == model
    assert req.body[token_param] == FEATURES["live-coach"].max_tokens
    other = {"max_tokens", "max_completion_tokens"} - {token_param}
    assert not other & set(req.body)
    assert req.body.get("reasoning_split") is (True if provider == "minimax" else None)


def test_default_endpoints_are_the_documented_ones() -> None:
    expected = {
        "openai": "https://api.openai.com/v1",
        "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
        "deepseek": "https://api.deepseek.com",
        "minimax": "https://api.minimax.io/v1",
    }
    for provider, url in expected.items():
        choice = resolve_provider(make_settings(llm_provider=provider, **{_KEY_FIELD[provider]: "k"}))
        assert not isinstance(choice, OfflineReason)
        assert choice.base_url == url
        assert choice.model == PROVIDERS[provider].default_model  # type: ignore[index]


@pytest.mark.parametrize("provider", ["openai", "gemini", "deepseek", "minimax"])
def test_no_key_means_offline_coach_naming_the_missing_variable(provider: str) -> None:
    reason = build_chat_model(make_settings(llm_provider=provider), "live-coach")
    assert isinstance(reason, OfflineReason)
    assert reason.label == "offline coach"
    assert PROVIDERS[provider].key_env in str(reason)  # type: ignore[index]


def test_openai_compatible_needs_a_base_url_but_no_key(server: LLMServer, built: Callable[..., CoachModel]) -> None:
    assert isinstance(build_chat_model(make_settings(llm_provider="openai-compatible"), "web-chat"), OfflineReason)
    coach_model = built(make_settings(llm_provider="openai-compatible", llm_base_url=server.url))
    # No model configured: the server's /models decides (Ollama needs a real name).
    assert coach_model.model == "qwen2.5-1.5b-instruct"
    server.push(text("ok"))
    coach_model.llm.invoke("hi")
    req = server.chat_requests[-1]
    assert req.body["model"] == "qwen2.5-1.5b-instruct"
    assert req.headers["authorization"] == "Bearer not-needed"
    assert req.body["max_tokens"] == FEATURES["live-coach"].max_tokens


def test_environment_keys_and_base_urls_never_leak_into_a_provider(
    server: LLMServer, built: Callable[..., CoachModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ChatOpenAI and the openai client would fall back to these; explicit values must win.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1")
    coach_model = built(
        make_settings(
            llm_provider="deepseek", deepseek_api_key="ds-key", llm_base_url=server.url, llm_model="deepseek-reasoner"
        )
    )
    server.push(text("ok"))
    coach_model.llm.invoke("hi")
    (req,) = server.chat_requests
    assert req.headers["authorization"] == "Bearer ds-key"
    assert req.body["model"] == "deepseek-reasoner"


@pytest.mark.parametrize(("feature", "tokens"), [("ai-mode", 800), ("web-chat", 600), ("live-coach", 150)])
def test_each_feature_has_its_own_budget(
    server: LLMServer, built: Callable[..., CoachModel], feature: str, tokens: int
) -> None:
    coach_model = built(make_settings(openai_api_key="k", llm_base_url=server.url), feature)
    assert coach_model.profile.max_tokens == tokens
    assert coach_model.timeout(3.0).read == 3.0
    assert coach_model.timeout(3.0).connect == 3.0
    assert coach_model.timeout(60.0).connect == coach_model.profile.connect_timeout_s
    server.push(text("ok"))
    coach_model.llm.invoke("hi")
    assert server.chat_requests[-1].body["max_completion_tokens"] == tokens


class Plan(BaseModel):
    scale: str
    minutes: int


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_works_through_the_factory(
    server: LLMServer, built: Callable[..., CoachModel], method: str
) -> None:
    coach_model = built(make_settings(openai_api_key="k", llm_base_url=server.url), "ai-mode")
    server.push(structured({"scale": "A minor pentatonic", "minutes": 10}))
    plan = coach_model.llm.with_structured_output(Plan, method=method).invoke("plan my practice")  # type: ignore[arg-type]
    assert plan == Plan(scale="A minor pentatonic", minutes=10)
    body = server.chat_requests[-1].body
    assert ("tools" in body) is (method == "function_calling")
    assert ("response_format" in body) is (method == "json_schema")


def test_tool_calls_reach_an_agent(server: LLMServer, built: Callable[..., CoachModel]) -> None:
    coach_model = built(make_settings(openai_api_key="k", llm_base_url=server.url), "web-chat")

    def recent_sessions(days: int) -> str:
        """Sessions of the last ``days`` days."""
        return "[]"

    server.push(tool_calls(("recent_sessions", {"days": 7})))
    reply = coach_model.llm.bind_tools([recent_sessions]).invoke("how did I do this week?")
    assert reply.tool_calls[0]["name"] == "recent_sessions"  # type: ignore[attr-defined]
    assert reply.tool_calls[0]["args"] == {"days": 7}  # type: ignore[attr-defined]
    assert server.chat_requests[-1].tools[0]["function"]["name"] == "recent_sessions"


# -- retries -------------------------------------------------------------------------------


def _invoke(model: CoachModel) -> Callable[[float], Any]:
    return lambda remaining: model.llm.invoke("hi", timeout=model.timeout(remaining))


def test_429_retry_after_seconds_is_honoured(server: LLMServer, built: Callable[..., CoachModel]) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    server.push(error(429, retry_after="1"), text("ok"))
    started = time.monotonic()
    reply = call_with_retries(_invoke(model), deadline_s=5.0, what="test")
    elapsed = time.monotonic() - started
    assert reply.content == "ok"
    assert 1.0 <= elapsed < 2.0
    first, second = server.chat_requests
    assert second.at_s - first.at_s >= 1.0


def test_503_retry_after_http_date_is_honoured(server: LLMServer, built: Callable[..., CoachModel]) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    # HTTP-dates have whole seconds: "2 s from now" is between 1 and 2 s away.
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.push(error(503, retry_after=when), text("ok"))
    started = time.monotonic()
    assert call_with_retries(_invoke(model), deadline_s=5.0, what="test").content == "ok"
    assert 0.9 <= time.monotonic() - started < 3.0


def test_retry_after_beyond_the_deadline_gives_up_at_once(server: LLMServer, built: Callable[..., CoachModel]) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    server.push(error(429, retry_after="30"))
    started = time.monotonic()
    with pytest.raises(CoachError, match=r"rate-limited \(HTTP 429\).*deadline") as caught:
        call_with_retries(_invoke(model), deadline_s=3.0, what="live coach")
    assert time.monotonic() - started < 0.5
    assert len(server.chat_requests) == 1
    assert "\n" not in str(caught.value)
    assert caught.value.__cause__ is not None


def test_total_time_stays_within_the_deadline_when_the_server_hangs(
    server: LLMServer, built: Callable[..., CoachModel]
) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    server.always(text("too late", delay_s=10))
    started = time.monotonic()
    with pytest.raises(CoachError, match="no answer in time"):
        call_with_retries(_invoke(model), deadline_s=1.5, what="test")
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 2.0


def test_5xx_is_retried_with_backoff_until_it_succeeds(server: LLMServer, built: Callable[..., CoachModel]) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    server.push(error(500), error(502), text("ok"))
    policy = RetryPolicy(base_s=0.1, jitter_s=0.05)
    assert call_with_retries(_invoke(model), deadline_s=5.0, what="test", policy=policy).content == "ok"
    gaps = [b.at_s - a.at_s for a, b in zip(server.chat_requests, server.chat_requests[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential


def test_connection_refused_is_retried_but_bounded() -> None:
    with LLMServer() as gone:
        url = gone.url  # nothing listens there once it stops
    settings = make_settings(openai_api_key="k", llm_base_url=url)
    model = build_chat_model(settings, "live-coach")
    assert isinstance(model, CoachModel)
    try:
        attempts: list[float] = []

        def attempt(remaining: float) -> Any:
            attempts.append(remaining)
            return _invoke(model)(remaining)

        started = time.monotonic()
        with pytest.raises(CoachError, match="cannot reach the provider"):
            call_with_retries(attempt, deadline_s=1.5, what="test", policy=RetryPolicy(base_s=0.2, jitter_s=0.1))
        assert time.monotonic() - started < 1.5
        assert len(attempts) >= 2
    finally:
        model.close()


@pytest.mark.parametrize(("status", "message"), [(400, "rejected"), (401, "API key"), (404, "not found")])
def test_client_errors_are_not_retried(
    server: LLMServer, built: Callable[..., CoachModel], status: int, message: str
) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    server.always(error(status))
    with pytest.raises(CoachError, match=message):
        call_with_retries(_invoke(model), deadline_s=5.0, what="test")
    assert len(server.chat_requests) == 1


def test_malformed_json_and_invalid_structured_output_are_not_retried(
    server: LLMServer, built: Callable[..., CoachModel]
) -> None:
    model = built(make_settings(openai_api_key="k", llm_base_url=server.url))
    server.push(malformed())
    with pytest.raises(CoachError, match="unusable answer"):
        call_with_retries(_invoke(model), deadline_s=5.0, what="test")
    server.push(structured({"scale": "A minor", "minutes": "lots"}))
    planner = model.llm.with_structured_output(Plan, method="function_calling")
    with pytest.raises(CoachError, match="ValidationError"):
        call_with_retries(lambda remaining: planner.invoke("plan"), deadline_s=5.0, what="test")
    assert len(server.chat_requests) == 2


class _FakeResponse:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = httpx.Headers(headers)


class _StatusError(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = _FakeResponse(status, headers or {})


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s(_StatusError(429, {"Retry-After": "7"})) == 7.0
    assert retry_after_s(_StatusError(429, {"Retry-After": "0.5"})) == 0.5
    assert retry_after_s(_StatusError(429, {"retry-after-ms": "250"})) == 0.25
    date = format_datetime(now + timedelta(seconds=12), usegmt=True)
    assert retry_after_s(_StatusError(503, {"Retry-After": date}), now=now.timestamp) == 12.0
    past = format_datetime(now - timedelta(seconds=12), usegmt=True)
    assert retry_after_s(_StatusError(503, {"Retry-After": past}), now=now.timestamp) == 0.0
    assert retry_after_s(_StatusError(429, {"Retry-After": "soon"})) is None
    assert retry_after_s(_StatusError(429)) is None
    assert retry_after_s(ValueError("no response")) is None


def test_what_is_retryable() -> None:
    for status in (408, 409, 429, 500, 502, 503, 504):
        assert is_retryable(_StatusError(status))
    for status in (400, 401, 403, 404, 422):
        assert not is_retryable(_StatusError(status))
    assert is_retryable(httpx.ConnectTimeout("slow"))
    assert is_retryable(ConnectionRefusedError())
    assert not is_retryable(ValueError("bad json"))


def test_waits_use_the_injected_clock_and_sleep() -> None:
    """With a fake clock, the budget arithmetic is exact: waits 0.5, 1, 2 then the 4 s wait won't fit."""
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    def attempt(remaining: float) -> Any:
        now[0] += 0.1
        raise _StatusError(500)

    policy = RetryPolicy(base_s=0.5, jitter_s=0.0, min_attempt_s=0.25)
    with pytest.raises(CoachError, match="would pass the 5 s deadline"):
        call_with_retries(attempt, deadline_s=5.0, what="t", policy=policy, clock=lambda: now[0], sleep=sleep)
    assert slept == [0.5, 1.0, 2.0]
    assert now[0] <= 5.0
