"""The live coach: one corrective line every interval, and the pedal never waits for it.

Every ``interval_s`` (30 s) of a running session, :meth:`LiveCoach.tick` picks the weakest
score and asks the LLM for one instruction about it, on the coach's own worker thread. The
caller (analysis or UI loop) only ever takes a lock for microseconds:

* tick time: a rule-based line for that metric is computed (pure string work) and a timer is
  armed; the request is queued for the worker;
* if the LLM has not answered within ``fallback_after_s`` (1 s), the rule line is shown;
  if it fails (HTTP error, malformed or empty answer), the rule line is shown at once;
* the LLM's line replaces whatever is shown when it arrives, as long as it belongs to the
  current interval (a stale answer is dropped); it may take until just before the next tick.

Offline (no key) the rule line is shown at tick time and :attr:`LiveCoach.offline` says why
("offline coach: no OPENAI_API_KEY set"). Heavy imports (langchain-openai, opik) and model
construction happen on the worker at :meth:`LiveCoach.start`, never on the caller's thread.

:func:`coach_line` is the one-shot form for ``fretcoach coach``: same prompt, same
fallback, synchronous, bounded by ``wait_s``.
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from device.analysis.metrics import Metrics
from device.analysis.scales import parse_scale
from device.coach.fallbacks import rule_line
from device.coach.invoke import invoke_model
from device.coach.prompts import LiveFacts, clean_answer, content_text, fit_line, live_messages
from device.coach.providers import FEATURES, CoachModel, OfflineReason, build_chat_model, resolve_provider
from device.coach.retry import RetryPolicy
from device.coach.tracing import Tracing, TracingConfig
from device.config import Settings
from device.errors import CoachError, CoachResponseError, ConfigError

__all__ = [
    "DEFAULT_FALLBACK_AFTER_S",
    "DEFAULT_INTERVAL_S",
    "ONE_SHOT_WAIT_S",
    "CoachContext",
    "CoachLine",
    "LiveCoach",
    "ask_live_line",
    "coach_line",
]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 30.0
DEFAULT_FALLBACK_AFTER_S: Final = 1.0
# The CLI's one-shot waits this long for the LLM before printing the rule line instead.
ONE_SHOT_WAIT_S: Final = 10.0

Source = Literal["llm", "rule"]
_WORDS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True, slots=True)
class CoachLine:
    """A line for the screen. ``reason`` says why a rule line is shown (offline, LLM error)."""

    text: str
    source: Source
    at_s: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CoachContext:
    """What the session knows besides the scores: the scale (and an id to group traces)."""

    scale: str
    session_id: str | None = None


def ask_live_line(
    model: CoachModel,
    facts: LiveFacts,
    *,
    deadline_s: float,
    user_id: str,
    tracing: Tracing | None = None,
    session_id: str | None = None,
    policy: RetryPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The LLM's corrective line for ``facts``, cleaned and fitted to the OLED (≤ 80 chars).

    Blocking, bounded by ``deadline_s`` including retries. Raises :class:`CoachError` if the
    provider fails or the answer is unusable (empty, only praise, no words).
    """
    what = f"live coach ({model.provider} {model.model})"
    reply = invoke_model(
        model,
        live_messages(facts),
        what=what,
        deadline_s=deadline_s,
        user_id=user_id,
        tracing=tracing,
        metadata={"session_id": session_id} if session_id else None,
        thread_id=session_id,
        policy=policy,
        clock=clock,
        sleep=sleep,
    )
    text = fit_line(clean_answer(content_text(getattr(reply, "content", ""))))
    if len(_WORDS.findall(text)) < 2:
        raise CoachResponseError(f"{what}: empty or unusable answer")
    return text


