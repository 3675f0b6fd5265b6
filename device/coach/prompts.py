"""What the live coach tells the LLM, and how its answer is made to fit the OLED.

Pure functions, no I/O, no heavy imports: messages are plain ``{"role", "content"}`` dicts
(ChatOpenAI accepts them), so building a prompt costs microseconds on any thread.

The OLED shows at most :data:`LINE_LIMIT` characters. :func:`fit_line` trims longer text at
the last sentence end that fits, else at a word boundary with ``...`` (three ASCII dots:
the pixel fonts have no ``…`` glyph) — never mid-word, except a single word longer than the
whole line, which no boundary can save.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from device.analysis.metrics import METRIC_LABELS, Metrics
from device.session.models import SessionRecord

__all__ = [
    "ELLIPSIS",
    "LINE_LIMIT",
    "LIVE_SYSTEM_PROMPT",
    "REASONING_LIMIT",
    "RECOMMEND_SYSTEM_PROMPT",
    "LiveFacts",
    "chat_system_prompt",
    "clean_answer",
    "content_text",
    "fit_line",
    "format_elapsed",
    "live_messages",
    "recommendation_messages",
]

LINE_LIMIT: Final = 80
# The plan screen scrolls the reasoning; more than this is a lecture, not a plan.
REASONING_LIMIT: Final = 240
ELLIPSIS: Final = "..."

# What each score measures, in words a small model can act on.
_MEANING: Final[dict[str, str]] = {
    "pitch_accuracy": "how close each note is to true pitch (cents off: fretting pressure, bends, tuning)",
    "scale_conformity": "the share of notes that stay inside the chosen scale",
    "timing_stability": "how evenly the notes are spaced in time (steady pulse, no rushing or dragging)",
}

LIVE_SYSTEM_PROMPT: Final = (
    "You are FretCoach, a guitar teacher watching a student practise through a pedal with a "
    "tiny screen. Give ONE specific, corrective instruction that fixes the weakest area now. "
    "At most 2 short sentences and under 80 characters in total. No praise, no greeting, no "
    "emoji, no markdown, no quotes. Use the numbers you are given when they help."
)


def format_elapsed(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _score(value: float | None) -> int | None:
    return None if value is None or not math.isfinite(value) else round(value)


@dataclass(frozen=True, slots=True)
class LiveFacts:
    """Everything the live coach says is built from: the scores, counts, scale and time."""

    scale: str
    elapsed_s: float
    scores: Mapping[str, float | None] = field(default_factory=dict)
    notes_played: int | None = None
    correct_notes: int | None = None
    wrong_notes: int | None = None

    @classmethod
    def from_metrics(cls, metrics: Metrics, scale: str, elapsed_s: float) -> LiveFacts:
        return cls(
            scale=scale,
            elapsed_s=elapsed_s,
            scores={
                "pitch_accuracy": metrics.pitch_accuracy,
                "scale_conformity": metrics.scale_conformity,
                "timing_stability": metrics.timing_stability,
            },
            notes_played=metrics.notes_played,
            correct_notes=metrics.correct_notes,
            wrong_notes=metrics.wrong_notes,
        )

    @property
    def weakest(self) -> str | None:
        """The lowest score's key (ties: the order of :data:`METRIC_LABELS`)."""
        present = {k: v for k, v in self.scores.items() if k in METRIC_LABELS and _score(v) is not None}
        if not present:
            return None
        order = list(METRIC_LABELS)
        return min(present, key=lambda k: (present[k], order.index(k)))

    def score(self, metric: str) -> int | None:
        return _score(self.scores.get(metric))


def live_messages(facts: LiveFacts) -> list[dict[str, str]]:
    """System + user messages asking for one corrective line about the weakest metric."""
    weakest = facts.weakest
    lines = [f"Scale: {facts.scale}", f"Practising for: {format_elapsed(facts.elapsed_s)}"]
    if weakest is not None:
        lines.append(f"Weakest: {METRIC_LABELS[weakest]} {facts.score(weakest)}/100 — {_MEANING[weakest]}")
        others = [
            f"{METRIC_LABELS[k]} {facts.score(k)}/100"
            for k in METRIC_LABELS
            if k != weakest and facts.score(k) is not None
        ]
        if others:
            lines.append("Other scores: " + ", ".join(others))
    if facts.notes_played is not None:
        counts = f"Notes played: {facts.notes_played}"
        if facts.correct_notes is not None and facts.wrong_notes is not None:
            counts += f" ({facts.correct_notes} in the scale, {facts.wrong_notes} outside it)"
        lines.append(counts)
    lines.append("Your one instruction:")
    return [
        {"role": "system", "content": LIVE_SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(lines)},
    ]


