"""The live coach: prompt, OLED fitting, rule lines, and the non-blocking LLM/fallback race,
with the real ChatOpenAI against the loopback server."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llm_server import LLMServer, empty, error, malformed, text

from device.analysis.metrics import METRIC_LABELS, Metrics
from device.coach.fallbacks import RULE_VARIANTS, rule_line
from device.coach.live import CoachContext, CoachLine, LiveCoach, coach_line
from device.coach.prompts import ELLIPSIS, LINE_LIMIT, LiveFacts, clean_answer, fit_line, live_messages
from device.config import Settings
from device.errors import ConfigError, UnknownScaleError

pytestmark = [
    pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning:opik"),
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning:httpx"),
]

METRICS = Metrics(78.0, 82.0, 23.0, 40, 33, 7, "timing_stability")
CONTEXT = CoachContext("A minor pentatonic", session_id="s-1")
FACTS = LiveFacts.from_metrics(METRICS, "A minor pentatonic", 150.0)
LONG_ANSWER = (
    "Your timing is drifting on the faster runs, so set a metronome to 60 BPM and play "
    "steady eighth notes, accenting every downbeat until the spacing feels completely even."
)
assert len(LONG_ANSWER) >= 150


def _settings(url: str | None, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "openai_api_key": "sk-test" if url else None,
        "llm_base_url": url,
        "llm_model": "gpt-loopback",
        "user_id": "player-7",
    }
    base.update(values)
    return Settings(**base)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Events:
    """Every line the coach published, with when (seconds after ``mark``)."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, CoachLine]] = []
        self.t0 = time.monotonic()

    def mark(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, line: CoachLine) -> None:
        self.lines.append((time.monotonic() - self.t0, line))

    @property
    def sources(self) -> list[str]:
        return [line.source for _, line in self.lines]


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer() as s:
        yield s


@pytest.fixture
def coach(llm: LLMServer) -> Iterator[tuple[LiveCoach, Events]]:
    events = Events()
    live = LiveCoach(_settings(llm.url), on_change=events).start()
    assert live.wait_ready(20.0)
    yield live, events
    live.close()


# -- the line on the OLED ------------------------------------------------------------------


def _words(s: str) -> list[str]:
    return s.replace(ELLIPSIS, "").split()


def test_a_150_character_answer_is_cut_at_a_sentence_boundary() -> None:
    two = "Set a metronome to 60 BPM and land every pick stroke on the click. " + LONG_ANSWER
    line = fit_line(two)
    assert line == "Set a metronome to 60 BPM and land every pick stroke on the click."
    assert len(line) <= LINE_LIMIT and not line.endswith(ELLIPSIS)


def test_a_long_single_sentence_is_cut_at_a_word_with_an_ellipsis() -> None:
    line = fit_line(LONG_ANSWER)
    assert len(line) <= LINE_LIMIT
    assert line.endswith(ELLIPSIS)
    body = line.removesuffix(ELLIPSIS)
    assert LONG_ANSWER.startswith(body)
    assert LONG_ANSWER[len(body)] in " ,"  # cut where a word ended, never inside one
    assert _words(line) == LONG_ANSWER.split()[: len(_words(line))]


def test_a_short_first_sentence_does_not_hide_the_instruction_after_it() -> None:
    line = fit_line("Timing 23. " + LONG_ANSWER)
    assert line.startswith("Timing 23. Your timing is drifting") and line.endswith(ELLIPSIS)
    assert len(line) <= LINE_LIMIT


def test_short_lines_are_untouched_and_a_giant_word_is_the_only_mid_word_cut() -> None:
    assert fit_line("  Slow   down.  ") == "Slow down."
    assert len(fit_line("x" * 200)) == LINE_LIMIT
    for n in range(60, 200, 7):
        words = " ".join(f"w{i}" for i in range(n))
        assert len(fit_line(words)) <= LINE_LIMIT


def test_answers_are_cleaned_of_reasoning_markdown_quotes_and_praise() -> None:
    raw = '<think>The user is rushing.</think> **Great job so far!** "Tap your foot on every beat."'
    assert clean_answer(raw) == "Tap your foot on every beat."
    assert clean_answer("Coach: 'Don't rush the 16ths.' Nice work!") == "Don't rush the 16ths."
    assert clean_answer("<think>never finished") == ""


def test_the_prompt_names_the_weakest_metric_scale_time_and_notes() -> None:
    system, user = live_messages(FACTS)
    assert system["role"] == "system" and "no praise" in system["content"].lower()
    content = user["content"]
    for expected in (
        "A minor pentatonic",
        "2 min 30 s",
        "Timing stability 23/100",
        "Pitch accuracy 78/100",
        "Scale conformity 82/100",
        "Notes played: 40",
        "33 in the scale",
        "7 outside",
    ):
        assert expected in content
    assert FACTS.weakest == "timing_stability"


