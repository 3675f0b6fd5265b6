"""A loopback stand-in for the Opik backend that records what the real opik SDK sends.

Point the SDK at :attr:`OpikRecorder.url` (``host=`` on ``opik.Opik``, or
``OPIK_URL_OVERRIDE``). Measured with opik 2.2: the SDK posts gzip-compressed JSON to
``/v1/private/traces/batch`` and ``/v1/private/spans/batch`` (tags and metadata in the body),
patches ``/v1/private/traces/{id}`` / ``spans/{id}`` for updates, and pings
``/is-alive/ping``. Everything is recorded; :meth:`traces` merges a trace's create and
update bodies by id.

Modes, switchable at any time: ``ok`` (202/200), ``error`` (HTTP 500 to everything),
``slow`` (answers after ``slow_s``, or at once after :meth:`release`). :func:`unused_url`
gives a URL on which nothing listens (Opik down).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from loopback import Loopback, LoopbackServer

__all__ = ["OpikRecorder", "RecordedCall", "unused_url"]

Mode = Literal["ok", "error", "slow"]


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at_s: float


def unused_url() -> str:
    """A loopback URL where nothing listens (connection refused at once): Opik is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer[OpikRecorder]
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _handle(self) -> None:
        owner = self.server.owner
        body = self._body()
        owner._record(
            RecordedCall(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
            )
        )
        if owner.mode == "slow" and owner._wake.wait(owner.slow_s) and owner._stopping.is_set():
            self.close_connection = True
            return
        if owner.mode == "error":
            status, payload = 500, b'{"errors": ["recorder told to fail"]}'
        elif self.command == "GET":
            status, payload = 200, b'{"healthy": true}'
        else:
            status, payload = (204 if self.command in ("PATCH", "DELETE") else 202), b""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class OpikRecorder(Loopback):
    """Records Opik SDK traffic on ``127.0.0.1:<free port>``; use as a context manager."""

    def __init__(self, mode: Mode = "ok", slow_s: float = 5.0) -> None:
        self.mode: Mode = mode
        self.slow_s = slow_s
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()  # ends slow waits: answer (release) or hang up (stop)
        super().__init__(_Handler, "opik-recorder")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def _record(self, call: RecordedCall) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def traces(self) -> list[dict[str, Any]]:
        """Traces by id in first-seen order, create and update bodies merged (later wins)."""
        merged: dict[str, dict[str, Any]] = {}
        for call in self.calls:
            if call.method == "POST" and call.path.startswith("/v1/private/traces/batch"):
                for t in (call.body or {}).get("traces", []):
                    merged.setdefault(t["id"], {}).update({k: v for k, v in t.items() if v is not None})
            elif call.method == "PATCH" and call.path.startswith("/v1/private/traces/"):
                trace_id = call.path.rstrip("/").rsplit("/", 1)[-1]
                merged.setdefault(trace_id, {"id": trace_id}).update(
                    {k: v for k, v in (call.body or {}).items() if v is not None}
                )
        return list(merged.values())

    def spans(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for call in self.calls:
            if call.method == "POST" and call.path.startswith("/v1/private/spans/batch"):
                out.extend((call.body or {}).get("spans", []))
        return out

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` is true (re-checked on every recorded call)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                self._lock.release()
                try:
                    if predicate(self):
                        return True
                finally:
                    self._lock.acquire()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.2))

    def release(self) -> None:
        """Answer the requests held by ``slow`` mode now, and every later one at once."""
        self.mode = "ok"
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        super().stop()