_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`#>]+")
_LABEL = re.compile(r"^\s*(?:fretcoach|coach|instruction|tip)\s*:\s*", re.IGNORECASE)
_DOUBLE_QUOTES = re.compile('["“”„«»]')
_QUOTES = "'‘’"
# A sentence that is only encouragement: the brief is one instruction, no generic praise.
_PRAISE = re.compile(
    r"^(?:great|good|nice|awesome|excellent|well done|keep it up|keep going|you're doing|you are doing)"
    r"[^.!?]*[.!?]$",
    re.IGNORECASE,
)
# A sentence ends at . ! or ? (possibly inside a closing single quote) before a space.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?]['’])\s+")


def content_text(content: Any) -> str:
    """The text of a chat message's content (a string, or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict)
        )
    return ""


def clean_answer(text: str) -> str:
    """The model's answer as one plain line: reasoning blocks, markdown, labels, quotes and
    praise-only sentences removed, whitespace collapsed. May return ``""``."""
    text = _THINK.sub(" ", text)
    text = _DOUBLE_QUOTES.sub("", _MARKDOWN.sub("", text))
    text = _LABEL.sub("", " ".join(text.split()))
    sentences = [s.strip(_QUOTES) for s in _SENTENCE_END.split(text) if s]
    kept = [s for s in sentences if s and not _PRAISE.match(s)]
    return " ".join(kept).strip()


def fit_line(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` in at most ``limit`` characters, cut at a sentence end, else a word boundary.

    Whole sentences are kept as they are (no ellipsis) when they fill at least half the line;
    otherwise the text is cut after the last whole word that leaves room for ``...``.
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{kept} {sentence}" if kept else sentence
        if len(candidate) > limit:
            break
        kept = candidate
    # A lone short sentence ("Timing 23.") would hide the instruction after it: keep whole
    # sentences only when they fill at least half the line, else cut the text at a word.
    if len(kept) >= limit // 2:
        return kept
    room = limit - len(ELLIPSIS)
    cut = text[: room + 1]
    space = cut.rfind(" ")
    if space <= 0:
        # One word longer than the screen: nothing to cut at but the word itself.
        return text[:room] + ELLIPSIS
    head = cut[:space].rstrip(" ,;:-–—")
    return head + ELLIPSIS


# The seed's coaching rules, the same ones the rule-based plan follows
# (device.coach.recommendation.rule_based_plan).
COACHING_RULES: Final = (
    "- timing weakest -> a natural (7-note) scale: more notes to place on the beat.\n"
    "- pitch weakest -> a pentatonic scale: fewer notes, more care for each one's intonation.\n"
    "- scale conformity weakest -> the same scale again until it sits under the fingers.\n"
    "- strictness 0-1 is how tightly pitch and timing are judged: raise it by about 0.1 when the "
    "focus area is already above 80, lower it by about 0.1 below 50. Sensitivity 0-1 is how quiet "
    "a note may be and still count: keep the player's usual value unless notes go missing."
)

RECOMMEND_SYSTEM_PROMPT: Final = (
    "You are FretCoach, a guitar teacher choosing what a student practises next on a pedal that "
    "scores pitch accuracy, scale conformity and timing stability (0-100 each). Pick the focus area "
    "from the student's weakest average and follow these rules:\n"
    + COACHING_RULES
    + "\nscale_name must be a tonic A-G (optionally # or b) followed by one of: major, minor, "
    "major pentatonic, minor pentatonic (e.g. \"A minor pentatonic\", \"G major\"). scale_type is "
    "\"pentatonic\" for a pentatonic scale, else \"natural\". Keep the student's key unless there is a "
    "reason to change it. reasoning: one or two sentences to the student, citing their numbers. "
    "Answer only by calling the PracticeRecommendation function."
)


def _session_line(s: SessionRecord) -> str:
    scores = ", ".join(
        f"{METRIC_LABELS[k]} {_score(getattr(s, k))}" for k in METRIC_LABELS if getattr(s, k) is not None
    )
    return (
        f"{s.start_timestamp:%Y-%m-%d}: {s.scale_chosen}, {round(s.duration_seconds / 60)} min, "
        f"{s.total_notes} notes ({s.bad_notes} outside), {scores or 'no scores'}; "
        f"strictness {s.strictness:.2f}, sensitivity {s.sensitivity:.2f}"
    )


def recommendation_messages(recent: Sequence[SessionRecord]) -> list[dict[str, str]]:
    """System + user messages asking for a structured practice recommendation."""
    if recent:
        body = "The student's last sessions, newest first:\n" + "\n".join(_session_line(s) for s in recent)
    else:
        body = "The student has no sessions yet: recommend a first session for a beginner."
    return [
        {"role": "system", "content": RECOMMEND_SYSTEM_PROMPT},
        {"role": "user", "content": body + "\nWhat should they practise next?"},
    ]


def chat_system_prompt(today: str, month: str) -> str:
    """The chat agent's instructions (``today`` as YYYY-MM-DD, so 'this week' means something;
    ``month``: the last 30 days' analysis as JSON)."""
    return (
        "You are FretCoach, a friendly, precise guitar practice coach. You answer questions about the "
        "player's own practice history. Use the tools to look up facts before stating them; never "
        "invent numbers. Scores are 0-100: pitch accuracy (intonation), scale conformity (notes inside "
        "the chosen scale) and timing stability (steadiness against the beat). When asked what to "
        "practise, call generate_practice_plan. Answer in at most 5 short sentences, plain text. "
        f"Today is {today}. Coaching rules you follow:\n" + COACHING_RULES
        + f"\nThe player's last 30 days at a glance (use the tools for more): {month}"
    )
