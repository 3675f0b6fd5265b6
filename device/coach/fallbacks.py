"""Rule-based coach lines: what the screen shows when the LLM is slow, failing or absent.

Deterministic: the same facts and variant number give the same line, so tests and the
offline pedal behave predictably. Each metric has several variants that all quote the
player's own numbers; the live coach steps through them so a struggling player does not see
the identical sentence every 30 seconds. Every template fits the 80-character OLED line for
any score, any count up to 9999 notes and the longest scale name (checked by the tests);
:func:`~device.coach.prompts.fit_line` guards the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from device.coach.prompts import LiveFacts, fit_line

__all__ = ["RULE_VARIANTS", "no_notes_line", "rule_line"]

Template = Callable[[LiveFacts], str]


def _s(facts: LiveFacts, metric: str) -> str:
    score = facts.score(metric)
    return "?" if score is None else str(score)


def _pitch(f: LiveFacts) -> str:
    return f"Pitch {_s(f, 'pitch_accuracy')}/100"


def _timing(f: LiveFacts) -> str:
    return f"Timing {_s(f, 'timing_stability')}/100"


def _conformity(f: LiveFacts) -> str:
    return f"Scale {_s(f, 'scale_conformity')}/100"


def _wrong(f: LiveFacts) -> str:
    """'7 of 40 notes off-scale' when the counts are known, else the score."""
    if f.wrong_notes is not None and f.notes_played:
        return f"{f.wrong_notes} of {f.notes_played} notes off-scale"
    return _conformity(f)


RULE_VARIANTS: Final[dict[str, tuple[Template, ...]]] = {
    "pitch_accuracy": (
        lambda f: f"{_pitch(f)}: fret just behind the fret wire and ease your grip.",
        lambda f: f"{_pitch(f)}: relax the fretting hand; squeezing pulls notes sharp.",
        lambda f: f"{_pitch(f)}: retune, then let each note ring and listen to it.",
        lambda f: f"{_pitch(f)}: bend only to the target note, then hold it steady.",
    ),
    "scale_conformity": (
        lambda f: f"{_wrong(f)}: slow down and name each note before you play it.",
        lambda f: f"{_conformity(f)}: play {f.scale} slowly, then stay inside it.",
        lambda f: f"{_conformity(f)}: keep to one box of {f.scale} for a minute.",
        lambda f: f"{_wrong(f)}: end every phrase on the scale's root note.",
    ),
    "timing_stability": (
        lambda f: f"{_timing(f)}: tap your foot and land each note on the beat.",
        lambda f: f"{_timing(f)}: slow down 10 BPM and keep the notes evenly spaced.",
        lambda f: f"{_timing(f)}: count 1-and-2-and aloud and pick on every count.",
        lambda f: f"{_timing(f)}: play steady eighth notes before adding phrasing.",
    ),
}


def no_notes_line(facts: LiveFacts) -> str:
    return fit_line(f"No notes heard yet: play a few notes of {facts.scale}.")


def rule_line(facts: LiveFacts, variant: int = 0) -> str:
    """A corrective line for the weakest metric in ``facts`` (variant taken modulo the count)."""
    weakest = facts.weakest
    if weakest is None:
        return no_notes_line(facts)
    templates = RULE_VARIANTS[weakest]
    return fit_line(templates[variant % len(templates)](facts))
