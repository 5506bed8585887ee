"""Private tracer and meter providers, built from :class:`~agentportal_otel._settings.Settings`.

Nothing here touches the global OpenTelemetry providers: the host (LiteLLM, FastAPI)
keeps its own telemetry unchanged and ours cannot be hijacked or dropped by another
integration that sets the global provider.

Span export goes through :class:`DroppingBatchSpanProcessor`: the SDK's batch processor
with a queue bound that drops *new* spans, counts them, and warns at most once a minute
instead of logging every drop on the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from agentportal_otel._settings import Settings

_logger = logging.getLogger("agentportal_otel")

_COMPRESSION: Final = {
    "none": Compression.NoCompression,
    "gzip": Compression.Gzip,
    "deflate": Compression.Deflate,
}
_DROP_WARNING_INTERVAL_S: Final = 60.0


class DroppingBatchSpanProcessor(BatchSpanProcessor):
    """A :class:`BatchSpanProcessor` that never blocks and counts what it drops.

    When the queue is full (collector slow or down) the newest span is dropped and
    counted in :attr:`dropped_spans`; a warning with the running total is logged at most
    once a minute.
    """

    def __init__(
        self,
        span_exporter: SpanExporter,
        max_queue_size: int,
        schedule_delay_millis: float,
        max_export_batch_size: int,
        export_timeout_millis: float,
    ) -> None:
        super().__init__(
            span_exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
        )
        self._max_queue_size = max_queue_size
        self._dropped = 0
        self._last_warning = 0.0
        self._lock = threading.Lock()

    @property
    def dropped_spans(self) -> int:
        return self._dropped

    def queued_spans(self) -> int:
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        return len(queue) if queue is not None else 0

    def on_end(self, span: ReadableSpan) -> None:
        if self.queued_spans() >= self._max_queue_size:
            with self._lock:
                self._dropped += 1
                now = time.monotonic()
                warn = now - self._last_warning >= _DROP_WARNING_INTERVAL_S
                if warn:
                    self._last_warning = now
            if warn:
                _logger.warning(
                    "agentportal-otel: span export queue full (%d spans); %d spans dropped so far. "
                    "Is the collector reachable? Raise OTEL_BSP_MAX_QUEUE_SIZE to buffer longer outages.",
                    self._max_queue_size,
                    self._dropped,
                )
            return
        super().on_end(span)


@dataclass
class Providers:
    """What :func:`build_providers` made, for the logger to use and shut down."""

    tracer_provider: TracerProvider
    span_processors: list[SpanProcessor] = field(default_factory=list)
    meter_provider: MeterProvider | None = None

    @property
    def dropped_spans(self) -> int:
        return sum(p.dropped_spans for p in self.span_processors if isinstance(p, DroppingBatchSpanProcessor))


def build_resource(settings: Settings) -> Resource:
    """``Resource.create`` (which honours ``OTEL_RESOURCE_ATTRIBUTES``) with our service name."""
    return Resource.create({SERVICE_NAME: settings.service_name})


def build_span_exporters(settings: Settings) -> list[SpanExporter]:
    """One exporter per entry of ``OTEL_TRACES_EXPORTER`` (``none`` gives none)."""
    exporters: list[SpanExporter] = []
    for name in settings.traces_exporters:
        if name == "otlp":
            exporters.append(
                OTLPSpanExporter(
                    endpoint=settings.traces_endpoint,
                    headers=dict(settings.traces_headers),
                    timeout=settings.traces_timeout_s,
                    compression=_COMPRESSION[settings.traces_compression],
                )
            )
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "clickhouse":
            from agentportal_otel.clickhouse import create_span_exporter

            exporters.append(create_span_exporter(settings.environ, timeout_s=settings.bsp_export_timeout_ms / 1000))
    return exporters


def build_tracer_provider(settings: Settings, exporters: Sequence[SpanExporter] | None = None) -> Providers:
    """A private :class:`TracerProvider` with one dropping batch processor per exporter."""
    provider = TracerProvider(resource=build_resource(settings))
    processors: list[SpanProcessor] = []
    for exporter in build_span_exporters(settings) if exporters is None else exporters:
        processor = DroppingBatchSpanProcessor(
            exporter,
            max_queue_size=settings.bsp_max_queue_size,
            schedule_delay_millis=settings.bsp_schedule_delay_ms,
            max_export_batch_size=settings.bsp_max_export_batch_size,
            export_timeout_millis=settings.bsp_export_timeout_ms,
        )
        provider.add_span_processor(processor)
        processors.append(processor)
    return Providers(provider, processors)


def build_metric_readers(settings: Settings) -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in settings.metrics_exporters:
        if name == "otlp":
            exporter = OTLPMetricExporter(
                endpoint=settings.metrics_endpoint,
                headers=dict(settings.metrics_headers),
                timeout=settings.metrics_timeout_s,
                compression=_COMPRESSION[settings.metrics_compression],
            )
            readers.append(
                PeriodicExportingMetricReader(exporter, export_interval_millis=settings.metric_export_interval_ms)
            )
        elif name == "console":
            readers.append(
                PeriodicExportingMetricReader(
                    ConsoleMetricExporter(), export_interval_millis=settings.metric_export_interval_ms
                )
            )
    return readers


def build_providers(settings: Settings) -> Providers:
    """Tracer and meter providers for ``settings``, sharing one resource."""
    providers = build_tracer_provider(settings)
    providers.meter_provider = MeterProvider(
        resource=providers.tracer_provider.resource, metric_readers=build_metric_readers(settings)
    )
    return providers
