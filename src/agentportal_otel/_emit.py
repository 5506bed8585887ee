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
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from agentportal_otel import _attributes as ap
from agentportal_otel._aggregate import Aggregator
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
TIME_TO_FIRST_CHUNK_BUCKETS: Final = DURATION_BUCKETS
"""v1.41.0 ``gen-ai-metrics.md``: time to first chunk "SHOULD be specified with
[ExplicitBucketBoundaries] of [0.01, 0.02, ... 81.92]", the duration's boundaries (the
``0.001 ... 10`` ones belong to the server-side ``gen_ai.server.time_to_first_token``)."""
COST_UNIT: Final = "{USD}"
"""UCUM has no currency units; an annotation in braces is UCUM's way to count things it has no
unit for, as ``{token}`` does."""
_INFERENCE: Final = frozenset({"chat", "text_completion"})
_UNKNOWN_MODALITY: Final = {ap.LATEST_TOKEN_MODALITY: "unknown"}
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
    """Turns call records into spans and metric points on the given tracer and meter.

    ``latest`` selects the metrics of the current semantic-conventions-genai repository
    (``gen_ai.client.inference.*``, ``gen_ai.client.embeddings.*``) instead of v1.41.0's.
    ``instruments`` takes the histograms and counters from our own aggregation
    (:mod:`agentportal_otel._aggregate`) instead of ``meter``; the observable drop counter stays
    on ``meter``.
    """

    def __init__(
        self,
        tracer: Tracer,
        meter: Meter,
        max_tenant_values: int,
        dropped_spans: Callable[[], Mapping[str, int]] | None = None,
        *,
        latest: bool = False,
        instruments: Aggregator | None = None,
    ) -> None:
        self._tracer = tracer
        # The histograms and counters: our own aggregation when the providers are ours, else the SDK's.
        sync: Meter | Aggregator = instruments if instruments is not None else meter
        self._latest = latest
        self._cap = CardinalityCap(max_tenant_values, (ap.TEAM, ap.PROJECT))
        self._duration = sync.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        if latest:
            self._inference_duration = sync.create_histogram(
                ap.LATEST_METRIC_INFERENCE_DURATION,
                unit="s",
                description="GenAI client inference operation duration.",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
            self._embeddings_duration = sync.create_histogram(
                ap.LATEST_METRIC_EMBEDDINGS_DURATION,
                unit="s",
                description="GenAI client embeddings operation duration.",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
            self._usage = {
                name: sync.create_counter(name, unit="{token}", description=description)
                for name, description in (
                    (ap.LATEST_METRIC_INFERENCE_USAGE_INPUT_TOKENS, "Input tokens used, including cached tokens."),
                    (ap.LATEST_METRIC_INFERENCE_USAGE_OUTPUT_TOKENS, "Output tokens used, including reasoning."),
                    (ap.LATEST_METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, "Input tokens read from a cache."),
                    (ap.LATEST_METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, "Input tokens written to a cache."),
                    (ap.LATEST_METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, "Output tokens used for reasoning."),
                )
            }
            self._per_operation = {
                name: sync.create_histogram(
                    name,
                    unit="{token}",
                    description=description,
                    explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
                )
                for name, description in (
                    (ap.LATEST_METRIC_INFERENCE_OPERATION_INPUT_TOKENS, "Input tokens per inference operation."),
                    (ap.LATEST_METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS, "Output tokens per inference operation."),
                    (ap.LATEST_METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS, "Input tokens per embeddings operation."),
                )
            }
        else:
            self._tokens = sync.create_histogram(
                gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE,
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
            )
        self._ttfc = sync.create_histogram(
            ap.LATEST_METRIC_INFERENCE_TIME_TO_FIRST_CHUNK
            if latest
            else gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(TIME_TO_FIRST_CHUNK_BUCKETS),
        )
        self._cost = sync.create_counter(
            ap.METRIC_COST,
            unit=COST_UNIT,
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
        if self._latest:
            self._record_latest(record, attributes)
        else:
            self._duration.record(record.duration_s, attributes)
            if record.input_tokens is not None:
                self._tokens.record(record.input_tokens, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: "input"})
            if record.output_tokens is not None:
                self._tokens.record(record.output_tokens, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: "output"})
        if record.time_to_first_chunk_s is not None:
            self._ttfc.record(record.time_to_first_chunk_s, attributes)
        if record.cost_usd:
            self._cost.add(record.cost_usd, attributes)

    def _record_latest(self, record: CallRecord, attributes: dict[str, AttributeValue]) -> None:
        if record.operation == "embeddings":
            self._embeddings_duration.record(record.duration_s, attributes)
            if record.input_tokens is not None:
                self._per_operation[ap.LATEST_METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS].record(
                    record.input_tokens, attributes
                )
            return
        if record.operation not in _INFERENCE:
            self._duration.record(record.duration_s, attributes)
            return
        self._inference_duration.record(record.duration_s, attributes)
        # "Instrumentations SHOULD record this metric for each inference operation, including
        # failed ones [...] or `0` if the response was not received or did not contain token
        # usage"; LiteLLM does not break usage down by modality, so it is `unknown`.
        # The usage counters take no error.type (token-metrics.yaml); the per-operation
        # histograms do.
        counted = {k: v for k, v in attributes.items() if k != error_attributes.ERROR_TYPE}
        counted.update(_UNKNOWN_MODALITY)
        for name, value in (
            (ap.LATEST_METRIC_INFERENCE_USAGE_INPUT_TOKENS, record.input_tokens),
            (ap.LATEST_METRIC_INFERENCE_USAGE_OUTPUT_TOKENS, record.output_tokens),
            (ap.LATEST_METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, record.cache_read_tokens),
            (ap.LATEST_METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, record.cache_write_tokens),
            (ap.LATEST_METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, record.reasoning_tokens),
        ):
            self._usage[name].add(value or 0, counted)
        self._per_operation[ap.LATEST_METRIC_INFERENCE_OPERATION_INPUT_TOKENS].record(
            record.input_tokens or 0, attributes
        )
        self._per_operation[ap.LATEST_METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS].record(
            record.output_tokens or 0, attributes
        )
