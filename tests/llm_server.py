"""A loopback OpenAI-compatible chat server, scripted per test.

The real ``ChatOpenAI`` client talks to it over real HTTP on ``127.0.0.1`` (never a mock of
the client), so timeouts, retries, headers and JSON bodies are exercised exactly as in the
field. Each test pushes the replies it wants (plain text, structured output for both
``function_calling`` and ``json_schema``, tool calls, 429 with ``Retry-After``, 500, slow,
malformed JSON, empty content) and afterwards reads :attr:`LLMServer.requests`.

Unscripted requests get HTTP 400 (``no reply scripted``): a client error, so a test that
forgot a reply fails fast instead of being retried into a slow pass.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import Loopback, LoopbackServer

__all__ = [
    "LLMServer",
    "RecordedRequest",
    "Reply",
    "empty",
    "error",
    "malformed",
    "structured",
    "text",
    "tool_calls",
]

Json = dict[str, Any]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at_s: float

    @property
    def messages(self) -> list[Json]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> list[Json]:
        return list(self.body.get("tools", [])) if isinstance(self.body, dict) else []


@dataclass
class Reply:
    """What to answer one request with.

    ``build`` makes the JSON body from the request body (so a reply can echo the model or
    answer in the shape the request asked for); ``raw`` sends bytes verbatim instead.
    ``delay_s`` sleeps before answering (interrupted when the server stops).
    """

    status: int = 200
    build: Callable[[Json], Json] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


def _completion(request: Json, message: Json, finish_reason: str) -> Json:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "loopback"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }


def text(content: str, *, delay_s: float = 0.0) -> Reply:
    """A plain assistant answer."""
    return Reply(
        build=lambda req: _completion(req, {"role": "assistant", "content": content}, "stop"),
        delay_s=delay_s,
    )


def empty(*, delay_s: float = 0.0) -> Reply:
    """A well-formed answer whose content is empty (small local models do this)."""
    return text("", delay_s=delay_s)


def _tool_message(calls: Iterable[tuple[str, Json]]) -> Json:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(calls)
        ],
    }


def tool_calls(*calls: tuple[str, Json], delay_s: float = 0.0) -> Reply:
    """The assistant calls these tools (name, arguments), as an agent step would."""
    return Reply(build=lambda req: _completion(req, _tool_message(calls), "tool_calls"), delay_s=delay_s)


def structured(obj: Json, *, delay_s: float = 0.0) -> Reply:
    """Structured output in whichever shape the request asked for.

    ``with_structured_output(method="function_calling")`` sends ``tools`` (and a forced
    ``tool_choice``): answer with a call to that tool. ``method="json_schema"`` sends a
    ``response_format``: answer with the JSON as the message content.
    """

    def build(req: Json) -> Json:
        tools = req.get("tools") or []
        if tools:
            choice = req.get("tool_choice")
            name = (
                choice["function"]["name"]
                if isinstance(choice, dict) and "function" in choice
                else tools[0]["function"]["name"]
            )
            return _completion(req, _tool_message([(name, obj)]), "tool_calls")
        return _completion(req, {"role": "assistant", "content": json.dumps(obj)}, "stop")

    return Reply(build=build, delay_s=delay_s)


def error(status: int, message: str = "scripted failure", *, retry_after: str | None = None) -> Reply:
    """An OpenAI-style error body with ``status``; ``retry_after`` sets the header verbatim."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    body = {"error": {"message": message, "type": "loopback_error", "code": str(status)}}
    return Reply(status=status, build=lambda _req: body, headers=headers)


def malformed(*, delay_s: float = 0.0) -> Reply:
    """HTTP 200 that claims JSON but is cut off mid-document."""
    return Reply(raw=b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "Pla', delay_s=delay_s)


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer[LLMServer]
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, headers and body go out as two writes and the client's
        # delayed ACK adds ~40 ms to every reply: noise in every latency the tests measure.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
        pass

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _record(self, body: Any) -> RecordedRequest:
        rec = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            at_s=time.monotonic(),
        )
        self.server.owner._requests.append(rec)
        return rec

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout) before a slow reply: that is the point of the test.
            self.close_connection = True

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "loopback"} for m in self.server.owner.models]
            self._send(200, json.dumps({"object": "list", "data": data}).encode(), "application/json", {})
        else:
            self._send(404, b'{"error": {"message": "not found"}}', "application/json", {})

    def do_POST(self) -> None:
        body = self._read_body()
        self._record(body)
        owner = self.server.owner
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}', "application/json", {})
            return
        reply = owner._next_reply()
        if reply.delay_s and owner._stopping.wait(reply.delay_s):
            self.close_connection = True
            return
        request = body if isinstance(body, dict) else {}
        if reply.raw is not None:
            payload = reply.raw
        elif reply.build is not None:
            payload = json.dumps(reply.build(request)).encode()
        else:
            payload = b""
        if request.get("stream") and reply.status == 200 and reply.raw is None and reply.build is not None:
            self._send_stream(json.loads(payload))
            return
        self._send(reply.status, payload, reply.content_type, reply.headers)

    def _send_stream(self, completion: Json) -> None:
        """Replay a completion as server-sent events (one content chunk), for streaming clients."""
        message = completion["choices"][0]["message"]
        chunk = {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": message.get("content") or ""}}],
        }
        done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        events = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in (chunk, done)) + b"data: [DONE]\n\n"
        self.close_connection = True
        self._send(200, events, "text/event-stream", {"Connection": "close"})


class LLMServer(Loopback):
    """An OpenAI-compatible server on ``127.0.0.1:<free port>`` in a background thread.

    Use as a context manager. :attr:`url` is the base URL a client wants (ends in ``/v1``).
    """

    def __init__(self, models: Iterable[str] = ("loopback-model",)) -> None:
        self.models = list(models)
        self._replies: deque[Reply] = deque()
        self._default: Reply | None = None
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        super().__init__(_Handler, "llm-loopback")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order."""
        return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self._requests if r.path.rstrip("/").endswith("/chat/completions")]

    def push(self, *replies: Reply) -> LLMServer:
        """Queue replies, used one per chat request in order."""
        with self._lock:
            self._replies.extend(replies)
        return self

    def always(self, reply: Reply | None) -> LLMServer:
        """The reply used once the queue is empty (``None``: answer 400 'no reply scripted')."""
        self._default = reply
        return self

    def _next_reply(self) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return self._default or error(400, "no reply scripted")
