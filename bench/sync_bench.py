"""Sync benchmark: a fleet of pedals syncing at once into one PostgreSQL, and one pedal
draining a four-week backlog, side by side with a naive per-row-commit peer in the same run.

    python -m bench.sync_bench [--pedals 200] [--sessions 50] [--backlog 10000] [--json]
                               [--batch-sizes 100,500,2000] [--attempts 8] [--procs 0]

Everything is real: each pedal is its own SQLite file (``SessionStore``, WAL,
``synchronous=FULL``) with sessions recorded through ``Recorder`` on fake clocks, and syncs
with ``Syncer.run_once()`` as its own device role, so row-level security is in the path as in
production. The database and the roles are created fresh and dropped at the end, also after a
failure, Ctrl-C or SIGTERM. Not part of the test run (it takes a minute or two and loads the
server): run it by hand.

Fleet: every pedal on its own thread, released together; a server that is out of connection
slots refuses some, and they retry with the Syncer's backoff, as in the field. Latency is
from the common start to the pedal's outbox being empty. ``--procs N`` spreads the pedals over
N processes instead, to check that one process's GIL is not what is being measured.

Backlog: ``Syncer.run_once()`` with the default batch size, against the straightforward
implementation on an identical copy of the same file: one INSERT + COMMIT per session into a
twin table (same constraints, same policy, same device role), each acknowledged locally after
its commit.

Exit status: 0 when nothing was lost or duplicated and the backlog drained in under 60 s;
1 otherwise; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import math
import multiprocessing
import os
import queue
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql
from sqlite_utils import Database

from bench._pg import BenchDatabase, server_url
from cloud_sync import Backoff, Syncer, Timeouts, connect, create_device, device_role_name, migrate
from cloud_sync.connection import DEFAULT_TIMEOUTS
from cloud_sync.push import SESSION_COLUMN_TYPES
from cloud_sync.schema import DEVICE_GROUP_ROLE
from device.analysis import Metrics, parse_scale
from device.errors import SyncError, SyncUnavailableError
from device.session import OutboxItem, PlanRecord, Recorder, SessionStore, StoreStatus

BACKLOG_LIMIT_S = 60.0
# Syncer's default batch size, read from its signature: what a pedal in the field uses.
DEFAULT_BATCH: int = inspect.signature(Syncer).parameters["batch_size"].default
SCALES = [
    f"{tonic} {quality}"
    for tonic in ("E", "A", "D", "G", "C", "F#", "Bb")
    for quality in ("minor pentatonic", "major pentatonic", "minor", "major")
]
# The naive peer's table: the sessions table's twin (same columns, checks, keys, policy).
NAIVE_TABLE = "sessions_naive"
# Column → PostgreSQL type, in the order the naive peer binds them (explicit casts: the
# payload carries timestamps and UUIDs as strings): the push's own map.
SESSION_COLUMNS = SESSION_COLUMN_TYPES
# The libpq messages of a server with no connection slot left for a non-superuser.
_FULL_MARKERS = ("too many clients", "remaining connection slots are reserved")


class Aborted(Exception):
    """The run was interrupted; pedal threads stop at their next wait."""


# ---- instrumented store ------------------------------------------------------------------


class TimedStore(SessionStore):
    """A :class:`SessionStore` that adds up the time the sync spends in each local call, so a
    drain can be split into SQLite work (reads, fsync'd acks) and everything else."""

    def __init__(self, db: Database, path: Path, clock: Callable[[], datetime]) -> None:
        super().__init__(db, path, clock)
        self.spent: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.emptied_at: float | None = None  # time.monotonic() after the ack that emptied the outbox
        self.track_emptied = True  # off for the naive peer: its 10,000 one-row acks pay no extra query

    @contextlib.contextmanager
    def _timed(self, what: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.spent[what] += time.perf_counter() - t
            self.calls[what] += 1

    def outbox_batch(self, limit: int) -> list[OutboxItem]:
        with self._timed("read"):
            return super().outbox_batch(limit)

    def ack(self, items: Sequence[OutboxItem]) -> None:
        with self._timed("ack"):
            super().ack(items)
        if not self.track_emptied:
            return
        # The outbox is empty once an ack leaves nothing queued (one indexed lookup, untimed).
        with self._lock:
            row = self.db.execute("SELECT EXISTS (SELECT 1 FROM outbox WHERE quarantined_at IS NULL)").fetchone()
        if row is not None and not row[0]:
            self.emptied_at = time.monotonic()

    def quarantine(self, failures: Sequence[tuple[OutboxItem, str]]) -> None:
        with self._timed("quarantine"):
            super().quarantine(failures)

    def merge_pulled_plans(self, plans: Iterable[PlanRecord]) -> int:
        with self._timed("state"):
            return super().merge_pulled_plans(plans)

    def get_state(self, key: str) -> str | None:
        with self._timed("state"):
            return super().get_state(key)

    def set_state(self, values: dict[str, str | None]) -> None:
        with self._timed("state"):
            super().set_state(values)

    def status(self) -> StoreStatus:
        with self._timed("state"):
            return super().status()

    def reset_timings(self) -> None:
        self.spent.clear()
        self.calls.clear()


def open_store(path: Path) -> TimedStore:
    store = TimedStore.open(path)
    assert isinstance(store, TimedStore)  # open() builds cls(...); typed as the base class
    return store


# ---- realistic pedals --------------------------------------------------------------------


@dataclass
class Pedal:
    device_id: str
    user_id: str
    store: TimedStore
    url: str = ""  # the device role's URL (filled once its role exists)


@dataclass(frozen=True, slots=True)
class _Profile:
    """One session's player: how fast they play and how well, drawn once per session."""

    notes_per_s: float
    pitch: float
    conformity: float
    timing: float


def _metrics(p: _Profile, elapsed_s: float, rng: random.Random) -> Metrics:
    notes = int(elapsed_s * p.notes_per_s)
    if notes == 0:
        return Metrics(None, None, None, 0, 0, 0, None)
    # A score wanders a little during a session; the final one is where it settled.
    pitch = min(100.0, max(0.0, p.pitch + rng.gauss(0, 1.5)))
    conformity = min(100.0, max(0.0, p.conformity + rng.gauss(0, 1.5)))
    timing = min(100.0, max(0.0, p.timing + rng.gauss(0, 2.0))) if notes >= 3 else None
    correct = round(notes * conformity / 100 * rng.uniform(0.9, 1.0))
    bad = round((notes - correct) * rng.uniform(0.6, 1.0))  # the rest: too short or unclear to judge
    scores = {"pitch_accuracy": pitch, "scale_conformity": conformity}
    if timing is not None:
        scores["timing_stability"] = timing
    weakest = min(scores, key=lambda k: scores[k])
    return Metrics(pitch, conformity, timing, notes, correct, bad, weakest)


def build_pedal(
    root: Path,
    device_id: str,
    user_id: str,
    sessions: int,
    *,
    end: datetime,
    span: timedelta,
    duration_s: tuple[float, float],
    with_plan: bool,
    seed: int,
) -> Pedal:
    """A pedal's real SQLite store with ``sessions`` ended sessions queued (and, if asked, one
    AI Mode plan that the last session played), recorded through :class:`Recorder` with fake
    clocks so the rows are what a pedal writes: checkpoints, snapshots, outbox payloads."""
    rng = random.Random(seed)
    store = open_store(root / device_id / "fretcoach.db")
    # Recording 10,000 sessions durably would cost ~3 fsyncs each and only slow the set-up;
    # FULL is restored below, before anything measured touches the store.
    store.db.conn.execute("PRAGMA synchronous = OFF")
    tz = timezone(timedelta(minutes=rng.choice([-480, -300, -180, 0, 60, 120, 330, 600])))
    wall = [end - span]
    mono = [1000.0]
    rec = Recorder(
        store,
        user_id=user_id,
        device_id=device_id,
        wall_clock=lambda: wall[0].astimezone(tz),
        monotonic=lambda: mono[0],
    )
    pedal = Pedal(device_id, user_id, store)
    plan_id: str | None = None
    if with_plan:
        scale = rng.choice(SCALES)
        plan = PlanRecord(
            practice_id=str(uuid.uuid4()),
            user_id=user_id,
            practice_plan={
                "scale_name": scale,
                "focus_area": rng.choice(["pitch", "scale", "timing"]),
                "suggested_bpm": rng.choice([60, 72, 80, 96]),
                "exercise": "ascending and descending in two octaves, then thirds",
                "reasoning": "timing drifted in the last three sessions; slow down and lock in",
            },
            generated_at=end - span,
        )
        store.save_plan(plan)
        plan_id = plan.practice_id
    gap = span.total_seconds() / max(1, sessions)
    for k in range(sessions):
        duration = rng.uniform(*duration_s)
        # Evenly spread over the span, each session somewhere inside its own slot.
        wall[0] = end - span + timedelta(seconds=k * gap + rng.uniform(0, max(0.0, gap - duration)))
        profile = _Profile(
            notes_per_s=0.0 if rng.random() < 0.02 else rng.uniform(0.6, 3.5),  # 2 %: started, never played
            pitch=rng.uniform(55, 98),
            conformity=rng.uniform(60, 99),
            timing=rng.uniform(35, 95),
        )
        rec.start(
            parse_scale(rng.choice(SCALES)),
            strictness=rng.choice([0.3, 0.5, 0.7, 0.9]),
            sensitivity=rng.choice([0.4, 0.5, 0.6]),
            bpm=rng.choice([None, None, 60.0, 80.0, 100.0, 120.0, 140.0]),
            practice_id=plan_id if k == sessions - 1 else None,
        )
        # Two checkpoints stand for the every-5-s ones (hundreds per session would only grow
        # the snapshots table, which the sync never reads).
        for part in (1, 2):
            mono[0] += duration / 3
            rec.checkpoint(_metrics(profile, duration * part / 3, rng))
        mono[0] += duration / 3
        rec.end(_metrics(profile, duration, rng))
    store.db.conn.execute("PRAGMA synchronous = FULL")
    return pedal


def register_device(admin: psycopg.Connection[Any], db: BenchDatabase, pedal: Pedal) -> None:
    db.track_role(device_role_name(pedal.device_id))  # before it exists: dropped even if we fail next
    creds = create_device(admin, pedal.device_id, pedal.user_id)
    pedal.url = creds.url(db.url)


# ---- the fleet: many pedals at once ----------------------------------------------------------


@dataclass
class PedalRun:
    emptied_at: float | None = None  # time.monotonic() when this pedal's outbox became empty
    done_at: float | None = None  # time.monotonic() when its sync pass ended (after the plan pull)
    passes: int = 0
    failed_passes: int = 0
    retries: int = 0  # backoff waits before another connect
    backoff_s: float = 0.0
    refused: Counter[str] = field(default_factory=Counter)
    connect_s: float = 0.0  # time in connect calls, refused ones included
    sessions_pushed: int = 0
    already_there: int = 0
    plans_pushed: int = 0
    quarantined: int = 0
    spent: dict[str, float] = field(default_factory=dict)  # the store's local time, by part
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FleetSettings:
    attempts: int
    backoff_base_s: float
    backoff_cap_s: float
    batch_size: int = DEFAULT_BATCH  # == Syncer's default
    max_passes: int = 20


@dataclass(frozen=True, slots=True)
class PedalSpec:
    """What a worker process needs to become a pedal (picklable)."""

    device_id: str
    user_id: str
    path: str
    url: str


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    return "server full" if any(m in text for m in _FULL_MARKERS) else "other"


def sync_pedal(
    pedal: Pedal,
    settings: FleetSettings,
    stop: threading.Event,
    run: PedalRun,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
) -> None:
    """Run ``Syncer.run_once()`` until the pedal's outbox is empty, as the pedal's scheduler
    would (a pass that could not reach the server is retried after the backoff)."""

    def sleep(seconds: float) -> None:
        run.retries += 1
        run.backoff_s += seconds
        if stop.wait(seconds):
            raise Aborted

    def connector(url: str, t: Timeouts) -> psycopg.Connection[Any]:
        c0 = time.perf_counter()
        try:
            return connect(url, t, application_name="fretcoach-bench")
        except SyncUnavailableError as exc:
            run.refused[_reason(exc)] += 1
            raise
        finally:
            run.connect_s += time.perf_counter() - c0

    syncer = Syncer(
        pedal.store,
        pedal.url,
        pedal.user_id,
        batch_size=settings.batch_size,
        timeouts=timeouts,
        connector=connector,
        attempts=settings.attempts,
        backoff=Backoff(base_s=settings.backoff_base_s, cap_s=settings.backoff_cap_s),
        sleep=sleep,
    )
    while run.passes < settings.max_passes:
        if stop.is_set():
            raise Aborted
        run.passes += 1
        try:
            report = syncer.run_once()
        except SyncUnavailableError as exc:
            run.failed_passes += 1
            run.error = str(exc)
            sleep(syncer.backoff.next_delay())
            continue
        except SyncError as exc:
            run.error = str(exc)
            break
        run.error = None
        run.sessions_pushed += report.sessions_pushed
        run.already_there += report.sessions_already_there
        run.plans_pushed += report.plans_pushed
        run.quarantined += report.quarantined
        if report.queued == 0:
            run.done_at = time.monotonic()
            run.emptied_at = pedal.store.emptied_at or run.done_at
            break


def run_pedals(
    pedals: Sequence[Pedal], settings: FleetSettings, wait_for_start: Callable[[], None], stop: threading.Event
) -> tuple[list[PedalRun], float]:
    """One thread per pedal, all released together once ``wait_for_start`` returns.

    Returns each pedal's run and this process's CPU seconds while they ran."""
    runs = [PedalRun() for _ in pedals]
    go = threading.Event()

    def work(pedal: Pedal, run: PedalRun) -> None:
        try:
            go.wait()
            sync_pedal(pedal, settings, stop, run)
        except Aborted:
            run.error = "interrupted"
        except Exception as exc:  # reported with the figures; never hangs the run
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            run.spent = dict(pedal.store.spent)

    threads = [
        threading.Thread(target=work, args=(p, r), name=p.device_id, daemon=True)
        for p, r in zip(pedals, runs, strict=True)
    ]
    for th in threads:
        th.start()
    wait_for_start()
    cpu0 = time.process_time()
    go.set()
    for th in threads:
        th.join()
    return runs, time.process_time() - cpu0


def _fleet_process(index: int, specs: list[PedalSpec], settings: FleetSettings, sync: tuple[Any, Any, Any]) -> None:
    """A worker process: its share of the pedals, each on a thread (see Bench.fleet).

    ``sync`` is (Barrier, Event, Queue) from the spawn context (their classes are not public)."""
    ready, start, results = sync
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    pedals = [Pedal(s.device_id, s.user_id, open_store(Path(s.path)), s.url) for s in specs]

    def wait_for_start() -> None:
        ready.wait()
        start.wait()

    runs, cpu = run_pedals(pedals, settings, wait_for_start, threading.Event())
    for p in pedals:
        p.store.close()
    results.put((index, runs, cpu))


class _ConnectionWatch:
    """Samples the server's client connections every 20 ms: ours (the bench database) and all."""

    def __init__(self, admin_url: str, dbname: str) -> None:
        self.peak_ours = 0
        self.peak_all = 0
        self._stop = threading.Event()
        self._conn = psycopg.connect(admin_url, autocommit=True)
        self._dbname = dbname
        self._thread = threading.Thread(target=self._loop, name="conn-watch", daemon=True)

    def _loop(self) -> None:
        q = (
            "SELECT count(*) FILTER (WHERE datname = %s), count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend'"
        )
        while not self._stop.wait(0.02):
            with contextlib.suppress(psycopg.Error):
                row = self._conn.execute(q, [self._dbname]).fetchone()
                if row:
                    self.peak_ours = max(self.peak_ours, int(row[0]))  # (this watcher is on the admin db)
                    self.peak_all = max(self.peak_all, int(row[1]))

    def __enter__(self) -> _ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def _cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (0, 0 if unavailable)."""
    try:
        with open("/proc/stat") as f:
            parts = [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)
    return sum(parts) - idle, sum(parts)


def _server_cpu_s() -> float | None:
    """CPU seconds used so far by the local PostgreSQL's ended backends (the postmaster's
    reaped children, cutime + cstime), or None when the server is not on this machine.

    Every pedal connection is a backend that ends with the pass, so the difference across the
    fleet phase is the server's share of the work (plus anything else's backends that ended)."""
    tick = os.sysconf("SC_CLK_TCK")
    best: float | None = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parent = Path("/proc", fields[1], "comm").read_text().strip()
        except OSError:
            continue
        if parent != "postgres":  # the postmaster: a postgres whose parent is not one
            best = (float(fields[13]) + float(fields[14])) / tick
    return best


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) — an observed value, not an interpolation."""
    if not values:
        return math.nan
    xs = sorted(values)
    return xs[max(0, math.ceil(q / 100 * len(xs)) - 1)]


