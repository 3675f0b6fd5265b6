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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from device.analysis.metrics import METRIC_LABELS, Metrics

__all__ = [
    "ELLIPSIS",
    "LINE_LIMIT",
    "LIVE_SYSTEM_PROMPT",
    "LiveFacts",
    "clean_answer",
    "fit_line",
    "format_elapsed",
    "live_messages",
]

LINE_LIMIT: Final = 80
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
