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
import os
import threading
import time
import weakref
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
from agentportal_otel._providers import SCOPE_NAME, Providers, build_providers
from agentportal_otel._settings import Settings
from agentportal_otel._version import __version__

_logger = logging.getLogger("agentportal_otel")
__all__ = ["SCOPE_NAME", "AgentPortalLogger"]


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
        self._emitter = self._build_emitter(tracer_provider, meter_provider, owned)
        if owned:
            _logger.info("agentportal-otel %s: %s", __version__, self.settings.describe_destination())
            _rebuild_after_fork(self)
        if install_shutdown_hooks:
            _lifecycle.register(self)

    def _build_emitter(self, tracer_provider: TracerProvider, meter_provider: MeterProvider, owned: bool) -> Emitter:
        return Emitter(
            tracer_provider.get_tracer(SCOPE_NAME, __version__),
            meter_provider.get_meter(SCOPE_NAME, __version__),
            self.settings.max_tenant_values,
            dropped_spans=self._dropped_by_reason if owned else None,
            latest=self.settings.semconv_latest,
            instruments=self._providers.aggregator if owned and self._providers is not None else None,
        )

    def _dropped_by_reason(self) -> dict[str, int]:
        # queue_full always reports, so the series exists (at 0) from the first export on.
        providers = self._providers
        return {"queue_full": 0, **(providers.dropped_by_reason() if providers is not None else {})}

    def _after_fork_in_child(self) -> None:
        """A forked child (gunicorn or a multiprocessing worker) builds its own providers.

        The inherited ones belong to the parent: their exporters refuse to send from another
        process, their queue was cleared by the SDK, and they are shut down in the background.
        """
        old = self._providers
        if old is None or self._shut_down:
            return
        self._providers = build_providers(self.settings)
        self.tracer_provider = self._providers.tracer_provider
        self.meter_provider = self._providers.meter_provider
        assert self.meter_provider is not None
        self._emitter = self._build_emitter(self.tracer_provider, self.meter_provider, owned=True)
        _logger.info("agentportal-otel: new providers in worker process %d", os.getpid())

        def stop_inherited() -> None:
            old.tracer_provider.shutdown()
            if old.meter_provider is not None:
                old.meter_provider.shutdown(timeout_millis=1000)

        threading.Thread(target=stop_inherited, name="agentportal-otel-inherited", daemon=True).start()

    @property
    def dropped_spans(self) -> int:
        """Spans dropped so far, for any reason (see ``agentportal.spans.dropped``)."""
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
    def flush(self, timeout_millis: int | None = None, *, final: bool = False) -> bool:
        """Export everything queued, spans then metrics, within one time budget.

        ``final`` (the process is ending): exports retry for most of the budget, then what
        is still unsent is written to the spool (``AGENTPORTAL_OTEL_SPOOL_DIR``) or counted as
        dropped with ``reason=shutdown``.
        """
        if self.tracer_provider is None or self.meter_provider is None or self._shut_down:
            return True
        tracer_provider, meter_provider = self.tracer_provider, self.meter_provider
        budget_ms = timeout_millis if timeout_millis is not None else self.shutdown_timeout_ms
        providers = self._providers
        if final and providers is not None:
            providers.begin_final(budget_ms / 1000)
        before = self._dropped_by_reason()

        def flush_both() -> bool:
            spans = tracer_provider.force_flush(budget_ms)
            metrics = meter_provider.force_flush(budget_ms)
            return bool(spans and metrics)

        ok = run_bounded(flush_both, budget_ms / 1000, "flush")
        if final and providers is not None:
            self._report_final(providers.control.spooled_spans, before)
        return ok

    def _report_final(self, spooled: int, before: dict[str, int]) -> None:
        after = self._dropped_by_reason()
        lost = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
        if spooled:
            _logger.warning(
                "agentportal-otel: the collector did not take everything by the shutdown deadline; %d spans were "
                "written to the spool %s and will be sent by the next process started on it",
                spooled,
                self.settings.spool_dir,
            )
        if lost.get("shutdown") or lost.get("spool_full"):
            _logger.warning(
                "agentportal-otel: %d spans could not be exported by the shutdown deadline and are lost%s",
                lost.get("shutdown", 0) + lost.get("spool_full", 0),
                " (the spool is full)" if lost.get("spool_full") else " (set AGENTPORTAL_OTEL_SPOOL_DIR to keep them)",
            )

    def shutdown(self, timeout_millis: int | None = None) -> bool:
        """Flush, then shut down the providers this logger owns. Idempotent."""
        if self._shut_down:
            return True
        budget_ms = timeout_millis if timeout_millis is not None else self.shutdown_timeout_ms
        started = time.monotonic()
        ok = self.flush(budget_ms, final=True)
        budget_ms = max(1, budget_ms - int((time.monotonic() - started) * 1000))
        self._shut_down = True
        _lifecycle.unregister(self)
        providers = self._providers
        if providers is not None:

            def stop() -> None:
                providers.control.abort()
                providers.tracer_provider.shutdown()
                if providers.meter_provider is not None:
                    providers.meter_provider.shutdown(timeout_millis=max(1, budget_ms // 2))

            ok = run_bounded(stop, budget_ms / 1000, "shutdown") and ok
        return ok


def _rebuild_after_fork(logger: AgentPortalLogger) -> None:
    """Give a forked child its own providers (threads do not survive a fork)."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(logger)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            try:
                alive._after_fork_in_child()
            except Exception as error:  # a fork must never fail because of us
                _logger.warning("agentportal-otel: rebuilding providers after fork failed: %s", type(error).__name__)

    os.register_at_fork(after_in_child=after_in_child)