class _FallbackTimer:
    """One persistent thread that runs an action when the LLM is late.

    Re-armed at every tick and cancelled when the LLM answers; no thread is created per
    tick. The action runs without the timer's lock held, so it may take the coach's lock.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: tuple[float, Callable[[], None]] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fretcoach-coach-timer", daemon=True)
        self._thread.start()

    def arm(self, delay_s: float, action: Callable[[], None]) -> None:
        with self._cond:
            self._due = (time.monotonic() + delay_s, action)
            self._cond.notify()

    def cancel(self) -> None:
        with self._cond:
            self._due = None
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed, self._due = True, None
            self._cond.notify()
        if threading.current_thread() is not self._thread:  # close() from inside on_change
            self._thread.join(1.0)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._due is None:
                    self._cond.wait()
                    continue
                left = self._due[0] - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                action, self._due = self._due[1], None
                self._cond.release()
                try:
                    action()
                except Exception:
                    log.exception("live coach: fallback failed")
                finally:
                    self._cond.acquire()


@dataclass(frozen=True, slots=True)
class _Job:
    gen: int
    facts: LiveFacts
    rule: str
    session_id: str | None
    queued_at_s: float


class LiveCoach:
    """Corrective lines during a session; non-blocking for every caller.

    ``now_s`` given to :meth:`tick` is the session's elapsed time in seconds (the clock the
    scorer uses); the first line comes once ``interval_s`` has passed. ``clock`` (monotonic)
    stamps :attr:`CoachLine.at_s` and measures the LLM budget. ``on_change(line)`` is called
    from the coach's threads whenever the shown line changes: keep it short (e.g. mark the
    screen dirty).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        fallback_after_s: float = DEFAULT_FALLBACK_AFTER_S,
        tracing: Tracing | TracingConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CoachLine], None] | None = None,
    ) -> None:
        if interval_s <= 0 or fallback_after_s < 0:
            raise ConfigError("live coach: interval must be > 0 and fallback delay >= 0")
        self._settings = settings
        self.interval_s = interval_s
        self.fallback_after_s = fallback_after_s
        # The answer must land before the next tick starts a new question (one call in flight).
        self.budget_s = min(FEATURES["live-coach"].deadline_s, max(fallback_after_s, interval_s - 1.0))
        self._clock = clock
        self._on_change = on_change
        self._tracing_config = tracing if isinstance(tracing, TracingConfig) else None
        self._tracing: Tracing | None = tracing if isinstance(tracing, Tracing) else None
        choice = resolve_provider(settings)  # pure: offline is known without importing anything
        self._offline: OfflineReason | None = choice if isinstance(choice, OfflineReason) else None

        self._lock = threading.Lock()
        self._line: CoachLine | None = None
        self._line_gen = 0
        self._gen = 0
        self._last_fire_s: float | None = None
        self._variants: Counter[str | None] = Counter()
        self._timer: _FallbackTimer | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._model: CoachModel | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._closed = False

    # -- what the UI reads -------------------------------------------------------------

    def current_line(self) -> CoachLine | None:
        with self._lock:
            return self._line

    @property
    def offline(self) -> OfflineReason | None:
        """Why the coach uses rule lines only (``None`` when an LLM is configured)."""
        return self._offline

    @property
    def status(self) -> str:
        return OfflineReason.label if self._offline else "AI coach"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LiveCoach:
        """Start the worker and warm it up (imports, model, tracing) in the background."""
        with self._lock:
            if self._worker is None and not self._closed and self._offline is None:
                self._timer = _FallbackTimer()
                self._worker = threading.Thread(target=self._loop, name="fretcoach-live-coach", daemon=True)
                self._worker.start()
        return self

    def wait_ready(self, timeout_s: float) -> bool:
        """For tests and the CLI: wait until the worker has built its model."""
        return self._offline is not None or self._ready.wait(timeout_s)

    def reset(self) -> None:
        """Forget the shown line and the interval (a new session starts)."""
        with self._lock:
            self._gen += 1
            self._line = None
            self._last_fire_s = None
            self._variants.clear()
            self._cancel_timer()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the worker (an in-flight call is abandoned), close the model, flush tracing.

        Bounded by about ``timeout_s`` plus the tracing flush timeout.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._gen += 1
            worker, model, timer = self._worker, self._model, self._timer
            self._model = None
        if timer is not None:
            timer.close()
        self._stopping.set()  # cuts short a retry wait; an HTTP read in flight ends at its timeout
        self._jobs.put(None)
        if worker is not None and threading.current_thread() is not worker:
            worker.join(timeout_s)
        if model is not None:
            model.close()
        if self._tracing is not None and self._tracing_config is not None:
            self._tracing.close()

    def __enter__(self) -> LiveCoach:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the caller's side: never blocks ------------------------------------------------

    def tick(self, now_s: float, metrics: Metrics, context: CoachContext) -> None:
        """Call as often as you like; asks for a new line once per interval. Never blocks."""
        if not math.isfinite(now_s):
            return
        if self._offline is None:
            self.start()  # idempotent; the first tick starts the threads if start() was not called
        with self._lock:
            if self._closed:
                return
            last = self._last_fire_s if self._last_fire_s is not None else 0.0
            if now_s < last:  # the session clock restarted: a new session
                last = self._last_fire_s = now_s
            if now_s - last < self.interval_s:
                return
            self._last_fire_s = now_s
            self._gen += 1
            gen = self._gen
            facts = LiveFacts.from_metrics(metrics, context.scale, now_s)
            weakest = facts.weakest
            rule = rule_line(facts, self._variants[weakest])
            self._variants[weakest] += 1
            ask_llm = self._offline is None and weakest is not None and self._timer is not None
            if self._timer is not None:
                if ask_llm:
                    self._timer.arm(self.fallback_after_s, functools.partial(self._fallback, gen, rule, "LLM is late"))
                else:
                    self._timer.cancel()
        if not ask_llm:
            reason = str(self._offline) if self._offline else "no notes yet"
            self._publish(gen, CoachLine(rule, "rule", self._clock(), reason))
            return
        self._jobs.put(_Job(gen, facts, rule, context.session_id, self._clock()))

    # -- the worker's side -------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fallback(self, gen: int, rule: str, reason: str) -> None:
        self._publish(gen, CoachLine(rule, "rule", self._clock(), reason))

    def _publish(self, gen: int, line: CoachLine) -> None:
        with self._lock:
            if gen != self._gen or self._closed:
                return  # stale: a newer interval (or close) superseded it
            current = self._line
            if current is not None and self._line_gen == gen:
                if current.source == "llm" and line.source == "rule":
                    return  # the LLM answered first; the late timer must not cover it
                if current.source == line.source and current.text == line.text:
                    return
            self._line, self._line_gen = line, gen
            if line.source == "llm":
                self._cancel_timer()
            callback = self._on_change
        if callback is not None:
            try:
                callback(line)
            except Exception:
                log.exception("live coach: on_change callback failed")

    def _warm_up(self) -> None:
        try:
            built = build_chat_model(self._settings, "live-coach")
        except Exception as exc:  # an import or configuration surprise: run offline
            log.warning("live coach offline: %s", exc)
            built = OfflineReason(self._settings.llm_provider, f"cannot build the model: {exc}")
        if self._tracing is None and self._tracing_config is not None:
            self._tracing = Tracing.start(self._tracing_config)
        with self._lock:
            if isinstance(built, OfflineReason):
                self._offline = built
            elif self._closed:
                built.close()
            else:
                self._model = built
        self._ready.set()

    def _loop(self) -> None:
        self._warm_up()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                stale = job.gen != self._gen
                model = self._model
            if stale:
                continue
            try:
                self._run(job, model)
            except Exception:  # the worker must survive anything
                log.exception("live coach: unexpected failure")
                self._fallback(job.gen, job.rule, "unexpected error")

    def _sleep(self, seconds: float) -> None:
        """Retry waits that end early, with an error, when the coach closes."""
        if self._stopping.wait(seconds):
            raise CoachError("live coach closed")

    def _run(self, job: _Job, model: CoachModel | None) -> None:
        if model is None:
            self._fallback(job.gen, job.rule, str(self._offline or "no model"))
            return
        remaining = job.queued_at_s + self.budget_s - self._clock()
        try:
            text = ask_live_line(
                model,
                job.facts,
                deadline_s=remaining,
                user_id=self._settings.user_id,
                tracing=self._tracing,
                session_id=job.session_id,
                clock=self._clock,
                sleep=self._sleep,
            )
        except CoachError as exc:
            log.info("%s", exc)
            self._fallback(job.gen, job.rule, str(exc))
            return
        self._publish(job.gen, CoachLine(text, "llm", self._clock()))


