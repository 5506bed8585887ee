"""Private tracer and meter providers, built from :class:`~agentportal_otel._settings.Settings`.

Nothing here touches the global OpenTelemetry providers: the host (LiteLLM, FastAPI)
keeps its own telemetry unchanged and ours cannot be hijacked or dropped by another
integration that sets the global provider.

Span export goes through :class:`DroppingBatchSpanProcessor`: the SDK's batch processor
with a queue bound, in spans and in bytes, that drops *new* spans, counts them by reason, and
warns at most once a minute instead of logging every drop on the request path.

OTLP export (spans and metrics) goes through :mod:`agentportal_otel._retry`: a batch is retried
until the collector takes it, so an outage loses nothing while the queue has room. One
:class:`~agentportal_otel._retry.ExportControl` per process ties the exporters to the shutdown
deadline and to the disk spool (:mod:`agentportal_otel._spool`, ``AGENTPORTAL_OTEL_SPOOL_DIR``),
whose replay thread starts here.
"""

from __future__ import annotations

import collections
import importlib.metadata
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from agentportal_otel._aggregate import Aggregator, ProducingMetricReader, supports
from agentportal_otel._retry import (
    QUEUE_BYTES,
    QUEUE_FULL,
    Delivery,
    DropCounter,
    ExportControl,
    OTLPSender,
    RetryingMetricExporter,
    RetryingSpanExporter,
)
from agentportal_otel._settings import Settings
from agentportal_otel._spool import Spool
from agentportal_otel._version import __version__

_logger = logging.getLogger("agentportal_otel")

SCOPE_NAME: Final = "agentportal_otel"
"""The instrumentation scope of our spans and metrics."""
_DROP_WARNING_INTERVAL_S: Final = 60.0
_SEND_SHARE: Final = 0.7
"""Share of the shutdown budget spent retrying; the rest is left for writing the spool."""


def _sdk_version() -> str:
    try:
        return importlib.metadata.version("opentelemetry-sdk")
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"


class DroppingBatchSpanProcessor(BatchSpanProcessor):
    """A :class:`BatchSpanProcessor` that never blocks and counts what it drops.

    When the queue is full (collector slow or down) the newest span is dropped and counted
    (``reason=queue_full``); with a :class:`~agentportal_otel._retry.RetryingSpanExporter`
    the queue is also bounded by ``max_queue_bytes`` (``reason=queue_bytes``): queued spans
    times the average encoded span size so far, plus the batch being retried. A warning with
    the running total is logged at most once a minute.
    """

    def __init__(
        self,
        span_exporter: SpanExporter,
        max_queue_size: int,
        schedule_delay_millis: float,
        max_export_batch_size: int,
        export_timeout_millis: float,
        max_queue_bytes: int | None = None,
    ) -> None:
        super().__init__(
            span_exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout_millis,
        )
        self._max_queue_size = max_queue_size
        self._max_queue_bytes = max_queue_bytes
        # The SDK offers no public queue length; its BatchProcessor keeps a deque (1.28 on).
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        self._queue: collections.deque[Any] | None = queue if isinstance(queue, collections.deque) else None
        if self._queue is None:
            _logger.warning(
                "agentportal-otel: opentelemetry-sdk %s keeps its span queue where this release does not"
                " look: spans dropped at OTEL_BSP_MAX_QUEUE_SIZE are not counted, and"
                " AGENTPORTAL_OTEL_MAX_QUEUE_BYTES is not applied. Install the opentelemetry-sdk release"
                " this agentportal-otel was tested with, or a newer agentportal-otel.",
                _sdk_version(),
            )
        self._sized = span_exporter if isinstance(span_exporter, RetryingSpanExporter) else None
        self.drops = DropCounter()
        self._last_warning = 0.0
        self._lock = threading.Lock()

    @property
    def dropped_spans(self) -> int:
        return self.drops.total

    def queued_spans(self) -> int:
        queue = self._queue
        return len(queue) if queue is not None else 0

    def queued_bytes(self) -> float:
        """Estimated encoded size of the queued spans plus the batch being retried."""
        sized = self._sized
        if sized is None:
            return 0.0
        return self.queued_spans() * sized.bytes_per_span + sized.delivery.pending_bytes

    def on_end(self, span: ReadableSpan) -> None:
        queued = self.queued_spans()
        if queued >= self._max_queue_size:
            self._drop(QUEUE_FULL)
            return
        if self._max_queue_bytes is not None and self._sized is not None:
            sized = self._sized
            if queued * sized.bytes_per_span + sized.delivery.pending_bytes >= self._max_queue_bytes:
                self._drop(QUEUE_BYTES)
                return
        super().on_end(span)

    def _drop(self, reason: str) -> None:
        self.drops.add(reason, 1)
        with self._lock:
            now = time.monotonic()
            warn = now - self._last_warning >= _DROP_WARNING_INTERVAL_S
            if warn:
                self._last_warning = now
        if warn:
            bound = (
                f"{self._max_queue_size} spans, OTEL_BSP_MAX_QUEUE_SIZE"
                if reason == QUEUE_FULL
                else f"{self._max_queue_bytes} bytes, AGENTPORTAL_OTEL_MAX_QUEUE_BYTES"
            )
            _logger.warning(
                "agentportal-otel: span export queue full (%s); %d spans dropped so far (reason=%s). "
                "Is the collector reachable? Raise the bound to buffer longer outages.",
                bound,
                self.drops.total,
                reason,
            )


