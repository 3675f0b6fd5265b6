"""The pedal's offline-LAN story with a real model: coach, recommend and chat over llama.cpp.

Each test runs the pedal as its user would (the ``fretcoach`` command in a subprocess, or the
live coach in-process) with the ``openai-compatible`` provider pointed at the logging proxy in
front of llama-cpp-python's server, and proves that its requests reached the model and were
answered. A 270M model's answers are often poor (DESIGN.md): the assertions hold for the
model's line and for the rule-based fallback alike, and the terminal summary says which one
the pedal used.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from device.analysis.metrics import Metrics
from device.analysis.scales import parse_scale
from device.coach.live import CoachContext, LiveCoach
from device.coach.prompts import LINE_LIMIT, clean_answer, fit_line
from device.config import Settings
from device.session import Recorder, SessionStore

if TYPE_CHECKING:
    from conftest import LoggingProxy

USER = "u1"
CLI_TIMEOUT_S = 300.0  # a 270M model on two cores; the pedal's own deadlines are shorter
# (scale, pitch, scale conformity, timing, notes, wrong notes): timing is the weak spot.
HISTORY = [
    ("A minor pentatonic", 88.0, 94.0, 41.0, 120, 7),
    ("A minor pentatonic", 90.0, 96.0, 45.0, 140, 6),
    ("E minor", 84.0, 81.0, 52.0, 110, 21),
    ("C major", 82.0, 78.0, 39.0, 95, 21),
]
_PLAN_KEYS = {
    "practice_id",
    "scale_name",
    "scale_type",
    "focus_area",
    "reasoning",
    "strictness",
    "sensitivity",
    "source",
    "reused",
}


def _fretcoach() -> str:
    beside = Path(sys.executable).with_name("fretcoach")
    found = str(beside) if beside.exists() else shutil.which("fretcoach")
    if found is None:
        raise RuntimeError("the fretcoach command is not installed (pip install -e .)")
    return found


FRETCOACH = _fretcoach()


def _env(proxy: LoggingProxy, data_dir: Path) -> dict[str, str]:
    """The pedal's environment: the local provider only, no keys, no tracing, a fresh data dir."""
    scrub = ("FRETCOACH_", "OPIK_", "OPENAI_", "GOOGLE_API", "DEEPSEEK_API", "MINIMAX_API")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrub) and k != "LLM_PROVIDER"}
    env.update(
        {
            "FRETCOACH_LLM_PROVIDER": "openai-compatible",
            "FRETCOACH_LLM_BASE_URL": proxy.url,
            "FRETCOACH_DATA_DIR": str(data_dir),
            "FRETCOACH_USER_ID": USER,
        }
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FRETCOACH, *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def _answered(proxy: LoggingProxy, mark: int) -> list[str]:
    """Assert the model was asked since ``mark`` and answered at least once; the answers."""
    chats = proxy.chats_since(mark)
    assert chats, "no request reached the llama server"
    statuses = [c.status for c in chats]
    assert 200 in statuses, f"the llama server never answered 200: {statuses}"
    return [c.content or "" for c in chats if c.status == 200]


def _fixed(t: datetime) -> datetime:
    return t


def _seed(data_dir: Path) -> None:
    """Four ended sessions over the last days in the pedal's own store, made by its recorder."""
    store = SessionStore.open(data_dir / "fretcoach.db")
    try:
        for n, (scale, pitch, conformity, timing, notes, wrong) in enumerate(HISTORY):
            start = datetime.now(UTC) - timedelta(days=len(HISTORY) - n, hours=2)
            ticks = iter([0.0, 420.0])  # start(), then end(): seven minutes of practice
            recorder = Recorder(
                store,
                user_id=USER,
                device_id="pedal-it",
                wall_clock=functools.partial(_fixed, start),
                monotonic=functools.partial(next, ticks),
            )
            recorder.start(parse_scale(scale), strictness=0.5, sensitivity=0.5, bpm=90.0)
            recorder.end(Metrics(pitch, conformity, timing, notes, notes - wrong, wrong, "timing_stability"))
        assert len(store.recent_sessions(USER)) == len(HISTORY)
    finally:
        store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


# -- live coaching -------------------------------------------------------------------------


def test_coach_command_prints_one_screen_line_after_asking_the_model(
    proxy: LoggingProxy, data_dir: Path, lane_report: list[str]
) -> None:
    mark = proxy.mark()
    started = time.monotonic()
    r = _run(
        _env(proxy, data_dir),
        "coach",
        "--pitch",
        "78",
        "--scale-conformity",
        "82",
        "--timing",
        "23",
        "--scale",
        "A minor pentatonic",
        "--elapsed",
        "150",
    )
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    line = lines[0]
    assert 0 < len(line) <= LINE_LIMIT
    answers = _answered(proxy, mark)
    source = "rule" if "rule-based line" in r.stderr else "llm"
    if source == "llm":  # the printed line is the model's last answer, cleaned and fitted to the OLED
        assert line == fit_line(clean_answer(answers[-1])), (line, answers)
    lane_report.append(f"coach CLI: {source} line in {took:.1f} s: {line!r} (model said {answers[-1]!r:.120})")


def test_live_coach_shows_a_line_within_a_second_and_the_model_is_asked(
    proxy: LoggingProxy, data_dir: Path, lane_report: list[str]
) -> None:
    settings = Settings.model_validate(
        {"llm_provider": "openai-compatible", "llm_base_url": proxy.url, "user_id": USER, "data_dir": data_dir}
    )
    coach = LiveCoach(settings).start()
    try:
        assert coach.wait_ready(60.0)
        assert coach.offline is None
        mark = proxy.mark()
        t0 = time.monotonic()
        coach.tick(30.0, Metrics(78.0, 82.0, 23.0, 40, 33, 7, "timing_stability"), CoachContext("A minor pentatonic"))
        tick_s = time.monotonic() - t0
        while (first := coach.current_line()) is None and time.monotonic() - t0 < 5.0:
            time.sleep(0.005)
        first_s = time.monotonic() - t0
        assert first is not None
        # The pedal's promise holds with a real model: a line within about a second.
        assert first_s < 1.5, first_s
        assert tick_s < 0.05, tick_s
        # Wait for the model's answer (or the worker's give-up) to reach the proxy's log.
        deadline = time.monotonic() + 60.0
        while not proxy.chats_since(mark) and time.monotonic() < deadline:
            time.sleep(0.05)
        answers = _answered(proxy, mark)
        time.sleep(0.2)  # the worker publishes right after the HTTP answer
        final = coach.current_line()
        assert final is not None and 0 < len(final.text) <= LINE_LIMIT
        lane_report.append(
            f"live coach: first line ({first.source}) after {first_s:.2f} s, then {final.source}: {final.text!r}"
            f" (model said {answers[-1]!r:.120})"
        )
    finally:
        coach.close()


# -- AI Mode ---------------------------------------------------------------------------------


def test_recommend_builds_a_valid_plan_with_the_model_and_reuses_it(
    proxy: LoggingProxy, data_dir: Path, lane_report: list[str]
) -> None:
    _seed(data_dir)
    env = _env(proxy, data_dir)
    mark = proxy.mark()
    started = time.monotonic()
    r = _run(env, "recommend", "--user", USER, "--json")
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan.keys() >= _PLAN_KEYS, plan
    uuid.UUID(plan["practice_id"])
    parse_scale(plan["scale_name"])  # a scale the pedal can play
    assert plan["scale_type"] in {"natural", "pentatonic"}
    assert plan["focus_area"] in {"pitch", "scale", "timing"}
    assert 0.0 <= plan["strictness"] <= 1.0 and 0.0 <= plan["sensitivity"] <= 1.0
    assert isinstance(plan["reasoning"], str) and plan["reasoning"].strip()
    assert plan["source"] in {"llm", "rules"}
    assert plan["reused"] is False
    answers = _answered(proxy, mark)
    lane_report.append(
        f"recommend: {plan['source']} plan in {took:.1f} s: {plan['scale_name']} / {plan['focus_area']}"
        f" (model said {answers[-1]!r:.160})"
    )

    # A plan younger than 24 h is reused without asking the model again.
    mark = proxy.mark()
    again = _run(env, "recommend", "--user", USER, "--json")
    assert again.returncode == 0, again.stderr
    reused = json.loads(again.stdout)
    assert reused["reused"] is True and reused["practice_id"] == plan["practice_id"]
    assert proxy.chats_since(mark) == []


# -- chat ------------------------------------------------------------------------------------


def test_chat_answers_a_question_through_the_tool_calling_agent(
    proxy: LoggingProxy, data_dir: Path, lane_report: list[str]
) -> None:
    _seed(data_dir)
    mark = proxy.mark()
    started = time.monotonic()
    r = _run(_env(proxy, data_dir), "chat", "--user", USER, "What should I practice next?")
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    answer = r.stdout.strip()
    assert answer
    answers = _answered(proxy, mark)
    chats = proxy.chats_since(mark)
    offered = set(chats[0].tools)
    assert {"get_recent_sessions", "analyze_performance", "generate_practice_plan"} <= offered, offered
    lane_report.append(
        f"chat: {len(chats)} model call(s) in {took:.1f} s, answer {answer!r:.160} (model said {answers[-1]!r:.120})"
    )
