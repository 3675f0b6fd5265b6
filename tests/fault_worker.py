"""A process for the fault tests to kill with SIGKILL: records sessions or syncs, in a loop.

    python tests/fault_worker.py record  --db PATH --user U --device D [--seed N]
    python tests/fault_worker.py sync    --db PATH --url URL --user U [--batch N] [--seed N]
    python tests/fault_worker.py recover --db PATH
    python tests/fault_worker.py open    --db PATH [--at UNIX_TIME]
    python tests/fault_worker.py serve

Each mode writes one line per acknowledged step, and only after the step returned (so after
its SQLite or PostgreSQL commit): ``started ID`` / ``ended ID`` / ``recovered ID`` /
``synced PUSHED ALREADY QUEUED``. Plain modes write to stdout; ``serve`` is a fork server
that has imported everything once and forks a child per JSON command read on stdin (the
child writes to the log file named in the command), which keeps a kill-9 cycle at a few
milliseconds instead of a 1.3 s interpreter start. Serve protocol, one JSON object a line:
``{"mode": ..., "args": {...}, "log": PATH}`` answers ``{"pid": N}``; ``{"wait": PID}``
answers ``{"pid": N, "status": S}`` once that child is reaped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_sync import Syncer, Timeouts
from device.analysis import Metrics, parse_scale
from device.errors import SyncError
from device.session import PlanRecord, Recorder, SessionStore

Out = Callable[[str], None]

SCALES = ("A minor pentatonic", "E minor pentatonic", "G major", "D natural minor", "C major pentatonic")


class FakeMonotonic:
    """A monotonic clock the worker advances by hand (practice time without waiting)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def record(out: Out, db: Path, *, user: str, device: str, seed: int, checkpoints: int = 3) -> None:
    """Recover what a crash left running, then record sessions forever."""
    rng = random.Random(seed)
    store = SessionStore.open(db)
    mono = FakeMonotonic()
    rec = Recorder(store, user_id=user, device_id=device, monotonic=mono, checkpoint_interval_s=5.0)
    for r in rec.recover():
        out(f"recovered {r.session_id}")
    n = 0
    while True:
        n += 1
        practice_id = None
        if n % 3 == 0:  # some sessions play a plan: end/recovery then also queue the plan's mark
            plan = PlanRecord(str(uuid.uuid4()), user, {"scale_name": SCALES[n % len(SCALES)]}, datetime.now(UTC))
            store.save_plan(plan)
            out(f"plan {plan.practice_id}")
            practice_id = plan.practice_id
        s = rec.start(
            parse_scale(SCALES[rng.randrange(len(SCALES))]),
            strictness=rng.random(),
            sensitivity=rng.random(),
            bpm=rng.choice([None, 80.0, 120.0]),
            practice_id=practice_id,
        )
        out(f"started {s.session_id}")
        played = 0
        for _ in range(rng.randint(0, checkpoints)):
            mono.t += rng.uniform(5.0, 9.0)
            played += rng.randint(1, 20)
            rec.update(_metrics(played, rng))
        mono.t += rng.uniform(0.0, 9.0)
        record_ = rec.end(_metrics(played, rng))
        out(f"ended {record_.session_id}")


def _metrics(played: int, rng: random.Random) -> Metrics:
    correct = rng.randint(0, played)
    wrong = rng.randint(0, played - correct)
    score = None if played == 0 else round(rng.uniform(0, 100), 3)
    return Metrics(score, score, None if played < 3 else score, played, correct, wrong, None)


def sync(out: Out, db: Path, *, url: str, user: str, seed: int, batch: int = 5) -> None:
    """Sync forever in small batches; a lost link is retried on the next pass."""
    rng = random.Random(seed)
    store = SessionStore.open(db)
    syncer = Syncer(store, url, user, batch_size=batch, timeouts=Timeouts(connect_s=3, step_s=5.0))
    while True:
        try:
            rep = syncer.run_once()
        except SyncError as exc:
            out(f"unavailable {type(exc).__name__}")
            time.sleep(0.05)
            continue
        out(f"synced {rep.sessions_pushed} {rep.sessions_already_there} {rep.queued}")
        time.sleep(rng.uniform(0.0, 0.02))


def recover(out: Out, db: Path) -> None:
    store = SessionStore.open(db)
    out(f"recovering {store.status().running}")
    got = store.recover_running()
    out(f"recovered-all {len(got)}")
    store.close()


def open_at(out: Out, db: Path, at: float) -> None:
    """Open (create) the store at wall time ``at``: concurrent first opens."""
    time.sleep(max(0.0, at - time.time() - 0.02))
    while time.time() < at:  # the last moment spinning, so the openers start together
        pass
    store = SessionStore.open(db)
    out(f"opened {store.moved_aside or ''}")
    store.close()


def run(mode: str, args: dict[str, object], out: Out) -> None:
    db = Path(str(args["db"]))
    seed = int(str(args.get("seed", 0)))
    if mode == "record":
        checkpoints = int(str(args.get("checkpoints", 3)))
        record(out, db, user=str(args["user"]), device=str(args["device"]), seed=seed, checkpoints=checkpoints)
    elif mode == "sync":
        sync(out, db, url=str(args["url"]), user=str(args["user"]), seed=seed, batch=int(str(args.get("batch", 5))))
    elif mode == "recover":
        recover(out, db)
    elif mode == "open":
        open_at(out, db, float(str(args.get("at", 0.0))))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def _file_out(path: str) -> Out:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def out(line: str) -> None:
        os.write(fd, (line + "\n").encode())  # one write: a kill never splits a line

    return out


def serve() -> None:
    """The fork server (see the module docstring)."""
    for line in sys.stdin:
        cmd = json.loads(line)
        if "wait" in cmd:
            pid, status = os.waitpid(int(cmd["wait"]), 0)
            reply = {"pid": pid, "status": status}
        else:
            pid = os.fork()
            if pid == 0:  # the child: never returns into the server loop
                code = 0
                try:
                    out = _file_out(cmd["log"])
                    try:
                        run(cmd["mode"], cmd["args"], out)
                    except BaseException as exc:
                        out(f"error {type(exc).__name__}: {exc}")
                        code = 1
                finally:
                    os._exit(code)
            reply = {"pid": pid}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("mode", choices=["record", "sync", "recover", "open", "serve"])
    p.add_argument("--db")
    p.add_argument("--url")
    p.add_argument("--user", default="fault-user")
    p.add_argument("--device", default="fault-pedal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--checkpoints", type=int, default=3)
    p.add_argument("--at", type=float, default=0.0)
    a = p.parse_args(argv)
    if a.mode == "serve":
        serve()
        return

    def out(line: str) -> None:
        print(line, flush=True)

    run(a.mode, {k: v for k, v in vars(a).items() if v is not None}, out)


if __name__ == "__main__":
    main()
