"""`fretcoach` — thin command line: parse, load settings once, call the packages, print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from device.errors import FretCoachError

__all__ = ["main"]


def _number(lo: float, hi: float, not_a_number: str, out_of_range: str) -> Callable[[str], float]:
    """An argparse type: a number from ``lo`` to ``hi``; the messages get the text (``{}``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(not_a_number.format(repr(text))) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(out_of_range.format(text))
        return value

    return parse


_unit_interval = _number(0.0, 1.0, "expected a number from 0 to 1, got {}", "expected a number from 0 to 1, got {}")
_bpm = _number(20.0, 400.0, "expected beats per minute, got {}", "BPM must be between 20 and 400, got {}")
_score = _number(0.0, 100.0, "expected a score from 0 to 100, got {}", "expected a score from 0 to 100, got {}")
_speed = _number(0.25, 50.0, "expected a speed factor like 1 or 4, got {}", "speed must be between 0.25 and 50, got {}")


def _channel(text: str) -> int | str:
    if text in ("auto", "mix"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected auto, mix or a channel number from 1, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fretcoach", description="FretCoach Pedal: a guitar practice coach.")
    p.add_argument("--config", type=Path, metavar="FILE", help="read settings (KEY=VALUE lines) from FILE")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("analyze", help="score guitar recordings (WAV or FLAC)")
    a.add_argument("files", nargs="+", type=Path, metavar="FILE")
    a.add_argument("--scale", required=True, help='e.g. "A minor pentatonic", "Bb major", "f# minor"')
    a.add_argument("--bpm", type=_bpm, help="score timing against this tempo's beat grid")
    a.add_argument("--strictness", type=_unit_interval, help="0 lenient … 1 strict (default from config: 0.5)")
    a.add_argument("--sensitivity", type=_unit_interval, help="0 only firm notes … 1 every quiet note (default 0.5)")
    a.add_argument("--channel", type=_channel, default=None, help="auto (default), mix, or a channel number")
    a.add_argument("--json", action="store_true", help="one JSON object per file per line")

    dm = sub.add_parser("demo", help="a full AI-Mode session on the bundled take, the OLED shown in the terminal")
    dm.add_argument("--gif", type=Path, metavar="PATH", help="record the OLED to an animated GIF instead")
    dm.add_argument("--speed", type=_speed, default=1.0, help="play faster than real time (default 1)")
    dm.add_argument("--no-display", action="store_true", help="do not draw the OLED (just print the summary)")

    co = sub.add_parser("coach", help="one live-coach line for the given scores (LLM, or the rule line offline)")
    co.add_argument("--pitch", type=_score, help="pitch accuracy 0–100")
    co.add_argument("--scale-conformity", type=_score, help="scale conformity 0–100")
    co.add_argument("--timing", type=_score, help="timing stability 0–100")
    co.add_argument("--scale", required=True, help='e.g. "A minor pentatonic"')
    co.add_argument("--elapsed", type=float, default=0.0, help="seconds into the session")
    co.add_argument("--notes", type=int, help="notes played so far")
    co.add_argument("--correct", type=int, help="notes inside the scale")
    co.add_argument("--wrong", type=int, help="notes outside the scale")

    rc = sub.add_parser("recommend", help="AI Mode: what to practise next (reuses a plan made in the last 24 h)")
    rc.add_argument("--user", help="the player (default: FRETCOACH_USER_ID)")
    rc.add_argument("--new", action="store_true", help="make a new plan even if one is waiting")
    rc.add_argument("--json", action="store_true", help="print the plan as one JSON object")

    ch = sub.add_parser("chat", help="ask the coach about your practice (interactive without a question)")
    ch.add_argument("--user", help="the player (default: FRETCOACH_USER_ID)")
    ch.add_argument(
        "--cloud", action="store_true", help="read the history from FRETCOACH_DATABASE_URL, not this pedal's store"
    )
    ch.add_argument("question", nargs="*", help='e.g. "What should I practice next?"')

    sub.add_parser("run", help="the pedal service: USB audio, OLED, footswitch (config from env/--config)")

    s = sub.add_parser("sync", help="send queued sessions to the cloud and fetch practice plans (one pass)")
    s.add_argument("--status", action="store_true", help="only show what is queued; do not connect")
    s.add_argument("--retry-rejected", action="store_true", help="queue rows the server rejected again first")

    dr = sub.add_parser(
        "doctor", help="check audio, OLED, footswitches, store, clock and services; exit 1 if a required one fails"
    )
    dr.add_argument("--json", action="store_true", help="print every check as one JSON object")

    d = sub.add_parser("db", help="manage the cloud PostgreSQL database (admin)")
    d.add_argument("--url", help="admin database URL (default: FRETCOACH_DATABASE_URL)")
    dsub = d.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dsub.add_parser("migrate", help="create or upgrade the fretcoach schema")
    dsub.add_parser("status", help="show the schema version")
    cd = dsub.add_parser("create-device", help="create a device role bound to a user; prints its URL")
    cd.add_argument("--device-id", required=True)
    cd.add_argument("--user-id", required=True)
    cd.add_argument("--password", help="default: a random one")
    dd = dsub.add_parser("drop-device", help="remove a device role (its sessions stay)")
    dd.add_argument("--device-id", required=True)
    return p


def _analyze(args: argparse.Namespace) -> int:
    from device.analysis import TrackerSettings, parse_scale, score_notes, track_notes
    from device.audio import read_audio
    from device.config import load_settings

    settings = load_settings(args.config)
    scale = parse_scale(args.scale)
    strictness = settings.strictness if args.strictness is None else args.strictness
    sensitivity = settings.sensitivity if args.sensitivity is None else args.sensitivity
    channel = args.channel if args.channel is not None else settings.audio_channel
    tracker_settings = TrackerSettings(a4_hz=settings.a4_hz, sensitivity=sensitivity)
    failed = 0
    for path in args.files:
        try:
            clip = read_audio(path, channel)
            notes = track_notes(clip.samples, clip.sample_rate, tracker_settings, scale)
        except FretCoachError as exc:
            _error(str(exc))
            failed += 1
            continue
        metrics = score_notes(notes, strictness=strictness, bpm=args.bpm)
        result: dict[str, Any] = {
            "file": str(path),
            "duration_s": round(clip.duration_s, 3),
            "sample_rate": clip.sample_rate,
            "scale": scale.name,
            "bpm": args.bpm,
            "strictness": strictness,
            "sensitivity": sensitivity,
            "notes": [n.to_dict() for n in notes],
            "metrics": metrics.to_dict(),
        }
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(_table(result), flush=True)
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from device.config import load_settings
    from device.runtime import build_demo

    settings = load_settings(args.config)
    display = "dummy" if args.no_display else "terminal"
    demo = build_demo(settings, speed=args.speed, display=display, gif=args.gif)
    clock = demo.parts.clock
    end = clock() + demo.length_s
    try:
        demo.app.run(until=lambda: clock() >= end)
    finally:
        demo.parts.display.close()
        demo.parts.store.close()
    if not demo.app.s.sessions:
        _error("the demo session was not recorded")
        return 1
    r = demo.app.s.sessions[-1]

    def score(v: float | None) -> str:
        return "--" if v is None else f"{v:.1f}"

    where = "queued for the cloud" if settings.database_url else "sync off"
    print(
        f"session saved: {r.scale_chosen}, {r.duration_seconds:.0f} s, {r.total_notes} notes "
        f"({r.correct_notes} in the scale, {r.bad_notes} outside)\n"
        f"pitch accuracy {score(r.pitch_accuracy)}, scale conformity {score(r.scale_conformity)}, "
        f"timing stability {score(r.timing_stability)}\n"
        f"stored in {settings.store_path} ({where})"
        + (f"\nOLED recording: {args.gif}" if args.gif else ""),
        flush=True,
    )
    return 0


def _coach(args: argparse.Namespace) -> int:
    from device.analysis import parse_scale
    from device.coach import Tracing, TracingConfig, coach_line
    from device.config import load_settings

    settings = load_settings(args.config)
    scale = parse_scale(args.scale).name
    tracing = Tracing.start(TracingConfig.from_settings(settings))
    try:
        line = coach_line(
            settings,
            scale=scale,
            pitch=args.pitch,
            scale_conformity=args.scale_conformity,
            timing=args.timing,
            elapsed_s=args.elapsed,
            notes=args.notes,
            correct=args.correct,
            wrong=args.wrong,
            tracing=tracing,
        )
    finally:
        if tracing is not None:
            tracing.close()
    print(line.text, flush=True)
    if line.source == "rule" and line.reason:
        print(f"fretcoach: {line.reason} (rule-based line)", file=sys.stderr, flush=True)
    return 0


def _open_store(settings: Any) -> Any:
    from device.session import SessionStore

    store = SessionStore.open(settings.store_path)
    if store.moved_aside is not None:
        _error(f"the session store was damaged; moved it to {store.moved_aside} and started a fresh one")
    return store


def _user(args: argparse.Namespace, settings: Any) -> str:
    from device.errors import ConfigError

    user = (args.user if args.user is not None else settings.user_id).strip()
    if not user:
        raise ConfigError("--user must not be empty")
    return str(user)


def _recommend(args: argparse.Namespace) -> int:
    from device.coach.recommend import Recommender
    from device.config import load_settings

    settings = load_settings(args.config)
    user = _user(args, settings)
    store = _open_store(settings)
    recommender = Recommender.from_settings(store, settings)
    try:
        plan = recommender(user, new=args.new)
    finally:
        recommender.close()
        store.close()
    if args.json:
        print(json.dumps(plan.as_dict()), flush=True)
    else:
        r = plan.recommendation
        made = "reused" if plan.reused else "new"
        by = "LLM" if plan.source == "llm" else "rule-based"
        print(
            f"{r.scale_name} · focus: {r.focus_area} · strictness {r.strictness:.2f} · "
            f"sensitivity {r.sensitivity:.2f}\n{r.reasoning}\n({made} {by} plan {plan.record.practice_id})",
            flush=True,
        )
    if plan.reason:
        print(f"fretcoach: {plan.reason} (rule-based plan)", file=sys.stderr, flush=True)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from device.coach.chat import open_chat
    from device.coach.history import LocalHistory
    from device.config import load_settings
    from device.errors import ConfigError

    settings = load_settings(args.config)
    user = _user(args, settings)
    store = None
    if args.cloud:
        from cloud_sync.history import PostgresHistory

        if not settings.database_url:
            raise ConfigError("--cloud needs FRETCOACH_DATABASE_URL")
        history: Any = PostgresHistory(settings.database_url)
    else:
        store = _open_store(settings)
        history = LocalHistory(store)
    chat, tracing = open_chat(settings, history, user)
    try:
        question = " ".join(args.question).strip()
        if question:
            _say(chat.ask(question))
            return 0
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                print("you> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line or line.strip().lower() in {"quit", "exit"}:
                return 0
            if line.strip():
                _say(chat.ask(line))
    finally:
        if tracing is not None:
            tracing.close()
        if store is not None:
            store.close()


def _say(reply: Any) -> None:
    print(reply.text, flush=True)
    if reply.reason:
        print(f"fretcoach: {reply.reason} (answered from the rules)", file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> int:
    from device.config import load_settings
    from device.runtime import build_service

    app = build_service(load_settings(args.config))
    app.run()
    return 0


def _sync(args: argparse.Namespace) -> int:
    from cloud_sync.service import make_syncer
    from device.config import load_settings

    settings = load_settings(args.config)
    store = _open_store(settings)
    try:
        if args.retry_rejected:
            print(f"queued again: {store.requeue_quarantined()} rejected rows", flush=True)
        status = store.status()
        if args.status or settings.database_url is None:
            last = status.last_sync_ok_at.isoformat(timespec="seconds") if status.last_sync_ok_at else "never"
            print(
                f"{status.queued} queued, {status.quarantined} rejected by the server, "
                f"{status.sessions} sessions recorded; last sync: {last}",
                flush=True,
            )
            if status.last_sync_error:
                print(f"last error: {status.last_sync_error}", flush=True)
            if settings.database_url is None and not args.status:
                _error("no cloud database configured (set FRETCOACH_DATABASE_URL); everything stays queued")
                return 1
            return 0
        syncer = make_syncer(settings, store, attempts=3)
        assert syncer is not None
        report = syncer.run_once()
        print(report.summary(), flush=True)
        for note in report.notes:
            print(note, flush=True)
        return 0
    finally:
        store.close()


def _db(args: argparse.Namespace) -> int:
    import psycopg

    from device.config import load_settings
    from device.errors import ConfigError, SyncError

    url = args.url or load_settings(args.config).database_url
    if not url:
        raise ConfigError("no database URL: pass --url or set FRETCOACH_DATABASE_URL")
    try:
        return _db_action(args, url)
    except psycopg.Error as exc:
        raise SyncError(f"the database refused: {str(exc).strip().splitlines()[0]}") from exc


def _db_action(args: argparse.Namespace, url: str) -> int:
    from cloud_sync import MIGRATIONS, connect, create_device, drop_device, migrate, schema_version

    with connect(url, application_name="fretcoach-admin") as conn:
        if args.db_command == "migrate":
            applied = migrate(conn)
            names = ", ".join(f"{m.version} {m.name}" for m in applied) or "none (already up to date)"
            print(f"applied: {names}; schema version {schema_version(conn)}", flush=True)
        elif args.db_command == "status":
            version = schema_version(conn)
            latest = MIGRATIONS[-1].version
            state = "up to date" if version == latest else f"behind (latest {latest}): run `fretcoach db migrate`"
            print(f"schema version {version}, {state}", flush=True)
            return 0 if version == latest else 1
        elif args.db_command == "create-device":
            creds = create_device(conn, args.device_id, args.user_id, args.password)
            print(f"device {creds.device_id} (role {creds.role}) bound to user {creds.user_id}", flush=True)
            print(f"FRETCOACH_DATABASE_URL={creds.url(url)}", flush=True)
        elif args.db_command == "drop-device":
            if not drop_device(conn, args.device_id):
                _error(f"no device {args.device_id}")
                return 1
            print(f"dropped device {args.device_id}", flush=True)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from device.config import load_settings
    from device.doctor import Check, report, run_checks, summary

    settings = load_settings(args.config)

    def show(check: Check) -> None:
        print(check.line(), flush=True)

    checks = run_checks(settings, on_check=None if args.json else show)
    if args.json:
        print(json.dumps(report(checks)), flush=True)
    else:
        print(summary(checks), flush=True)
    return 0 if report(checks)["ok"] else 1


def _fmt(score: float | None) -> str:
    return "  –" if score is None else f"{score:5.1f}"


def _table(r: dict[str, Any]) -> str:
    m = r["metrics"]
    lines = [
        f"{r['file']}  ({r['duration_s']:.1f} s, {r['sample_rate']} Hz)  scale: {r['scale']}"
        + (f"  bpm: {r['bpm']:g}" if r["bpm"] else ""),
        "",
        "   time  note   cents  in scale",
    ]
    for n in r["notes"]:
        lines.append(
            f"{n['onset_s']:7.2f}  {n['name']:<4} {n['cents']:+6.1f}  {'yes' if n['in_scale'] else 'NO'}"
        )
    weakest = m["weakest"].replace("_", " ") if m["weakest"] else "–"
    lines += [
        "",
        f"pitch accuracy   {_fmt(m['pitch_accuracy'])}",
        f"scale conformity {_fmt(m['scale_conformity'])}",
        f"timing stability {_fmt(m['timing_stability'])}",
        f"notes {m['notes_played']}, correct {m['correct_notes']}, wrong {m['wrong_notes']}; weakest: {weakest}",
    ]
    return "\n".join(lines)


def _error(message: str) -> None:
    print(f"fretcoach: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "sync":
            return _sync(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "coach":
            return _coach(args)
        if args.command == "recommend":
            return _recommend(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "run":
            return _run(args)
        if args.command == "db":
            return _db(args)
        if args.command == "doctor":
            return _doctor(args)
    except FretCoachError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
