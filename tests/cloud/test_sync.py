"""Push and pull against the real PostgreSQL server, as a device role under row-level security."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from conftest import Cloud

from cloud_sync import Backoff, Syncer, Timeouts, pull_plans, push_batch
from device.analysis import Metrics, parse_scale
from device.errors import SyncUnavailableError
from device.session import PlanRecord, Recorder, SessionStore

METRICS = Metrics(88.0, 75.0, 64.5, 50, 40, 10, "timing_stability")


def _record(store: SessionStore, n: int, user: str, practice_id: str | None = None) -> list[str]:
    t = [0.0]
    rec = Recorder(store, user_id=user, device_id="pedal-1", monotonic=lambda: t[0])
    ids = []
    for _ in range(n):
        s = rec.start(parse_scale("D minor"), strictness=0.5, sensitivity=0.5, bpm=100, practice_id=practice_id)
        t[0] += 300.0
        rec.end(METRICS)
        ids.append(s.session_id)
    return ids


def _server_ids(cloud: Cloud) -> list[str]:
    with cloud.connect() as conn:
        return [r[0] for r in conn.execute("SELECT session_id::text FROM fretcoach.sessions ORDER BY 1")]


def test_a_pass_pushes_every_queued_session_in_batches_and_empties_the_queue(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    ids = _record(store, 23, "ana")
    report = Syncer(store, cloud.device_url(creds), "ana", batch_size=5).run_once()
    assert (report.sessions_pushed, report.batches, report.queued) == (23, 5, 0)
    assert _server_ids(cloud) == sorted(ids)
    with cloud.connect() as conn:
        row = conn.execute(
            "SELECT user_id, scale_chosen, scale_type, total_notes, bad_notes, duration_seconds, bpm,"
            " end_timestamp - start_timestamp, recovered FROM fretcoach.sessions LIMIT 1"
        ).fetchone()
    assert row == ("ana", "D natural minor", "natural", 50, 10, 300.0, 100.0, timedelta(seconds=300), False)
    assert store.status().last_sync_ok_at is not None


def test_a_batch_resent_after_a_lost_commit_lands_once(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    _record(store, 4, "ana")
    items = store.outbox_batch(10)
    with psycopg.connect(cloud.device_url(creds), autocommit=True) as conn:
        first = push_batch(conn, items)
        again = push_batch(conn, items)  # the pedal never heard the first COMMIT's answer
    assert (first.sessions_inserted, first.sessions_already_there) == (4, 0)
    assert (again.sessions_inserted, again.sessions_already_there) == (0, 4)
    assert cloud.scalar("SELECT count(*) FROM fretcoach.sessions") == 4


def test_a_bad_row_is_set_aside_and_the_rest_of_its_batch_lands(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    ids = _record(store, 5, "ana")
    with store.write() as db:  # a score out of range: the server's CHECK refuses it
        db.execute(
            "UPDATE outbox SET payload = json_set(payload, '$.pitch_accuracy', 250.0) WHERE item_id = ?", [ids[2]]
        )
    report = Syncer(store, cloud.device_url(creds), "ana").run_once()
    assert (report.sessions_pushed, report.quarantined, report.queued) == (4, 1, 0)
    assert _server_ids(cloud) == sorted(ids[:2] + ids[3:])
    (bad,) = store.quarantined()
    assert bad["item_id"] == ids[2] and bad["last_error"].startswith("23514")
    # Later sessions are not blocked behind it.
    more = _record(store, 2, "ana")
    assert Syncer(store, cloud.device_url(creds), "ana").run_once().sessions_pushed == 2
    assert set(more) <= set(_server_ids(cloud))


def test_sessions_queued_under_another_user_are_set_aside_not_forced_in(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    _record(store, 2, "ana")
    _record(store, 1, "bob")  # recorded before the pedal was re-assigned
    report = Syncer(store, cloud.device_url(creds), "ana").run_once()
    assert (report.sessions_pushed, report.quarantined) == (2, 1)
    assert "row-level security" in store.quarantined()[0]["last_error"]
    assert cloud.scalar("SELECT count(*) FROM fretcoach.sessions WHERE user_id = 'bob'") == 0


def test_plans_round_trip_and_the_executed_mark_reaches_the_server(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    plan = PlanRecord(str(uuid.uuid4()), "ana", {"scale_name": "D minor", "focus_area": "timing"}, datetime.now(UTC))
    store.save_plan(plan)
    (session_id,) = _record(store, 1, "ana", practice_id=plan.practice_id)
    Syncer(store, cloud.device_url(creds), "ana").run_once()
    with cloud.connect() as conn:
        row = conn.execute(
            "SELECT practice_plan, executed_session_id::text FROM fretcoach.ai_practice_plans WHERE practice_id = %s",
            [plan.practice_id],
        ).fetchone()
    assert row == ({"scale_name": "D minor", "focus_area": "timing"}, session_id)


def test_a_plan_made_on_the_dashboard_is_pulled_and_cached(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    pid = str(uuid.uuid4())
    with cloud.connect() as conn:
        conn.execute(
            "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan) VALUES (%s, 'ana', %s)",
            [pid, psycopg.types.json.Jsonb({"scale_name": "G major"})],
        )
        conn.execute(
            "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan) VALUES (%s, 'bob', '{}')",
            [str(uuid.uuid4())],
        )
    syncer = Syncer(store, cloud.device_url(creds), "ana")
    assert syncer.run_once().plans_pulled == 1
    got = store.get_plan(pid)
    assert got is not None and got.practice_plan == {"scale_name": "G major"} and got.source == "cloud"
    assert syncer.run_once().plans_pulled == 0  # the cursor moved past it


def test_the_pull_cursor_does_not_skip_a_plan_committed_late(cloud: Cloud, store: SessionStore) -> None:
    """A transaction that started first but commits after a later one was pulled."""
    creds = cloud.device("ana")
    slow_id, fast_id = str(uuid.uuid4()), str(uuid.uuid4())
    slow = cloud.connect()
    slow.autocommit = False
    slow.execute(  # takes a lower transaction id, but holds its commit
        "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan) VALUES (%s, 'ana', '{}')",
        [slow_id],
    )
    with cloud.connect() as conn:
        conn.execute(
            "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan) VALUES (%s, 'ana', '{}')",
            [fast_id],
        )
    url = cloud.device_url(creds)
    with psycopg.connect(url, autocommit=True) as conn:
        first = pull_plans(conn, "ana", None)
    assert [p.practice_id for p in first.plans] == [fast_id]
    slow.commit()
    slow.close()
    with psycopg.connect(url, autocommit=True) as conn:
        second = pull_plans(conn, "ana", first.cursor)
    assert slow_id in [p.practice_id for p in second.plans]


def test_a_cursor_from_another_server_is_reset_and_everything_is_pulled(cloud: Cloud) -> None:
    creds = cloud.device("ana")
    pid = str(uuid.uuid4())
    with cloud.connect() as conn:
        conn.execute(
            "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan) VALUES (%s, 'ana', '{}')",
            [pid],
        )
    with psycopg.connect(cloud.device_url(creds), autocommit=True) as conn:
        got = pull_plans(conn, "ana", 2**62)
    assert got.reset and [p.practice_id for p in got.plans] == [pid]


def test_pulling_pages_through_many_plans(cloud: Cloud) -> None:
    creds = cloud.device("ana")
    with cloud.connect() as conn:
        conn.execute(
            "INSERT INTO fretcoach.ai_practice_plans (practice_id, user_id, practice_plan)"
            " SELECT gen_random_uuid(), 'ana', '{}' FROM generate_series(1, 23)"
        )
    with psycopg.connect(cloud.device_url(creds), autocommit=True) as conn:
        got = pull_plans(conn, "ana", None, page=5)
    assert len({p.practice_id for p in got.plans}) == 23


def test_an_unreachable_server_leaves_everything_queued_and_says_so(store: SessionStore) -> None:
    _record(store, 3, "ana")
    sleeps: list[float] = []
    syncer = Syncer(
        store,
        "postgresql://nobody@127.0.0.1:1/none",
        "ana",
        attempts=3,
        backoff=Backoff(base_s=1.0, cap_s=8.0, rng=lambda: 1.0),
        sleep=sleeps.append,
        timeouts=Timeouts(connect_s=2),
    )
    with pytest.raises(SyncUnavailableError, match=r"cannot reach the database at nobody@127\.0\.0\.1:1/none"):
        syncer.run_once()
    assert sleeps == [1.0, 2.0]  # backed off between the attempts
    status = store.status()
    assert status.queued == 3 and status.last_sync_error is not None and "cannot reach" in status.last_sync_error


def test_only_one_pass_runs_at_a_time(cloud: Cloud, store: SessionStore) -> None:
    creds = cloud.device("ana")
    _record(store, 2, "ana")
    entered, release = threading.Event(), threading.Event()
    results: list[Any] = []

    def slow_connector(url: str, timeouts: Timeouts) -> psycopg.Connection[Any]:
        entered.set()
        release.wait(5)
        return psycopg.connect(url, autocommit=True)

    first = Syncer(store, cloud.device_url(creds), "ana", connector=slow_connector)
    t = threading.Thread(target=lambda: results.append(first.run_once()))
    t.start()
    assert entered.wait(5)
    other = SessionStore.open(store.path)  # e.g. `fretcoach sync` typed while the pedal syncs
    assert Syncer(other, cloud.device_url(creds), "ana").run_once().busy
    release.set()
    t.join(10)
    assert results[0].sessions_pushed == 2
    other.close()
