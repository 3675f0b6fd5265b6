"""Kill-9 soak of the recorder and the syncer: nothing acknowledged is ever lost or doubled.

    python -m bench.sync_soak --cycles 1000 [--seed N] [--json OUT|-]

Each cycle starts worker processes (``tests/fault_worker.py``, forked from a server that has
imported everything once) on one SQLite file, kills them with SIGKILL at a random moment,
reopens the store as the next boot would (recovering what was left running, every other
cycle; the next recorder does it otherwise, so recovery itself gets killed too), and checks:

* every session a worker reported started is in the store, every one reported ended is
  there as ended and not marked recovered (an acknowledged commit survives a kill);
* every ended session is in PostgreSQL or still queued, with at most one outbox row;
* PostgreSQL holds nothing the store does not, and its rows equal the store's;
* recovered sessions end at or after their start, and say so (``recovered``) in both places;
* a kill never leaves a store that opens as corrupt.

Cycles rotate: the recorder killed, the syncer killed, and both running on the same file
(the pedal records while its scheduler syncs) killed at independent moments. A clean sync
runs every ``--sync-every`` cycles and at the end, after which the store and PostgreSQL
must hold exactly the same sessions and plans. Needs the PostgreSQL at
``FRETCOACH_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
creates its own database and device role and drops them. Exits 1 on any loss or duplicate.
The fault tests (tests/cloud/test_faults.py) run the same machinery for a few cycles.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import psycopg
from psycopg import sql

from cloud_sync import Syncer, SyncReport, create_device, migrate
from device.errors import SyncUnavailableError
from device.session import SessionStore
from device.session.models import from_iso

__all__ = [
    "WORKER",
    "ForkServer",
    "Ledger",
    "Soak",
    "Verdict",
    "check_invariants",
    "clean_sync",
    "reopen_and_recover",
]

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "fault_worker.py"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
KINDS = ("record", "sync", "both")


# ---- the worker processes -------------------------------------------------------------------


class ForkServer:
    """``fault_worker.py serve``: forks a worker per :meth:`spawn`, reaps it on :meth:`wait`."""

    def __init__(self, workdir: Path, python: str = sys.executable) -> None:
        self._stderr: IO[bytes] = (workdir / "fork-server.stderr").open("wb")
        self._proc = subprocess.Popen(
            [python, str(WORKER), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
        )

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(cmd) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died (see fork-server.stderr)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def spawn(self, mode: str, args: dict[str, Any], log: Path) -> int:
        return int(self._ask({"mode": mode, "args": args, "log": str(log)})["pid"])

    def wait(self, pid: int) -> int:
        """Reap ``pid`` once it exits by itself; returns its wait status."""
        return int(self._ask({"wait": pid})["status"])

    def kill(self, pid: int) -> int:
        """SIGKILL ``pid`` (a no-op if it already exited) and reap it; returns its wait status."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return self.wait(pid)

    def close(self) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Ledger:
    """What the workers acknowledged (each line is written only after its commit)."""

    started: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)
    recovered: set[str] = field(default_factory=set)
    plans: set[str] = field(default_factory=set)
    syncs: int = 0
    errors: list[str] = field(default_factory=list)

    def read(self, log: Path) -> None:
        if not log.exists():
            return
        text = log.read_text()
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # cut by the kill mid-write: not an acknowledgement
            word, _, rest = line.strip().partition(" ")
            if word == "started":
                self.started.add(rest)
            elif word == "ended":
                self.ended.add(rest)
            elif word == "recovered":
                self.recovered.add(rest)
            elif word == "plan":
                self.plans.add(rest)
            elif word == "synced":
                self.syncs += 1
            elif word == "error":
                self.errors.append(rest)


# ---- checking ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    local_sessions: int = 0
    ended: int = 0
    running: int = 0
    recovered: int = 0
    queued: int = 0
    in_postgres: int = 0
    plans: int = 0
    lost: set[str] = field(default_factory=set)  # acknowledged or recorded, and now nowhere
    doubled: set[str] = field(default_factory=set)  # queued twice, or in PostgreSQL twice

    @property
    def losses(self) -> int:
        return len(self.lost)

    @property
    def duplicates(self) -> int:
        return len(self.doubled)

    def ok(self) -> bool:
        return not self.problems


