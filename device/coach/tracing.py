"""Opik tracing of every LLM call, built so that it can never slow down or break the pedal.

One :class:`Tracing` owns one ``opik.Opik`` client made from explicit config
(:class:`TracingConfig`, filled from Settings at the edge). Each LLM call gets a fresh
``OpikTracer`` callback bound to that client, tagged ``fretcoach`` + the feature
(``ai-mode`` | ``live-coach`` | ``chat``) with metadata ``user_id``, ``provider``, ``model``,
``feature``.

Isolation, and why each part holds:

* The opik SDK only enqueues in the callback; its background threads do the HTTP, so a
  recorder that is down, answering 500 or hanging costs the call nothing (measured ~1-3 ms
  per call either way). LangChain's callback manager logs and swallows callback errors.
* Everything here is wrapped so that a failure to import, configure or build a tracer
  returns "no tracing" instead of raising.
* ``flush``/``close`` run the SDK's flush on a daemon thread and wait at most their timeout,
  so shutdown is bounded whatever the SDK does; and the SDK's own atexit flush is bounded by
  setting its ``default_flush_timeout``.
* The tracer subclass returns our client instead of opik's process-global one, so nothing
  is configured globally and several configs (tests) can coexist.

Environment: this module reads no configuration from the environment. Two things can only
be set through opik's own documented mechanisms: its Sentry error reporter is started *at
import time of opik* from ``OPIK_SENTRY_ENABLE`` (or ``~/.opik.config``), and its usage
analytics from ``analytics_enable``. Unless ``TracingConfig.telemetry`` is true we set
``OPIK_SENTRY_ENABLE=false`` with ``os.environ.setdefault`` just before the first import
(an explicit user choice wins) and ``analytics_enable=False`` through
``opik.config.update_session_config``: a pedal sends traces where it is told to and nowhere
else.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from device.config import Settings

if TYPE_CHECKING:
    import opik
    from langchain_core.callbacks import BaseCallbackHandler

__all__ = ["Tracing", "TracingConfig", "callbacks_for"]

log = logging.getLogger(__name__)

_DEFAULT_PROJECT = "fretcoach"


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """Where traces go. Tracing is on when ``url`` or ``api_key`` is set.

    ``url`` is the Opik API base (self-hosted ``http://host:5173/api/``, or Comet's cloud
    ``https://www.comet.com/opik/api/`` which also needs ``api_key`` and ``workspace``).
    """

    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    workspace: str | None = None
    project_name: str = _DEFAULT_PROJECT
    flush_timeout_s: float = 5.0
    telemetry: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.api_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> TracingConfig:
        """Read the proposed ``opik_*`` Settings fields (absent fields mean 'not configured')."""

        def get(name: str) -> Any:
            return getattr(settings, name, None)

        flush = get("opik_flush_timeout_s")
        return cls(
            url=get("opik_url") or None,
            api_key=get("opik_api_key") or None,
            workspace=get("opik_workspace") or None,
            project_name=get("opik_project_name") or _DEFAULT_PROJECT,
            flush_timeout_s=float(flush) if flush else 5.0,
            telemetry=bool(get("opik_telemetry")),
        )


def _import_opik(config: TracingConfig) -> Any:
    if not config.telemetry and "opik" not in sys.modules:
        # Opik starts Sentry at import time from this documented switch; see module docstring.
        os.environ.setdefault("OPIK_SENTRY_ENABLE", "false")
    import opik
    import opik.config

    # Read by the SDK when the client is built: its atexit flush must be bounded too.
    opik.config.update_session_config("default_flush_timeout", _whole_seconds(config.flush_timeout_s))
    if not config.telemetry:
        opik.config.update_session_config("analytics_enable", False)
    return opik


def _whole_seconds(seconds: float) -> int:
    # The SDK takes whole seconds; 0 would mean "do not wait at all".
    return max(1, math.ceil(seconds))


@functools.cache
def _tracer_class() -> type[Any]:
    from opik.integrations.langchain import OpikTracer

    class _BoundOpikTracer(OpikTracer):
        """OpikTracer that logs through our client, not ``opik.get_global_client()``."""

        def __init__(self, client: opik.Opik, **kwargs: Any) -> None:
            self._fretcoach_client = client
            super().__init__(**kwargs)

        @property
        def _opik_client(self) -> opik.Opik:
            return self._fretcoach_client

    return _BoundOpikTracer


class Tracing:
    """An Opik client and the per-call callbacks that log to it. Build with :meth:`start`."""

    def __init__(self, client: opik.Opik, config: TracingConfig) -> None:
        self._client = client
        self.config = config
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, config: TracingConfig) -> Tracing | None:
        """A tracing session, or ``None`` if not configured or opik cannot start. Never raises.

        Imports opik (a second or more on a Pi): call it from a worker, not the UI thread.
        No network I/O happens here; the SDK connects in the background.
        """
        if not config.enabled:
            return None
        try:
            opik = _import_opik(config)
            client = opik.Opik(
                project_name=config.project_name,
                workspace=config.workspace,
                host=config.url,
                api_key=config.api_key,
            )
        except Exception as exc:
            log.warning("Opik tracing disabled: %s", exc)
            return None
        return cls(client, config)

    def callbacks(
        self,
        *,
        feature: str,
        user_id: str,
        provider: str,
        model: str,
        metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> list[BaseCallbackHandler]:
        """Callbacks for one LLM call (``config={"callbacks": ...}``); ``[]`` if closed or on error."""
        if self._closed:
            return []
        meta = {"user_id": user_id, "provider": provider, "model": model, "feature": feature, **(metadata or {})}
        try:
            tracer = _tracer_class()(
                self._client,
                tags=["fretcoach", feature],
                metadata=meta,
                project_name=self.config.project_name,
                thread_id=thread_id,
                # We never nest @track functions inside LLM calls; keeping the tracer out of
                # opik's context stack avoids cross-thread surprises on the worker.
                opik_context_read_only_mode=True,
            )
        except Exception as exc:
            log.warning("Opik tracer not created: %s", exc)
            return []
        return [tracer]

    def _bounded(self, name: str, fn: Any, timeout_s: float) -> bool:
        """Run ``fn`` on a daemon thread and wait at most ``timeout_s``: True if it finished true."""
        result: list[bool] = []

        def run() -> None:
            try:
                result.append(bool(fn()))
            except Exception as exc:
                log.warning("Opik %s failed: %s", name, exc)

        worker = threading.Thread(target=run, name=f"opik-{name}", daemon=True)
        worker.start()
        worker.join(timeout_s)
        return bool(result and result[0])

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send what is queued; returns within ``timeout_s`` (default: the config's) regardless."""
        if self._closed:
            return True
        timeout_s = self.config.flush_timeout_s if timeout_s is None else timeout_s
        return self._bounded("flush", lambda: self._client.flush(timeout=_whole_seconds(timeout_s)), timeout_s)

    def close(self, timeout_s: float | None = None) -> bool:
        """Flush (bounded) and release the client; idempotent. True if everything was sent."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        timeout_s = self.config.flush_timeout_s if timeout_s is None else timeout_s

        def end() -> bool:
            result = self._client.end(timeout=_whole_seconds(timeout_s))
            return bool(result is None or getattr(result, "success", True))

        return self._bounded("close", end, timeout_s)


def callbacks_for(
    tracing: Tracing | None,
    *,
    feature: str,
    user_id: str,
    provider: str,
    model: str,
    metadata: Mapping[str, Any] | None = None,
    thread_id: str | None = None,
) -> list[BaseCallbackHandler]:
    """:meth:`Tracing.callbacks`, or ``[]`` when tracing is off."""
    if tracing is None:
        return []
    return tracing.callbacks(
        feature=feature, user_id=user_id, provider=provider, model=model, metadata=metadata, thread_id=thread_id
    )
