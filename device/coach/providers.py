"""LLM providers: the one place every chat model the coach uses is built.

All providers speak the OpenAI chat-completions protocol, so every model is a
``langchain_openai.ChatOpenAI`` with an explicit base URL, key, model, per-feature timeout,
``max_retries=0`` (retries are ours, see :mod:`device.coach.retry`, so they can respect the
feature's deadline) and a token cap.

Why every value is passed explicitly: ``ChatOpenAI`` and the ``openai`` client otherwise
fall back to ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` / LangSmith gateway variables from the
environment, which could send the OpenAI key to a DeepSeek or local server. With an explicit
``base_url`` and ``api_key`` those fallbacks never apply (``OPENAI_ORG_ID`` is the one
variable ChatOpenAI still reads on its own; it only adds a header).

Feature budgets (:data:`FEATURES`), all wall-clock including retries and their waits:

* ``live-coach`` — 29 s: the line is wanted within the 30 s interval; the screen shows a
  rule-based line after 1 s (:mod:`device.coach.live`) and the LLM may keep going until just
  before the next tick, so at most one call is ever in flight. 150 tokens.
* ``ai-mode`` (recommendation) — 20 s: the player waits on the pedal for a plan. 800 tokens.
* ``web-chat`` — 30 s: a human reading a phone waits longer for a considered answer. 600 tokens.

No key (or ``openai-compatible`` without a base URL) puts the coach in offline mode: the
factory returns an :class:`OfflineReason` (never raises) and callers use the rule-based
fallbacks; the screen says ``offline coach``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from device.config import Settings

if TYPE_CHECKING:
    import httpx
    from langchain_openai import ChatOpenAI

__all__ = [
    "FEATURES",
    "PROVIDERS",
    "CoachModel",
    "Feature",
    "FeatureProfile",
    "OfflineReason",
    "ProviderChoice",
    "ProviderName",
    "ProviderSpec",
    "build_chat_model",
    "discover_model",
    "resolve_provider",
]

log = logging.getLogger(__name__)

Feature = Literal["ai-mode", "live-coach", "web-chat"]
ProviderName = Literal["openai", "gemini", "deepseek", "minimax", "openai-compatible"]
TokenParam = Literal["max_tokens", "max_completion_tokens"]


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    """How long one feature may spend on the LLM, and how much it may ask for.

    ``deadline_s`` bounds the whole call: every attempt, every backoff and Retry-After wait.
    ``connect_timeout_s`` caps the TCP/TLS connect of each attempt so a dead host fails fast
    and leaves budget for a retry.
    """

    feature: Feature
    deadline_s: float
    max_tokens: int
    connect_timeout_s: float = 5.0


FEATURES: Final[dict[Feature, FeatureProfile]] = {
    "live-coach": FeatureProfile("live-coach", deadline_s=29.0, max_tokens=150),
    "ai-mode": FeatureProfile("ai-mode", deadline_s=20.0, max_tokens=800),
    "web-chat": FeatureProfile("web-chat", deadline_s=30.0, max_tokens=600),
}


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider's OpenAI-compatible endpoint and defaults.

    ``token_param``: OpenAI (and MiniMax, which marks ``max_tokens`` deprecated) take
    ``max_completion_tokens``; DeepSeek, Gemini's compatibility layer and local servers
    (llama.cpp, Ollama, vLLM) document ``max_tokens``. ChatOpenAI always sends the former,
    so :func:`build_chat_model` renames it where needed — otherwise the cap would be
    silently ignored.
    """

    name: ProviderName
    base_url: str | None
    default_model: str | None
    key_setting: str | None
    key_env: str
    token_param: TokenParam
    key_required: bool = True
    extra_body: tuple[tuple[str, Any], ...] = ()


