"""A player's history in PostgreSQL, for the coach on the dashboard side (and AI Mode when synced).

The same seam as :class:`device.coach.history.LocalHistory`. Every query is parameterised and
filtered on the user, and under a device role row-level security scopes it again. Each call
opens a short connection with the sync's bounded timeouts and a socket deadline, so a dead
server costs a bounded wait and a :class:`~device.errors.SyncUnavailableError`, never a hang.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cloud_sync.connection import DEFAULT_TIMEOUTS, Deadline, Timeouts, connect, describe_url
from cloud_sync.push import SESSION_COLUMN_TYPES
from device.errors import SyncUnavailableError
from device.session.models import PlanRecord, SessionRecord

__all__ = ["PostgresHistory"]

_SELECT = "SELECT " + ", ".join(
    f"{c}::text AS {c}" if t == "uuid" else c for c, t in SESSION_COLUMN_TYPES.items()
) + " FROM fretcoach.sessions WHERE user_id = %s"


class PostgresHistory:
    """Sessions and plans of one database (``url``), read and written per call."""

    def __init__(self, url: str, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> None:
        self.url = url
        self.timeouts = timeouts

    def __repr__(self) -> str:
        return f"PostgresHistory({describe_url(self.url)})"

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A short connection whose step is bounded by the socket deadline; a lost link is
        :class:`SyncUnavailableError`."""
        with connect(self.url, self.timeouts, application_name="fretcoach-coach") as conn:
            try:
                with Deadline(conn, self.timeouts.step_s).armed():
                    yield conn
            except psycopg.OperationalError as exc:
                raise SyncUnavailableError(f"lost the database at {describe_url(self.url)}: {exc}") from exc

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def recent(self, user_id: str, limit: int) -> list[SessionRecord]:
        rows = self._rows(_SELECT + " ORDER BY start_timestamp DESC LIMIT %s", [user_id, limit])
        return [SessionRecord(**r) for r in rows]

    def since(self, user_id: str, since: datetime) -> list[SessionRecord]:
        rows = self._rows(
            _SELECT + " AND start_timestamp >= %s ORDER BY start_timestamp DESC LIMIT 1000", [user_id, since]
        )
        return [SessionRecord(**r) for r in rows]

    def save_plan(self, plan: PlanRecord) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan, generated_at)"
                " VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT (practice_id) DO NOTHING",
                [plan.practice_id, plan.user_id, json.dumps(plan.practice_plan), plan.generated_at],
            )
