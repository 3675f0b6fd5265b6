"""The rule-based AI Mode plan: the coaching rules applied to the player's own numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from device.coach.recommendation import PracticeRecommendation, rule_based_plan, to_plan_record
from device.session import SessionRecord


def _session(
    scale: str, pitch: float | None, conf: float | None, timing: float | None, notes: int = 50
) -> SessionRecord:
    start = datetime(2026, 11, 20, 18, tzinfo=UTC)
    return SessionRecord(
        session_id="s",
        user_id="ana",
        device_id="p",
        scale_chosen=scale,
        scale_type="pentatonic" if "pentatonic" in scale else "natural",
        pitch_accuracy=pitch,
        scale_conformity=conf,
        timing_stability=timing,
        total_notes=notes,
        correct_notes=notes,
        bad_notes=0,
        duration_seconds=600.0,
        strictness=0.5,
        sensitivity=0.6,
        start_timestamp=start,
        end_timestamp=start + timedelta(minutes=10),
    )


def test_weak_timing_moves_to_the_natural_scale_of_the_same_key() -> None:
    plan = rule_based_plan([_session("E minor pentatonic", 85, 90, 40), _session("E minor pentatonic", 80, 95, 50)])
    assert (plan.scale_name, plan.scale_type, plan.focus_area) == ("E natural minor", "natural", "timing")
    assert "45" in plan.reasoning and plan.strictness == 0.4  # a struggle: eased off
    assert plan.sensitivity == 0.6


def test_weak_pitch_moves_to_the_pentatonic_with_fewer_notes() -> None:
    plan = rule_based_plan([_session("G major", 55, 90, 80)])
    assert (plan.scale_name, plan.scale_type, plan.focus_area) == ("G major pentatonic", "pentatonic", "pitch")


def test_weak_conformity_repeats_the_scale_and_tightens_when_close() -> None:
    plan = rule_based_plan([_session("Bb major", 95, 82, 90)])
    assert (plan.scale_name, plan.focus_area, plan.strictness) == ("Bb major", "scale", 0.6)


def test_no_sessions_or_no_notes_gives_the_beginner_plan() -> None:
    for recent in ([], [_session("C major", None, None, None, notes=0)]):
        plan = rule_based_plan(recent)
        assert (plan.scale_name, plan.focus_area) == ("A minor pentatonic", "pitch")


def test_a_recommendation_must_name_a_known_scale_and_keep_its_ranges() -> None:
    ok = {"scale_type": "natural", "focus_area": "timing", "reasoning": "r", "strictness": 0.5, "sensitivity": 0.5}
    assert PracticeRecommendation(scale_name="d minor", **ok).scale_name == "D natural minor"  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PracticeRecommendation(scale_name="pitch75", **ok)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PracticeRecommendation(**{**ok, "scale_name": "C major", "strictness": 1.5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a pentatonic"):
        PracticeRecommendation(**{**ok, "scale_name": "C major", "scale_type": "pentatonic"}).check_consistent()  # type: ignore[arg-type]


def test_a_plan_record_carries_the_recommendation_and_its_source() -> None:
    rec = rule_based_plan([])
    a, b = to_plan_record(rec, "ana", "rules"), to_plan_record(rec, "ana", "rules")
    assert a.practice_id != b.practice_id
    assert a.practice_plan["scale_name"] == "A minor pentatonic" and a.practice_plan["source"] == "rules"
    assert a.practice_plan["metric"] == "pitch_accuracy"