@dataclass
class Providers:
    """What :func:`build_providers` made, for the logger to use and shut down."""

    tracer_provider: TracerProvider
    span_processors: list[SpanProcessor] = field(default_factory=list)
    meter_provider: MeterProvider | None = None
    aggregator: Aggregator | None = None
    """The emitter's synchronous instruments, when our own aggregation is used (:mod:`._aggregate`)."""
    control: ExportControl = field(default_factory=ExportControl)

    def dropped_by_reason(self) -> dict[str, int]:
        """Spans dropped so far, by reason (queue bounds, rejections, spool full, shutdown)."""
        counts = self.control.drops.by_reason()
        for processor in self.span_processors:
            if isinstance(processor, DroppingBatchSpanProcessor):
                for reason, count in processor.drops.by_reason().items():
                    counts[reason] = counts.get(reason, 0) + count
        return counts

    @property
    def dropped_spans(self) -> int:
        return sum(self.dropped_by_reason().values())

    def begin_final(self, budget_s: float) -> None:
        """Shutdown: retry for most of ``budget_s``, then spool (or count) what is left."""
        self.control.begin_final(time.monotonic() + budget_s * _SEND_SHARE)


def build_resource(settings: Settings) -> Resource:
    """``Resource.create`` (which honours ``OTEL_RESOURCE_ATTRIBUTES``) with our service name."""
    return Resource.create({SERVICE_NAME: settings.service_name})


def build_control(settings: Settings) -> ExportControl:
    """The process's export state, with the spool when ``AGENTPORTAL_OTEL_SPOOL_DIR`` is set."""
    spool = Spool(settings.spool_dir, settings.spool_max_bytes) if settings.spool_dir is not None else None
    return ExportControl(spool)


def traces_sender(settings: Settings) -> OTLPSender:
    return OTLPSender(
        settings.traces_endpoint,
        headers=settings.traces_headers,
        timeout_s=settings.traces_timeout_s,
        compression=settings.traces_compression,
        certificate=settings.traces_certificate,
        client_cert=settings.traces_client_cert,
    )


def metrics_sender(settings: Settings) -> OTLPSender:
    return OTLPSender(
        settings.metrics_endpoint,
        headers=settings.metrics_headers,
        timeout_s=settings.metrics_timeout_s,
        compression=settings.metrics_compression,
        certificate=settings.metrics_certificate,
        client_cert=settings.metrics_client_cert,
    )


def build_span_exporters(settings: Settings, control: ExportControl | None = None) -> list[SpanExporter]:
    """One exporter per entry of ``OTEL_TRACES_EXPORTER`` (``none`` gives none)."""
    control = control if control is not None else ExportControl()
    exporters: list[SpanExporter] = []
    for name in settings.traces_exporters:
        if name == "otlp":
            delivery = Delivery(traces_sender(settings), "traces", control, settings.retry_max_backoff_ms / 1000)
            exporters.append(RetryingSpanExporter(delivery))
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "clickhouse":
            from agentportal_otel.clickhouse import create_span_exporter

            exporters.append(create_span_exporter(settings.environ, timeout_s=settings.bsp_export_timeout_ms / 1000))
    return exporters


