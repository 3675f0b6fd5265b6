"""The records the pedal keeps and syncs: one ended session, one practice plan.

Field names are the cloud's (``fretcoach.sessions`` and ``fretcoach.ai_practice_plans``), so a
record travels from SQLite through the outbox to PostgreSQL without renaming.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["PlanRecord", "SessionRecord", "from_iso", "to_iso"]


def to_iso(t: datetime) -> str:
    """UTC ISO-8601 with microseconds; naive datetimes are taken as UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """An ended (or recovered) practice session: the row the dashboard reads."""

    session_id: str
    user_id: str
    device_id: str
    scale_chosen: str
    scale_type: str
    pitch_accuracy: float | None
    scale_conformity: float | None
    timing_stability: float | None
    total_notes: int
    correct_notes: int
    bad_notes: int
    duration_seconds: float
    strictness: float
    sensitivity: float
    start_timestamp: datetime
    end_timestamp: datetime
    utc_offset_minutes: int = 0
    bpm: float | None = None
    practice_id: str | None = None
    recovered: bool = False

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe form (timestamps as UTC ISO strings) for the outbox."""
        d = asdict(self)
        d["start_timestamp"] = to_iso(self.start_timestamp)
        d["end_timestamp"] = to_iso(self.end_timestamp)
        return d

    @classmethod
    def from_payload(cls, d: dict[str, Any]) -> SessionRecord:
        d = dict(d)
        d["start_timestamp"] = from_iso(d["start_timestamp"])
        d["end_timestamp"] = from_iso(d["end_timestamp"])
        d["recovered"] = bool(d.get("recovered", False))
        return cls(**d)


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A practice plan (AI Mode's recommendation or one made on the dashboard)."""

    practice_id: str
    user_id: str
    practice_plan: dict[str, Any]
    generated_at: datetime
    executed_session_id: str | None = None
    source: str = "pedal"

    def to_payload(self) -> dict[str, Any]:
        return {
            "practice_id": self.practice_id,
            "user_id": self.user_id,
            "practice_plan": self.practice_plan,
            "generated_at": to_iso(self.generated_at),
            "executed_session_id": self.executed_session_id,
        }

    @classmethod
    def from_payload(cls, d: dict[str, Any], source: str = "pedal") -> PlanRecord:
        plan = d["practice_plan"]
        return cls(
            practice_id=str(d["practice_id"]),
            user_id=str(d["user_id"]),
            practice_plan=json.loads(plan) if isinstance(plan, str) else dict(plan),
            generated_at=from_iso(d["generated_at"]) if isinstance(d["generated_at"], str) else d["generated_at"],
            executed_session_id=None if d.get("executed_session_id") is None else str(d["executed_session_id"]),
            source=source,
        )