PROVIDERS: Final[dict[ProviderName, ProviderSpec]] = {
    "openai": ProviderSpec(
        "openai",
        "https://api.openai.com/v1",
        "gpt-4o-mini",
        "openai_api_key",
        "OPENAI_API_KEY",
        "max_completion_tokens",
    ),
    # Google retired gemini-2.0-flash on the Gemini API (2026-06-01); 3.1 Flash-Lite is its
    # low-latency, low-cost successor. Override with FRETCOACH_LLM_MODEL as models move on.
    "gemini": ProviderSpec(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai/",
        "gemini-3.1-flash-lite",
        "google_api_key",
        "GOOGLE_API_KEY",
        "max_tokens",
    ),
    "deepseek": ProviderSpec(
        "deepseek",
        "https://api.deepseek.com",
        "deepseek-chat",
        "deepseek_api_key",
        "DEEPSEEK_API_KEY",
        "max_tokens",
    ),
    # MiniMax's OpenAI-compatible endpoint (international; China uses api.minimaxi.com).
    # MiniMax-M2 reasons before answering; reasoning_split keeps its <think> text out of
    # the answer's content (we strip stray <think> blocks anyway).
    "minimax": ProviderSpec(
        "minimax",
        "https://api.minimax.io/v1",
        "MiniMax-M2",
        "minimax_api_key",
        "MINIMAX_API_KEY",
        "max_completion_tokens",
        extra_body=(("reasoning_split", True),),
    ),
    # Any OpenAI-compatible server (llama.cpp, Ollama, LM Studio, vLLM): base URL required,
    # key optional. The key comes from the proposed FRETCOACH_LLM_API_KEY setting, never
    # from OPENAI_API_KEY, so an OpenAI key is not sent to a third-party server.
    "openai-compatible": ProviderSpec(
        "openai-compatible",
        None,
        None,
        "llm_api_key",
        "FRETCOACH_LLM_API_KEY",
        "max_tokens",
        key_required=False,
    ),
}

# Sent when a local server needs no key: the openai client insists on some value, and a
# placeholder is better than letting it look one up in the environment.
_NO_KEY: Final = "not-needed"
# When openai-compatible has no model configured and /models cannot tell us, llama.cpp
# serves whatever it loaded whatever the name; others will answer 404 (a clear error).
_LOCAL_MODEL_PLACEHOLDER: Final = "local-model"


