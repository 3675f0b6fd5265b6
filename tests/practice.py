"""Practice history for coach tests: ended sessions with chosen scores, in SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cloud_sync.push import SESSION_COLUMN_TYPES
from device.analysis import parse_scale
from device.config import Settings
from device.session import SessionRecord, SessionStore

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def settings_for(url: str | None, **values: Any) -> Settings:
    """Settings whose LLM is the loopback server at ``url`` (None: no key, offline)."""
    base: dict[str, Any] = {"openai_api_key": "sk-test" if url else None, "llm_base_url": url, "llm_model": "gpt-loop"}
    return Settings.model_validate({**base, **values})


def session(
    user: str,
    scale: str = "A minor pentatonic",
    pitch: float | None = 80.0,
    conformity: float | None = 90.0,
    timing: float | None = 70.0,
    *,
    notes: int = 100,
    days_ago: float = 1.0,
    minutes: float = 10.0,
    device: str = "pedal-1",
    strictness: float = 0.5,
    sensitivity: float = 0.6,
) -> SessionRecord:
    start = NOW - timedelta(days=days_ago)
    bad = round(notes * (1 - (conformity or 0) / 100)) if conformity is not None else 0
    return SessionRecord(
        session_id=str(uuid.uuid4()),
        user_id=user,
        device_id=device,
        scale_chosen=parse_scale(scale).name,
        scale_type=parse_scale(scale).scale_type,
        pitch_accuracy=pitch,
        scale_conformity=conformity,
        timing_stability=timing,
        total_notes=notes,
        correct_notes=notes - bad,
        bad_notes=bad,
        duration_seconds=minutes * 60.0,
        strictness=strictness,
        sensitivity=sensitivity,
        start_timestamp=start,
        end_timestamp=start + timedelta(minutes=minutes),
    )


def add_local(store: SessionStore, records: Iterable[SessionRecord]) -> None:
    """Ended sessions in the pedal's store, as the recorder leaves them (queued)."""
    with store.write() as db:
        for rec in records:
            payload = rec.to_payload()
            db.table("sessions").insert({**payload, "recovered": int(rec.recovered), "status": "ended"})
            store._enqueue(db, "session", rec.session_id, payload)


def add_cloud(url: str, records: Iterable[SessionRecord]) -> None:
    """Sessions straight into ``fretcoach.sessions`` (as if synced from some pedal)."""
    cols = list(SESSION_COLUMN_TYPES)
    sql = (
        f"INSERT INTO fretcoach.sessions ({', '.join(cols)}) VALUES ("
        + ", ".join(f"%s::{SESSION_COLUMN_TYPES[c]}" for c in cols)
        + ")"
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        rows: list[list[Any]] = []
        for rec in records:
            payload = rec.to_payload()
            rows.append([payload[c] for c in cols])
        cur.executemany(sql, rows)