# -- rule lines ----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", list(METRIC_LABELS))
def test_every_rule_line_fits_the_screen_whole_in_the_worst_case(metric: str) -> None:
    worst = LiveFacts(
        scale="C# major pentatonic",  # the longest name parse_scale produces
        elapsed_s=9999,
        scores={**dict.fromkeys(METRIC_LABELS, 100.0), metric: 0.0},
        notes_played=9999,
        correct_notes=0,
        wrong_notes=9999,
    )
    for variant in range(len(RULE_VARIANTS[metric])):
        template_line = RULE_VARIANTS[metric][variant](worst)
        assert len(template_line) <= LINE_LIMIT, template_line  # fits without any trimming
        assert rule_line(worst, variant) == template_line


def test_rule_lines_quote_the_numbers_and_vary_deterministically() -> None:
    lines = [rule_line(FACTS, v) for v in range(4)]
    assert len(set(lines)) == 4
    assert all("23/100" in line for line in lines)
    assert lines == [rule_line(FACTS, v) for v in range(4)]
    scale_facts = LiveFacts.from_metrics(Metrics(90.0, 40.0, 80.0, 40, 16, 24, "scale_conformity"), "E minor", 60)
    assert rule_line(scale_facts, 0).startswith("24 of 40 notes off-scale")
    assert "No notes heard yet" in rule_line(
        LiveFacts.from_metrics(Metrics(None, None, None, 0, 0, 0, None), "E minor", 30)
    )


# -- the live coach ------------------------------------------------------------------------


def test_a_fast_llm_line_is_shown_without_a_rule_line_first(coach: tuple[LiveCoach, Events], llm: LLMServer) -> None:
    live, events = coach
    llm.push(text("Tap your foot and lock every note to the click."))
    live.tick(30.0, METRICS, CONTEXT)
    assert wait_until(lambda: live.current_line() is not None)
    line = live.current_line()
    assert line is not None and line.source == "llm"
    assert line.text == "Tap your foot and lock every note to the click."
    time.sleep(1.2)  # past the fallback delay: the rule line must not cover the LLM's
    assert events.sources == ["llm"]
    assert live.status == "AI coach" and live.offline is None
    (req,) = llm.chat_requests
    assert req.body["model"] == "gpt-loopback"
    assert req.body["max_completion_tokens"] == 150
    assert "Timing stability 23/100" in req.messages[-1]["content"]


def test_a_slow_llm_gets_the_rule_line_at_one_second_then_replaces_it(
    coach: tuple[LiveCoach, Events], llm: LLMServer
) -> None:
    live, events = coach
    llm.push(text("Play steady eighths at 60 BPM.", delay_s=2.0))
    events.mark()
    started = time.perf_counter()
    live.tick(30.0, METRICS, CONTEXT)
    assert time.perf_counter() - started < 0.01  # the caller never waits
    assert wait_until(lambda: len(events.lines) == 2, timeout_s=5.0)
    (t_rule, rule), (t_llm, answer) = events.lines
    assert rule.source == "rule" and rule.text == rule_line(LiveFacts.from_metrics(METRICS, CONTEXT.scale, 30.0), 0)
    assert 0.9 <= t_rule < 1.5
    assert answer.source == "llm" and answer.text == "Play steady eighths at 60 BPM."
    assert 1.9 <= t_llm < 3.0
    assert live.current_line() == answer


@pytest.mark.parametrize("failure", ["500", "malformed", "empty"])
def test_when_the_llm_fails_the_rule_line_stays(coach: tuple[LiveCoach, Events], llm: LLMServer, failure: str) -> None:
    live, events = coach
    llm.always({"500": error(500), "malformed": malformed(), "empty": empty()}[failure])
    events.mark()
    live.tick(30.0, METRICS, CONTEXT)
    assert wait_until(lambda: live.current_line() is not None, timeout_s=3.0)
    time.sleep(1.5)
    line = live.current_line()
    assert line is not None and line.source == "rule"
    assert line.text.startswith("Timing 23/100:")
    assert events.sources == ["rule"]
    if failure != "500":  # not retried: the rule line is shown as soon as the answer is judged unusable
        assert events.lines[0][0] < 0.5
        assert len(llm.chat_requests) == 1


def test_a_long_llm_answer_is_trimmed_for_the_screen(coach: tuple[LiveCoach, Events], llm: LLMServer) -> None:
    live, _ = coach
    llm.push(text(LONG_ANSWER))
    live.tick(30.0, METRICS, CONTEXT)
    assert wait_until(lambda: (line := live.current_line()) is not None and line.source == "llm")
    line = live.current_line()
    assert line is not None
    assert len(line.text) <= LINE_LIMIT
    assert line.text == fit_line(LONG_ANSWER)


def test_one_question_per_interval_however_often_tick_is_called(
    coach: tuple[LiveCoach, Events], llm: LLMServer
) -> None:
    live, _ = coach
    llm.always(text("Keep the pulse even."))
    for tenth in range(0, 400):  # 0 … 39.9 s of session time, called every 100 ms
        live.tick(tenth / 10, METRICS, CONTEXT)
    assert wait_until(lambda: live.current_line() is not None)
    time.sleep(0.2)
    assert len(llm.chat_requests) == 1  # only at 30 s; the next is due at 60 s


