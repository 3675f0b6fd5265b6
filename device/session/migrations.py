"""Versioned migrations of the pedal's SQLite store (sqlite-utils ``Migrations``).

Each migration runs in its own transaction together with its record, so a power cut during
an upgrade leaves the store at the previous version, never half-way. Append new migrations at
the end; never edit one that has shipped.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

__all__ = ["MIGRATIONS", "schema_version"]

MIGRATIONS = Migrations("fretcoach")


@MIGRATIONS(name="0001_sessions_snapshots_plans_outbox")
def _initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            scale_chosen TEXT NOT NULL,
            scale_type TEXT NOT NULL,
            pitch_accuracy REAL,
            scale_conformity REAL,
            timing_stability REAL,
            total_notes INTEGER NOT NULL DEFAULT 0,
            correct_notes INTEGER NOT NULL DEFAULT 0,
            bad_notes INTEGER NOT NULL DEFAULT 0,
            duration_seconds REAL NOT NULL DEFAULT 0,
            strictness REAL NOT NULL,
            sensitivity REAL NOT NULL,
            bpm REAL,
            start_timestamp TEXT NOT NULL,
            end_timestamp TEXT,
            utc_offset_minutes INTEGER NOT NULL DEFAULT 0,
            practice_id TEXT,
            recovered INTEGER NOT NULL DEFAULT 0,
            -- running: being recorded; ended: finished (or recovered after a power cut)
            status TEXT NOT NULL CHECK (status IN ('running', 'ended')),
            checkpointed_at TEXT,
            synced_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX sessions_user_start ON sessions (user_id, start_timestamp)")
    db.execute("CREATE INDEX sessions_running ON sessions (status) WHERE status = 'running'")
    db.execute(
        """
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (session_id),
            elapsed_s REAL NOT NULL,
            pitch_accuracy REAL,
            scale_conformity REAL,
            timing_stability REAL,
            total_notes INTEGER NOT NULL,
            correct_notes INTEGER NOT NULL,
            bad_notes INTEGER NOT NULL,
            taken_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX snapshots_session ON snapshots (session_id, elapsed_s)")
    db.execute(
        """
        CREATE TABLE plans (
            practice_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            practice_plan TEXT NOT NULL,
            generated_at TEXT NOT NULL,
            executed_session_id TEXT,
            source TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX plans_user_generated ON plans (user_id, generated_at)")
    # AUTOINCREMENT: an id is never reused, so acknowledging a batch by id can never delete a
    # row enqueued after that batch was read (plain rowids restart at max+1 once emptied).
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('session', 'plan')),
            item_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            quarantined_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX outbox_queued ON outbox (id) WHERE quarantined_at IS NULL")
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def schema_version(db: Database) -> int:
    """How many migrations this store has applied."""
    return len(MIGRATIONS.applied(db))
