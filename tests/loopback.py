"""A loopback HTTP service on a background thread: the base of the tests' stand-ins for the
LLM provider and the Opik backend."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

Owner = TypeVar("Owner", bound="Loopback")


class LoopbackServer(ThreadingHTTPServer, Generic[Owner]):
    daemon_threads = True
    # A client that times out mid-reply leaves a handler thread to finish writing; do not
    # make server_close() wait on it (slow replies are cut short by the stop event anyway).
    block_on_close = False

    def __init__(self, owner: Owner, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner  # handlers reach their service as ``self.server.owner``
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up early (our timeouts) is expected here, not a test failure.
        pass


class Loopback:
    """Serves ``handler`` on ``127.0.0.1:<free port>``; use as a context manager.

    ``_stopping`` is set when the service stops, so handlers holding a reply back can end.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._stopping = threading.Event()
        self._server = LoopbackServer(self, handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
