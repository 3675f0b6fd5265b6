"""One exception tree for the whole pedal.

Every error the pedal raises on purpose derives from :class:`FretCoachError`; each sub-root
names a concern, and leaves also inherit the closest built-in so callers that only know the
built-ins still catch them (the gpiozero ``exc.py`` pattern). Low-level errors are translated
at the boundary with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "AudioError",
    "AudioFileError",
    "CoachError",
    "ConfigError",
    "FretCoachError",
    "SilentAudioError",
    "SyncError",
    "UnknownScaleError",
]


class FretCoachError(Exception):
    """Base of every error FretCoach raises on purpose; its message is one clear line."""


class ConfigError(FretCoachError, ValueError):
    """The configuration (environment, file or command line) is invalid."""


class AudioError(FretCoachError):
    """Audio could not be captured or read."""


class AudioFileError(AudioError, OSError):
    """An audio file is missing, empty, truncated or not audio."""


class SilentAudioError(AudioError, ValueError):
    """The audio holds no signal to analyse."""


class AnalysisError(FretCoachError):
    """The analysis was asked for something it cannot do."""


class UnknownScaleError(AnalysisError, ValueError):
    """A scale name did not parse; the message lists what is accepted."""


class SyncError(FretCoachError):
    """The cloud sync failed."""


class CoachError(FretCoachError):
    """The coach (LLM or its fallback) failed."""
