"""AI Mode's practice plan: the structured recommendation, and the rule-based plan built from
the player's own last sessions when no LLM answers (offline, failed, or invalid).

The coaching rules (the same ones the LLM is given): timing weakest → a natural (7-note) scale,
more notes to place; pitch weakest → a pentatonic scale, fewer notes, more care per note;
scale conformity weakest → the same scale again until it sits under the fingers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from device.analysis.scales import ScaleKind, parse_scale
from device.session.models import PlanRecord, SessionRecord

__all__ = ["PracticeRecommendation", "recommendation_of", "rule_based_plan", "to_plan_record"]

FocusArea = Literal["pitch", "scale", "timing"]
_METRIC_OF_FOCUS = {"pitch": "pitch_accuracy", "scale": "scale_conformity", "timing": "timing_stability"}
_BEGINNER_SCALE = "A minor pentatonic"


class PracticeRecommendation(BaseModel):
    """What to practise next; ``scale_name`` must name a scale the pedal knows."""

    scale_name: str = Field(description='e.g. "A minor pentatonic", "G major", "E minor"')
    scale_type: Literal["natural", "pentatonic"]
    focus_area: FocusArea
    reasoning: str = Field(description="one or two sentences, addressed to the player")
    strictness: float = Field(ge=0.0, le=1.0)
    sensitivity: float = Field(ge=0.0, le=1.0)

    @field_validator("scale_name")
    @classmethod
    def _known_scale(cls, v: str) -> str:
        return parse_scale(v).name  # raises (a ValueError) for an unknown scale

    def check_consistent(self) -> PracticeRecommendation:
        """The scale type must match the scale; returns self (raises ValueError if not)."""
        if parse_scale(self.scale_name).scale_type != self.scale_type:
            raise ValueError(f"{self.scale_name} is not a {self.scale_type} scale")
        return self


def recommendation_of(plan: PlanRecord) -> PracticeRecommendation | None:
    """The recommendation a stored plan carries, or ``None`` if it is not a usable one."""
    try:
        body = {k: plan.practice_plan[k] for k in PracticeRecommendation.model_fields}
        return PracticeRecommendation.model_validate(body).check_consistent()
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class _Averages:
    pitch: float | None
    scale: float | None
    timing: float | None
    strictness: float
    sensitivity: float


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def _averages(sessions: Sequence[SessionRecord]) -> _Averages:
    return _Averages(
        pitch=_mean([s.pitch_accuracy for s in sessions]),
        scale=_mean([s.scale_conformity for s in sessions]),
        timing=_mean([s.timing_stability for s in sessions]),
        strictness=sum(s.strictness for s in sessions) / len(sessions),
        sensitivity=sum(s.sensitivity for s in sessions) / len(sessions),
    )


def rule_based_plan(recent: Sequence[SessionRecord]) -> PracticeRecommendation:
    """A deterministic plan from the last sessions (newest first), following the rules above."""
    played = [s for s in recent if s.total_notes > 0]
    if not played:
        return PracticeRecommendation(
            scale_name=_BEGINNER_SCALE,
            scale_type="pentatonic",
            focus_area="pitch",
            reasoning="No sessions yet: start with the minor pentatonic, five notes, and make each one ring in tune.",
            strictness=0.4,
            sensitivity=0.5,
        )
    avg = _averages(played)
    candidates: tuple[tuple[FocusArea, float | None], ...] = (
        ("pitch", avg.pitch),
        ("scale", avg.scale),
        ("timing", avg.timing),
    )
    scores: dict[FocusArea, float] = {k: v for k, v in candidates if v is not None}
    focus: FocusArea = min(scores, key=lambda k: scores[k]) if scores else "pitch"
    weakest = scores.get(focus)
    last = parse_scale(played[0].scale_chosen)
    if focus == "timing":
        kind = ScaleKind.NATURAL_MINOR if "minor" in last.kind.value else ScaleKind.MAJOR
        why = "more notes to place on the beat: play evenly, with the click if you have one."
    elif focus == "pitch":
        kind = ScaleKind.MINOR_PENTATONIC if "minor" in last.kind.value else ScaleKind.MAJOR_PENTATONIC
        why = "fewer notes, so slow down and let each one ring in tune before the next."
    else:
        kind = last.kind
        why = "the same scale again until every note you play is inside it."
    scale = parse_scale(f"{last.tonic} {kind.value}")
    # Tighten as the player gets good at the focus; ease off when it is a struggle.
    strictness = avg.strictness
    if weakest is not None:
        strictness += 0.1 if weakest >= 80 else -0.1 if weakest < 50 else 0.0
    shown = f"{weakest:.0f}" if weakest is not None else "--"
    return PracticeRecommendation(
        scale_name=scale.name,
        scale_type="pentatonic" if "pentatonic" in scale.kind.value else "natural",
        focus_area=focus,
        reasoning=f"Your {focus} averaged {shown} over the last {len(played)} sessions: {scale.name}, {why}",
        strictness=round(min(1.0, max(0.0, strictness)), 2),
        sensitivity=round(avg.sensitivity, 2),
    )


def to_plan_record(
    rec: PracticeRecommendation,
    user_id: str,
    source: str,
    now: datetime | None = None,
    *,
    practice_id: str | None = None,
    fallback_reason: str | None = None,
) -> PlanRecord:
    """A new plan (a fresh UUID unless given) carrying the recommendation; ``source`` is "llm" or
    "rules", ``fallback_reason`` why the rules made it."""
    body = rec.model_dump()
    body["source"] = source
    if fallback_reason is not None:
        body["fallback_reason"] = fallback_reason
    body["metric"] = _METRIC_OF_FOCUS[rec.focus_area]
    return PlanRecord(
        practice_id=practice_id or str(uuid.uuid4()),
        user_id=user_id,
        practice_plan=body,
        generated_at=now or datetime.now(UTC),
    )
