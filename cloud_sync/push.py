"""Push one outbox batch to PostgreSQL: one transaction, idempotent, bad rows set aside.

Sessions are inserted ``ON CONFLICT DO NOTHING`` on their client-made UUID, so a batch sent
twice (its commit confirmation was lost) lands once. Plans are upserted; a plan's executed
mark, once set, is never cleared by an older copy. The whole batch goes as one statement per
table (``jsonb_to_recordset``: one round trip however big the batch). If the server rejects
the batch for its data, rows are retried one by one under savepoints, and only the rows it
rejects are returned for quarantine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from device.session.store import OutboxItem

__all__ = ["SESSION_COLUMN_TYPES", "PushResult", "push_batch"]

# Column → PostgreSQL type of fretcoach.sessions, as the payload is cast on the server.
SESSION_COLUMN_TYPES = {
    "session_id": "uuid",
    "user_id": "text",
    "device_id": "text",
    "scale_chosen": "text",
    "scale_type": "text",
    "pitch_accuracy": "double precision",
    "scale_conformity": "double precision",
    "timing_stability": "double precision",
    "total_notes": "integer",
    "correct_notes": "integer",
    "bad_notes": "integer",
    "duration_seconds": "double precision",
    "strictness": "double precision",
    "sensitivity": "double precision",
    "bpm": "double precision",
    "start_timestamp": "timestamptz",
    "end_timestamp": "timestamptz",
    "utc_offset_minutes": "smallint",
    "recovered": "boolean",
    "practice_id": "uuid",
}
_PLAN_TYPES = {
    "practice_id": "uuid",
    "user_id": "text",
    "practice_plan": "jsonb",
    "generated_at": "timestamptz",
    "executed_session_id": "uuid",
}


def _cols(types: dict[str, str]) -> str:
    return ", ".join(types)


def _recordset(types: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in types.items())


_INSERT_SESSIONS = (
    f"INSERT INTO fretcoach.sessions ({_cols(SESSION_COLUMN_TYPES)}) "
    f"SELECT {_cols(SESSION_COLUMN_TYPES)} FROM jsonb_to_recordset(%s::jsonb) AS r({_recordset(SESSION_COLUMN_TYPES)}) "
    "ON CONFLICT (session_id) DO NOTHING RETURNING session_id"
)
_UPSERT_PLANS = (
    f"INSERT INTO fretcoach.ai_practice_plans AS p ({_cols(_PLAN_TYPES)}) "
    f"SELECT {_cols(_PLAN_TYPES)} FROM jsonb_to_recordset(%s::jsonb) AS r({_recordset(_PLAN_TYPES)}) "
    "ON CONFLICT (practice_id) DO UPDATE "
    "SET executed_session_id = coalesce(excluded.executed_session_id, p.executed_session_id) "
    "WHERE p.executed_session_id IS NULL AND excluded.executed_session_id IS NOT NULL "
    "RETURNING practice_id"
)

# What the server may reject a row for: its data (class 22), a constraint (23), or a
# row-level-security check (42501, e.g. a session queued under a previous user id).
# Anything else (connection, timeout, server shutdown) fails the batch; it stays queued.
_ROW_ERRORS: tuple[type[Exception], ...] = (
    pg_errors.DataError,
    pg_errors.IntegrityError,
    pg_errors.InsufficientPrivilege,
)


@dataclass
class PushResult:
    acked: list[OutboxItem] = field(default_factory=list)
    rejected: list[tuple[OutboxItem, str]] = field(default_factory=list)
    sessions_inserted: int = 0
    sessions_already_there: int = 0
    plans_written: int = 0


def _row(item: OutboxItem) -> dict[str, Any] | str:
    """The row to send, or why it cannot be sent at all."""
    if item.payload is None:
        return "unreadable payload in the local outbox"
    types = SESSION_COLUMN_TYPES if item.kind == "session" else _PLAN_TYPES
    missing = [k for k in types if k not in item.payload and k not in ("bpm", "practice_id", "recovered")]
    if missing:
        return f"payload lacks {', '.join(missing)}"
    return {k: item.payload.get(k) for k in types}


def _send(
    conn: psycopg.Connection[Any], sessions: list[dict[str, Any]], plans: list[dict[str, Any]]
) -> tuple[int, int]:
    inserted = plans_written = 0
    if sessions:
        inserted = len(conn.execute(_INSERT_SESSIONS, [json.dumps(sessions)]).fetchall())
    if plans:
        plans_written = len(conn.execute(_UPSERT_PLANS, [json.dumps(plans)]).fetchall())
    return inserted, plans_written


def push_batch(conn: psycopg.Connection[Any], items: Sequence[OutboxItem]) -> PushResult:
    """Send ``items`` in one transaction and return what the server committed or refused.

    Returns only after COMMIT succeeded; any connection error propagates and nothing in the
    batch may be acknowledged (it is resent; the server ignores what it already has).
    """
    result = PushResult()
    sendable: list[tuple[OutboxItem, dict[str, Any]]] = []
    for item in items:
        row = _row(item)
        if isinstance(row, str):
            result.rejected.append((item, row))
        else:
            sendable.append((item, row))
    sessions = _dedupe([r for i, r in sendable if i.kind == "session"], "session_id")
    plans = _dedupe([r for i, r in sendable if i.kind == "plan"], "practice_id")
    try:
        with conn.transaction():
            inserted, result.plans_written = _send(conn, sessions, plans)
        result.acked = [i for i, _ in sendable]
        result.sessions_inserted = inserted
        result.sessions_already_there = len(sessions) - inserted
        return result
    except _ROW_ERRORS:
        pass
    # The batch was refused for its data: find the culprits one row at a time.
    with conn.transaction():
        for item, row in sendable:
            try:
                with conn.transaction():  # a savepoint
                    is_session = item.kind == "session"
                    ins, written = _send(conn, [row] if is_session else [], [] if is_session else [row])
            except _ROW_ERRORS as exc:
                result.rejected.append((item, _message(exc)))
                continue
            result.acked.append(item)
            if item.kind == "session":
                result.sessions_inserted += ins
                result.sessions_already_there += 1 - ins
            result.plans_written += written
    return result


def _dedupe(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One row per key, the last queued winning, and an executed mark kept if any copy has it."""
    by_key: dict[Any, dict[str, Any]] = {}
    for r in rows:
        prev = by_key.get(r[key])
        if prev is not None and key == "practice_id" and r.get("executed_session_id") is None:
            r = {**r, "executed_session_id": prev.get("executed_session_id")}  # noqa: PLW2901
        by_key[r[key]] = r
    return list(by_key.values())


def _message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    sqlstate = getattr(exc, "sqlstate", None)
    return f"{sqlstate or ''} {primary or str(exc).splitlines()[0]}".strip()
