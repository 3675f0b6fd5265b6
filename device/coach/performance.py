"""How a player is doing over a period: averages, trends, weakest area, per-scale breakdown.

Pure (no I/O): the chat agent's ``analyze_performance`` tool and the dashboard read the same
numbers. Averages are weighted by notes played, so a 20-minute session counts for more than
a 30-second noodle, and sessions without notes do not drag scores to zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from device.session.models import SessionRecord

__all__ = ["METRICS", "PerformanceReport", "analyze_performance"]

METRICS = ("pitch_accuracy", "scale_conformity", "timing_stability")


def _weighted(sessions: Sequence[SessionRecord], metric: str) -> float | None:
    pairs = [(getattr(s, metric), s.total_notes) for s in sessions if getattr(s, metric) is not None]
    weight = sum(n for _, n in pairs)
    if not pairs or weight == 0:
        return None
    return round(float(sum(v * n for v, n in pairs)) / weight, 1)


def _averages(sessions: Sequence[SessionRecord]) -> dict[str, float | None]:
    return {m: _weighted(sessions, m) for m in METRICS}


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    days: int
    sessions: int
    minutes: float
    notes: int
    averages: dict[str, float | None]
    # Change of each average between the older and the newer half of the period (None when
    # either half has no sessions): positive = improving.
    trend: dict[str, float | None]
    weakest: str | None
    by_scale: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "sessions": self.sessions,
            "minutes": self.minutes,
            "notes": self.notes,
            "averages": self.averages,
            "trend": self.trend,
            "weakest": self.weakest,
            "by_scale": self.by_scale,
        }


def analyze_performance(sessions: Sequence[SessionRecord], days: int, now: datetime) -> PerformanceReport:
    """The report over the sessions that started in the last ``days`` days before ``now``."""
    start = now - timedelta(days=days)
    middle = now - timedelta(days=days / 2)
    within = [s for s in sessions if start <= s.start_timestamp <= now and s.total_notes > 0]
    averages = _averages(within)
    older = _averages([s for s in within if s.start_timestamp < middle])
    newer = _averages([s for s in within if s.start_timestamp >= middle])
    trend: dict[str, float | None] = {}
    for m in METRICS:
        a, b = older[m], newer[m]
        trend[m] = round(b - a, 1) if a is not None and b is not None else None
    known = {m: v for m, v in averages.items() if v is not None}
    weakest = min(known, key=lambda m: known[m]) if known else None
    groups: dict[str, list[SessionRecord]] = defaultdict(list)
    for s in within:
        groups[s.scale_chosen].append(s)
    by_scale = [
        {
            "scale": scale,
            "sessions": len(group),
            "minutes": round(sum(s.duration_seconds for s in group) / 60.0, 1),
            **_averages(group),
        }
        for scale, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return PerformanceReport(
        days=days,
        sessions=len(within),
        minutes=round(sum(s.duration_seconds for s in within) / 60.0, 1),
        notes=sum(s.total_notes for s in within),
        averages=averages,
        trend=trend,
        weakest=weakest,
        by_scale=by_scale,
    )