@dataclass(frozen=True, slots=True)
class OfflineReason:
    """Why the coach runs on rule-based lines only. ``label`` is what the screen shows."""

    provider: str
    detail: str
    label: ClassVar[str] = "offline coach"

    def __str__(self) -> str:
        return f"{self.label}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """The resolved endpoint for this configuration (pure data: no imports, no network)."""

    provider: ProviderName
    base_url: str
    model: str | None
    api_key: str = field(repr=False)
    spec: ProviderSpec


def _setting(settings: Settings, name: str | None) -> str | None:
    # getattr because llm_api_key is a proposed Settings field; until it exists the
    # openai-compatible provider simply runs keyless.
    value = getattr(settings, name, None) if name else None
    return (value.strip() or None) if isinstance(value, str) else None


def resolve_provider(settings: Settings) -> ProviderChoice | OfflineReason:
    """Pick base URL, model and key for ``settings.llm_provider``; offline if they are missing.

    ``llm_base_url`` and ``llm_model`` override any provider's defaults (e.g. MiniMax's China
    endpoint, a newer Gemini model, or a test's loopback server).
    """
    spec = PROVIDERS[settings.llm_provider]
    base_url = (settings.llm_base_url or "").strip() or spec.base_url
    if base_url is None:
        return OfflineReason(spec.name, "openai-compatible needs FRETCOACH_LLM_BASE_URL")
    key = _setting(settings, spec.key_setting)
    if key is None and spec.key_required:
        return OfflineReason(spec.name, f"no {spec.key_env} set")
    model = (settings.llm_model or "").strip() or spec.default_model
    return ProviderChoice(spec.name, base_url, model, key or _NO_KEY, spec)


@dataclass(eq=False)
class CoachModel:
    """A ready chat model for one feature, with what tracing needs to know about it.

    Owns its HTTP connection pool: call :meth:`close` when done (the live coach does on
    shutdown) so no socket is left to the garbage collector.
    """

    llm: ChatOpenAI
    provider: ProviderName
    model: str
    base_url: str
    profile: FeatureProfile
    http_client: httpx.Client = field(repr=False)

    @property
    def feature(self) -> Feature:
        return self.profile.feature

    def timeout(self, remaining_s: float) -> httpx.Timeout:
        """The per-attempt timeout: whatever is left of the deadline, connect capped lower."""
        import httpx

        remaining_s = max(remaining_s, 0.05)
        return httpx.Timeout(remaining_s, connect=min(self.profile.connect_timeout_s, remaining_s))

    def close(self) -> None:
        self.http_client.close()


@functools.cache
def _chat_class(token_param: TokenParam) -> type[ChatOpenAI]:
    """ChatOpenAI that sends the token cap under the name the provider understands.

    Built lazily: importing langchain-openai takes seconds on a Pi and must happen on the
    coach's worker thread, never at import time of the pedal.
    """
    from langchain_openai import ChatOpenAI

    if token_param == "max_completion_tokens":
        return ChatOpenAI

    class _MaxTokensChatOpenAI(ChatOpenAI):
        # ChatOpenAI renames max_tokens to max_completion_tokens in every payload (plain,
        # tools, structured output); this undoes it for providers that only know max_tokens.
        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "max_completion_tokens" in payload:
                payload["max_tokens"] = payload.pop("max_completion_tokens")
            return payload

    return _MaxTokensChatOpenAI


def discover_model(base_url: str, http_client: httpx.Client, api_key: str, timeout_s: float = 2.0) -> str | None:
    """The first model a local server lists at ``GET {base_url}/models``, or ``None``.

    Ollama and LM Studio need a real model name; asking once at build time means the
    ``openai-compatible`` provider works without FRETCOACH_LLM_MODEL.
    """
    import httpx

    try:
        resp = http_client.get(
            base_url.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s),
        )
        resp.raise_for_status()
        data = resp.json().get("data") or []
        first = data[0].get("id") if data and isinstance(data[0], dict) else None
        return str(first) if first else None
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.info("could not list models at %s: %s", base_url, exc)
        return None


def build_chat_model(
    settings: Settings,
    feature: Feature,
    *,
    profile: FeatureProfile | None = None,
) -> CoachModel | OfflineReason:
    """The chat model for ``feature`` under ``settings``, or why the coach is offline.

    Never raises for a missing key; the import of langchain-openai happens here (call from a
    worker). For ``openai-compatible`` without a model it asks the server's ``/models`` once.
    """
    choice = resolve_provider(settings)
    if isinstance(choice, OfflineReason):
        return choice
    import httpx
    from pydantic import SecretStr

    profile = profile or FEATURES[feature]
    # Our own pool with explicit timeouts (the default per-request value is the deadline;
    # each attempt overrides it with what is left), closed by CoachModel.close().
    http_client = httpx.Client(
        timeout=httpx.Timeout(profile.deadline_s, connect=profile.connect_timeout_s),
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30.0),
    )
    model = choice.model
    if model is None:
        model = discover_model(choice.base_url, http_client, choice.api_key) or _LOCAL_MODEL_PLACEHOLDER
    try:
        llm = _chat_class(choice.spec.token_param)(
            model=model,
            base_url=choice.base_url,
            api_key=SecretStr(choice.api_key),
            timeout=httpx.Timeout(profile.deadline_s, connect=profile.connect_timeout_s),
            max_retries=0,
            max_completion_tokens=profile.max_tokens,
            http_client=http_client,
            # Chat Completions everywhere: only OpenAI has the Responses API.
            use_responses_api=False,
            extra_body=dict(choice.spec.extra_body) or None,
        )
    except Exception:
        http_client.close()
        raise
    return CoachModel(llm, choice.provider, model, choice.base_url, profile, http_client)
