"""Practice sessions on the pedal: the SQLite store, the recorder, crash recovery."""

from device.session.models import PlanRecord, SessionRecord
from device.session.recorder import CHECKPOINT_INTERVAL_S, Recorder, RunningSession
from device.session.store import OutboxItem, SessionStore, StoreStatus

__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "OutboxItem",
    "PlanRecord",
    "Recorder",
    "RunningSession",
    "SessionRecord",
    "SessionStore",
    "StoreStatus",
]
