"""A loopback TCP proxy the fault tests put between the syncer and PostgreSQL.

One selector thread owns every socket; the controls (``cut``, ``blackhole``, ``refuse``,
byte-count and pattern rules) are queued to that thread and applied there, so a control
never races a forward and returns only once it took effect. Client→server bytes can be
inspected: :meth:`TcpProxy.on_client_pattern` acts when a pattern (e.g. psycopg's simple-query
``COMMIT`` message) passes through, either cutting before the server sees it, or letting the
server commit while the reply never reaches the client.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = proxy.url_for(device_url)
        proxy.on_client_pattern(COMMIT_MESSAGE, "cut_after_reply")
"""

from __future__ import annotations

import contextlib
import enum
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

__all__ = ["COMMIT_MESSAGE", "Action", "PatternRule", "TcpProxy"]

# psycopg ends a ``with conn.transaction()`` block with a simple-protocol Query message:
# 'Q', int32 length (4 + len("COMMIT\0") = 11), "COMMIT\0".
COMMIT_MESSAGE = b"Q\x00\x00\x00\x0bCOMMIT\x00"
# The server's CommandComplete for it: 'C', int32 length 11, "COMMIT\0".
COMMIT_COMPLETE = b"C\x00\x00\x00\x0bCOMMIT\x00"

_CHUNK = 65536
_MAX_PENDING = 1 << 20  # stop reading a side while this much is waiting to be written


class Action(enum.Enum):
    CUT_BEFORE = "cut_before"  # the matching bytes never reach the server; both sides closed
    CUT_AFTER_REPLY = "cut_after_reply"  # forwarded; the server's answer is dropped, then cut
    HOLD_REPLY = "hold_reply"  # forwarded; the server's answers are withheld, link kept up
    BLACKHOLE = "blackhole"  # nothing more is forwarded either way; TCP stays up


@dataclass
class PatternRule:
    """A one-shot rule; ``fired`` is set when it acts, ``server_answered`` when the server's
    reply to the matched message reached the proxy (for the reply-dropping actions)."""

    pattern: bytes
    action: Action
    reply_marker: bytes
    fired: threading.Event = field(default_factory=threading.Event)
    server_answered: threading.Event = field(default_factory=threading.Event)
    fired_at: float | None = None  # time.monotonic() when it acted