# ---- verification ------------------------------------------------------------------------


@dataclass
class Verification:
    expected: int = 0  # sessions queued on the pedals
    in_pg: int = 0
    duplicates: int = 0
    lost: int = 0
    extra: int = 0  # rows for these devices that no pedal recorded
    mismatched: int = 0  # rows whose user, device, counts or duration differ from the pedal's
    devices_off: int = 0  # devices whose row count in PostgreSQL differs from the pedal's
    outbox_left: int = 0  # queued or quarantined items still on the pedals
    unsynced_local: int = 0  # local sessions not marked synced
    plans_expected: int = 0
    plans_lost: int = 0
    plans_unexecuted: int = 0

    @property
    def ok(self) -> bool:
        return self.in_pg == self.expected and not any(
            (
                self.duplicates,
                self.lost,
                self.extra,
                self.mismatched,
                self.devices_off,
                self.outbox_left,
                self.unsynced_local,
                self.plans_lost,
                self.plans_unexecuted,
            )
        )

    def line(self) -> str:
        return (
            f"PG {self.in_pg:,} vs queued {self.expected:,}; duplicates {self.duplicates}, lost {self.lost}, "
            f"extra {self.extra}, mismatched {self.mismatched}, devices off {self.devices_off}, "
            f"outbox left {self.outbox_left}, plans lost {self.plans_lost}"
            f"  {'OK' if self.ok else 'FAIL'}"
        )


