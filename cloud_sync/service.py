"""Builds the sync from the one settings model: the CLI's pass and the pedal's scheduled job
are the same Syncer."""

from __future__ import annotations

from cloud_sync.backoff import Backoff
from cloud_sync.scheduler import SyncScheduler
from cloud_sync.syncer import Syncer
from device.config import Settings
from device.session.store import SessionStore

__all__ = ["make_sync_scheduler", "make_syncer"]


def make_syncer(settings: Settings, store: SessionStore, *, attempts: int = 1) -> Syncer | None:
    """The syncer for this pedal, or None when no cloud database is configured."""
    if not settings.database_url:
        return None
    return Syncer(store, settings.database_url, settings.user_id, attempts=attempts, backoff=Backoff(1.0, 8.0))


def make_sync_scheduler(settings: Settings, store: SessionStore) -> SyncScheduler | None:
    """The pedal's background sync (not started), or None when sync is off."""
    # Three quick attempts inside a pass: a server that is full for a moment ("too many
    # clients") is retried in seconds instead of waiting out the scheduler's backoff.
    syncer = make_syncer(settings, store, attempts=3)
    if syncer is None:
        return None
    return SyncScheduler(syncer.run_once, interval_s=settings.sync_interval_s)
