"""One sync pass: drain the outbox to PostgreSQL in batches, then pull practice plans.

Every recorded session reaches the server exactly once: a batch is acknowledged (deleted
from the outbox) only after the server confirmed its COMMIT, and resending a batch whose
confirmation was lost changes nothing there. Only one pass runs at a time per store, across
processes (the service's scheduler and a ``fretcoach sync`` typed at the shell).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cloud_sync.backoff import Backoff
from cloud_sync.connection import DEFAULT_TIMEOUTS, Deadline, Timeouts, connect, describe_url
from cloud_sync.pull import pull_plans
from cloud_sync.push import push_batch
from device.errors import SyncError, SyncUnavailableError
from device.session.models import to_iso
from device.session.store import SessionStore

__all__ = ["SyncReport", "Syncer"]

log = logging.getLogger(__name__)

Connector = Callable[[str, Timeouts], psycopg.Connection[Any]]


@dataclass
class SyncReport:
    sessions_pushed: int = 0
    sessions_already_there: int = 0
    plans_pushed: int = 0
    plans_pulled: int = 0
    quarantined: int = 0
    batches: int = 0
    queued: int = 0
    quarantined_total: int = 0
    busy: bool = False  # another pass held the lock; nothing was done
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.busy:
            return "another sync is running; nothing done"
        parts = [
            f"pushed {self.sessions_pushed} session{'s' * (self.sessions_pushed != 1)}",
            f"{self.plans_pushed} plan update{'s' * (self.plans_pushed != 1)}",
            f"pulled {self.plans_pulled} plan{'s' * (self.plans_pulled != 1)}",
        ]
        if self.sessions_already_there:
            parts.append(f"{self.sessions_already_there} already on the server")
        if self.quarantined:
            parts.append(f"{self.quarantined} set aside (rejected by the server)")
        tail = f"; {self.queued} still queued" if self.queued else "; nothing left queued"
        if self.quarantined_total:
            tail += f", {self.quarantined_total} set aside in total"
        return ", ".join(parts) + tail + f" ({self.duration_s:.1f} s)"


class Syncer:
    def __init__(
        self,
        store: SessionStore,
        database_url: str,
        user_id: str,
        *,
        batch_size: int = 500,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        connector: Connector = connect,
        attempts: int = 1,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.database_url = database_url
        self.user_id = user_id
        self.batch_size = batch_size
        self.timeouts = timeouts
        self._connector = connector
        self.attempts = max(1, attempts)
        self.backoff = backoff or Backoff(base_s=1.0, cap_s=30.0)
        self._sleep = sleep
        self._clock = clock
        self._cursor_key = f"plans_cursor:{describe_url(database_url)}"

    def run_once(self) -> SyncReport:
        """Push everything queued, then pull plans. Raises :class:`SyncUnavailableError` when
        the server cannot be reached (what was pushed before stays acknowledged)."""
        report = SyncReport()
        t0 = time.monotonic()
        with _exclusive(self.store.path) as got:
            if not got:
                report.busy = True
                return report
            try:
                self._pass(report)
            except SyncError as exc:
                self.store.set_state({"last_sync_error": str(exc), "last_sync_error_at": to_iso(self._clock())})
                raise
            finally:
                report.duration_s = time.monotonic() - t0
                status = self.store.status()
                report.queued, report.quarantined_total = status.queued, status.quarantined
        self.store.set_state({"last_sync_ok_at": to_iso(self._clock()), "last_sync_error": None})
        return report

    def _connect(self) -> psycopg.Connection[Any]:
        for attempt in range(1, self.attempts + 1):
            try:
                conn = self._connector(self.database_url, self.timeouts)
                self.backoff.reset()
                return conn
            except SyncUnavailableError:
                if attempt == self.attempts:
                    raise
                self._sleep(self.backoff.next_delay())
        raise AssertionError("unreachable")

    def _pass(self, report: SyncReport) -> None:
        conn = self._connect()
        try:
            self._push(conn, report)
            self._pull(conn, report)
        except psycopg.OperationalError as exc:
            raise SyncUnavailableError(f"lost the database connection: {str(exc).strip().splitlines()[0]}") from exc
        except psycopg.Error as exc:
            raise SyncError(f"the database refused the sync: {str(exc).strip().splitlines()[0]}") from exc
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _push(self, conn: psycopg.Connection[Any], report: SyncReport) -> None:
        while True:
            items = self.store.outbox_batch(self.batch_size)
            if not items:
                return
            with Deadline(conn, self.timeouts.step_s).armed():
                result = push_batch(conn, items)
            # The server has committed: only now forget the rows here.
            self.store.ack(result.acked)
            self.store.quarantine(result.rejected)
            for item, why in result.rejected:
                log.warning("sync: %s %s set aside: %s", item.kind, item.item_id, why)
            report.batches += 1
            report.sessions_pushed += result.sessions_inserted
            report.sessions_already_there += result.sessions_already_there
            report.plans_pushed += result.plans_written
            report.quarantined += len(result.rejected)
            if len(items) < self.batch_size:
                return

    def _pull(self, conn: psycopg.Connection[Any], report: SyncReport) -> None:
        stored = self.store.get_state(self._cursor_key)
        with Deadline(conn, self.timeouts.step_s).armed():
            pulled = pull_plans(conn, self.user_id, int(stored) if stored else None)
        if pulled.reset:
            report.notes.append("the plan cursor was ahead of this server; pulled every plan again")
        report.plans_pulled = self.store.merge_pulled_plans(pulled.plans)
        self.store.set_state({self._cursor_key: str(pulled.cursor)})


@contextlib.contextmanager
def _exclusive(db_path: Path) -> Iterator[bool]:
    """A non-blocking lock file next to the store; yields whether this pass got it."""
    fd = os.open(str(db_path) + ".sync-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
