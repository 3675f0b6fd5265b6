"""The cloud schema's migrations, the dashboard views, and per-device row-level security."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from conftest import Cloud
from pg import admin_url, create_database, drop_database, require_server, with_dbname

from cloud_sync import MIGRATIONS, create_device, device_role_name, drop_device, migrate, schema_version
from device.errors import ConfigError, SyncError


def _insert_session(conn: psycopg.Connection[Any], user: str, start: datetime, **over: Any) -> str:
    sid = str(uuid.uuid4())
    row = {
        "session_id": sid,
        "user_id": user,
        "device_id": "pedal-x",
        "scale_chosen": "A minor pentatonic",
        "scale_type": "pentatonic",
        "pitch_accuracy": 80.0,
        "scale_conformity": 90.0,
        "timing_stability": 70.0,
        "total_notes": 100,
        "correct_notes": 90,
        "bad_notes": 10,
        "duration_seconds": 600.0,
        "strictness": 0.5,
        "sensitivity": 0.5,
        "start_timestamp": start,
        "end_timestamp": start + timedelta(minutes=10),
        "utc_offset_minutes": 0,
    }
    row.update(over)
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(f"INSERT INTO fretcoach.sessions ({cols}) VALUES ({marks})".encode(), list(row.values()))
    return sid


def test_migrations_are_versioned_and_idempotent() -> None:
    base = admin_url()
    require_server(base)
    name = create_database(base)
    try:
        with psycopg.connect(with_dbname(base, name), autocommit=True) as conn:
            assert schema_version(conn) == 0
            assert [m.version for m in migrate(conn)] == [m.version for m in MIGRATIONS]
            assert migrate(conn) == []
            assert schema_version(conn) == MIGRATIONS[-1].version
            # A schema half-built by hand (the record lost) is finished, not refused.
            conn.execute("DELETE FROM fretcoach.schema_migrations WHERE version > 1")
            assert [m.version for m in migrate(conn)] == [m.version for m in MIGRATIONS[1:]]
    finally:
        drop_database(base, name)


def test_a_device_reads_and_writes_only_its_own_users_rows(cloud: Cloud) -> None:
    ana, bob = cloud.device("ana"), cloud.device("bob")
    now = datetime.now(UTC)
    with cloud.connect() as admin:
        bobs = _insert_session(admin, "bob", now)
        _insert_session(admin, "ana", now)
        admin.execute(
            "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan) VALUES (%s, 'bob', '{}')",
            [str(uuid.uuid4())],
        )
    with psycopg.connect(cloud.device_url(ana), autocommit=True) as conn:
        assert conn.execute("SELECT DISTINCT user_id FROM fretcoach.sessions").fetchall() == [("ana",)]
        assert conn.execute("SELECT count(*) FROM fretcoach.ai_practice_plans").fetchone() == (0,)
        assert conn.execute("SELECT user_id FROM fretcoach.devices").fetchall() == [("ana",)]
        assert conn.execute("SELECT DISTINCT user_id FROM fretcoach.daily_user_averages").fetchall() == [("ana",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            _insert_session(conn, "bob", now)
        # Bob's rows are invisible, so an update or delete finds nothing to change.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM fretcoach.sessions WHERE session_id = %s", [bobs])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE fretcoach.sessions SET user_id = 'ana' WHERE session_id = %s", [bobs])
        cur = conn.execute("UPDATE fretcoach.ai_practice_plans SET executed_session_id = gen_random_uuid()")
        assert cur.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE fretcoach.devices SET user_id = 'bob'")
    with psycopg.connect(cloud.device_url(bob), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM fretcoach.sessions").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM fretcoach.ai_practice_plans").fetchone() == (1,)


def test_row_level_security_is_enabled_and_forced_on_every_table(cloud: Cloud) -> None:
    with cloud.connect() as conn:
        rows = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relnamespace = 'fretcoach'::regnamespace AND relkind = 'r' AND relname <> 'schema_migrations'"
            " ORDER BY relname"
        ).fetchall()
    assert rows == [(t, True, True) for t in ("ai_practice_plans", "devices", "sessions")]


def test_create_device_rekeys_an_existing_device_and_drop_removes_it(cloud: Cloud) -> None:
    creds = cloud.device("ana", device_id=f"Pedal {uuid.uuid4().hex[:6]}!")
    assert creds.role == device_role_name(creds.device_id) and creds.role.startswith("fretcoach_dev_pedal_")
    with cloud.connect() as conn:
        again = create_device(conn, creds.device_id, "ana2")
        assert again.role == creds.role and again.password != creds.password
        assert conn.execute("SELECT user_id FROM fretcoach.devices").fetchall() == [("ana2",)]
        assert drop_device(conn, creds.device_id)
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [creds.role]).fetchone() is None
        assert not drop_device(conn, creds.device_id)


def test_create_device_refuses_unusable_ids_and_a_missing_schema(cloud: Cloud) -> None:
    with cloud.connect() as conn, pytest.raises(ConfigError, match="no letters or digits"):
        create_device(conn, "!!!", "ana")
    base = admin_url()
    name = create_database(base)
    try:
        url = with_dbname(base, name)
        with psycopg.connect(url, autocommit=True) as conn, pytest.raises(SyncError, match="migrate"):
            create_device(conn, "pedal-1", "ana")
    finally:
        drop_database(base, name)


def test_daily_averages_use_the_players_local_day_and_weight_by_notes(cloud: Cloud) -> None:
    late_evening = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)  # 22:30 on the 23rd in California
    with cloud.connect() as conn:
        _insert_session(conn, "ana", late_evening, utc_offset_minutes=-480, pitch_accuracy=60.0, total_notes=300,
                        correct_notes=200, bad_notes=100)
        _insert_session(conn, "ana", late_evening + timedelta(minutes=30), utc_offset_minutes=-480,
                        pitch_accuracy=100.0, total_notes=100, correct_notes=100, bad_notes=0)
        row = conn.execute(
            "SELECT day, sessions, notes_played, avg_pitch_accuracy, minutes_practised"
            " FROM fretcoach.daily_user_averages WHERE user_id = 'ana'"
        ).fetchone()
    assert row is not None
    assert row[0] == datetime(2026, 11, 23).date()
    assert row[1:4] == (2, 400, 70.0)
    assert float(row[4]) == 20.0


def test_trends_compare_this_week_with_the_week_before(cloud: Cloud) -> None:
    start = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with cloud.connect() as conn:
        for day in range(14):
            _insert_session(conn, "ana", start + timedelta(days=day), timing_stability=50.0 + day)
        row = conn.execute(
            "SELECT timing_stability_7d, timing_stability_change FROM fretcoach.user_trends"
            " WHERE user_id = 'ana' ORDER BY day DESC LIMIT 1"
        ).fetchone()
    assert row == (60.0, 7.0)  # days 7–13 average 60; days 0–6 average 53
