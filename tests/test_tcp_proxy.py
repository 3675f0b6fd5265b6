"""The fault tests' TCP proxy forwards faithfully and fails exactly as told."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from tcp_proxy import COMMIT_COMPLETE, COMMIT_MESSAGE, Action, TcpProxy


class RecordingServer:
    """Echoes with a prefix; keeps what each connection sent; answers COMMIT like PostgreSQL."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytearray] = []
        self.closed = threading.Event()  # a connection saw EOF
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            self.received.append(buf)
            self._conns.append(conn)
            t = threading.Thread(target=self._handle, args=(conn, buf), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, conn: socket.socket, buf: bytearray) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                reply = COMMIT_COMPLETE if COMMIT_MESSAGE in data else b"echo:" + data
                with contextlib.suppress(OSError):
                    conn.sendall(reply)
        self.closed.set()

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept()/recv(); close() alone would not.
        for s in [self.sock, *self._conns]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self._accept.join(timeout=5)
        self.sock.close()
        for t in self._threads:
            t.join(timeout=5)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    s = RecordingServer()
    yield s
    s.close()


@pytest.fixture
def proxy(server: RecordingServer) -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", server.port)) as p:
        yield p


def _client(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def _recv_all(s: socket.socket) -> bytes:
    """Everything until the proxy closes the link (EOF or reset)."""
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_forwards_both_ways_and_closes_cleanly(server: RecordingServer) -> None:
    proxy = TcpProxy(("127.0.0.1", server.port))
    with _client(proxy) as c:
        c.sendall(b"hello")
        assert c.recv(100) == b"echo:hello"
    proxy.close()
    proxy.close()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_cut_closes_live_connections_and_new_ones_work(proxy: TcpProxy, server: RecordingServer) -> None:
    with _client(proxy) as c:
        c.sendall(b"a")
        assert c.recv(100) == b"echo:a"
        assert proxy.cut() == 1
        assert _recv_all(c) == b""
    assert server.closed.wait(5)
    with _client(proxy) as c2:
        c2.sendall(b"b")
        assert c2.recv(100) == b"echo:b"


def test_cut_after_client_bytes_forwards_exactly_that_many(proxy: TcpProxy, server: RecordingServer) -> None:
    proxy.cut_after_client_bytes(10)
    with _client(proxy) as c:
        c.sendall(b"0123456789ABCDEF")
        _recv_all(c)
    assert server.closed.wait(5)
    assert bytes(server.received[0]) == b"0123456789"


def test_cut_before_pattern_keeps_it_from_the_server(proxy: TcpProxy, server: RecordingServer) -> None:
    rule = proxy.on_client_pattern(COMMIT_MESSAGE, Action.CUT_BEFORE)
    with _client(proxy) as c:
        c.sendall(b"BEGIN")
        assert c.recv(100) == b"echo:BEGIN"
        c.sendall(COMMIT_MESSAGE)
        assert _recv_all(c) == b""
    assert rule.fired.is_set()
    assert server.closed.wait(5)
    assert bytes(server.received[0]) == b"BEGIN"


def test_cut_after_reply_lets_the_server_answer_but_not_the_client(proxy: TcpProxy, server: RecordingServer) -> None:
    rule = proxy.on_client_pattern(COMMIT_MESSAGE, "cut_after_reply")
    with _client(proxy) as c:
        c.sendall(COMMIT_MESSAGE)
        assert _recv_all(c) == b""
    assert rule.server_answered.is_set()
    assert bytes(server.received[0]) == COMMIT_MESSAGE


def test_hold_reply_keeps_the_link_up_and_silent(proxy: TcpProxy) -> None:
    rule = proxy.on_client_pattern(COMMIT_MESSAGE, Action.HOLD_REPLY)
    with _client(proxy) as c:
        c.sendall(COMMIT_MESSAGE)
        assert rule.server_answered.wait(5)
        c.settimeout(0.3)
        with pytest.raises(TimeoutError):
            c.recv(100)
        assert proxy.live == 1


def test_blackhole_keeps_tcp_up_but_forwards_nothing(proxy: TcpProxy, server: RecordingServer) -> None:
    with _client(proxy) as c:
        c.sendall(b"x")
        assert c.recv(100) == b"echo:x"
        proxy.blackhole()
        c.sendall(b"y")
        c.settimeout(0.3)
        with pytest.raises(TimeoutError):
            c.recv(100)
        assert proxy.live == 1
    assert bytes(server.received[0]) == b"x"
    with _client(proxy) as c2:  # new connections are accepted and never answered
        c2.settimeout(0.3)
        c2.sendall(b"z")
        with pytest.raises(TimeoutError):
            c2.recv(100)


def test_refuse_then_accept_again_on_the_same_port(proxy: TcpProxy) -> None:
    port = proxy.port
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    proxy.accept()
    assert proxy.port == port
    with _client(proxy) as c:
        c.sendall(b"again")
        assert c.recv(100) == b"echo:again"


def test_url_for_points_at_the_proxy_without_tls(proxy: TcpProxy) -> None:
    url = proxy.url_for("postgresql://dev:secret@db.example:6543/fc?application_name=x")
    assert f"port={proxy.port}" in url
    assert "host=127.0.0.1" in url
    assert "sslmode=disable" in url
    assert "password=secret" in url