def _score_arg(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not (math.isfinite(value) and 0.0 <= value <= 100.0):
        raise ConfigError(f"{name} must be a score from 0 to 100, got {value}")
    return float(value)


def coach_line(
    settings: Settings,
    *,
    scale: str,
    pitch: float | None = None,
    scale_conformity: float | None = None,
    timing: float | None = None,
    elapsed_s: float = 0.0,
    notes: int | None = None,
    correct: int | None = None,
    wrong: int | None = None,
    wait_s: float = ONE_SHOT_WAIT_S,
    variant: int = 0,
    tracing: Tracing | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CoachLine:
    """One corrective line now (``fretcoach coach``): the LLM's within ``wait_s``, else a rule line.

    Scores are 0–100 (omit what you do not know); ``notes`` with ``scale_conformity`` is
    enough to derive correct/wrong counts. Raises :class:`ConfigError` for out-of-range input
    and :class:`~device.errors.UnknownScaleError` for a scale that does not parse. Never
    raises for provider trouble. Without ``tracing``, traces go where Settings' Opik fields
    say (flushed before returning, bounded).
    """
    scores = {
        "pitch_accuracy": _score_arg("pitch", pitch),
        "scale_conformity": _score_arg("scale conformity", scale_conformity),
        "timing_stability": _score_arg("timing", timing),
    }
    if notes is not None and notes < 0:
        raise ConfigError(f"notes must be >= 0, got {notes}")
    conformity = scores["scale_conformity"]
    if notes is not None and correct is None and wrong is None and conformity is not None:
        correct = round(notes * conformity / 100.0)
    if notes is not None and correct is not None and wrong is None:
        wrong = max(0, notes - correct)
    if notes is not None and wrong is not None and correct is None:
        correct = max(0, notes - wrong)
    facts = LiveFacts(
        scale=parse_scale(scale).name,
        elapsed_s=max(0.0, elapsed_s),
        scores=scores,
        notes_played=notes,
        correct_notes=correct,
        wrong_notes=wrong,
    )
    rule = rule_line(facts, variant)
    if facts.weakest is None:
        return CoachLine(rule, "rule", clock(), "no scores given")
    model = build_chat_model(settings, "live-coach")
    if isinstance(model, OfflineReason):
        return CoachLine(rule, "rule", clock(), str(model))
    owned = Tracing.start(TracingConfig.from_settings(settings)) if tracing is None else None
    try:
        text = ask_live_line(
            model, facts, deadline_s=wait_s, user_id=settings.user_id, tracing=tracing or owned, clock=clock
        )
    except CoachError as exc:
        return CoachLine(rule, "rule", clock(), str(exc))
    finally:
        model.close()
        if owned is not None:
            owned.close()
    return CoachLine(text, "llm", clock())
