"""The one configuration model: environment (prefix ``FRETCOACH_``) and an optional file.

Loaded once at the edge (the CLI) and passed down; nothing deeper reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from device.errors import ConfigError

__all__ = ["Settings", "load_settings"]

LLMProvider = Literal["openai", "gemini", "deepseek", "minimax", "openai-compatible"]
DisplayKind = Literal["ssd1306", "sh1106", "terminal", "capture", "gif", "dummy"]


def _env(name: str) -> AliasChoices:
    """Accept both ``FRETCOACH_NAME`` and the bare name a provider's docs use."""
    return AliasChoices(f"FRETCOACH_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FRETCOACH_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local/share/fretcoach")
    user_id: str = "local-player"
    device_id: str = "pedal-1"
    database_url: str | None = None
    # How often the pedal syncs when nothing else prompts it (a session's end syncs at once).
    sync_interval_s: float = Field(300.0, ge=10.0, le=86_400.0)

    # Analysis defaults; the command line and AI Mode's plan override them per session.
    a4_hz: float = Field(440.0, ge=400.0, le=480.0)
    strictness: float = Field(0.5, ge=0.0, le=1.0)
    sensitivity: float = Field(0.5, ge=0.0, le=1.0)

    llm_provider: LLMProvider = Field("openai", validation_alias=_env("LLM_PROVIDER"))
    openai_api_key: str | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    google_api_key: str | None = Field(None, validation_alias=_env("GOOGLE_API_KEY"))
    deepseek_api_key: str | None = Field(None, validation_alias=_env("DEEPSEEK_API_KEY"))
    minimax_api_key: str | None = Field(None, validation_alias=_env("MINIMAX_API_KEY"))
    llm_api_key: str | None = Field(None, validation_alias=_env("LLM_API_KEY"))  # openai-compatible only
    llm_base_url: str | None = None
    llm_model: str | None = None

    # Opik tracing of every LLM call; off unless a URL or an API key is set.
    opik_url: str | None = Field(None, validation_alias=AliasChoices("FRETCOACH_OPIK_URL", "OPIK_URL_OVERRIDE"))
    opik_api_key: str | None = Field(None, validation_alias=_env("OPIK_API_KEY"))
    opik_workspace: str | None = Field(None, validation_alias=_env("OPIK_WORKSPACE"))
    opik_project_name: str = Field("fretcoach", validation_alias=_env("OPIK_PROJECT_NAME"))
    opik_flush_timeout_s: float = Field(5.0, ge=0.5, le=60.0)
    opik_telemetry: bool = False
    live_coach_interval_s: float = Field(30.0, ge=5.0, le=600.0)

    # Set by systemd for a Type=notify service (read here, at the edge, like every setting).
    notify_socket: str | None = Field(None, validation_alias=AliasChoices("NOTIFY_SOCKET"))
    watchdog_usec: int | None = Field(None, validation_alias=AliasChoices("WATCHDOG_USEC"))

    audio_device: str | None = None
    audio_channel: int | Literal["mix", "auto"] = "auto"
    display: DisplayKind = "terminal"
    # "17" or "17,27": one or two switches, BCM numbering.
    footswitch_pins: Annotated[tuple[int, ...], NoDecode] = (17,)

    @property
    def store_path(self) -> Path:
        """The pedal's SQLite session store."""
        return self.data_dir / "fretcoach.db"

    @field_validator("footswitch_pins", mode="before")
    @classmethod
    def _pins(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return tuple(int(p) for p in v.replace(",", " ").split())
            except ValueError as exc:
                raise ValueError("expected GPIO numbers like 17 or 17,27") from exc
        if isinstance(v, int):
            return (v,)
        return v


def load_settings(config_file: Path | None = None) -> Settings:
    """Read the environment (and ``config_file``, KEY=VALUE lines); one-line error if invalid."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"{config_file}: config file not found")
    try:
        return Settings(_env_file=config_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
    except SettingsError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
