"""The SQLite session store on real files: migrations, durability settings, outbox, plans."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from device.analysis import Metrics, parse_scale
from device.errors import DiskFullError, SessionError
from device.session import PlanRecord, Recorder, SessionStore
from device.session.migrations import MIGRATIONS

METRICS = Metrics(91.5, 80.0, 72.25, 40, 32, 8, "timing_stability")


def _record_sessions(store: SessionStore, n: int, user: str = "ana") -> list[str]:
    t = [0.0]
    rec = Recorder(store, user_id=user, device_id="pedal-1", monotonic=lambda: t[0])
    ids = []
    for _ in range(n):
        s = rec.start(parse_scale("A minor pentatonic"), strictness=0.5, sensitivity=0.5, bpm=90)
        t[0] += 120.0
        rec.end(METRICS)
        ids.append(s.session_id)
    return ids


def test_a_new_store_is_migrated_and_durable(store: SessionStore) -> None:
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # 2 = FULL: a commit is on disk before it returns.
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert store.schema_version == len(MIGRATIONS.pending(store.db)) + len(MIGRATIONS.applied(store.db))
    assert {"sessions", "snapshots", "plans", "outbox", "sync_state"} <= set(store.db.table_names())


def test_reopening_applies_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    SessionStore.open(path).close()
    again = SessionStore.open(path)
    names = [m.name for m in MIGRATIONS.applied(again.db)]
    assert len(names) == len(set(names)) == again.schema_version
    again.close()


def test_ended_sessions_are_queued_once_in_recording_order(store: SessionStore) -> None:
    ids = _record_sessions(store, 3)
    batch = store.outbox_batch(10)
    assert [i.item_id for i in batch] == ids
    assert all(i.kind == "session" and i.payload is not None for i in batch)
    first = batch[0].payload
    assert first is not None
    assert first["scale_chosen"] == "A minor pentatonic" and first["scale_type"] == "pentatonic"
    assert first["total_notes"] == 40 and first["bad_notes"] == 8 and first["duration_seconds"] == 120.0
    assert store.status().queued == 3


def test_ack_removes_only_the_acknowledged_rows_and_marks_them_synced(store: SessionStore) -> None:
    ids = _record_sessions(store, 3)
    batch = store.outbox_batch(2)
    store.ack(batch)
    assert [i.item_id for i in store.outbox_batch(10)] == ids[2:]
    synced = [store.get_session(i)["synced_at"] is not None for i in ids]  # type: ignore[index]
    assert synced == [True, True, False]


def test_outbox_ids_are_never_reused_after_the_queue_empties(store: SessionStore) -> None:
    _record_sessions(store, 2)
    old = store.outbox_batch(10)
    store.ack(old)
    _record_sessions(store, 1)
    new = store.outbox_batch(10)
    assert new[0].id > max(i.id for i in old)
    # A late duplicate ack of the old batch must not touch the new row.
    store.ack(old)
    assert [i.id for i in store.outbox_batch(10)] == [new[0].id]


def test_quarantined_rows_are_kept_but_skipped_and_can_be_requeued(store: SessionStore) -> None:
    _record_sessions(store, 3)
    batch = store.outbox_batch(10)
    store.quarantine([(batch[1], "23514 violates check constraint")])
    assert [i.id for i in store.outbox_batch(10)] == [batch[0].id, batch[2].id]
    status = store.status()
    assert (status.queued, status.quarantined) == (2, 1)
    assert store.quarantined()[0]["last_error"].startswith("23514")
    assert store.requeue_quarantined() == 1
    assert len(store.outbox_batch(10)) == 3


def test_an_unreadable_outbox_payload_is_reported_not_raised(store: SessionStore) -> None:
    _record_sessions(store, 1)
    with store.write() as db:
        db.execute("UPDATE outbox SET payload = '{not json'")
    (item,) = store.outbox_batch(10)
    assert item.payload is None


def test_plans_are_cached_queued_and_marked_executed_with_the_session(store: SessionStore) -> None:
    plan = PlanRecord(str(uuid.uuid4()), "ana", {"scale_name": "A minor pentatonic"}, datetime.now(UTC))
    store.save_plan(plan)
    assert store.pending_plan("ana", datetime.now(UTC) - timedelta(hours=24)) == plan
    t = [0.0]
    rec = Recorder(store, user_id="ana", device_id="pedal-1", monotonic=lambda: t[0])
    s = rec.start(parse_scale("A minor pentatonic"), strictness=0.5, sensitivity=0.5, practice_id=plan.practice_id)
    t[0] = 60
    rec.end(METRICS)
    got = store.get_plan(plan.practice_id)
    assert got is not None and got.executed_session_id == s.session_id
    assert store.pending_plan("ana", datetime.now(UTC) - timedelta(hours=24)) is None
    kinds = [(i.kind, (i.payload or {}).get("executed_session_id")) for i in store.outbox_batch(10)]
    assert kinds == [("plan", None), ("session", None), ("plan", s.session_id)]


def test_pulled_plans_never_undo_a_local_executed_mark(store: SessionStore) -> None:
    plan = PlanRecord(str(uuid.uuid4()), "ana", {"scale_name": "D minor"}, datetime.now(UTC), source="cloud")
    store.merge_pulled_plans([plan])
    with store.write() as db:
        store._mark_executed(db, plan.practice_id, "s-1")
    store.merge_pulled_plans([plan])  # an older copy from the server
    got = store.get_plan(plan.practice_id)
    assert got is not None and got.executed_session_id == "s-1" and got.source == "cloud"


def test_pending_plan_ignores_plans_older_than_the_cutoff(store: SessionStore) -> None:
    old = PlanRecord(str(uuid.uuid4()), "ana", {"n": 1}, datetime.now(UTC) - timedelta(hours=30))
    store.save_plan(old)
    assert store.pending_plan("ana", datetime.now(UTC) - timedelta(hours=24)) is None
    assert store.pending_plan("ana", datetime.now(UTC) - timedelta(hours=48)) == old


def test_sync_state_round_trips_and_deletes(store: SessionStore) -> None:
    store.set_state({"a": "1", "b": "2"})
    store.set_state({"a": None})
    assert (store.get_state("a"), store.get_state("b")) == (None, "2")


def test_a_failed_write_rolls_back_everything_in_it(store: SessionStore) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.write() as db:
        db.execute("INSERT INTO sync_state (key, value) VALUES ('x', '1')")
        raise Boom
    assert store.get_state("x") is None


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "fretcoach.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    store = SessionStore.open(path)
    assert store.moved_aside is not None and store.moved_aside.name.startswith("fretcoach.db.corrupt-")
    assert store.moved_aside.read_bytes().startswith(b"this is not sqlite")
    assert store.status().sessions == 0
    _record_sessions(store, 1)
    store.close()


def test_a_damaged_store_is_moved_aside_with_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "fretcoach.db"
    s = SessionStore.open(path)
    _record_sessions(s, 30)
    s.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for p in range(1, len(data) // page):  # keep the header page, scramble the rest
        data[p * page : (p + 1) * page] = bytes((p * 7 + i) % 251 for i in range(page))
    path.write_bytes(bytes(data))
    store = SessionStore.open(path)
    assert store.moved_aside is not None
    assert store.status().sessions == 0
    store.close()


def test_a_locked_store_is_a_clear_error_not_corruption(tmp_path: Path) -> None:
    path = tmp_path / "fretcoach.db"
    SessionStore.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SessionError, match="locked"):
            SessionStore.open(path, busy_timeout_ms=100)
        assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_ensure_room_refuses_to_start_on_a_full_disk(store: SessionStore) -> None:
    with pytest.raises(DiskFullError, match="disk almost full"):
        store.ensure_room(min_free=store.free_bytes() + 10**12)


def test_sqlite_full_becomes_disk_full_error_and_keeps_committed_rows(store: SessionStore) -> None:
    ids = _record_sessions(store, 2)
    pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
    store.db.conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(DiskFullError, match="disk full"), store.write() as db:
        db.execute("INSERT INTO sync_state (key, value) VALUES ('big', ?)", ["x" * 200_000])
    assert [i.item_id for i in store.outbox_batch(10)] == ids
    assert store.db.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
