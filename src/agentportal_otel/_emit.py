"""Emission: one :class:`~agentportal_otel._mapping.CallRecord` -> one span and metric points.

Spans are created after the call with the explicit start and end times from LiteLLM's
payload, as children of the caller's span when the proxy request carried a W3C
``traceparent``.  Metrics follow the GenAI semantic conventions (instrument names, units
and bucket boundaries of the OTel GenAI instrumentations), plus a USD cost counter.
Tenant dimensions pass through a cardinality cap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from agentportal_otel import _attributes as ap
from agentportal_otel._fastspan import start_span
from agentportal_otel._mapping import CallRecord

_logger = logging.getLogger("agentportal_otel")

DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
TIME_TO_FIRST_CHUNK_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
_PROPAGATOR: Final = TraceContextTextMapPropagator()


class CardinalityCap:
    """Lets at most ``limit`` distinct values through per dimension; the rest become ``other``."""

    def __init__(self, limit: int, dimensions: Iterable[str]) -> None:
        self._limit = limit
        self._seen: dict[str, set[AttributeValue]] = {name: set() for name in dimensions}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def apply(self, attributes: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        for name, seen in self._seen.items():
            value = attributes.get(name)
            if value is None or value in seen:
                continue
            with self._lock:
                if value in seen:
                    continue
                if len(seen) < self._limit:
                    seen.add(value)
                    continue
                first_overflow = name not in self._warned
                self._warned.add(name)
            attributes[name] = ap.OTHER
            if first_overflow:
                _logger.warning(
                    "agentportal-otel: more than %d distinct %s values; further ones are recorded as %r in "
                    "metrics (spans keep the real value). Raise AGENTPORTAL_OTEL_MAX_TENANT_VALUES if expected.",
                    self._limit,
                    name,
                    ap.OTHER,
                )
        return attributes


class Emitter:
    """Turns call records into spans and metric points on the given tracer and meter."""

    def __init__(
        self,
        tracer: Tracer,
        meter: Meter,
        max_tenant_values: int,
        dropped_spans: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._tracer = tracer
        self._cap = CardinalityCap(max_tenant_values, (ap.TEAM, ap.PROJECT))
        self._duration = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._tokens = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        self._ttfc = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(TIME_TO_FIRST_CHUNK_BUCKETS),
        )
        self._cost = meter.create_counter(
            ap.METRIC_COST,
            unit="USD",
            description="Cost of GenAI calls in US dollars, as computed by LiteLLM.",
        )
        if dropped_spans is not None:

            def observe(_options: CallbackOptions) -> Iterable[Observation]:
                # One series per reason (queue_full, queue_bytes, rejected, spool_full, shutdown).
                for reason, count in dropped_spans().items():
                    yield Observation(count, {"reason": reason})

            meter.create_observable_counter(
                "agentportal.spans.dropped",
                callbacks=[observe],
                unit="{span}",
                description="Spans dropped: export queue full, rejected by the collector, or unsent at shutdown.",
            )

    def emit_span(self, record: CallRecord, extra: Callable[[], Mapping[str, AttributeValue]] | None = None) -> None:
        """Create, fill and end the call's span (CLIENT kind, explicit timestamps).

        ``extra`` computes span-only attributes (message content); it is called only when
        the span is recording.
        """
        context: Context | None = _PROPAGATOR.extract(record.trace_headers) if record.trace_headers else None
        # _fastspan: the mapping's attributes are already valid; the SDK need not check each again.
        span = start_span(
            self._tracer,
            record.name,
            context=context,
            kind=SpanKind.CLIENT,
            attributes=record.attributes,
            start_time=record.start_ns,
        )
        if span.is_recording():
            if extra is not None:
                span.set_attributes(extra())
            if record.error_type is not None:
                span.add_event(
                    "exception",
                    {"exception.type": record.error_type, "exception.message": record.error_message or ""},
                    timestamp=record.end_ns,
                )
                span.set_status(Status(StatusCode.ERROR, record.error_message))
        span.end(end_time=record.end_ns)

    def record_metrics(self, record: CallRecord) -> None:
        """Record duration, tokens, time to first chunk and cost, tenant values capped."""
        attributes = self._cap.apply(dict(record.metric_attributes))
        self._duration.record(record.duration_s, attributes)
        if record.input_tokens is not None:
            self._tokens.record(record.input_tokens, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: "input"})
        if record.output_tokens is not None:
            self._tokens.record(record.output_tokens, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: "output"})
        if record.time_to_first_chunk_s is not None:
            self._ttfc.record(record.time_to_first_chunk_s, attributes)
        if record.cost_usd:
            self._cost.add(record.cost_usd, attributes)