def verify(admin: psycopg.Connection[Any], pedals: Sequence[Pedal], table: str = "sessions") -> Verification:
    """Compare every pedal's SQLite with PostgreSQL, row by row (as the superuser: no RLS)."""
    v = Verification()
    local: dict[str, tuple[Any, ...]] = {}
    local_ids: Counter[str] = Counter()
    per_device: Counter[str] = Counter()
    local_plans: dict[str, str | None] = {}
    for p in pedals:
        conn = p.store.db.conn
        rows = conn.execute(
            "SELECT session_id, user_id, device_id, total_notes, correct_notes, bad_notes, duration_seconds,"
            " synced_at FROM sessions WHERE status = 'ended'"
        ).fetchall()
        for sid, *fields, synced_at in rows:
            local_ids[sid] += 1
            local[sid] = tuple(fields)
            per_device[p.device_id] += 1
            v.unsynced_local += synced_at is None
        left = conn.execute("SELECT count(*) FROM outbox").fetchone()
        v.outbox_left += int(left[0]) if left else 0
        for pid, executed in conn.execute("SELECT practice_id, executed_session_id FROM plans").fetchall():
            local_plans[pid] = executed
    v.expected = sum(local_ids.values())
    v.duplicates += sum(n - 1 for n in local_ids.values() if n > 1)  # the same id on two pedals

    rows = admin.execute(
        sql.SQL(
            "SELECT session_id::text, user_id, device_id, total_notes, correct_notes, bad_notes, duration_seconds"
            " FROM fretcoach.{} WHERE device_id = ANY(%s)"
        ).format(sql.Identifier(table)),
        [[p.device_id for p in pedals]],
    ).fetchall()
    v.in_pg = len(rows)
    seen: Counter[str] = Counter()
    pg_per_device: Counter[str] = Counter()
    for sid, user_id, device_id, total, correct, bad, duration in rows:
        seen[sid] += 1
        pg_per_device[device_id] += 1
        mine = local.get(sid)
        if mine is None:
            v.extra += 1
        elif (user_id, device_id, total, correct, bad) != mine[:5] or abs(duration - mine[5]) > 1e-6:
            v.mismatched += 1
    v.duplicates += sum(n - 1 for n in seen.values() if n > 1)
    v.lost = sum(1 for sid in local_ids if sid not in seen)
    v.devices_off = sum(1 for p in pedals if pg_per_device[p.device_id] != per_device[p.device_id])

    v.plans_expected = len(local_plans)
    if local_plans and table == "sessions":
        got = dict(
            admin.execute(
                "SELECT practice_id::text, executed_session_id::text FROM fretcoach.ai_practice_plans"
                " WHERE practice_id = ANY(%s::uuid[])",
                [list(local_plans)],
            ).fetchall()
        )
        v.plans_lost = sum(1 for pid in local_plans if pid not in got)
        v.plans_unexecuted = sum(1 for pid, ex in local_plans.items() if pid in got and got[pid] != ex)
    return v


