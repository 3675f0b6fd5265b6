"""The live coach's time to a line on screen, with the provider answering in 0.3 s, 2 s and never.

`python -m bench.coach_bench [--ticks 15] [--json]` runs the real :class:`~device.coach.LiveCoach`
(its worker, its fallback timer, the real langchain-openai client over HTTP) against the
scripted loopback OpenAI-compatible server the tests use (``tests/llm_server.py``), with the
pedal's own configuration: a line every 30 s of session time, the rule line after 1 s, a 29 s
budget for the LLM. For every tick it measures, by polling :meth:`LiveCoach.current_line` the
way the UI reads it, the time from :meth:`LiveCoach.tick` to

* the first line shown for that tick (the LLM's when it answers within 1 s, else the rule line);
* the LLM's line (when it arrives within the observation window: the reply delay + 1 s,
  at least 1.5 s);

and the share of ticks whose LLM line reached the screen, the share that showed a rule line
first, and how long ``tick()`` held the caller.

The peer, measured in the same run, is a naive coach that calls the LLM synchronously on the
tick and shows whatever it gets (the rule line only once the call has failed): what the screen
would wait without our fallback. Its hung calls end at the same 29 s budget; they run side by
side in the background (blocked sockets, no CPU) so the run stays short.

Session time is compressed: ticks 30 s of session time apart follow each other as soon as
the previous tick has been observed. With a hung provider the live coach's worker stays on
its first call for the 29 s budget, so later ticks of that scenario are dropped as stale
before they reach the server (the request count says so); their rule lines come from the
fallback timer, which is the path measured. One unmeasured warm-up tick per coach opens the
HTTP connection first (on the pedal, the 30 s before the first tick do that and more).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import numpy as np

from device.analysis.metrics import Metrics
from device.coach.fallbacks import rule_line
from device.coach.live import (
    DEFAULT_FALLBACK_AFTER_S,
    DEFAULT_INTERVAL_S,
    CoachContext,
    CoachLine,
    LiveCoach,
    ask_live_line,
)
from device.coach.prompts import LiveFacts
from device.coach.providers import FEATURES, CoachModel, build_chat_model
from device.config import Settings
from device.errors import CoachError

ROOT: Final = Path(__file__).resolve().parent.parent
LLM_SERVER_PATH: Final = ROOT / "tests" / "llm_server.py"

METRICS: Final = Metrics(78.0, 82.0, 23.0, 40, 33, 7, "timing_stability")
CONTEXT: Final = CoachContext("A minor pentatonic", session_id="bench")
ANSWER: Final = "Set a metronome to 60 BPM and land every pick stroke on the click."
NEVER_S: Final = 3600.0  # "never": the loopback server holds the reply until it stops
POLL_S: Final = 0.001  # how often the bench reads current_line(), as a UI loop would (finer)
# (label, reply delay in seconds; None = the provider never answers)
SCENARIOS: Final[list[tuple[str, float | None]]] = [("0.3 s", 0.3), ("2 s", 2.0), ("never", None)]
PEER_HANG_SAMPLES: Final = 3


def _load_llm_server() -> ModuleType:
    """tests/llm_server.py, imported as the tests import it: their directory (not a package) on
    the path, last, so nothing there shadows an installed module."""
    if not LLM_SERVER_PATH.exists():
        raise SystemExit(f"cannot load {LLM_SERVER_PATH}")
    sys.path.append(str(LLM_SERVER_PATH.parent))
    return importlib.import_module(LLM_SERVER_PATH.stem)


_llm = _load_llm_server()


@contextmanager
def _server(delay_s: float | None) -> Iterator[Any]:
    """A loopback provider answering every request with :data:`ANSWER` after ``delay_s``."""
    with _llm.LLMServer() as server:
        server.always(_llm.text(ANSWER, delay_s=NEVER_S if delay_s is None else delay_s))
        yield server


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "llm_provider": "openai-compatible",
            "llm_base_url": url,
            "llm_model": "loopback-model",
            "user_id": "bench",
            "data_dir": data_dir,
        }
    )


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs), q)) if xs else None


@dataclass
class Samples:
    """One coach under one provider behaviour; times in seconds from the tick."""

    first_line: list[float] = field(default_factory=list)
    llm_line: list[float] = field(default_factory=list)
    tick_call: list[float] = field(default_factory=list)  # how long tick() held the caller
    rule_first: int = 0
    ticks: int = 0
    requests: int = 0
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        def ms(x: float | None) -> float | None:
            return None if x is None else round(x * 1000, 1)

        return {
            "ticks": self.ticks,
            "first_line_p50_ms": ms(_pct(self.first_line, 50)),
            "first_line_p95_ms": ms(_pct(self.first_line, 95)),
            "llm_line_p50_ms": ms(_pct(self.llm_line, 50)),
            "llm_line_p95_ms": ms(_pct(self.llm_line, 95)),
            "llm_share": round(len(self.llm_line) / self.ticks, 3) if self.ticks else None,
            "rule_first_share": round(self.rule_first / self.ticks, 3) if self.ticks else None,
            "tick_call_max_ms": round(max(self.tick_call) * 1000, 3) if self.tick_call else None,
            "requests": self.requests,
            "wall_s": round(self.wall_s, 1),
        }


# -- the live coach ------------------------------------------------------------------------


def _observe(coach: LiveCoach, t0: float, window_s: float) -> tuple[CoachLine | None, float | None, float | None]:
    """Poll ``current_line()`` after a tick at ``t0``: the first new line and when, and the LLM's."""
    first: CoachLine | None = None
    t_first = t_llm = None
    while (now := time.monotonic()) - t0 < window_s:
        line = coach.current_line()
        if line is not None and line.at_s >= t0:
            if first is None:
                first, t_first = line, now - t0
            if line.source == "llm":
                t_llm = now - t0
                break
        time.sleep(POLL_S)
    return first, t_first, t_llm


