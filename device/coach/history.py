"""The player's practice history, as the coach reads it: one seam, two homes.

On the pedal the history is the local SQLite store (:class:`LocalHistory`); for the dashboard
it is PostgreSQL (:class:`cloud_sync.history.PostgresHistory`). Both answer the same three
questions with parameterised queries scoped to one user, so the recommendation and the chat
agent's tools never see SQL and can never read another player's sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from device.session.models import PlanRecord, SessionRecord
from device.session.store import SessionStore

__all__ = ["LocalHistory", "SessionHistory", "merge_recent"]

log = logging.getLogger(__name__)


class SessionHistory(Protocol):
    """Where a player's ended sessions live, and where a plan made for them is kept."""

    def recent(self, user_id: str, limit: int) -> list[SessionRecord]:
        """The latest ended sessions, newest first."""
        ...

    def since(self, user_id: str, since: datetime) -> list[SessionRecord]:
        """Ended sessions that started at or after ``since``, newest first."""
        ...

    def save_plan(self, plan: PlanRecord) -> None:
        """Keep a plan so the pedal (or the dashboard) finds it."""
        ...


class LocalHistory:
    """The pedal's own store. A saved plan is queued for the cloud like any other."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def recent(self, user_id: str, limit: int) -> list[SessionRecord]:
        return self.store.recent_sessions(user_id, limit)

    def since(self, user_id: str, since: datetime) -> list[SessionRecord]:
        return self.store.sessions_since(user_id, since)

    def save_plan(self, plan: PlanRecord) -> None:
        self.store.save_plan(plan)


def merge_recent(batches: Sequence[Sequence[SessionRecord]], limit: int) -> list[SessionRecord]:
    """The newest ``limit`` sessions of several sources, each session once (by id)."""
    seen: dict[str, SessionRecord] = {}
    for batch in batches:
        for s in batch:
            seen.setdefault(s.session_id, s)
    return sorted(seen.values(), key=lambda s: s.start_timestamp, reverse=True)[:limit]