# ---- the drain: one pedal, a long backlog ------------------------------------------------


@dataclass
class Drain:
    label: str
    sessions: int
    seconds: float
    batch_size: int | None
    breakdown: dict[str, float]  # seconds per part of the drain
    verification: Verification | None = None

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds if self.seconds > 0 else math.nan


def drain_ours(pedal: Pedal, batch_size: int, stop: threading.Event) -> Drain:
    """One ``Syncer.run_once()`` with the field defaults except ``batch_size``, timed from the
    call to its return (connect, every batch, the plan pull, the local bookkeeping)."""
    pedal.store.reset_timings()
    connect_s = [0.0]

    def timed_connect(url: str, timeouts: Timeouts) -> psycopg.Connection[Any]:
        c0 = time.perf_counter()
        try:
            return connect(url, timeouts, application_name="fretcoach-bench")
        finally:
            connect_s[0] += time.perf_counter() - c0

    syncer = Syncer(pedal.store, pedal.url, pedal.user_id, batch_size=batch_size, connector=timed_connect)
    t = time.perf_counter()
    report = syncer.run_once()
    seconds = time.perf_counter() - t
    spent = pedal.store.spent
    local = spent["read"] + spent["ack"] + spent["quarantine"] + spent["state"]
    breakdown = {
        "local_read": spent["read"],
        "local_ack": spent["ack"],
        "local_other": spent["quarantine"] + spent["state"],
        "connect": connect_s[0],
        # What is left: push_batch (JSON encoding, the round trip, the server's insert and
        # commit) and the plan pull's queries.
        "server_push_pull": max(0.0, seconds - local - connect_s[0]),
        "batches": float(report.batches),
    }
    if stop.is_set():
        raise Aborted
    return Drain("ours", report.sessions_pushed, seconds, syncer.batch_size, breakdown)