@dataclass
class _Conn:
    client: socket.socket
    server: socket.socket
    up: bytearray = field(default_factory=bytearray)  # client -> server, waiting to be sent
    down: bytearray = field(default_factory=bytearray)  # server -> client, waiting to be sent
    up_seen: int = 0  # bytes received from the client so far
    tail: bytes = b""  # last bytes from the client, to match patterns split across reads
    frozen: bool = False  # blackholed: neither side is read or written any more
    drop_down: bool = False  # server replies are read and thrown away
    cut_when_up_flushed: bool = False
    watch: PatternRule | None = None  # waiting for this rule's reply marker from the server
    down_tail: bytes = b""
    closed: bool = False


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; see the module docstring."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], threading.Event, list[Any]]] = queue.SimpleQueue()
        self._conns: list[_Conn] = []
        self._rules: list[PatternRule] = []
        self._cut_after: int | None = None
        self._blackholed = False
        self._listener: socket.socket | None = None
        self.port = 0
        self.accepted = 0  # connections accepted over the proxy's life
        self.client_bytes = 0  # bytes received from clients over the proxy's life
        self._stop = False
        self._listen()
        self._thread = threading.Thread(target=self._loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection and the listener, and stop the thread."""
        if not self._thread.is_alive():
            return
        self._call(self._shutdown)
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # pragma: no cover - would be a proxy bug
            raise RuntimeError("the TCP proxy thread did not stop")
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def url_for(self, url: str) -> str:
        """``url`` with its host and port pointing at the proxy (and TLS off, so the proxy can
        read the protocol)."""
        info = psycopg.conninfo.conninfo_to_dict(url)
        info.update(host=self.host, port=str(self.port), sslmode="disable")
        return psycopg.conninfo.make_conninfo(**info)

    # ---- controls (thread-safe; each returns once applied) -------------------------------

    def cut(self) -> int:
        """Close every live connection now; returns how many were closed."""
        return int(self._call(self._cut_all))

    def blackhole(self, on: bool = True) -> None:
        """Stop (or resume, for new connections) forwarding: live links stay up but go silent,
        new connections are accepted and never answered."""

        def apply() -> None:
            self._blackholed = on
            if on:
                for c in list(self._conns):
                    self._freeze(c)

        self._call(apply)

    def refuse(self) -> None:
        """Stop listening: new connections are refused (live ones are cut too)."""
        self._call(self._stop_listening)

    def accept(self) -> None:
        """Listen again on the same port after :meth:`refuse`."""
        self._call(self._listen)

    def cut_after_client_bytes(self, n: int) -> None:
        """On every connection, forward the client's first ``n`` bytes and then cut it."""

        def apply() -> None:
            self._cut_after = n

        self._call(apply)

    def on_client_pattern(
        self, pattern: bytes, action: Action | str, reply_marker: bytes = COMMIT_COMPLETE
    ) -> PatternRule:
        """Act once when ``pattern`` passes from a client to the server (see :class:`Action`)."""
        rule = PatternRule(pattern, Action(action), reply_marker)
        self._call(lambda: self._rules.append(rule))
        return rule

    def clear_rules(self) -> None:
        def apply() -> None:
            self._rules.clear()
            self._cut_after = None

        self._call(apply)

    @property
    def live(self) -> int:
        return int(self._call(lambda: sum(not c.closed for c in self._conns)))

    # ---- the loop ------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        if threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        box: list[Any] = []
        self._calls.put((fn, done, box))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if not done.wait(timeout=10):
            raise RuntimeError("the TCP proxy did not answer a control call")
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def _loop(self) -> None:
        while not self._stop:
            for key, events in self._sel.select(timeout=0.5):
                kind, conn = key.data
                if kind == "wake":
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                    self._run_calls()
                elif kind == "listen":
                    self._accept()
                elif conn is not None and not conn.closed:
                    self._service(conn, key.fileobj, events)
            self._run_calls()

    def _run_calls(self) -> None:
        while True:
            try:
                fn, done, box = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(fn())
            except BaseException as exc:  # handed to the caller
                box.append(exc)
            done.set()

    def _shutdown(self) -> None:
        self._cut_all()
        self._stop_listening()
        self._stop = True

    def _listen(self) -> None:
        if self._listener is not None:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._listener = s
        self._sel.register(s, selectors.EVENT_READ, ("listen", None))

    def _stop_listening(self) -> None:
        if self._listener is None:
            return
        self._sel.unregister(self._listener)
        self._listener.close()
        self._listener = None

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self.accepted += 1
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()  # the target is down: the client sees the link drop
            return
        for s in (client, server):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(client, server)
        self._conns.append(conn)
        if self._blackholed:
            conn.frozen = True  # accepted, never answered: the client's connect times out
        self._update(conn)

    def _cut_all(self) -> int:
        n = 0
        for c in list(self._conns):
            if not c.closed:
                n += 1
            self._close(c)
        return n

    def _freeze(self, c: _Conn) -> None:
        c.frozen = True
        self._update(c)

    def _close(self, c: _Conn) -> None:
        if c.closed:
            return
        c.closed = True
        for s in (c.client, c.server):
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            s.close()
        self._conns.remove(c)

    def _update(self, c: _Conn) -> None:
        """(Re)register both sockets for what each side can do now."""
        if c.closed:
            return
        want: dict[socket.socket, int] = {c.client: 0, c.server: 0}
        if not c.frozen:
            if len(c.up) < _MAX_PENDING and not c.cut_when_up_flushed:
                want[c.client] |= selectors.EVENT_READ
            if len(c.down) < _MAX_PENDING:
                want[c.server] |= selectors.EVENT_READ
            if c.up:
                want[c.server] |= selectors.EVENT_WRITE
            if c.down:
                want[c.client] |= selectors.EVENT_WRITE
        for s, events in want.items():
            try:
                key = self._sel.get_key(s)
            except KeyError:
                if events:
                    self._sel.register(s, events, ("conn", c))
                continue
            if not events:
                self._sel.unregister(s)
            elif key.events != events:
                self._sel.modify(s, events, ("conn", c))

    def _service(self, c: _Conn, sock: Any, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                self._flush(c, sock)
            if not c.closed and events & selectors.EVENT_READ:
                if sock is c.client:
                    self._from_client(c)
                else:
                    self._from_server(c)
        except OSError:
            self._close(c)
            return
        if not c.closed:
            self._update(c)

    def _flush(self, c: _Conn, sock: socket.socket) -> None:
        buf = c.up if sock is c.server else c.down
        if buf:
            sent = sock.send(buf)
            del buf[:sent]
        if c.cut_when_up_flushed and not c.up:
            self._close(c)

    def _from_client(self, c: _Conn) -> None:
        data = c.client.recv(_CHUNK)
        if not data:
            self._close(c)
            return
        start = c.up_seen
        c.up_seen += len(data)
        self.client_bytes += len(data)
        if self._cut_after is not None and c.up_seen >= self._cut_after:
            keep = max(0, self._cut_after - start)
            c.up += data[:keep]
            c.cut_when_up_flushed = True
            if not c.up:
                self._close(c)
            return
        window = c.tail + data
        for rule in self._rules:
            at = window.find(rule.pattern)
            if at < 0:
                continue
            self._rules.remove(rule)
            rule.fired_at = time.monotonic()
            rule.fired.set()  # before acting: a client that sees the cut sees it fired
            self._apply(c, rule, data, at - len(c.tail))
            return
        c.tail = window[-64:]
        c.up += data

    def _apply(self, c: _Conn, rule: PatternRule, data: bytes, at: int) -> None:
        if rule.action is Action.CUT_BEFORE:
            c.up += data[: max(0, at)]
            c.cut_when_up_flushed = True
            if not c.up:
                self._close(c)
        elif rule.action is Action.BLACKHOLE:
            c.up += data[: max(0, at)]  # what came before still goes; the rest never does
            self._freeze(c)
        else:  # CUT_AFTER_REPLY, HOLD_REPLY: the server gets it all, the client hears nothing
            c.up += data
            c.drop_down = True
            c.watch = rule
            c.down.clear()

    def _from_server(self, c: _Conn) -> None:
        data = c.server.recv(_CHUNK)
        if not data:
            self._close(c)
            return
        if not c.drop_down:
            c.down += data
            return
        rule = c.watch
        if rule is not None and not rule.server_answered.is_set():
            window = c.down_tail + data
            if rule.reply_marker in window:
                rule.server_answered.set()
                if rule.action is Action.CUT_AFTER_REPLY:
                    # Only now does the client learn the link is gone: the server has
                    # answered (committed), so the outcome is fixed before the client errs.
                    self._close(c)
                    return
            c.down_tail = window[-64:]