def test_a_stale_answer_never_covers_a_newer_interval(coach: tuple[LiveCoach, Events], llm: LLMServer) -> None:
    live, events = coach
    llm.push(text("Old advice.", delay_s=0.6), text("New advice."))
    live.tick(30.0, METRICS, CONTEXT)
    time.sleep(0.1)
    live.tick(60.0, METRICS, CONTEXT)
    assert wait_until(lambda: (line := live.current_line()) is not None and line.text == "New advice.")
    assert "Old advice." not in [line.text for _, line in events.lines]


def test_rule_lines_rotate_between_intervals_when_the_llm_is_down(llm: LLMServer) -> None:
    llm.always(error(400))
    with LiveCoach(_settings(llm.url)) as live:
        seen = []
        for n in range(1, 4):
            live.tick(30.0 * n, METRICS, CONTEXT)
            assert wait_until(lambda n=n: len(llm.chat_requests) == n and live.current_line() is not None)
            assert wait_until(lambda: (line := live.current_line()) is not None and line.text not in seen)
            line = live.current_line()
            assert line is not None
            seen.append(line.text)
        assert len(set(seen)) == 3


def _workers() -> int:
    return sum(t.name == "fretcoach-live-coach" for t in threading.enumerate())


def test_offline_coach_shows_rule_lines_at_once_without_any_request(llm: LLMServer) -> None:
    events = Events()
    workers = _workers()
    live = LiveCoach(_settings(None), on_change=events)
    try:
        assert live.status == "offline coach"
        assert live.offline is not None and "OPENAI_API_KEY" in str(live.offline)
        live.tick(30.0, METRICS, CONTEXT)
        line = live.current_line()
        assert line is not None and line.source == "rule" and line.text.startswith("Timing 23/100")
        assert line.reason is not None and "offline coach" in line.reason
        assert events.sources == ["rule"]
        assert _workers() == workers  # no thread, no imports: nothing to ask
        live.reset()  # a new session: nothing shown until its first interval has passed
        assert live.current_line() is None
        live.tick(10.0, METRICS, CONTEXT)
        assert live.current_line() is None
        live.tick(30.0, METRICS, CONTEXT)
        assert live.current_line() is not None
    finally:
        live.close()
    assert llm.requests == []


def test_a_failing_on_change_callback_does_not_stop_the_coach(llm: LLMServer) -> None:
    def explode(line: CoachLine) -> None:
        raise RuntimeError("ui gone")

    llm.always(text("Breathe and slow down."))
    with LiveCoach(_settings(llm.url), on_change=explode) as live:
        live.tick(30.0, METRICS, CONTEXT)
        assert wait_until(lambda: live.current_line() is not None)
        live.tick(60.0, METRICS, CONTEXT)
        assert wait_until(lambda: len(llm.chat_requests) == 2)


def test_close_is_bounded_while_a_call_is_in_flight(llm: LLMServer) -> None:
    llm.always(text("late", delay_s=10))
    live = LiveCoach(_settings(llm.url)).start()
    assert live.wait_ready(20.0)
    live.tick(30.0, METRICS, CONTEXT)
    assert wait_until(lambda: len(llm.chat_requests) == 1)
    started = time.monotonic()
    live.close(timeout_s=0.5)
    assert time.monotonic() - started < 1.0
    live.tick(60.0, METRICS, CONTEXT)  # after close: ignored, no error


# -- the one-shot CLI line -----------------------------------------------------------------


def test_coach_line_asks_the_llm_once(llm: LLMServer) -> None:
    llm.push(text("Count 1-and-2-and aloud and pick on every count."))
    line = coach_line(
        _settings(llm.url), pitch=78, scale_conformity=82, timing=23, scale="a minor pent", elapsed_s=150, notes=40
    )
    assert line.source == "llm" and line.text == "Count 1-and-2-and aloud and pick on every count."
    content = llm.chat_requests[0].messages[-1]["content"]
    assert "A minor pentatonic" in content and "2 min 30 s" in content
    assert "33 in the scale, 7 outside it" in content  # derived from 40 notes at 82 %


def test_coach_line_falls_back_when_offline_or_failing(llm: LLMServer) -> None:
    offline = coach_line(_settings(None), pitch=78, scale_conformity=82, timing=23, scale="A minor pentatonic")
    assert offline.source == "rule" and offline.text.startswith("Timing 23/100")
    assert offline.reason == "offline coach: no OPENAI_API_KEY set"
    llm.always(error(503, retry_after="0"))
    started = time.monotonic()
    failed = coach_line(
        _settings(llm.url), pitch=78, scale_conformity=82, timing=23, scale="A minor pentatonic", wait_s=1.0
    )
    assert time.monotonic() - started < 1.5
    assert failed.source == "rule" and failed.reason is not None and "HTTP 503" in failed.reason
    assert re.fullmatch(r".{1,80}", failed.text)


def test_coach_line_rejects_bad_input() -> None:
    with pytest.raises(UnknownScaleError):
        coach_line(_settings(None), timing=23, scale="H dorian")
    with pytest.raises(ConfigError, match="timing"):
        coach_line(_settings(None), timing=123, scale="A minor")