def drain_naive(pedal: Pedal, stop: threading.Event) -> Drain:
    """The straightforward sync: for each queued session, INSERT it and COMMIT, then
    acknowledge it locally (acknowledging only after the server commit, as ours does)."""
    cols = list(SESSION_COLUMNS)
    insert = sql.SQL("INSERT INTO fretcoach.{} ({}) VALUES ({}) ON CONFLICT (session_id) DO NOTHING").format(
        sql.Identifier(NAIVE_TABLE),
        sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        sql.SQL(", ").join(sql.SQL("%s::" + t) for t in SESSION_COLUMNS.values()),
    )
    store = pedal.store
    store.reset_timings()
    server_s = 0.0
    sessions = 0
    t = time.perf_counter()
    c0 = time.perf_counter()
    conn = connect(pedal.url, DEFAULT_TIMEOUTS, application_name="fretcoach-bench-naive")
    connect_s = time.perf_counter() - c0
    try:
        while not stop.is_set():
            items = store.outbox_batch(DEFAULT_BATCH)
            if not items:
                break
            for item in items:
                assert item.kind == "session" and item.payload is not None, "the backlog holds sessions only"
                s0 = time.perf_counter()
                with conn.transaction():
                    conn.execute(insert, [item.payload.get(c) for c in cols])
                server_s += time.perf_counter() - s0
                store.ack([item])
                sessions += 1
    finally:
        conn.close()
    seconds = time.perf_counter() - t
    if stop.is_set():
        raise Aborted
    spent = store.spent
    return Drain(
        "naive per-row commit",
        sessions,
        seconds,
        None,
        {
            "local_read": spent["read"],
            "local_ack": spent["ack"],
            "connect": connect_s,
            "server_insert_commit": server_s,
            "other": max(0.0, seconds - spent["read"] - spent["ack"] - connect_s - server_s),
        },
    )


