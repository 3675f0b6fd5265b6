"""The pedal's SQLite store: sessions, score snapshots, cached plans, the sync outbox.

One connection, one writer: every write runs in ``BEGIN IMMEDIATE`` under a lock, in WAL mode
with ``synchronous=FULL``, so a committed checkpoint survives a pulled plug. A file that is not
a readable FretCoach database is moved aside at open and a fresh one is used; a full disk
stops writes with :class:`DiskFullError` and leaves what was committed intact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from device.errors import DiskFullError, SessionError, StoreCorruptError
from device.session.migrations import MIGRATIONS, schema_version
from device.session.models import PlanRecord, SessionRecord, from_iso, to_iso

__all__ = ["OutboxItem", "SessionStore", "StoreStatus"]

log = logging.getLogger(__name__)

# Below this much free space a new session is refused: a practice hour of checkpoints is
# ~1 MB, and SQLite needs room for its WAL.
MIN_FREE_BYTES = 8 * 1024 * 1024
# The cloud row's columns, in the sessions table too.
_SESSION_COLUMNS = tuple(f.name for f in fields(SessionRecord))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    item_id: str
    payload: dict[str, Any] | None  # None: the stored JSON is unreadable (quarantine it)
    attempts: int


@dataclass(frozen=True, slots=True)
class StoreStatus:
    queued: int
    quarantined: int
    sessions: int
    running: int
    last_sync_ok_at: datetime | None
    last_sync_error: str | None


class SessionStore:
    """Open with :meth:`open`; safe to share between threads (writes are serialised)."""

    def __init__(self, db: Database, path: Path, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self.moved_aside: Path | None = None

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout_ms: int = 10_000,
    ) -> SessionStore:
        """Open (creating or migrating) the store at ``path``.

        A corrupt or unreadable file is renamed to ``<name>.corrupt-<UTC time>`` (its WAL and
        shared-memory files with it), logged, and a fresh store is created; ``moved_aside``
        then names the old file so the pedal can say so on screen.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(f"cannot create the data directory {path.parent}: {exc.strerror or exc}") from exc
        moved: Path | None = None
        try:
            db = cls._connect(path, busy_timeout_ms)
        except StoreCorruptError as exc:
            moved = cls._move_aside(path, clock())
            log.warning("%s; moved it to %s and started a fresh store", exc, moved.name)
            db = cls._connect(path, busy_timeout_ms)
        store = cls(db, path, clock)
        store.moved_aside = moved
        return store

    @staticmethod
    def _connect(path: Path, busy_timeout_ms: int) -> Database:
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
        except sqlite3.Error as exc:
            raise StoreCorruptError(f"{path}: cannot open the session store: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            check = conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise StoreCorruptError(f"{path}: the session store is damaged ({check[0][0]})")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk before it returns, so an acknowledged checkpoint
            # survives a power cut (NORMAL in WAL mode may lose the last commits).
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            db = Database(conn, execute_plugins=False)
            # One migrator at a time: two processes opening a new store together (the service
            # and a `fretcoach sync`) would otherwise both create the tables.
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS.apply(db)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return db
        except StoreCorruptError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            # A full disk shows up as SQLITE_FULL, or as an I/O error creating the -shm file.
            if _is_full(exc) or _low_space(path):
                raise DiskFullError(f"{path}: the disk is full; cannot open the session store") from exc
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise SessionError(f"{path}: the session store is locked by another process") from exc
            # Only damage is a reason to move the file aside; any other failure (I/O, no room
            # for the WAL, permissions) must leave a healthy store where it is.
            if _primary_code(exc) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                raise StoreCorruptError(f"{path}: not a readable session store ({exc})") from exc
            raise SessionError(f"{path}: cannot open the session store: {exc}") from exc

    @staticmethod
    def _move_aside(path: Path, now: datetime) -> Path:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        try:
            for suffix in ("-wal", "-shm"):
                side = path.with_name(path.name + suffix)
                if side.exists():
                    side.rename(target.with_name(target.name + suffix))
            path.rename(target)
        except OSError as exc:
            raise SessionError(f"{path}: damaged and cannot be moved aside: {exc.strerror or exc}") from exc
        return target

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return schema_version(self.db)

    # ---- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Database]:
        """One durable write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) under the lock."""
        with self._lock:
            conn = self.db.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> SessionError:
        if _is_full(exc):
            return DiskFullError(f"disk full: cannot write to {self.path}; recording stopped, saved data is intact")
        return SessionError(f"{self.path}: {exc}")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return list(self.db.query(sql, params))
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path.parent).free

    def ensure_room(self, min_free: int = MIN_FREE_BYTES) -> None:
        """Refuse to start recording on an (almost) full disk, with the reason."""
        free = self.free_bytes()
        if free < min_free:
            raise DiskFullError(
                f"disk almost full ({free // 1024} KiB free on {self.path.parent}); free some space to record"
            )

    # ---- sessions ------------------------------------------------------------------------

    def insert_running(self, row: dict[str, Any]) -> None:
        with self.write() as db:
            db.table("sessions").insert({**row, "status": "running", "checkpointed_at": to_iso(self._clock())})

    def checkpoint(self, session_id: str, fields: dict[str, Any], snapshot: dict[str, Any]) -> None:
        """Save a running session's latest totals and one snapshot, atomically and durably."""
        now = to_iso(self._clock())
        with self.write() as db:
            sets = ", ".join(f"{k} = ?" for k in fields)
            cur = db.execute(
                f"UPDATE sessions SET {sets}, checkpointed_at = ? WHERE session_id = ? AND status = 'running'",
                [*fields.values(), now, session_id],
            )
            if cur.rowcount != 1:
                raise SessionError(f"session {session_id} is not running")
            db.table("snapshots").insert({**snapshot, "session_id": session_id, "taken_at": now})

    def end_session(self, record: SessionRecord) -> None:
        """Mark the session ended with its final totals and queue it for the cloud, atomically."""
        payload = record.to_payload()
        with self.write() as db:
            cur = db.execute(
                "UPDATE sessions SET "
                + ", ".join(f"{k} = ?" for k in _SESSION_COLUMNS)
                + ", status = 'ended', checkpointed_at = ? WHERE session_id = ? AND status = 'running'",
                [_sqlite_value(payload[k]) for k in _SESSION_COLUMNS] + [to_iso(self._clock()), record.session_id],
            )
            if cur.rowcount != 1:
                raise SessionError(f"session {record.session_id} is not running")
            self._enqueue(db, "session", record.session_id, payload)
            if record.practice_id is not None:
                self._mark_executed(db, record.practice_id, record.session_id)

    def recover_running(self) -> list[SessionRecord]:
        """End every session a crash left running, as of its last checkpoint; queue each once."""
        recovered: list[SessionRecord] = []
        with self.write() as db:
            rows = list(db.query("SELECT * FROM sessions WHERE status = 'running' ORDER BY start_timestamp"))
            for row in rows:
                start = from_iso(row["start_timestamp"])
                duration = float(row["duration_seconds"] or 0.0)
                end = start + timedelta(seconds=duration)
                db.execute(
                    "UPDATE sessions SET status = 'ended', recovered = 1, end_timestamp = ? WHERE session_id = ?",
                    [to_iso(end), row["session_id"]],
                )
                record = _record_from_row({**row, "end_timestamp": to_iso(end), "recovered": 1})
                self._enqueue(db, "session", record.session_id, record.to_payload())
                if record.practice_id is not None:
                    self._mark_executed(db, record.practice_id, record.session_id)
                recovered.append(record)
        return recovered

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM sessions WHERE session_id = ?", [session_id])
        return rows[0] if rows else None

    def recent_sessions(self, user_id: str, limit: int = 5) -> list[SessionRecord]:
        """The user's latest ended sessions, newest first."""
        rows = self._read(
            "SELECT * FROM sessions WHERE user_id = ? AND status = 'ended' ORDER BY start_timestamp DESC LIMIT ?",
            [user_id, limit],
        )
        return [_record_from_row(r) for r in rows]

    def sessions_since(self, user_id: str, since: datetime, limit: int = 1000) -> list[SessionRecord]:
        """The user's ended sessions that started at or after ``since``, newest first."""
        rows = self._read(
            "SELECT * FROM sessions WHERE user_id = ? AND status = 'ended' AND start_timestamp >= ?"
            " ORDER BY start_timestamp DESC LIMIT ?",
            [user_id, to_iso(since), limit],
        )
        return [_record_from_row(r) for r in rows]

    def snapshots(self, session_id: str) -> list[dict[str, Any]]:
        return self._read("SELECT * FROM snapshots WHERE session_id = ? ORDER BY id", [session_id])

    # ---- plans ---------------------------------------------------------------------------

    def save_plan(self, plan: PlanRecord) -> None:
        """Cache a plan made on the pedal and queue it for the cloud."""
        with self.write() as db:
            self._upsert_plan(db, plan)
            self._enqueue(db, "plan", plan.practice_id, plan.to_payload())

    def _mark_executed(self, db: Database, practice_id: str, session_id: str) -> None:
        """Mark a cached plan as played by ``session_id`` and queue the change (no-op if unknown)."""
        rows = list(db.query("SELECT * FROM plans WHERE practice_id = ?", [practice_id]))
        if not rows or rows[0]["executed_session_id"] == session_id:
            return
        db.execute(
            "UPDATE plans SET executed_session_id = ?, updated_at = ? WHERE practice_id = ?",
            [session_id, to_iso(self._clock()), practice_id],
        )
        plan = _plan_from_row({**rows[0], "executed_session_id": session_id})
        self._enqueue(db, "plan", practice_id, plan.to_payload())

    def merge_pulled_plans(self, plans: Iterable[PlanRecord]) -> int:
        """Cache plans pulled from the cloud; a local 'executed' mark is never undone by them."""
        n = 0
        with self.write() as db:
            for pulled in plans:
                sql = "SELECT executed_session_id, source FROM plans WHERE practice_id = ?"
                rows = list(db.query(sql, [pulled.practice_id]))
                if rows:
                    # A plan made here and echoed back stays ours; a local mark is kept.
                    local = rows[0]
                    executed = pulled.executed_session_id or local["executed_session_id"]
                    pulled = replace(pulled, executed_session_id=executed, source=local["source"])  # noqa: PLW2901
                self._upsert_plan(db, pulled)
                n += 1
        return n

    def get_plan(self, practice_id: str) -> PlanRecord | None:
        rows = self._read("SELECT * FROM plans WHERE practice_id = ?", [practice_id])
        return _plan_from_row(rows[0]) if rows else None

    def pending_plan(self, user_id: str, newer_than: datetime) -> PlanRecord | None:
        """The newest plan for ``user_id`` not yet played, generated after ``newer_than``."""
        rows = self._read(
            "SELECT * FROM plans WHERE user_id = ? AND executed_session_id IS NULL AND generated_at > ? "
            "ORDER BY generated_at DESC LIMIT 1",
            [user_id, to_iso(newer_than)],
        )
        return _plan_from_row(rows[0]) if rows else None

    def _upsert_plan(self, db: Database, plan: PlanRecord) -> None:
        db.table("plans").upsert(
            {
                "practice_id": plan.practice_id,
                "user_id": plan.user_id,
                "practice_plan": json.dumps(plan.practice_plan, sort_keys=True),
                "generated_at": to_iso(plan.generated_at),
                "executed_session_id": plan.executed_session_id,
                "source": plan.source,
                "updated_at": to_iso(self._clock()),
            },
            pk="practice_id",
        )

    # ---- outbox --------------------------------------------------------------------------

    def _enqueue(self, db: Database, kind: str, item_id: str, payload: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO outbox (kind, item_id, payload, created_at) VALUES (?, ?, ?, ?)",
            [kind, item_id, json.dumps(payload, sort_keys=True), to_iso(self._clock())],
        )

    def outbox_batch(self, limit: int) -> list[OutboxItem]:
        """The oldest queued (not quarantined) items, in the order they were recorded."""
        rows = self._read(
            "SELECT id, kind, item_id, payload, attempts FROM outbox WHERE quarantined_at IS NULL ORDER BY id LIMIT ?",
            [limit],
        )
        items = []
        for r in rows:
            try:
                payload = json.loads(r["payload"])
                if not isinstance(payload, dict):
                    payload = None
            except ValueError:
                payload = None
            items.append(OutboxItem(r["id"], r["kind"], r["item_id"], payload, r["attempts"]))
        return items

    def ack(self, items: Sequence[OutboxItem]) -> None:
        """Forget items the server has committed; mark their sessions synced."""
        if not items:
            return
        now = to_iso(self._clock())
        with self.write() as db:
            for chunk in _chunks([i.id for i in items], 500):
                marks = ",".join("?" * len(chunk))
                db.execute(
                    f"UPDATE sessions SET synced_at = ? WHERE session_id IN "
                    f"(SELECT item_id FROM outbox WHERE kind = 'session' AND id IN ({marks}))",
                    [now, *chunk],
                )
                db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)

    def quarantine(self, failures: Sequence[tuple[OutboxItem, str]]) -> None:
        """Set rows the server rejects aside (kept, never dropped) so the queue moves on."""
        if not failures:
            return
        now = to_iso(self._clock())
        with self.write() as db:
            for item, error in failures:
                db.execute(
                    "UPDATE outbox SET quarantined_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
                    [now, error[:500], item.id],
                )

    def requeue_quarantined(self) -> int:
        with self.write() as db:
            return db.execute("UPDATE outbox SET quarantined_at = NULL WHERE quarantined_at IS NOT NULL").rowcount

    def quarantined(self) -> list[dict[str, Any]]:
        return self._read(
            "SELECT id, kind, item_id, last_error, quarantined_at FROM outbox WHERE quarantined_at IS NOT NULL"
        )

    # ---- sync state ----------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM sync_state WHERE key = ?", [key])
        return str(rows[0]["value"]) if rows else None

    def set_state(self, values: dict[str, str | None]) -> None:
        with self.write() as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM sync_state WHERE key = ?", [key])
                else:
                    db.execute(
                        "INSERT INTO sync_state (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [key, value],
                    )

    def status(self) -> StoreStatus:
        row = self._read(
            "SELECT (SELECT count(*) FROM outbox WHERE quarantined_at IS NULL) AS queued,"
            " (SELECT count(*) FROM outbox WHERE quarantined_at IS NOT NULL) AS quarantined,"
            " (SELECT count(*) FROM sessions WHERE status = 'ended') AS sessions,"
            " (SELECT count(*) FROM sessions WHERE status = 'running') AS running"
        )[0]
        ok_at = self.get_state("last_sync_ok_at")
        return StoreStatus(
            queued=row["queued"],
            quarantined=row["quarantined"],
            sessions=row["sessions"],
            running=row["running"],
            last_sync_ok_at=from_iso(ok_at) if ok_at else None,
            last_sync_error=self.get_state("last_sync_error"),
        )


def _low_space(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < MIN_FREE_BYTES
    except OSError:
        return False


def _primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_full(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)


def _sqlite_value(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v


def _chunks(xs: Sequence[int], n: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def _record_from_row(row: dict[str, Any]) -> SessionRecord:
    d = {k: row[k] for k in _SESSION_COLUMNS}
    d["recovered"] = bool(d["recovered"])
    return SessionRecord.from_payload(d)


def _plan_from_row(row: dict[str, Any]) -> PlanRecord:
    return PlanRecord.from_payload(row, source=row.get("source") or "pedal")


