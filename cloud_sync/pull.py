"""Pull the user's practice plans with a cursor that cannot skip a row.

A timestamp or serial cursor skips rows whose transaction commits after a later one was
read. Here every plan row carries the id of the transaction that last wrote it
(``change_txid``), and the cursor is the ``xmin`` of a snapshot taken before reading: every
transaction below it had finished, so any row we could not see then has a transaction id at
or above it and is read on the next pull. Rows near the cursor may be read twice; merging
them is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from device.session.models import PlanRecord

__all__ = ["PullResult", "pull_plans"]

_PAGE = 500


@dataclass(frozen=True, slots=True)
class PullResult:
    plans: list[PlanRecord]
    cursor: int
    reset: bool  # the stored cursor was ahead of this server (restored or replaced): pulled all


def pull_plans(conn: psycopg.Connection[Any], user_id: str, cursor: int | None, page: int = _PAGE) -> PullResult:
    """Plans for ``user_id`` written since ``cursor`` (None: all), and the next cursor."""
    row = conn.execute(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() AS s"
    ).fetchone()
    assert row is not None
    xmin, xmax = int(row[0]), int(row[1])
    reset = cursor is not None and cursor > xmax
    since = 0 if cursor is None or reset else cursor
    plans: list[PlanRecord] = []
    last: tuple[str, str] | None = None
    while True:
        if last is None:
            rows = conn.execute(
                "SELECT practice_id::text, user_id, practice_plan, generated_at, executed_session_id::text,"
                " change_txid::text FROM fretcoach.ai_practice_plans"
                " WHERE user_id = %s AND change_txid >= %s::text::xid8"
                " ORDER BY change_txid, practice_id LIMIT %s",
                [user_id, str(since), page],
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT practice_id::text, user_id, practice_plan, generated_at, executed_session_id::text,"
                " change_txid::text FROM fretcoach.ai_practice_plans"
                " WHERE user_id = %s AND change_txid >= %s::text::xid8"
                " AND (change_txid, practice_id) > (%s::text::xid8, %s::uuid)"
                " ORDER BY change_txid, practice_id LIMIT %s",
                [user_id, str(since), last[0], last[1], page],
            ).fetchall()
        for practice_id, uid, plan, generated_at, executed, _txid in rows:
            plans.append(
                PlanRecord(
                    practice_id=practice_id,
                    user_id=uid,
                    practice_plan=dict(plan),
                    generated_at=generated_at,
                    executed_session_id=executed,
                    source="cloud",
                )
            )
        if len(rows) < page:
            break
        last = (rows[-1][5], rows[-1][0])
    conn.commit()
    return PullResult(plans=plans, cursor=xmin, reset=reset)
