"""The loopback OpenAI-compatible server itself: what it answers and what it records."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from llm_server import LLMServer, empty, error, malformed, structured, text, tool_calls


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer(models=("model-a", "model-b")) as s:
        yield s


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


def _chat(client: httpx.Client, server: LLMServer, **body: object) -> httpx.Response:
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    return client.post(f"{server.url}/chat/completions", json=payload, headers={"Authorization": "Bearer k"})


def test_text_reply_is_a_chat_completion_and_the_request_is_recorded(server: LLMServer, client: httpx.Client) -> None:
    server.push(text("play slower"))
    resp = _chat(client, server, max_tokens=7)
    assert resp.status_code == 200
    data = resp.json()
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "play slower"}
    assert data["model"] == "m"
    (req,) = server.chat_requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer k"
    assert req.body["max_tokens"] == 7
    assert req.messages == [{"role": "user", "content": "hi"}]


def test_models_endpoint_lists_the_configured_models(server: LLMServer, client: httpx.Client) -> None:
    resp = client.get(f"{server.url}/models")
    assert [m["id"] for m in resp.json()["data"]] == ["model-a", "model-b"]


def test_structured_answers_in_the_shape_the_request_asked_for(server: LLMServer, client: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "Plan", "parameters": {"type": "object"}}}
    server.push(structured({"minutes": 5}), structured({"minutes": 6}))
    as_tool = _chat(client, server, tools=[tool], tool_choice={"type": "function", "function": {"name": "Plan"}})
    call = as_tool.json()["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "Plan" and json.loads(call["arguments"]) == {"minutes": 5}
    as_schema = _chat(client, server, response_format={"type": "json_schema", "json_schema": {"name": "Plan"}})
    assert json.loads(as_schema.json()["choices"][0]["message"]["content"]) == {"minutes": 6}


def test_tool_calls_empty_and_errors(server: LLMServer, client: httpx.Client) -> None:
    server.push(tool_calls(("get_sessions", {"days": 7})), empty(), error(429, retry_after="2"), error(500))
    first = _chat(client, server).json()["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    assert first["message"]["tool_calls"][0]["function"]["name"] == "get_sessions"
    assert _chat(client, server).json()["choices"][0]["message"]["content"] == ""
    limited = _chat(client, server)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert _chat(client, server).status_code == 500


def test_malformed_unscripted_and_slow(server: LLMServer, client: httpx.Client) -> None:
    server.push(malformed())
    with pytest.raises(json.JSONDecodeError):
        _chat(client, server).json()
    assert _chat(client, server).status_code == 400  # nothing scripted: a fast client error
    server.push(text("late", delay_s=0.3))
    started = time.monotonic()
    assert _chat(client, server).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_streaming_requests_get_server_sent_events(server: LLMServer, client: httpx.Client) -> None:
    server.push(text("streamed"))
    resp = _chat(client, server, stream=True)
    assert resp.headers["content-type"] == "text/event-stream"
    events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "streamed"
