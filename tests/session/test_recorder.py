"""A session's lifecycle: checkpoints every 5 s, pause, end, and recovery after a crash."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from device.analysis import Metrics, parse_scale
from device.errors import SessionStateError
from device.session import CHECKPOINT_INTERVAL_S, Recorder, SessionStore


class Clocks:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2026, 11, 24, 18, 30, tzinfo=timezone(timedelta(hours=-8)))

    def advance(self, s: float) -> None:
        self.mono += s
        self.wall += timedelta(seconds=s)


def _metrics(n: int) -> Metrics:
    return Metrics(90.0 - n * 0.1, 85.0, 70.0 + n * 0.1, n, n - n // 5, n // 5, "timing_stability")


def _recorder(store: SessionStore, clocks: Clocks) -> Recorder:
    return Recorder(
        store, user_id="ana", device_id="pedal-1", wall_clock=lambda: clocks.wall, monotonic=lambda: clocks.mono
    )


def test_a_running_session_is_checkpointed_at_most_every_5_seconds(store: SessionStore) -> None:
    clocks = Clocks()
    rec = _recorder(store, clocks)
    s = rec.start(parse_scale("E minor"), strictness=0.6, sensitivity=0.4)
    writes = 0
    for i in range(1, 121):  # a minute of score updates every 0.5 s
        clocks.advance(0.5)
        writes += rec.update(_metrics(i))
    snaps = store.snapshots(s.session_id)
    assert writes == len(snaps) == 60 / CHECKPOINT_INTERVAL_S
    gaps = [b["elapsed_s"] - a["elapsed_s"] for a, b in itertools.pairwise(snaps)]
    assert max(gaps) <= CHECKPOINT_INTERVAL_S
    row = store.get_session(s.session_id)
    assert row is not None and row["status"] == "running" and row["duration_seconds"] == 60.0
    assert row["total_notes"] == 120


def test_start_stamps_utc_and_the_players_offset(store: SessionStore) -> None:
    clocks = Clocks()
    rec = _recorder(store, clocks)
    rec.start(parse_scale("E minor"), strictness=0.5, sensitivity=0.5)
    clocks.advance(30)
    record = rec.end(_metrics(10))
    assert record.start_timestamp == datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    assert record.utc_offset_minutes == -480
    assert record.end_timestamp - record.start_timestamp == timedelta(seconds=30)


def test_pauses_do_not_count_as_practice(store: SessionStore) -> None:
    clocks = Clocks()
    rec = _recorder(store, clocks)
    rec.start(parse_scale("C major"), strictness=0.5, sensitivity=0.5)
    clocks.advance(40)
    rec.pause(_metrics(20))
    assert rec.paused
    clocks.advance(300)
    rec.resume()
    clocks.advance(20)
    assert rec.end(_metrics(30)).duration_seconds == 60.0


def test_a_wall_clock_stepped_backwards_cannot_end_a_session_before_it_began(store: SessionStore) -> None:
    clocks = Clocks()
    rec = _recorder(store, clocks)
    rec.start(parse_scale("C major"), strictness=0.5, sensitivity=0.5)
    clocks.mono += 90
    clocks.wall -= timedelta(hours=1)  # NTP steps the clock back mid-session
    record = rec.end(_metrics(30))
    assert record.end_timestamp > record.start_timestamp
    assert record.duration_seconds == 90.0


def test_a_crash_leaves_a_session_that_the_next_start_recovers_once(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    clocks = Clocks()
    store = SessionStore.open(path)
    rec = _recorder(store, clocks)
    s = rec.start(parse_scale("A minor pentatonic"), strictness=0.5, sensitivity=0.5)
    for i in range(1, 25):
        clocks.advance(0.5)
        rec.update(_metrics(i))
    clocks.advance(3.0)  # played on after the last checkpoint: those 3 s are lost
    del rec  # the plug is pulled: no end(), no close()

    after = SessionStore.open(path)
    (recovered,) = Recorder(after, user_id="ana", device_id="pedal-1").recover()
    assert recovered.session_id == s.session_id and recovered.recovered
    assert recovered.duration_seconds == 10.0 and recovered.total_notes == 20
    assert recovered.end_timestamp - recovered.start_timestamp == timedelta(seconds=10)
    assert after.recover_running() == []  # never twice
    assert [i.item_id for i in after.outbox_batch(10)] == [s.session_id]
    assert after.get_session(s.session_id)["status"] == "ended"  # type: ignore[index]
    store.close()
    after.close()


def test_a_session_that_crashed_before_its_first_checkpoint_is_kept_empty(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = SessionStore.open(path)
    clocks = Clocks()
    s = _recorder(store, clocks).start(parse_scale("G major"), strictness=0.5, sensitivity=0.5)
    (recovered,) = SessionStore.open(path).recover_running()
    assert recovered.session_id == s.session_id
    assert (recovered.total_notes, recovered.duration_seconds, recovered.pitch_accuracy) == (0, 0.0, None)
    store.close()


def test_one_session_at_a_time_and_no_checkpoint_without_one(store: SessionStore) -> None:
    rec = _recorder(store, Clocks())
    with pytest.raises(SessionStateError):
        rec.checkpoint(_metrics(1))
    rec.start(parse_scale("G major"), strictness=0.5, sensitivity=0.5)
    with pytest.raises(SessionStateError, match="already running"):
        rec.start(parse_scale("G major"), strictness=0.5, sensitivity=0.5)
    rec.end(_metrics(3))
    with pytest.raises(SessionStateError):
        rec.end(_metrics(3))


def test_recent_sessions_are_the_users_newest_ended_ones(store: SessionStore) -> None:
    clocks = Clocks()
    rec = _recorder(store, clocks)
    for scale in ("C major", "D minor", "E minor pentatonic"):
        rec.start(parse_scale(scale), strictness=0.5, sensitivity=0.5)
        clocks.advance(60)
        rec.end(_metrics(10))
    rec.start(parse_scale("F major"), strictness=0.5, sensitivity=0.5)  # still running: not listed
    got = store.recent_sessions("ana", limit=2)
    assert [r.scale_chosen for r in got] == ["E minor pentatonic", "D natural minor"]
    assert store.recent_sessions("someone-else") == []
