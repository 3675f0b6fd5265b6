"""The cloud schema ``fretcoach``: versioned, idempotent migrations on PostgreSQL.

Each migration runs in one transaction with its record in ``fretcoach.schema_migrations``,
under an advisory lock so two migrators never race. Every statement is also idempotent on
its own (``IF NOT EXISTS``, ``CREATE OR REPLACE``), so a schema half-built by hand is finished
rather than refused. Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

__all__ = ["DEVICE_GROUP_ROLE", "MIGRATIONS", "Migration", "migrate", "schema_version"]

# Every device role is a member of this group; grants and row-level policies name the group.
DEVICE_GROUP_ROLE = "fretcoach_device"
_LOCK_KEY = 0x0F2E7C0AC4  # pg_advisory_xact_lock key for "fretcoach migrate"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


_SCORE = "double precision CHECK ({0} >= 0 AND {0} <= 100)"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions_plans_devices",
        f"""
        CREATE TABLE IF NOT EXISTS fretcoach.devices (
            device_id text PRIMARY KEY,
            user_id text NOT NULL,
            role_name name UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE IF NOT EXISTS fretcoach.sessions (
            session_id uuid PRIMARY KEY,
            user_id text NOT NULL,
            device_id text NOT NULL,
            scale_chosen text NOT NULL,
            scale_type text NOT NULL CHECK (scale_type IN ('natural', 'pentatonic')),
            pitch_accuracy {_SCORE.format("pitch_accuracy")},
            scale_conformity {_SCORE.format("scale_conformity")},
            timing_stability {_SCORE.format("timing_stability")},
            total_notes integer NOT NULL CHECK (total_notes >= 0),
            correct_notes integer NOT NULL CHECK (correct_notes >= 0),
            bad_notes integer NOT NULL CHECK (bad_notes >= 0),
            duration_seconds double precision NOT NULL CHECK (duration_seconds >= 0),
            strictness double precision NOT NULL CHECK (strictness >= 0 AND strictness <= 1),
            sensitivity double precision NOT NULL CHECK (sensitivity >= 0 AND sensitivity <= 1),
            bpm double precision CHECK (bpm > 0),
            start_timestamp timestamptz NOT NULL,
            end_timestamp timestamptz NOT NULL,
            utc_offset_minutes smallint NOT NULL DEFAULT 0
                CHECK (utc_offset_minutes BETWEEN -840 AND 840),
            recovered boolean NOT NULL DEFAULT false,
            practice_id uuid,
            received_at timestamptz NOT NULL DEFAULT now(),
            CHECK (correct_notes + bad_notes <= total_notes),
            CHECK (end_timestamp >= start_timestamp)
        );
        CREATE INDEX IF NOT EXISTS sessions_user_start
            ON fretcoach.sessions (user_id, start_timestamp DESC);

        CREATE TABLE IF NOT EXISTS fretcoach.ai_practice_plans (
            practice_id uuid PRIMARY KEY,
            user_id text NOT NULL,
            practice_plan jsonb NOT NULL,
            generated_at timestamptz NOT NULL DEFAULT now(),
            executed_session_id uuid,
            -- The writing transaction's id: the pull cursor (see cloud_sync.pull).
            change_txid xid8 NOT NULL DEFAULT pg_current_xact_id()
        );
        CREATE INDEX IF NOT EXISTS ai_practice_plans_user_change
            ON fretcoach.ai_practice_plans (user_id, change_txid);

        CREATE OR REPLACE FUNCTION fretcoach.stamp_change_txid() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.change_txid := pg_current_xact_id();
            RETURN NEW;
        END $$;
        DROP TRIGGER IF EXISTS ai_practice_plans_change_txid ON fretcoach.ai_practice_plans;
        CREATE TRIGGER ai_practice_plans_change_txid
            BEFORE INSERT OR UPDATE ON fretcoach.ai_practice_plans
            FOR EACH ROW EXECUTE FUNCTION fretcoach.stamp_change_txid();
        """,
    ),
    Migration(
        2,
        "device_role_row_level_security",
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DEVICE_GROUP_ROLE}') THEN
                CREATE ROLE {DEVICE_GROUP_ROLE} NOLOGIN;
            END IF;
        END $$;

        -- The user the connected device belongs to. Plain SQL (not SECURITY DEFINER) so
        -- current_user is the device's role, and the devices table's own policy applies.
        CREATE OR REPLACE FUNCTION fretcoach.device_user_id() RETURNS text
        LANGUAGE sql STABLE AS $$
            SELECT user_id FROM fretcoach.devices WHERE role_name = current_user
        $$;

        GRANT USAGE ON SCHEMA fretcoach TO {DEVICE_GROUP_ROLE};
        GRANT SELECT ON fretcoach.devices TO {DEVICE_GROUP_ROLE};
        GRANT SELECT, INSERT ON fretcoach.sessions TO {DEVICE_GROUP_ROLE};
        GRANT SELECT, INSERT, UPDATE (executed_session_id) ON fretcoach.ai_practice_plans
            TO {DEVICE_GROUP_ROLE};
        GRANT EXECUTE ON FUNCTION fretcoach.device_user_id() TO {DEVICE_GROUP_ROLE};

        ALTER TABLE fretcoach.devices ENABLE ROW LEVEL SECURITY;
        ALTER TABLE fretcoach.devices FORCE ROW LEVEL SECURITY;
        ALTER TABLE fretcoach.sessions ENABLE ROW LEVEL SECURITY;
        ALTER TABLE fretcoach.sessions FORCE ROW LEVEL SECURITY;
        ALTER TABLE fretcoach.ai_practice_plans ENABLE ROW LEVEL SECURITY;
        ALTER TABLE fretcoach.ai_practice_plans FORCE ROW LEVEL SECURITY;

        DROP POLICY IF EXISTS device_self ON fretcoach.devices;
        CREATE POLICY device_self ON fretcoach.devices TO {DEVICE_GROUP_ROLE}
            USING (role_name = current_user);

        -- (SELECT …) makes the lookup an init-plan: evaluated once per query, not per row.
        DROP POLICY IF EXISTS device_user_rows ON fretcoach.sessions;
        CREATE POLICY device_user_rows ON fretcoach.sessions TO {DEVICE_GROUP_ROLE}
            USING (user_id = (SELECT fretcoach.device_user_id()))
            WITH CHECK (user_id = (SELECT fretcoach.device_user_id()));

        DROP POLICY IF EXISTS device_user_rows ON fretcoach.ai_practice_plans;
        CREATE POLICY device_user_rows ON fretcoach.ai_practice_plans TO {DEVICE_GROUP_ROLE}
            USING (user_id = (SELECT fretcoach.device_user_id()))
            WITH CHECK (user_id = (SELECT fretcoach.device_user_id()));
        """,
    ),
    Migration(
        3,
        "dashboard_views",
        f"""
        -- security_invoker: a device (or any role under RLS) reading a view sees only the
        -- rows its policies allow, not the view owner's.
        CREATE OR REPLACE VIEW fretcoach.daily_user_averages WITH (security_invoker = true) AS
        SELECT
            user_id,
            ((start_timestamp AT TIME ZONE 'UTC') + utc_offset_minutes * interval '1 minute')::date AS day,
            count(*) AS sessions,
            round((sum(duration_seconds) / 60.0)::numeric, 1) AS minutes_practised,
            sum(total_notes) AS notes_played,
            sum(correct_notes) AS correct_notes,
            sum(bad_notes) AS wrong_notes,
            -- Weighted by notes: ten seconds of noodling must not weigh like an hour's work.
            sum(pitch_accuracy * total_notes) / nullif(sum(total_notes)
                FILTER (WHERE pitch_accuracy IS NOT NULL), 0) AS avg_pitch_accuracy,
            sum(scale_conformity * total_notes) / nullif(sum(total_notes)
                FILTER (WHERE scale_conformity IS NOT NULL), 0) AS avg_scale_conformity,
            sum(timing_stability * total_notes) / nullif(sum(total_notes)
                FILTER (WHERE timing_stability IS NOT NULL), 0) AS avg_timing_stability
        FROM fretcoach.sessions
        GROUP BY 1, 2;

        CREATE OR REPLACE VIEW fretcoach.user_trends WITH (security_invoker = true) AS
        SELECT
            d.*,
            avg(avg_pitch_accuracy) OVER w7 AS pitch_accuracy_7d,
            avg(avg_scale_conformity) OVER w7 AS scale_conformity_7d,
            avg(avg_timing_stability) OVER w7 AS timing_stability_7d,
            avg(avg_pitch_accuracy) OVER w7 - avg(avg_pitch_accuracy) OVER prev7 AS pitch_accuracy_change,
            avg(avg_scale_conformity) OVER w7 - avg(avg_scale_conformity) OVER prev7
                AS scale_conformity_change,
            avg(avg_timing_stability) OVER w7 - avg(avg_timing_stability) OVER prev7
                AS timing_stability_change
        FROM fretcoach.daily_user_averages d
        WINDOW
            w7 AS (PARTITION BY user_id ORDER BY day
                   RANGE BETWEEN interval '6 days' PRECEDING AND CURRENT ROW),
            prev7 AS (PARTITION BY user_id ORDER BY day
                      RANGE BETWEEN interval '13 days' PRECEDING AND interval '7 days' PRECEDING);

        GRANT SELECT ON fretcoach.daily_user_averages, fretcoach.user_trends TO {DEVICE_GROUP_ROLE};
        """,
    ),
    Migration(
        4,
        "devices_read_schema_version",
        # `fretcoach doctor` on a pedal compares the cloud's schema with its own; the version
        # list holds nothing private.
        f"GRANT SELECT ON fretcoach.schema_migrations TO {DEVICE_GROUP_ROLE};",
    ),
)


def _bootstrap(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS fretcoach")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS fretcoach.schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The highest applied migration (0 for a database without the schema)."""
    row = conn.execute("SELECT to_regclass('fretcoach.schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM fretcoach.schema_migrations").fetchone()
    return int(got[0]) if got else 0


def migrate(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply pending migrations, each in its own transaction; returns those applied now."""
    applied: list[Migration] = []
    for m in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            _bootstrap(conn)
            done = conn.execute("SELECT 1 FROM fretcoach.schema_migrations WHERE version = %s", [m.version]).fetchone()
            if done:
                continue
            conn.execute(m.sql.encode())
            conn.execute("INSERT INTO fretcoach.schema_migrations (version, name) VALUES (%s, %s)", [m.version, m.name])
            applied.append(m)
    return applied