def run_live(delay_s: float | None, ticks: int, data_dir: Path) -> Samples:
    out = Samples()
    # Long enough to see the rule line (1 s) and an LLM line that is on its way.
    window_s = max((delay_s or 0.0) + 1.0, DEFAULT_FALLBACK_AFTER_S + 0.5)
    with _server(delay_s) as server:
        coach = LiveCoach(_settings(server.url, data_dir), interval_s=DEFAULT_INTERVAL_S, tracing=None).start()
        try:
            if not coach.wait_ready(60.0):
                raise SystemExit("live coach: the worker did not get ready in 60 s")
            session_s = DEFAULT_INTERVAL_S
            if delay_s is not None:  # warm-up: the first HTTP call opens the connection
                t0 = time.monotonic()
                coach.tick(session_s, METRICS, CONTEXT)
                _observe(coach, t0, window_s)
                session_s += DEFAULT_INTERVAL_S
            before = len(server.chat_requests)
            started = time.monotonic()
            for _ in range(ticks):
                t0 = time.monotonic()
                coach.tick(session_s, METRICS, CONTEXT)
                out.tick_call.append(time.monotonic() - t0)
                first, t_first, t_llm = _observe(coach, t0, window_s)
                out.ticks += 1
                if first is not None and t_first is not None:
                    out.first_line.append(t_first)
                    out.rule_first += first.source == "rule"
                if t_llm is not None:
                    out.llm_line.append(t_llm)
                session_s += DEFAULT_INTERVAL_S
            out.wall_s = time.monotonic() - started
            out.requests = len(server.chat_requests) - before
        finally:
            coach.close(timeout_s=0.5)
    return out


# -- the naive peer ------------------------------------------------------------------------


class NaiveCoach:
    """Calls the LLM on the caller's thread and shows its line when the call returns.

    The same prompt, client, budget and rule line as the live coach; only the waiting differs.
    """

    def __init__(self, settings: Settings) -> None:
        model = build_chat_model(settings, "live-coach")
        if not isinstance(model, CoachModel):
            raise SystemExit(f"naive coach: {model}")
        self.model = model
        self.user_id = settings.user_id
        self.budget_s = FEATURES["live-coach"].deadline_s
        self.line: CoachLine | None = None

    def tick(self, now_s: float, metrics: Metrics, context: CoachContext) -> None:
        facts = LiveFacts.from_metrics(metrics, context.scale, now_s)
        try:
            text = ask_live_line(self.model, facts, deadline_s=self.budget_s, user_id=self.user_id)
            self.line = CoachLine(text, "llm", time.monotonic())
        except CoachError as exc:
            self.line = CoachLine(rule_line(facts), "rule", time.monotonic(), str(exc))

    def close(self) -> None:
        self.model.close()


def _naive_once(coach: NaiveCoach, session_s: float) -> tuple[CoachLine | None, float]:
    t0 = time.monotonic()
    coach.tick(session_s, METRICS, CONTEXT)  # the screen waits right here
    return coach.line, time.monotonic() - t0


def _record(out: Samples, line: CoachLine | None, elapsed: float) -> None:
    out.ticks += 1
    out.tick_call.append(elapsed)
    if line is not None:
        out.first_line.append(elapsed)
        out.rule_first += line.source == "rule"
        if line.source == "llm":
            out.llm_line.append(elapsed)


