"""Connections to the cloud PostgreSQL with every wait bounded.

libpq's defaults wait far too long for a pedal on flaky Wi-Fi: ``connect_timeout`` is
unlimited (psycopg's own default is 130 s) and a dead link can hang a query for minutes. Here
the connect is bounded, TCP keepalives and ``tcp_user_timeout`` notice a dead peer within
~11 s, the server stops any statement after ``statement_timeout``, and :class:`Deadline` shuts
the socket if a whole step still overruns (a peer that keeps the TCP link up but never
answers, e.g. a hung proxy).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from device.errors import ConfigError, SyncUnavailableError

__all__ = ["DEFAULT_TIMEOUTS", "Deadline", "Timeouts", "connect", "describe_url"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: int = 5
    statement_ms: int = 10_000
    keepalive_idle_s: int = 5
    keepalive_interval_s: int = 2
    keepalive_count: int = 3
    tcp_user_timeout_ms: int = 10_000
    step_s: float = 12.0  # the Deadline for one batch or one pull: a hung peer is noticed within 15 s


DEFAULT_TIMEOUTS = Timeouts()


def connect(
    url: str, timeouts: Timeouts = DEFAULT_TIMEOUTS, application_name: str = "fretcoach-pedal"
) -> psycopg.Connection[Any]:
    """Open a connection; failure to reach the server raises :class:`SyncUnavailableError`."""
    try:
        return psycopg.connect(
            url,
            connect_timeout=timeouts.connect_s,
            keepalives=1,
            keepalives_idle=timeouts.keepalive_idle_s,
            keepalives_interval=timeouts.keepalive_interval_s,
            keepalives_count=timeouts.keepalive_count,
            tcp_user_timeout=timeouts.tcp_user_timeout_ms,
            application_name=application_name,
            autocommit=True,
            options=f"-c statement_timeout={timeouts.statement_ms} -c idle_in_transaction_session_timeout=60000",
        )
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid database URL {describe_url(url)}: {_first_line(exc)}") from exc
    except psycopg.OperationalError as exc:
        raise SyncUnavailableError(f"cannot reach the database at {describe_url(url)}: {_first_line(exc)}") from exc


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparseable URL)"
    host = info.get("host", "localhost")
    port = info.get("port", 5432)
    return f"{info.get('user', '')}@{host}:{port}/{info.get('dbname', '')}".lstrip("@")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class Deadline:
    """If a step has not finished within ``seconds``, shut the connection's socket.

    The blocked libpq call then fails at once with a connection error instead of waiting on
    a peer that never answers. Shutting down (not closing) keeps the descriptor valid for
    libpq, which closes it itself.
    """

    def __init__(self, conn: psycopg.Connection[Any], seconds: float) -> None:
        self._conn = conn
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self.fired = False

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(Exception):
            fd = self._conn.pgconn.socket
            # fromfd duplicates the descriptor: shutdown acts on the shared socket, close()
            # only drops our duplicate.
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as s:
                s.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def armed(self) -> Iterator[Deadline]:
        self._timer.start()
        try:
            yield self
        finally:
            self._timer.cancel()