def build_tracer_provider(
    settings: Settings, exporters: Sequence[SpanExporter] | None = None, control: ExportControl | None = None
) -> Providers:
    """A private :class:`TracerProvider` with one dropping batch processor per exporter."""
    control = control if control is not None else ExportControl()
    provider = TracerProvider(resource=build_resource(settings))
    processors: list[SpanProcessor] = []
    for exporter in build_span_exporters(settings, control) if exporters is None else exporters:
        processor = DroppingBatchSpanProcessor(
            exporter,
            max_queue_size=settings.bsp_max_queue_size,
            schedule_delay_millis=settings.bsp_schedule_delay_ms,
            max_export_batch_size=settings.bsp_max_export_batch_size,
            export_timeout_millis=settings.bsp_export_timeout_ms,
            max_queue_bytes=settings.max_queue_bytes,
        )
        provider.add_span_processor(processor)
        processors.append(processor)
    return Providers(provider, processors, control=control)


def build_metric_exporters(settings: Settings, control: ExportControl | None = None) -> list[MetricExporter]:
    """One exporter per entry of ``OTEL_METRICS_EXPORTER`` (``none`` gives none)."""
    control = control if control is not None else ExportControl()
    exporters: list[MetricExporter] = []
    for name in settings.metrics_exporters:
        if name == "otlp":
            delivery = Delivery(metrics_sender(settings), "metrics", control, settings.retry_max_backoff_ms / 1000)
            exporters.append(RetryingMetricExporter(delivery))
        elif name == "console":
            exporters.append(ConsoleMetricExporter())
    return exporters


def build_metric_readers(
    settings: Settings, exporters: Sequence[MetricExporter], aggregator: Aggregator | None = None
) -> list[MetricReader]:
    """A periodic reader per exporter; with ``aggregator``, readers that export its points too."""
    interval = settings.metric_export_interval_ms
    if aggregator is None:
        return [PeriodicExportingMetricReader(exporter, export_interval_millis=interval) for exporter in exporters]
    resource = build_resource(settings)
    return [ProducingMetricReader(exporter, aggregator, resource, interval) for exporter in exporters]


def _check_protobuf_backend() -> None:
    """Metric encoding goes through protobuf: its pure-Python backend costs several times more CPU."""
    try:
        from google.protobuf.internal import api_implementation  # type: ignore[import-untyped]

        backend = str(api_implementation.Type())
    except Exception:  # a protobuf without that module: nothing to say
        return
    if backend == "python":
        _logger.warning(
            "agentportal-otel: protobuf runs its pure-Python backend (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python "
            "or no binary wheel for this platform); metric export costs several times more CPU. Unset the variable "
            "or install a protobuf wheel with the upb backend."
        )


def build_providers(settings: Settings) -> Providers:
    """Tracer and meter providers for ``settings``, sharing one resource and one export control.

    With a spool, its replay thread starts here (in the process that will export: a proxy
    worker builds its own after the fork).
    """
    _check_protobuf_backend()
    control = build_control(settings)
    providers = build_tracer_provider(settings, control=control)
    exporters = build_metric_exporters(settings, control)
    # Our own aggregation when every exporter wants what it implements (explicit-bucket histograms).
    aggregator = Aggregator(InstrumentationScope(SCOPE_NAME, __version__)) if all(map(supports, exporters)) else None
    providers.aggregator = aggregator
    providers.meter_provider = MeterProvider(
        resource=providers.tracer_provider.resource,
        metric_readers=build_metric_readers(settings, exporters, aggregator),
    )
    if control.spool is not None:
        senders = {}
        if "otlp" in settings.traces_exporters:
            senders["traces"] = traces_sender(settings)
        if "otlp" in settings.metrics_exporters:
            senders["metrics"] = metrics_sender(settings)
        control.spool.start_replay(senders, control, settings.retry_max_backoff_ms / 1000)
    return providers
