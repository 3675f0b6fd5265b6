"""One exception tree for the whole pedal.

Every error the pedal raises on purpose derives from :class:`FretCoachError`; each sub-root
names a concern, and leaves also inherit the closest built-in so callers that only know the
built-ins still catch them (the gpiozero ``exc.py`` pattern). Low-level errors are translated
at the boundary with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "AudioDeviceError",
    "AudioError",
    "AudioFileError",
    "CoachAuthError",
    "CoachError",
    "CoachRequestError",
    "CoachResponseError",
    "CoachTimeoutError",
    "CoachUnavailableError",
    "ConfigError",
    "DiskFullError",
    "DisplayError",
    "FootswitchError",
    "FretCoachError",
    "HardwareError",
    "LedError",
    "SessionError",
    "SessionStateError",
    "SilentAudioError",
    "StoreCorruptError",
    "SyncError",
    "SyncUnavailableError",
    "UnknownScaleError",
]


class FretCoachError(Exception):
    """Base of every error FretCoach raises on purpose; its message is one clear line."""


class ConfigError(FretCoachError, ValueError):
    """The configuration (environment, file or command line) is invalid."""


class AudioError(FretCoachError):
    """Audio could not be captured or read."""


class AudioDeviceError(AudioError, OSError):
    """The audio interface is missing, unplugged or cannot capture as asked."""


class AudioFileError(AudioError, OSError):
    """An audio file is missing, empty, truncated or not audio."""


class SilentAudioError(AudioError, ValueError):
    """The audio holds no signal to analyse."""


class AnalysisError(FretCoachError):
    """The analysis was asked for something it cannot do."""


class UnknownScaleError(AnalysisError, ValueError):
    """A scale name did not parse; the message lists what is accepted."""


class HardwareError(FretCoachError):
    """A pedal part (display, footswitch, LED) could not be opened or driven."""


class DisplayError(HardwareError, OSError):
    """The OLED (or its stand-in) cannot be opened or written."""


class FootswitchError(HardwareError, OSError):
    """A footswitch's GPIO pins cannot be claimed or read."""


class LedError(HardwareError, OSError):
    """The status LED's GPIO pin cannot be claimed or driven."""


class SessionError(FretCoachError):
    """The pedal's session store could not record or read."""


class StoreCorruptError(SessionError, OSError):
    """The SQLite file is not a readable FretCoach database (it is moved aside, not used)."""


class DiskFullError(SessionError, OSError):
    """No room left to record; what was already committed is intact."""


class SessionStateError(SessionError, RuntimeError):
    """A session operation came at the wrong time (e.g. a checkpoint with no running session)."""


class SyncError(FretCoachError):
    """The cloud sync failed."""


class SyncUnavailableError(SyncError, ConnectionError):
    """The cloud database cannot be reached (no network, down, or refused); try again later."""


class CoachError(FretCoachError):
    """The coach (LLM or its fallback) failed."""


class CoachUnavailableError(CoachError, ConnectionError):
    """The LLM provider cannot be reached, is failing (5xx) or rate-limits past the deadline."""


class CoachTimeoutError(CoachError, TimeoutError):
    """The LLM did not answer within the feature's deadline."""


class CoachAuthError(CoachError, PermissionError):
    """The provider refused the API key (HTTP 401/403)."""


class CoachRequestError(CoachError, ValueError):
    """The provider rejected the request (HTTP 400/404/422): model name, base URL or parameters."""


class CoachResponseError(CoachError, ValueError):
    """The LLM answered, but not usably: malformed, empty, or failing validation."""
