"""What each screen shows: small frozen dataclasses the state machine builds and the screens render.

A view holds everything a frame depends on, time included: ``t`` is seconds (from the app's
monotonic clock) since the screen's moving text appeared — the app resets it when it shows
a new coach line, a new plan or a new error — so scrolling starts at the beginning of the
text and the same view always renders to the same pixels. A screen whose text all fits does
not depend on ``t`` at all (see :attr:`device.ui.screens.Frame.animated`).

Views carry plain values (strings, numbers, ``None`` for "not yet"), not live objects, so
building one never blocks and a view can be compared with the previous one to decide whether
to redraw. Out-of-range numbers are clamped when drawn, never rejected: a display must not
crash the pedal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Type only: importing device.analysis pulls in aubio and scipy (~0.8 s here), and the
    # boot splash must not wait for them.
    from device.analysis.metrics import Metrics

__all__ = [
    "BootView",
    "ErrorKind",
    "ErrorView",
    "HomeView",
    "LastSession",
    "LiveView",
    "PauseView",
    "PlanView",
    "PlanningView",
    "PowerWarning",
    "SaveState",
    "ScalePickerView",
    "Scores",
    "ShutdownView",
    "SummaryView",
    "SyncState",
    "SyncStatus",
    "TunerView",
    "View",
]


@dataclass(frozen=True, slots=True)
class Scores:
    """The three 0–100 scores; ``None`` where there is too little to judge yet."""

    pitch_accuracy: float | None = None
    scale_conformity: float | None = None
    timing_stability: float | None = None

    @classmethod
    def from_metrics(cls, metrics: Metrics) -> Scores:
        return cls(metrics.pitch_accuracy, metrics.scale_conformity, metrics.timing_stability)


class SyncState(StrEnum):
    SYNCED = "synced"
    """The last sync attempt reached the cloud."""
    SYNCING = "syncing"
    OFFLINE = "offline"
    """The cloud is configured but unreachable; sessions wait in the outbox."""
    ERROR = "error"
    """The cloud answered but refused (credentials, schema): retrying will not help by itself."""
    OFF = "off"
    """No cloud database configured."""


@dataclass(frozen=True, slots=True)
class SyncStatus:
    state: SyncState
    #: Seconds since the last successful sync; ``None`` if the pedal never synced.
    last_synced_ago_s: float | None = None
    #: Sessions (and plans) waiting in the outbox.
    queued: int = 0


class PowerWarning(StrEnum):
    """What the Pi's firmware reports (``vcgencmd get_throttled``), shown as an icon on home."""

    UNDERVOLTAGE = "undervoltage"
    THROTTLED = "throttled"


class SaveState(StrEnum):
    SAVING = "saving"
    SAVED = "saved"
    """Saved on the pedal; no cloud configured."""
    WILL_SYNC = "will sync"
    """Saved on the pedal and queued for the cloud."""
    SYNCED = "synced"
    FAILED = "failed"
    """Could not be saved (the session is lost unless recovered): say so, never pretend."""


class ErrorKind(StrEnum):
    NO_AUDIO = "no audio"
    NO_NETWORK = "no network"
    DISK_FULL = "disk full"
    GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class _View:
    #: Seconds since this screen's moving text appeared (drives marquees, paging, spinners).
    t: float = field(default=0.0, kw_only=True)


@dataclass(frozen=True, slots=True)
class BootView(_View):
    version: str
    #: What is starting ("starting audio…"); empty for none.
    status: str = ""


@dataclass(frozen=True, slots=True)
class LastSession:
    scale: str
    scores: Scores


@dataclass(frozen=True, slots=True)
class HomeView(_View):
    user: str
    sync: SyncStatus
    last_session: LastSession | None = None
    warning: PowerWarning | None = None


@dataclass(frozen=True, slots=True)
class PlanningView(_View):
    """AI Mode while the plan is being made ("thinking…"); ``t`` animates the dots."""


@dataclass(frozen=True, slots=True)
class PlanView(_View):
    """AI Mode's plan, ready to start."""

    scale: str
    #: A metric key (``"timing_stability"``…) or the coach's own words.
    focus: str
    #: Why this plan: scrolls when longer than a line.
    reasoning: str
    strictness: float
    sensitivity: float
    #: The plan came from the rule-based fallback, not the LLM.
    offline: bool = False


@dataclass(frozen=True, slots=True)
class LiveView(_View):
    """A running session; ``t`` is the age of ``coach_line`` (it scrolls from its start)."""

    scores: Scores
    elapsed_s: float
    #: The note being played (``"C#4"``), ``None`` when nothing is sounding.
    note: str | None = None
    cents: float | None = None
    #: Whether the note is in the scale; ``None`` if unknown.
    in_scale: bool | None = None
    #: The latest live-coach line (up to ~80 characters); empty before the first one.
    coach_line: str = ""
    #: Shown where the coach line goes until the first one arrives.
    scale: str = ""


@dataclass(frozen=True, slots=True)
class PauseView(_View):
    elapsed_s: float
    scale: str = ""


@dataclass(frozen=True, slots=True)
class SummaryView(_View):
    """A finished session."""

    scores: Scores
    notes_played: int
    correct_notes: int
    wrong_notes: int
    duration_s: float
    #: A metric key (``Metrics.weakest``); ``None`` when nothing could be judged.
    weakest: str | None
    save: SaveState


@dataclass(frozen=True, slots=True)
class TunerView(_View):
    """The tuner; all ``None`` while no string sounds."""

    note: str | None = None
    cents: float | None = None
    hz: float | None = None


@dataclass(frozen=True, slots=True)
class ScalePickerView(_View):
    """Manual mode: choose a scale; ``t`` scrolls a chosen name too long for its row."""

    options: tuple[str, ...]
    selected: int = 0


@dataclass(frozen=True, slots=True)
class ErrorView(_View):
    """Something the player must know; ``detail`` (an error's message) pages when long."""

    kind: ErrorKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ShutdownView(_View):
    #: False while shutting down, True once it is safe to unplug.
    done: bool = False


View = (
    BootView
    | HomeView
    | PlanningView
    | PlanView
    | LiveView
    | PauseView
    | SummaryView
    | TunerView
    | ScalePickerView
    | ErrorView
    | ShutdownView
)