def run_naive(delay_s: float, ticks: int, data_dir: Path) -> Samples:
    out = Samples()
    with _server(delay_s) as server:
        coach = NaiveCoach(_settings(server.url, data_dir))
        try:
            _naive_once(coach, DEFAULT_INTERVAL_S)  # warm-up, as for the live coach
            before = len(server.chat_requests)
            started = time.monotonic()
            for n in range(ticks):
                line, elapsed = _naive_once(coach, DEFAULT_INTERVAL_S * (n + 2))
                _record(out, line, elapsed)
            out.wall_s = time.monotonic() - started
            out.requests = len(server.chat_requests) - before
        finally:
            coach.close()
    return out


def run_naive_hang_in_background(samples: int, data_dir: Path) -> Callable[[], Samples]:
    """Start ``samples`` hung naive ticks side by side (each its own client); return a join."""
    out = Samples()
    lock = threading.Lock()
    ctx = _server(None)
    server = ctx.__enter__()
    coaches = [NaiveCoach(_settings(server.url, data_dir)) for _ in range(samples)]

    def one(coach: NaiveCoach, n: int) -> None:
        line, elapsed = _naive_once(coach, DEFAULT_INTERVAL_S * (n + 1))
        with lock:
            _record(out, line, elapsed)

    started = time.monotonic()
    threads = [
        threading.Thread(target=one, args=(c, n), name=f"naive-hang-{n}", daemon=True) for n, c in enumerate(coaches)
    ]
    for t in threads:
        t.start()

    def join() -> Samples:
        for t in threads:
            t.join()
        out.wall_s = time.monotonic() - started
        out.requests = len(server.chat_requests)
        for c in coaches:
            c.close()
        ctx.__exit__(None, None, None)
        return out

    return join


# -- report --------------------------------------------------------------------------------


def run(ticks: int) -> dict[str, Any]:
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        # The hung peer ticks take the full 29 s budget: let them wait while the rest runs.
        join_hang = run_naive_hang_in_background(min(ticks, PEER_HANG_SAMPLES), data_dir)
        for label, delay in SCENARIOS:
            results.append({"provider": label, "coach": "live", **run_live(delay, ticks, data_dir).summary()})
        for label, delay in SCENARIOS:
            if delay is not None:
                results.append({"provider": label, "coach": "naive", **run_naive(delay, ticks, data_dir).summary()})
        results.append({"provider": "never", "coach": "naive", **join_hang().summary()})
    ratios = {}
    for label, _ in SCENARIOS:
        live = next(r for r in results if r["provider"] == label and r["coach"] == "live")
        naive = next(r for r in results if r["provider"] == label and r["coach"] == "naive")
        if live["first_line_p95_ms"] and naive["first_line_p95_ms"]:
            ratios[label] = round(naive["first_line_p95_ms"] / live["first_line_p95_ms"], 1)
    return {
        "ticks": ticks,
        "interval_s": DEFAULT_INTERVAL_S,
        "fallback_after_s": DEFAULT_FALLBACK_AFTER_S,
        "llm_budget_s": FEATURES["live-coach"].deadline_s,
        "results": results,
        "first_line_p95_ratio_naive_over_live": ratios,
        "run_s": round(time.monotonic() - started, 1),
    }


def _fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and unit == "%":
        return f"{x * 100:.0f} %"
    if isinstance(x, float):
        return f"{x:.1f}{unit}" if abs(x) < 10 else f"{x:,.0f}{unit}"
    return f"{x}{unit}"


def print_table(report: dict[str, Any]) -> None:
    print(
        f"live coach: a line every {report['interval_s']:.0f} s of session time, rule line after "
        f"{report['fallback_after_s']:.0f} s, LLM budget {report['llm_budget_s']:.0f} s; "
        f"{report['ticks']} ticks per row; times from tick() in ms"
    )
    head = (
        "| provider | coach | first line p50 / p95 | LLM line p50 / p95 | LLM line shown | rule first "
        "| tick() max | requests |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in report["results"]:
        print(
            f"| {r['provider']} | {r['coach']} | {_fmt(r['first_line_p50_ms'])} / {_fmt(r['first_line_p95_ms'])} "
            f"| {_fmt(r['llm_line_p50_ms'])} / {_fmt(r['llm_line_p95_ms'])} | {_fmt(r['llm_share'], '%')} "
            f"| {_fmt(r['rule_first_share'], '%')} | {_fmt(r['tick_call_max_ms'])} | {r['requests']}/{r['ticks']} |"
        )
    ratio = ", ".join(f"{k}: {v}×" for k, v in report["first_line_p95_ratio_naive_over_live"].items())
    print(f"first line p95, naive ÷ live: {ratio}")
    print(f"run: {report['run_s']} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.coach_bench", description=__doc__.split("\n")[0])
    p.add_argument("--ticks", type=int, default=15, help="measured ticks per provider behaviour (default 15)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = p.parse_args(argv)
    if args.ticks < 1:
        p.error("--ticks must be >= 1")
    report = run(args.ticks)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
