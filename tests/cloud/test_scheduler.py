"""The sync job on a real APScheduler: interval, poke on session end, backoff, clock jumps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud_sync import Backoff, SyncReport
from cloud_sync.scheduler import SyncScheduler
from cloud_sync.service import make_sync_scheduler
from device.config import Settings
from device.errors import SyncUnavailableError
from device.session import SessionStore


class Job:
    def __init__(self, outcomes: list[Exception | None]) -> None:
        self.outcomes = outcomes
        self.calls = 0
        self.ran = threading.Event()

    def __call__(self) -> SyncReport:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        self.ran.set()
        if outcome is not None:
            raise outcome
        return SyncReport(sessions_pushed=1)


@pytest.fixture
def make() -> Iterator[Callable[..., SyncScheduler]]:
    made: list[SyncScheduler] = []

    def _make(job: Job, **kw: object) -> SyncScheduler:
        s = SyncScheduler(job, **kw)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield _make
    for s in made:
        s.shutdown()


def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_runs_at_start_then_waits_for_the_interval(make: Callable[..., SyncScheduler]) -> None:
    job = Job([])
    s = make(job, interval_s=3600, tick_s=0.05)
    s.start()
    assert _wait(lambda: s.status().state == "ok")
    time.sleep(0.3)  # several ticks: none is due
    assert job.calls == 1
    assert s.due_in_s() > 3590


def test_a_poke_runs_the_job_now(make: Callable[..., SyncScheduler]) -> None:
    job = Job([])
    s = make(job, interval_s=3600)
    s.start(run_now=False)
    time.sleep(0.1)
    assert job.calls == 0
    s.poke()  # a session just ended
    assert _wait(lambda: job.calls == 1)


def test_failures_back_off_with_jitter_and_success_resets(make: Callable[..., SyncScheduler]) -> None:
    job = Job([SyncUnavailableError("cannot reach the database"), SyncUnavailableError("still down")])
    s = make(job, interval_s=3600, backoff=Backoff(base_s=60, cap_s=600, rng=lambda: 0.5))
    s.start()
    assert _wait(lambda: s.status().state == "offline")
    st = s.status()
    assert st.message == "cannot reach the database" and st.failures == 1
    # nominal 60 s, equal jitter at 0.5 → 45 s; not the hour-long interval
    assert abs(s.due_in_s() - 45) < 2
    s.poke()
    assert _wait(lambda: s.status().failures == 2)
    assert abs(s.due_in_s() - 90) < 2
    s.poke()
    assert _wait(lambda: s.status().state == "ok")
    assert s.status().failures == 0 and s.status().last_ok_at is not None


def test_an_unexpected_exception_never_kills_the_job(make: Callable[..., SyncScheduler]) -> None:
    job = Job([RuntimeError("bug")])
    s = make(job, interval_s=3600, backoff=Backoff(base_s=60, cap_s=600, rng=lambda: 0.0))
    s.start()
    assert _wait(lambda: s.status().state == "error")
    assert "bug" in (s.status().message or "")
    s.poke()
    assert _wait(lambda: s.status().state == "ok")


def test_a_wall_clock_stepped_back_reschedules_the_job(make: Callable[..., SyncScheduler]) -> None:
    wall, mono = [1_800_000_000.0], [50.0]
    job = Job([])
    s = make(job, interval_s=3600, wall=lambda: wall[0], monotonic=lambda: mono[0])
    s.start(run_now=False)
    time.sleep(0.1)
    assert job.calls == 0
    wall[0] += 5
    mono[0] += 5
    assert not s.check_clock()
    wall[0] -= 3600  # NTP steps the clock back an hour: APScheduler would wait an extra hour
    mono[0] += 5
    assert s.check_clock()
    assert _wait(lambda: job.calls == 1)


def test_the_pedal_syncs_only_when_a_database_is_configured(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path / "f.db")
    assert make_sync_scheduler(Settings(data_dir=tmp_path), store) is None
    sched = make_sync_scheduler(
        Settings(data_dir=tmp_path, database_url="postgresql://pedal@127.0.0.1:1/x", sync_interval_s=120), store
    )
    assert sched is not None and sched.interval_s == 120
    store.close()