def reopen_and_recover(path: Path) -> list[str]:
    """Open the store as the next boot would and end what a crash left running.

    Returns the recovered ids. A store that a kill left unreadable is a failure, not a reset.
    """
    store = SessionStore.open(path)
    try:
        if store.moved_aside is not None:
            raise AssertionError(f"a kill left the store unreadable: moved to {store.moved_aside}")
        return [r.session_id for r in store.recover_running()]
    finally:
        store.close()


def clean_sync(path: Path, url: str, user_id: str, *, batch_size: int = 500, retry_s: float = 120.0) -> SyncReport:
    """One complete sync pass (retried while the server is unavailable, e.g. restarting)."""
    deadline = time.monotonic() + retry_s
    store = SessionStore.open(path)
    try:
        syncer = Syncer(store, url, user_id, batch_size=batch_size)
        while True:
            try:
                return syncer.run_once()
            except SyncUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        store.close()


T = TypeVar("T")


def retrying(fn: Callable[[], T], timeout_s: float = 120.0) -> T:
    """``fn()``, retried while the server is unreachable (someone may restart it mid-soak)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _server_side(admin_db_url: str, user_id: str) -> tuple[dict[str, tuple[Any, ...]], int, dict[str, str | None]]:
    """The user's sessions, their row count, and their plans' executed marks, in PostgreSQL."""
    with psycopg.connect(admin_db_url, autocommit=True, connect_timeout=5) as conn:
        pg = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT session_id::text, start_timestamp, end_timestamp, duration_seconds, recovered, total_notes"
                " FROM fretcoach.sessions WHERE user_id = %s",
                [user_id],
            )
        }
        row = conn.execute("SELECT count(*) FROM fretcoach.sessions WHERE user_id = %s", [user_id]).fetchone()
        plans = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT practice_id::text, executed_session_id::text FROM fretcoach.ai_practice_plans"
                " WHERE user_id = %s",
                [user_id],
            )
        }
    return pg, int(row[0]) if row else 0, plans


def check_invariants(path: Path, admin_db_url: str, user_id: str, ledger: Ledger, *, final: bool = False) -> Verdict:
    """The exactly-once invariants between the store, its outbox, PostgreSQL and the ledger.

    ``final``: after a clean sync, so nothing may be queued and both sides must be equal.
    """
    v = Verdict()
    p = v.problems
    store = SessionStore.open(path)
    try:
        if store.moved_aside is not None:
            p.append(f"store opened as corrupt and was moved to {store.moved_aside}")
        db = store.db
        local = {r["session_id"]: r for r in db.query("SELECT * FROM sessions")}
        outbox = list(db.query("SELECT kind, item_id, quarantined_at, last_error FROM outbox"))
        plans = {r["practice_id"]: r for r in db.query("SELECT * FROM plans")}
        check = list(db.query("PRAGMA quick_check"))
    finally:
        store.close()
    pg, pg_count, pg_plans = retrying(lambda: _server_side(admin_db_url, user_id))
    if check != [{"quick_check": "ok"}]:
        p.append(f"quick_check: {check}")
    ended = {k for k, r in local.items() if r["status"] == "ended"}
    running = {k for k, r in local.items() if r["status"] == "running"}
    queued_sessions = Counter(o["item_id"] for o in outbox if o["kind"] == "session")
    queued_plans = {o["item_id"] for o in outbox if o["kind"] == "plan"}
    v.local_sessions, v.ended, v.running = len(local), len(ended), len(running)
    v.recovered = sum(1 for k in ended if local[k]["recovered"])
    v.queued, v.in_postgres, v.plans = len(outbox), len(pg), len(plans)

    lost_started = ledger.started - set(local)
    lost_ended = {k for k in ledger.ended if k not in ended or local[k]["recovered"]}
    if lost_started:
        p.append(f"{len(lost_started)} acknowledged starts missing locally: {sorted(lost_started)[:3]}")
    if lost_ended:
        p.append(f"{len(lost_ended)} acknowledged ends missing or overwritten locally: {sorted(lost_ended)[:3]}")
    if missing_recovered := ledger.recovered - {k for k in ended if local[k]["recovered"]}:
        p.append(f"{len(missing_recovered)} reported recoveries not recovered locally")
    if len(running) > 1:
        p.append(f"{len(running)} sessions running at once (one recorder)")
    if quarantined := [o for o in outbox if o["quarantined_at"] is not None]:
        p.append(f"{len(quarantined)} outbox rows quarantined, e.g. {quarantined[0]['last_error']}")
    doubled = {k: n for k, n in queued_sessions.items() if n > 1}
    if doubled:
        p.append(f"{len(doubled)} sessions queued more than once: {sorted(doubled)[:3]}")
    if not_queued := queued_sessions.keys() - ended:
        p.append(f"{len(not_queued)} queued sessions are not ended locally")
    unaccounted = {k for k in ended if k not in pg and k not in queued_sessions}
    if unaccounted:
        p.append(f"{len(unaccounted)} ended sessions neither in PostgreSQL nor queued: {sorted(unaccounted)[:3]}")
    if foreign := pg.keys() - ended:
        p.append(f"{len(foreign)} sessions in PostgreSQL that are not ended locally: {sorted(foreign)[:3]}")
    for k in pg.keys() & ended:
        row = local[k]
        start, end, duration, recovered, total = pg[k]
        want = (from_iso(row["start_timestamp"]), from_iso(row["end_timestamp"]), row["duration_seconds"])
        if (start, end, duration) != want or recovered != bool(row["recovered"]) or total != row["total_notes"]:
            p.append(f"session {k} differs: PostgreSQL {pg[k]} vs local {want, row['recovered'], row['total_notes']}")
    for k in ended:
        row = local[k]
        if row["end_timestamp"] is None or from_iso(row["end_timestamp"]) < from_iso(row["start_timestamp"]):
            p.append(f"session {k} ends before it starts: {row['start_timestamp']} .. {row['end_timestamp']}")
    if missing_plans := ledger.plans - set(plans):
        p.append(f"{len(missing_plans)} acknowledged plans missing locally")
    for k, row in plans.items():
        if k not in pg_plans and k not in queued_plans:
            p.append(f"plan {k} neither in PostgreSQL nor queued")
        elif final and pg_plans.get(k) != row["executed_session_id"]:
            p.append(f"plan {k}: executed {pg_plans.get(k)} in PostgreSQL, {row['executed_session_id']} locally")
    v.doubled = set(doubled)
    if pg_count != len(pg):
        v.doubled.add(f"{pg_count - len(pg)} PostgreSQL rows share an id")
    v.lost = lost_started | lost_ended | unaccounted
    if final:
        if outbox:
            p.append(f"{len(outbox)} rows still queued after a clean sync")
        if running:
            p.append(f"{len(running)} sessions still running after recovery")
        if missing := ended - pg.keys():
            v.lost |= missing
            p.append(f"{len(missing)} ended sessions missing from PostgreSQL after a clean sync")
    return v


# ---- the soak ---------------------------------------------------------------------------------


@dataclass
class SoakStats:
    cycles: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    already_exited: int = 0
    clean_syncs: int = 0
    resent_already_there: int = 0
    recovered_by_harness: int = 0
    worker_errors: list[str] = field(default_factory=list)


class Soak:
    """Kill-9 cycles on one store against one device; raises nothing, collects problems."""

    def __init__(
        self,
        workdir: Path,
        admin_db_url: str,
        device_url: str,
        user_id: str,
        device_id: str,
        *,
        seed: int = 1,
        max_delay_s: float = 0.5,
        sync_batch: int = 5,
        gated: bool = False,
    ) -> None:
        self.workdir = workdir
        self.db = workdir / "fretcoach.db"
        self.admin_db_url = admin_db_url
        self.device_url = device_url
        self.user_id = user_id
        self.device_id = device_id
        self.rng = random.Random(seed)
        self.max_delay_s = max_delay_s
        self.sync_batch = sync_batch
        self.gated = gated
        self.ledger = Ledger()
        self.stats = SoakStats()
        self.problems: list[str] = []
        self.lost: set[str] = set()
        self.doubled: set[str] = set()
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        SessionStore.open(self.db).close()  # created once, before any worker opens it
        self.server = ForkServer(workdir)

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> Soak:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay(self) -> float:
        # One kill in five lands early (start-up: open, recovery, first commits).
        if self.rng.random() < 0.2:
            return self.rng.uniform(0.0, 0.03)
        return self.rng.uniform(0.03, self.max_delay_s)

    def _args(self, mode: str) -> dict[str, Any]:
        seed = self.rng.randrange(1 << 30)
        if mode == "record":
            return {"db": str(self.db), "user": self.user_id, "device": self.device_id, "seed": seed}
        return {
            "db": str(self.db),
            "url": self.device_url,
            "user": self.user_id,
            "seed": seed,
            "batch": self.sync_batch,
        }

    def cycle(self, kind: str) -> Verdict:
        """Run one kill cycle of ``kind`` (record | sync | both) and check the invariants."""
        n = self.stats.cycles
        self.stats.cycles += 1
        self.stats.kinds[kind] = self.stats.kinds.get(kind, 0) + 1
        modes = ["record", "sync"] if kind == "both" else [kind]
        t0 = time.monotonic()
        in_pg = self.pg_count() if self.gated and "sync" in modes else 0
        workers = []
        for mode in modes:
            log = self.workdir / "logs" / f"{n:05d}-{mode}.log"
            workers.append((mode, self.server.spawn(mode, self._args(mode), log), log, t0 + self._delay()))
        if not self.gated:
            workers.sort(key=lambda w: w[3])
        for mode, pid, log, at in workers:
            if self.gated:
                self._gate(mode, log, in_pg)
            else:
                time.sleep(max(0.0, at - time.monotonic()))
            status = self.server.kill(pid)
            self.stats.kills += 1
            if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                self.stats.already_exited += 1
            self.ledger.read(log)
        if self.ledger.errors:
            self.stats.worker_errors += self.ledger.errors
            self.problems += [f"cycle {n}: worker error {e}" for e in self.ledger.errors]
            self.ledger.errors.clear()
        # Every other cycle the harness recovers, else the next recorder does (and may be
        # killed while it does).
        if n % 2 == 1:
            recovered = reopen_and_recover(self.db)
            self.ledger.recovered.update(recovered)
            self.stats.recovered_by_harness += len(recovered)
        v = check_invariants(self.db, self.admin_db_url, self.user_id, self.ledger)
        self._note(v, f"cycle {n} ({kind})")
        return v

    def _gate(self, mode: str, log: Path, in_pg: int, timeout_s: float = 30.0) -> None:
        """Gated kills wait for progress, not for time, so a loaded machine changes where they
        land less: a recorder is killed after a random number (0-40) of acknowledged steps, a
        syncer once the server has committed its first batch (or a pass found nothing to do),
        each plus a few random milliseconds."""
        deadline = time.monotonic() + timeout_s
        if mode == "record":
            want = self.rng.randint(0, 40)
            while _lines(log) < want and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(self.rng.uniform(0.0, 0.01))
        else:
            sql_count = "SELECT count(*) FROM fretcoach.sessions WHERE user_id = %s"
            # (If the server goes away meanwhile, kill now.)
            with (
                contextlib.suppress(psycopg.OperationalError),
                psycopg.connect(self.admin_db_url, autocommit=True, connect_timeout=5) as conn,
            ):
                while time.monotonic() < deadline:
                    row = conn.execute(sql_count, [self.user_id]).fetchone()
                    if (row and row[0] > in_pg) or "synced" in (log.read_text() if log.exists() else ""):
                        break
                    time.sleep(0.005)
            time.sleep(self.rng.uniform(0.0, 0.05))

    def pg_count(self) -> int:
        """How many of this soak's sessions PostgreSQL holds."""
        return retrying(lambda: _server_side(self.admin_db_url, self.user_id)[1])

    def _note(self, v: Verdict, where: str) -> None:
        self.problems += [f"{where}: {m}" for m in v.problems]
        self.lost |= v.lost
        self.doubled |= v.doubled

    def sync_clean(self) -> SyncReport:
        rep = clean_sync(self.db, self.device_url, self.user_id)
        self.stats.clean_syncs += 1
        self.stats.resent_already_there += rep.sessions_already_there
        return rep

    def finish(self) -> Verdict:
        """Recover, sync cleanly, and check that store and PostgreSQL agree exactly."""
        self.ledger.recovered.update(reopen_and_recover(self.db))
        self.sync_clean()
        v = check_invariants(self.db, self.admin_db_url, self.user_id, self.ledger, final=True)
        self._note(v, "final")
        return v


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.exists() else 0


