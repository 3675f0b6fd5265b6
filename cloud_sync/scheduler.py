"""The pedal's sync job on APScheduler: every few minutes, at once when a session ends, and
later and later (backoff with jitter) while the server cannot be reached.

The outbox is the durable queue; the job lives in memory, defined here. APScheduler only ticks
(every few seconds); when a pass is due is decided on the monotonic clock, so neither a
job's own rescheduling nor a stepped wall clock can race or stall it. APScheduler 3 waits for a
tick on the wall clock, though, so a clock stepped backwards (NTP on a Pi without an RTC)
would stall the tick for as long as the step: :meth:`SyncScheduler.check_clock`, called from
the app's main loop, notices the jump and restarts the tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from cloud_sync.backoff import Backoff
from cloud_sync.syncer import SyncReport
from device.errors import FretCoachError, SyncUnavailableError

__all__ = ["SyncScheduler", "SyncStatus"]

log = logging.getLogger(__name__)

_JOB_ID = "fretcoach-sync"
# A wall clock that moved this much more (or less) than the monotonic clock was stepped.
_CLOCK_JUMP_S = 30.0


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """What the home screen shows about the sync."""

    state: str  # "idle" (never ran), "ok", "offline", "error", "syncing"
    last_ok_at: datetime | None
    last_report: SyncReport | None
    message: str | None
    failures: int


class SyncScheduler:
    def __init__(
        self,
        run: Callable[[], SyncReport],
        *,
        interval_s: float = 300.0,
        tick_s: float = 5.0,
        backoff: Backoff | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self.interval_s = interval_s
        self.tick_s = tick_s
        self.backoff = backoff or Backoff(base_s=15.0, cap_s=interval_s * 4)
        self._wall = wall
        self._mono = monotonic
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            # One pass at a time; runs missed while busy or asleep collapse into one.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._lock = threading.Lock()
        self._state = "idle"
        self._last_ok_at: datetime | None = None
        self._last_report: SyncReport | None = None
        self._message: str | None = None
        self._clock_ref = (wall(), monotonic())
        self._due = monotonic()
        self._poked = False
        self.runs = 0

    def start(self, run_now: bool = True) -> None:
        self._due = self._mono() + (0.0 if run_now else self.interval_s)
        self._scheduler.add_job(
            self._tick, IntervalTrigger(seconds=self.tick_s), id=_JOB_ID, next_run_time=datetime.now(UTC)
        )
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def poke(self) -> None:
        """Run a pass as soon as possible (a session just ended)."""
        self._poked = True
        if self._scheduler.running:
            self._scheduler.modify_job(_JOB_ID, next_run_time=datetime.now(UTC))

    def due_in_s(self) -> float:
        """Seconds until the next pass is due (0 when due now)."""
        return 0.0 if self._poked else max(0.0, self._due - self._mono())

    def check_clock(self) -> bool:
        """Call every few seconds: if the wall clock was stepped, run the job now. True if so."""
        wall, mono = self._wall(), self._mono()
        ref_wall, ref_mono = self._clock_ref
        self._clock_ref = (wall, mono)
        if abs((wall - ref_wall) - (mono - ref_mono)) < _CLOCK_JUMP_S:
            return False
        jump = (wall - ref_wall) - (mono - ref_mono)
        log.warning("sync: the wall clock jumped by %+.0f s; restarting the tick", jump)
        if self._scheduler.running:
            # A fresh trigger counts from the new "now"; the old one would wait out the step.
            self._scheduler.reschedule_job(_JOB_ID, trigger=IntervalTrigger(seconds=self.tick_s))
        self.poke()
        return True

    def status(self) -> SyncStatus:
        with self._lock:
            return SyncStatus(self._state, self._last_ok_at, self._last_report, self._message, self.backoff.failures)

    def _tick(self) -> None:
        if not self._poked and self._mono() < self._due:
            return
        self._poked = False
        with self._lock:
            self._state = "syncing"
        self.runs += 1
        try:
            report = self._run()
        except SyncUnavailableError as exc:
            self._failed("offline", str(exc))
            return
        except FretCoachError as exc:
            self._failed("error", str(exc))
            return
        except Exception as exc:  # the job must never die: log, back off, try again
            log.exception("sync: unexpected failure")
            self._failed("error", f"unexpected: {exc}")
            return
        self.backoff.reset()
        self._due = self._mono() + self.interval_s
        with self._lock:
            self._state = "ok"
            self._last_ok_at = datetime.now(UTC)
            self._last_report = report
            self._message = None

    def _failed(self, state: str, message: str) -> None:
        delay = self.backoff.next_delay()
        log.warning("sync: %s; next try in %.0f s", message, delay)
        self._due = self._mono() + delay
        with self._lock:
            self._state = state
            self._message = message