def copy_store(src: TimedStore, dest: Path) -> TimedStore:
    """An identical copy of a pedal's SQLite file (same rows, same outbox) for the peer."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = sqlite3.connect(str(dest))
    try:
        src.db.conn.backup(target)
    finally:
        target.close()
    return open_store(dest)


# ---- the run -----------------------------------------------------------------------------


@dataclass
class Config:
    pedals: int
    sessions: int
    users: int
    backlog: int
    batch_sizes: list[int]
    attempts: int
    backoff_base_s: float
    backoff_cap_s: float
    seed: int
    procs: int


def _note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Bench:
    """One run: its database, the pedals' directory, the two phases."""

    def __init__(self, cfg: Config, db: BenchDatabase, root: Path, stop: threading.Event) -> None:
        self.cfg = cfg
        self.db = db
        self.root = root
        self.stop = stop
        self.run_id = uuid.uuid4().hex[:6]
        self.end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.procs: list[multiprocessing.process.BaseProcess] = []

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.db.url, autocommit=True)

    def prepare_schema(self) -> dict[str, Any]:
        with self.admin() as admin:
            migrate(admin)
            # The peer's table: same columns, checks, primary key, defaults and indexes
            # (LIKE … INCLUDING ALL), the same policy and grants: only the way rows arrive differs.
            t, group = sql.Identifier(NAIVE_TABLE), sql.Identifier(DEVICE_GROUP_ROLE)
            admin.execute(sql.SQL("CREATE TABLE fretcoach.{} (LIKE fretcoach.sessions INCLUDING ALL)").format(t))
            admin.execute(sql.SQL("ALTER TABLE fretcoach.{} ENABLE ROW LEVEL SECURITY").format(t))
            admin.execute(sql.SQL("ALTER TABLE fretcoach.{} FORCE ROW LEVEL SECURITY").format(t))
            admin.execute(
                sql.SQL(
                    "CREATE POLICY device_user_rows ON fretcoach.{} TO {}"
                    " USING (user_id = (SELECT fretcoach.device_user_id()))"
                    " WITH CHECK (user_id = (SELECT fretcoach.device_user_id()))"
                ).format(t, group)
            )
            admin.execute(sql.SQL("GRANT SELECT, INSERT ON fretcoach.{} TO {}").format(t, group))
            row = admin.execute(
                "SELECT current_setting('server_version'), current_setting('max_connections')::int,"
                " current_setting('superuser_reserved_connections')::int, current_setting('synchronous_commit')"
            ).fetchone()
        assert row is not None
        return {
            "server_version": row[0],
            "max_connections": row[1],
            "superuser_reserved_connections": row[2],
            "synchronous_commit": row[3],
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
        }

    def make_pedals(self, names: Sequence[tuple[str, str]], sessions: int, **kw: Any) -> list[Pedal]:
        # A stable seed per pedal (str hashes are salted per process): reruns record the same rows.
        seeds = [zlib.crc32(f"{self.cfg.seed}:{i}".encode()) for i in range(len(names))]
        pedals = [
            build_pedal(self.root, device, user, sessions, end=self.end, seed=seed, **kw)
            for (device, user), seed in zip(names, seeds, strict=True)
        ]
        with self.admin() as admin:
            for p in pedals:
                register_device(admin, self.db, p)
        return pedals

    def fleet(self) -> dict[str, Any]:
        cfg = self.cfg
        names = [(f"bench-{self.run_id}-p{i:03d}", f"user-{i % cfg.users:03d}") for i in range(cfg.pedals)]
        t = time.perf_counter()
        pedals = self.make_pedals(
            names, cfg.sessions, span=timedelta(days=28), duration_s=(5 * 60.0, 45 * 60.0), with_plan=True
        )
        _note(f"  {cfg.pedals} pedals recorded and registered in {time.perf_counter() - t:.1f} s")
        queued_items = sum(p.store.status().queued for p in pedals)

        settings = FleetSettings(cfg.attempts, cfg.backoff_base_s, cfg.backoff_cap_s)
        busy0, total0 = _cpu_busy()
        server0 = _server_cpu_s()
        with _ConnectionWatch(self.db.admin_url, self.db.name) as watch:
            if cfg.procs:
                t0, runs, cpu = self._fleet_in_processes(pedals, settings)
            else:
                t0s: list[float] = []
                runs, cpu = run_pedals(pedals, settings, lambda: t0s.append(time.monotonic()), self.stop)
                t0 = t0s[0]
        busy1, total1 = _cpu_busy()
        time.sleep(0.3)  # let the postmaster reap the last backends before reading its children's CPU
        server1 = _server_cpu_s()
        server_cpu = server1 - server0 if server0 is not None and server1 is not None else math.nan
        # The latency: from the common start to the pedal's queue being empty.
        lat = [r.emptied_at - t0 for r in runs if r.emptied_at is not None]
        passes_done = [r.done_at - t0 for r in runs if r.done_at is not None]
        wall = max(passes_done, default=math.nan)
        if self.stop.is_set():
            raise Aborted

        with self.admin() as admin:
            verification = verify(admin, pedals)
        refused: Counter[str] = Counter()
        for r in runs:
            refused.update(r.refused)
        total = cfg.pedals * cfg.sessions
        return {
            "pedals": cfg.pedals,
            "users": cfg.users,
            "sessions_per_pedal": cfg.sessions,
            "sessions": total,
            "outbox_items": queued_items,
            "wall_s": wall,
            "sessions_per_s": total / wall if wall > 0 else math.nan,
            "latency_s": {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "max": max(lat, default=math.nan)},
            "pass_done_s": {"p50": percentile(passes_done, 50), "p95": percentile(passes_done, 95)},
            "pedals_done": len(lat),
            "retries": sum(r.retries for r in runs),
            "pedals_retrying": sum(1 for r in runs if r.retries),
            "max_retries_one_pedal": max((r.retries for r in runs), default=0),
            "backoff_slept_s": sum(r.backoff_s for r in runs),
            "refused_connects": dict(refused),
            "failed_passes": sum(r.failed_passes for r in runs),
            "passes": sum(r.passes for r in runs),
            "errors": [f"{p.device_id}: {r.error}" for p, r in zip(pedals, runs, strict=True) if r.error],
            "sessions_pushed": sum(r.sessions_pushed for r in runs),
            "already_there": sum(r.already_there for r in runs),
            "quarantined": sum(r.quarantined for r in runs),
            "peak_connections": {"bench": watch.peak_ours, "server": watch.peak_all},
            "client_cpu_s": cpu,
            "server_cpu_s": server_cpu,
            # Mean seconds per pedal in each part of its sync (they overlap across pedals).
            "per_pedal_s": {
                "latency": statistics.fmean(passes_done) if passes_done else math.nan,
                "backoff": statistics.fmean(r.backoff_s for r in runs),
                "connect": statistics.fmean(r.connect_s for r in runs),
                "local_read": statistics.fmean(r.spent.get("read", 0.0) for r in runs),
                "local_ack": statistics.fmean(r.spent.get("ack", 0.0) for r in runs),
                "local_state": statistics.fmean(r.spent.get("state", 0.0) for r in runs),
            },
            "machine_cpu_busy": (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan,
            "verification": asdict(verification),
            "ok": verification.ok and len(lat) == cfg.pedals,
        }

    def _fleet_in_processes(
        self, pedals: Sequence[Pedal], settings: FleetSettings
    ) -> tuple[float, list[PedalRun], float]:
        """The pedals split over ``procs`` spawned processes, threads in each; one common start.

        Returns the start (time.monotonic(), the same clock in every process on Linux), the
        runs in the order of ``pedals`` and the client CPU seconds of all workers."""
        procs = self.cfg.procs
        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads and sockets
        ready, start, results = ctx.Barrier(procs + 1, timeout=120), ctx.Event(), ctx.Queue()
        # What the workers get is pickled by reference: take it from the importable module, not
        # from __main__ (which a spawned child can re-import only when run with -m).
        mod = importlib.import_module("bench.sync_bench")
        shares = [list(range(i, len(pedals), procs)) for i in range(procs)]
        for i, share in enumerate(shares):
            specs = [
                mod.PedalSpec(p.device_id, p.user_id, str(p.store.path), p.url) for p in (pedals[k] for k in share)
            ]
            proc = ctx.Process(
                target=mod._fleet_process,
                args=(i, specs, mod.FleetSettings(**asdict(settings)), (ready, start, results)),
                name=f"fleet-{i}",
                daemon=True,
            )
            proc.start()
            self.procs.append(proc)
        ready.wait()
        t0 = time.monotonic()
        start.set()
        runs: list[PedalRun | None] = [None] * len(pedals)
        cpu = 0.0
        received = 0
        while received < procs:
            try:
                index, share_runs, share_cpu = results.get(timeout=1.0)
            except queue.Empty:
                if any(w.exitcode not in (None, 0) for w in self.procs):
                    raise RuntimeError("a fleet worker process died; see its traceback above") from None
                continue
            received += 1
            cpu += share_cpu
            for k, run in zip(shares[index], share_runs, strict=True):
                runs[k] = run
        for worker in self.procs:
            worker.join()
        assert all(r is not None for r in runs)
        return t0, [r for r in runs if r is not None], cpu

    def backlog(self) -> dict[str, Any]:
        cfg = self.cfg
        n = cfg.backlog

        def one(tag: str) -> Pedal:
            t = time.perf_counter()
            # 4 weeks of heavy practice: short drills, back to back (~240 s apart at 10,000).
            (pedal,) = self.make_pedals(
                [(f"bench-{self.run_id}-{tag}", f"backlog-user-{tag}")],
                n,
                span=timedelta(days=28),
                duration_s=(20.0, 200.0),
                with_plan=False,
            )
            _note(f"  backlog pedal {tag}: {n:,} sessions recorded in {time.perf_counter() - t:.1f} s")
            return pedal

        pedal = one("backlog")
        # The peer drains an identical copy of the same file: same rows, same outbox order.
        twin = Pedal(
            pedal.device_id, pedal.user_id, copy_store(pedal.store, self.root / "naive" / "fretcoach.db"), pedal.url
        )
        twin.store.track_emptied = False
        ours = drain_ours(pedal, DEFAULT_BATCH, self.stop)
        naive = drain_naive(twin, self.stop)
        with self.admin() as admin:
            ours.verification = verify(admin, [pedal])
            naive.verification = verify(admin, [twin], table=NAIVE_TABLE)
        _note(f"  drains: ours {ours.seconds:.2f} s, naive {naive.seconds:.2f} s")

        by_batch = [ours]
        for b in cfg.batch_sizes:
            if b == ours.batch_size or self.stop.is_set():
                continue
            p = one(f"b{b}")
            d = drain_ours(p, b, self.stop)
            with self.admin() as admin:
                d.verification = verify(admin, [p])
            by_batch.append(d)
            _note(f"  batch {b}: {d.seconds:.2f} s")
        by_batch.sort(key=lambda d: d.batch_size or 0)

        def as_dict(d: Drain) -> dict[str, Any]:
            out = asdict(d)
            out["sessions_per_s"] = d.rate
            out["ok"] = d.verification is not None and d.verification.ok and d.sessions == n
            return out

        return {
            "sessions": n,
            "limit_s": BACKLOG_LIMIT_S,
            "ours": as_dict(ours),
            "naive": as_dict(naive),
            "speedup_vs_naive": naive.seconds / ours.seconds,
            "batch_sizes": [as_dict(d) for d in by_batch],
            # The ratio means something only if the peer did the same work.
            "ok": as_dict(ours)["ok"] and as_dict(naive)["ok"] and ours.seconds < BACKLOG_LIMIT_S,
        }


# ---- output ------------------------------------------------------------------------------


def _fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def print_report(r: dict[str, Any]) -> None:
    env, f, b = r["server"], r.get("fleet"), r.get("backlog")
    print(
        f"\nFretCoach sync benchmark — PostgreSQL {env['server_version']} (max_connections {env['max_connections']},"
        f" {env['superuser_reserved_connections']} reserved), {env['cpus']} CPUs (load average"
        f" {env['load_average_1m']:.2f} at start: the machine is shared), SQLite synchronous=FULL"
    )
    cfg = r["config"]
    if f:
        v = Verification(**f["verification"])
        print(
            f"\nFleet: {f['pedals']} pedals ({f['users']} users) × {f['sessions_per_pedal']} sessions; each its own"
            f" thread, SQLite file and device role; {cfg['procs'] or 1} process{'es' * (cfg['procs'] > 1)};"
            f" attempts {cfg['attempts']}, backoff {cfg['backoff_base_s']:g}–{cfg['backoff_cap_s']:g} s"
        )
        lat = f["latency_s"]
        pp = f["per_pedal_s"]
        rest = pp["latency"] - sum(x for k, x in pp.items() if k != "latency")
        done = f["pass_done_s"]
        refused = ", ".join(f"{k} {n}" for k, n in f["refused_connects"].items()) or "none"
        rows = [
            ("sessions synced", f"{f['sessions_pushed']:,} of {f['sessions']:,} ({f['outbox_items']:,} outbox items)"),
            ("wall time", _fmt_s(f["wall_s"])),
            ("throughput", f"{f['sessions_per_s']:,.0f} sessions/s"),
            (
                "latency p50 / p95 / max",
                f"{lat['p50']:.2f} / {lat['p95']:.2f} / {lat['max']:.2f} s (start → queue empty)",
            ),
            ("pass done p50 / p95", f"{done['p50']:.2f} / {done['p95']:.2f} s (after the plan pull)"),
            (
                "retries",
                f"{f['retries']} ({f['pedals_retrying']} pedals, max {f['max_retries_one_pedal']} on one;"
                f" {f['backoff_slept_s']:.0f} s slept in backoff); failed passes {f['failed_passes']}",
            ),
            ("refused connects", refused),
            ("peak connections", f"{f['peak_connections']['bench']} ours, {f['peak_connections']['server']} on server"),
            (
                "CPU",
                f"client {f['client_cpu_s']:.1f} s, server backends {f['server_cpu_s']:.1f} s, over"
                f" {f['wall_s']:.1f} s wall on {env['cpus']} CPUs (machine {f['machine_cpu_busy']:.0%} busy)",
            ),
            (
                "per pedal pass (mean)",
                f"{pp['latency'] * 1000:.0f} ms = backoff {pp['backoff'] * 1000:.0f}"
                f" + connect {pp['connect'] * 1000:.0f} + SQLite read {pp['local_read'] * 1000:.0f}"
                f" / ack {pp['local_ack'] * 1000:.0f} / state {pp['local_state'] * 1000:.0f}"
                f" + server and CPU queue {rest * 1000:.0f} ms",
            ),
            ("verification", v.line()),
        ]
        for k, val in rows:
            print(f"  {k:26s} {val}")
        for e in f["errors"][:5]:
            print(f"  ! {e}")
    if b:
        ours, naive = b["ours"], b["naive"]
        print(f"\nBacklog: one pedal, {b['sessions']:,} queued sessions (4 weeks), default batch {ours['batch_size']}")
        print(f"  {'':26s} {'seconds':>9s} {'sessions/s':>11s}")
        print(
            f"  {'ours (Syncer.run_once)':26s} {ours['seconds']:9.2f} {ours['sessions_per_s']:11,.0f}"
            f"   limit {b['limit_s']:.0f} s: {'OK' if ours['seconds'] < b['limit_s'] else 'FAIL'}"
        )
        print(f"  {'naive per-row commit':26s} {naive['seconds']:9.2f} {naive['sessions_per_s']:11,.0f}")
        print(f"  ours vs naive per-row commit: {b['speedup_vs_naive']:.1f}×")
        print("  where the time goes:")
        for d in (ours, naive):
            parts = {k: x for k, x in d["breakdown"].items() if k != "batches"}
            text = ", ".join(f"{k.replace('_', ' ')} {x:.2f} s ({x / d['seconds']:.0%})" for k, x in parts.items())
            print(f"    {d['label']:24s} {text}")
        nb, n = naive["breakdown"], max(1, naive["sessions"])
        ack_per_batch = ours["breakdown"]["local_ack"] / max(1.0, ours["breakdown"]["batches"])
        print(
            f"    naive per row: INSERT + COMMIT {nb['server_insert_commit'] / n * 1000:.2f} ms,"
            f" local ack (one fsync'd SQLite commit) {nb['local_ack'] / n * 1000:.2f} ms;"
            f" ours per batch of {ours['batch_size']}: ack {ack_per_batch * 1000:.1f} ms"
        )
        print(f"  verification ours:  {Verification(**ours['verification']).line()}")
        print(f"  verification naive: {Verification(**naive['verification']).line()}")
        if len(b["batch_sizes"]) > 1:
            ref = ours
            vs = f"vs {ref['batch_size']}"
            print(f"  {'batch size':>12s} {'seconds':>9s} {'sessions/s':>11s} {vs:>8s}  local ack  server")
            for d in b["batch_sizes"]:
                bd = d["breakdown"]
                print(
                    f"  {d['batch_size']:12d} {d['seconds']:9.2f} {d['sessions_per_s']:11,.0f}"
                    f" {ref['seconds'] / d['seconds']:7.2f}×  {bd['local_ack']:8.2f} s {bd['server_push_pull']:6.2f} s"
                    f"  {'OK' if d['ok'] else 'FAIL'}"
                )
    print(f"\nRESULT: {'OK' if r['ok'] else 'FAIL'}" + (f" ({'; '.join(r['failures'])})" if r["failures"] else ""))


def _clean(x: Any) -> Any:
    """JSON has no NaN: report missing figures as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pedals", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=50, help="queued sessions per fleet pedal")
    ap.add_argument("--users", type=int, help="players behind the pedals (default: 3/4 of --pedals)")
    ap.add_argument("--backlog", type=int, default=10_000, help="sessions queued on the backlog pedal (0: skip)")
    ap.add_argument("--batch-sizes", default="100,500,2000", help="drain the backlog at these too ('': skip)")
    ap.add_argument("--attempts", type=int, default=8, help="connect attempts per sync pass")
    ap.add_argument("--backoff-base", type=float, default=1.0, help="first backoff (s); Syncer's default")
    ap.add_argument("--backoff-cap", type=float, default=30.0, help="longest backoff (s); Syncer's default")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--procs", type=int, default=0, help="fleet worker processes (0: threads in this process)")
    ap.add_argument("--tmp", type=Path, help="where the pedals' SQLite files go (default: the system temp dir)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)
    cfg = Config(
        pedals=args.pedals,
        sessions=args.sessions,
        users=args.users or max(1, args.pedals * 3 // 4),
        backlog=args.backlog,
        batch_sizes=[int(x) for x in args.batch_sizes.split(",") if x.strip()],
        attempts=args.attempts,
        backoff_base_s=args.backoff_base,
        backoff_cap_s=args.backoff_cap,
        seed=args.seed,
        procs=args.procs,
    )

    signal.signal(signal.SIGTERM, _interrupt)  # a kill cleans up like Ctrl-C
    stop = threading.Event()
    db = BenchDatabase(server_url())
    tmp = tempfile.TemporaryDirectory(prefix="fretcoach-sync-bench-", dir=args.tmp)
    bench: Bench | None = None
    result: dict[str, Any] = {"config": asdict(cfg), "database": db.name}
    code = 1
    try:
        db.__enter__()
        bench = Bench(cfg, db, Path(tmp.name), stop)
        result["server"] = bench.prepare_schema()
        failures: list[str] = []
        if cfg.pedals > 0:
            _note(f"fleet: building {cfg.pedals} pedals × {cfg.sessions} sessions …")
            result["fleet"] = bench.fleet()
            if not result["fleet"]["ok"]:
                failures.append("fleet: loss, duplicate or unfinished pedal")
        if cfg.backlog > 0:
            _note(f"backlog: {cfg.backlog:,} sessions on one pedal …")
            result["backlog"] = bench.backlog()
            if not result["backlog"]["ok"]:
                failures.append(f"backlog: loss, duplicate, peer incomplete or ≥ {BACKLOG_LIMIT_S:.0f} s")
        result["failures"] = failures
        result["ok"] = not failures
        code = 0 if result["ok"] else 1
        if args.json:
            print(json.dumps(_clean(result), indent=2))
        else:
            print_report(result)
    except (KeyboardInterrupt, Aborted):
        _note("interrupted: dropping the benchmark database and roles …")
        code = 130
    finally:
        stop.set()  # pedal threads leave their backoff waits
        # A second Ctrl-C must not leave a database and 200 roles behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for problem in db.drop():
                _note(f"cleanup: could not drop {problem}")
                code = code or 1
            if bench is not None:
                for proc in bench.procs:
                    if proc.is_alive():
                        proc.terminate()
                    proc.join(timeout=5)
            tmp.cleanup()
        finally:
            signal.signal(signal.SIGINT, previous)
    return code


if __name__ == "__main__":
    sys.exit(main())
