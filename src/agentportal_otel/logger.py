"""The LiteLLM ``CustomLogger``: one GenAI span and its metrics per LLM call.

This is the only module that imports LiteLLM.  Use the ready instance from
:mod:`agentportal_otel.proxy` in the proxy's ``config.yaml``; build your own for the SDK
or for tests::

    logger = AgentPortalLogger()                      # providers from OTEL_* variables
    logger = AgentPortalLogger(tracer_provider=tp, meter_provider=mp)   # injected
    litellm.callbacks = [logger]

Every hook is guarded (:mod:`agentportal_otel._guard`): nothing escapes, nothing blocks.
The span and metric work is in-memory; export happens on the batch processor's thread.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from agentportal_otel import _lifecycle
from agentportal_otel._emit import Emitter
from agentportal_otel._guard import guarded
from agentportal_otel._lifecycle import run_bounded
from agentportal_otel._mapping import content_attributes, map_call
from agentportal_otel._providers import Providers, build_providers
from agentportal_otel._settings import Settings
from agentportal_otel._version import __version__

_logger = logging.getLogger("agentportal_otel")
SCOPE_NAME = "agentportal_otel"


class _RecentKeys:
    """A bounded set of recently emitted call keys, to emit exactly one span per call."""

    def __init__(self, maxsize: int = 16_384) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def add(self, key: Hashable) -> bool:
        """``True`` if ``key`` is new (and now remembered)."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._maxsize:
                self._keys.popitem(last=False)
            return True


class AgentPortalLogger(CustomLogger):
    """LiteLLM callback exporting GenAI spans and per-tenant metrics over OTLP/HTTP.

    Args:
        settings: configuration; read from the environment when omitted.
        tracer_provider, meter_provider: inject providers (tests, or a host that manages
            its own); they are flushed but never shut down by this logger.  When omitted,
            private providers are built from ``settings``: the global providers are never
            read or set.
        install_shutdown_hooks: flush at proxy shutdown and interpreter exit.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        install_shutdown_hooks: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else Settings.from_env()
        self.shutdown_timeout_ms = self.settings.shutdown_timeout_ms
        self._recent = _RecentKeys()
        self._providers: Providers | None = None
        self._emitter: Emitter | None = None
        self._shut_down = False
        if not self.settings.enabled:
            _logger.info("agentportal-otel: disabled by OTEL_SDK_DISABLED; no telemetry is recorded")
            self.tracer_provider: TracerProvider | None = None
            self.meter_provider: MeterProvider | None = None
            return
        owned = tracer_provider is None and meter_provider is None
        if owned:
            self._providers = build_providers(self.settings)
            tracer_provider = self._providers.tracer_provider
            meter_provider = self._providers.meter_provider
        if tracer_provider is None or meter_provider is None:
            raise ValueError("inject both tracer_provider and meter_provider, or neither")
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._emitter = Emitter(
            tracer_provider.get_tracer(SCOPE_NAME, __version__),
            meter_provider.get_meter(SCOPE_NAME, __version__),
            self.settings.max_tenant_values,
            dropped_spans=(lambda: self.dropped_spans) if owned else None,
            latest=self.settings.semconv_latest,
        )
        if owned:
            _logger.info("agentportal-otel %s: %s", __version__, self.settings.describe_destination())
        if install_shutdown_hooks:
            _lifecycle.register(self)

    @property
    def dropped_spans(self) -> int:
        """Spans dropped because the export queue was full."""
        return self._providers.dropped_spans if self._providers is not None else 0

    # --- LiteLLM hooks ---------------------------------------------------------------------
    @guarded
    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=False)

    @guarded
    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=True)

    @guarded
    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=False)

    @guarded
    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=True)

    def _record(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any, *, failed: bool) -> None:
        emitter = self._emitter
        if emitter is None or not isinstance(kwargs, dict):
            return
        record = map_call(kwargs, response_obj, start_time, end_time, self.settings, failed=failed)
        if record.dedupe_key is not None and not self._recent.add(record.dedupe_key):
            return
        settings = self.settings

        def content() -> dict[str, Any]:
            global_off = bool(getattr(litellm, "turn_off_message_logging", False)) or self.turn_off_message_logging
            return content_attributes(kwargs, response_obj, settings, global_off=global_off)

        emitter.emit_span(record, extra=content if settings.capture_message_content else None)
        emitter.record_metrics(record)

    # --- lifecycle ---------------------------------------------------------------------------
    def flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued, spans then metrics, within one time budget."""
        if self.tracer_provider is None or self.meter_provider is None or self._shut_down:
            return True
        tracer_provider, meter_provider = self.tracer_provider, self.meter_provider
        budget_ms = timeout_millis if timeout_millis is not None else self.shutdown_timeout_ms

        def flush_both() -> bool:
            spans = tracer_provider.force_flush(budget_ms)
            metrics = meter_provider.force_flush(budget_ms)
            return bool(spans and metrics)

        return run_bounded(flush_both, budget_ms / 1000, "flush")

    def shutdown(self, timeout_millis: int | None = None) -> bool:
        """Flush, then shut down the providers this logger owns. Idempotent."""
        if self._shut_down:
            return True
        budget_ms = timeout_millis if timeout_millis is not None else self.shutdown_timeout_ms
        ok = self.flush(budget_ms)
        self._shut_down = True
        _lifecycle.unregister(self)
        providers = self._providers
        if providers is not None:

            def stop() -> None:
                providers.tracer_provider.shutdown()
                if providers.meter_provider is not None:
                    providers.meter_provider.shutdown(timeout_millis=max(1, budget_ms // 2))

            ok = run_bounded(stop, budget_ms / 1000, "shutdown") and ok
        return ok