# ---- a database of its own ------------------------------------------------------------------


def _with_dbname(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


@contextlib.contextmanager
def soak_database(base_url: str) -> Iterator[tuple[str, str, str, str]]:
    """A fresh migrated database with one device: (admin db URL, device URL, user, device)."""
    name = f"fretcoach_soak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_dbname(base_url, name)
    role: str | None = None
    try:
        user, device = "soak-user", f"soak-pedal-{uuid.uuid4().hex[:6]}"
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            creds = create_device(conn, device, user)
        role = creds.role
        yield url, creds.url(url), user, device
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if role:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def run_soak(
    cycles: int, *, seed: int, sync_every: int, base_url: str, workdir: Path, progress: bool = True
) -> dict[str, Any]:
    t0 = time.monotonic()
    with (
        soak_database(base_url) as (db_url, device_url, user, device),
        Soak(workdir, db_url, device_url, user, device, seed=seed) as soak,
    ):
        last: Verdict | None = None
        for i in range(cycles):
            last = soak.cycle(KINDS[i % len(KINDS)])
            if (i + 1) % sync_every == 0:
                soak.sync_clean()
            if progress and (i + 1) % 50 == 0:
                print(
                    f"  {i + 1}/{cycles} cycles, {last.ended} sessions ended, {last.in_postgres} in PostgreSQL,"
                    f" {len(soak.problems)} problems, {time.monotonic() - t0:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        final = soak.finish()
    elapsed = time.monotonic() - t0
    return {
        "cycles": soak.stats.cycles,
        "cycle_kinds": soak.stats.kinds,
        "kills": soak.stats.kills,
        "workers_exited_before_kill": soak.stats.already_exited,
        "sessions_started_acknowledged": len(soak.ledger.started),
        "sessions_ended_acknowledged": len(soak.ledger.ended),
        "sessions_recorded": final.ended,
        "sessions_recovered": final.recovered,
        "sessions_in_postgres": final.in_postgres,
        "plans": final.plans,
        "clean_syncs": soak.stats.clean_syncs,
        "resent_already_on_server": soak.stats.resent_already_there,
        "losses": len(soak.lost),
        "duplicates": len(soak.doubled),
        "problems": soak.problems[:50],
        "problem_count": len(soak.problems),
        "seconds": round(elapsed, 1),
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sync-every", type=int, default=25, help="a clean sync every N cycles")
    p.add_argument("--json", metavar="OUT", help="write the figures as JSON to OUT ('-' for stdout)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (SQLite file, worker logs)")
    a = p.parse_args(argv)
    base = os.environ.get("FRETCOACH_TEST_DATABASE_URL", DEFAULT_URL)
    workdir = Path(tempfile.mkdtemp(prefix="fretcoach-soak-"))
    try:
        figures = run_soak(a.cycles, seed=a.seed, sync_every=max(1, a.sync_every), base_url=base, workdir=workdir)
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if a.json:
        text = json.dumps(figures, indent=2, sort_keys=True)
        if a.json == "-":
            print(text)
        else:
            Path(a.json).write_text(text + "\n")
    if a.json != "-":
        print(
            f"cycles {figures['cycles']} ({figures['cycle_kinds']}), kills {figures['kills']}\n"
            f"sessions: {figures['sessions_recorded']} recorded"
            f" ({figures['sessions_recovered']} recovered after a kill),"
            f" {figures['sessions_in_postgres']} in PostgreSQL;"
            f" {figures['resent_already_on_server']} resent and found already there\n"
            f"losses {figures['losses']}, duplicates {figures['duplicates']}, problems {figures['problem_count']},"
            f" {figures['seconds']} s"
        )
        for m in figures["problems"][:20]:
            print("  " + m)
        if a.keep:
            print(f"work directory kept: {workdir}")
    bad = figures["losses"] or figures["duplicates"] or figures["problem_count"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
