"""Our own metric aggregation (``_aggregate``) exports what the SDK's instruments would.

Each test feeds the same calls to the emitter twice, once recording through the SDK's
instruments and once through :class:`Aggregator` behind :class:`ProducingMetricReader`, and
compares what reaches the exporters.  Times differ between the two runs, so start and end times
are compared by their relations (a cumulative series keeps its start, a delta point starts
where the previous collection ended).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from agentportal_otel import _attributes as ap
from agentportal_otel._aggregate import CARDINALITY_LIMIT, Aggregator, ProducingMetricReader, supports
from agentportal_otel._emit import Emitter
from agentportal_otel._mapping import CallRecord
from agentportal_otel._providers import SCOPE_NAME, build_providers
from agentportal_otel._settings import Settings
from agentportal_otel._version import __version__

RESOURCE = Resource.create({"service.name": "aggregate-test"})
SCOPE = InstrumentationScope(SCOPE_NAME, __version__)


class Capture(MetricExporter):
    """Keeps every export (a sink standing in for the collector; the wire is tested elsewhere)."""

    def __init__(self, temporality: AggregationTemporality) -> None:
        super().__init__(preferred_temporality={Counter: temporality, Histogram: temporality})
        self.exports: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def _record(rng: random.Random) -> CallRecord:
    team = rng.choice(["search", "ads", "infra"])
    operation = rng.choice(["chat", "chat", "chat", "embeddings", "text_completion", "image_generation"])
    failed = rng.random() < 0.15
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": rng.choice(["openai", "anthropic"]),
        "gen_ai.request.model": rng.choice(["gpt-4o", "claude-3", "text-embedding-3"]),
        "agentportal.team.id": team,
        "agentportal.project": f"{team}-{rng.randint(1, 3)}",
    }
    if failed:
        attributes["error.type"] = rng.choice(["RateLimitError", "Timeout"])
    start = 1_700_000_000_000_000_000 + rng.randint(0, 10**12)
    return CallRecord(
        name=f"{operation} model",
        start_ns=start,
        end_ns=start + int(rng.lognormvariate(-1, 1.5) * 1e9),
        attributes={},
        metric_attributes=attributes,
        operation=operation,
        input_tokens=None if failed else rng.randint(0, 5000),
        output_tokens=None if failed or operation == "embeddings" else rng.randint(0, 2000),
        cache_read_tokens=rng.choice([None, 0, 64]),
        cache_write_tokens=rng.choice([None, 32]),
        reasoning_tokens=rng.choice([None, 0, 12]),
        cost_usd=None if failed else rng.choice([0.0, rng.random() / 100]),
        time_to_first_chunk_s=rng.choice([None, rng.random()]),
        error_type=attributes.get("error.type"),
        error_message=None,
        dedupe_key=None,
        trace_headers={},
    )


def _pipelines(
    temporality: AggregationTemporality, latest: bool
) -> Iterator[tuple[Emitter, PeriodicExportingMetricReader, Capture]]:
    """The SDK's pipeline, then ours, each with the emitter on top."""
    for ours in (False, True):
        exporter = Capture(temporality)
        aggregator = Aggregator(SCOPE) if ours else None
        reader: PeriodicExportingMetricReader = (
            ProducingMetricReader(exporter, aggregator, RESOURCE, math.inf)
            if aggregator is not None
            else PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
        )
        meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter(SCOPE_NAME, __version__)
        tracer = TracerProvider().get_tracer(SCOPE_NAME)
        emitter = Emitter(
            tracer, meter, 1000, dropped_spans=lambda: {"queue_full": 0}, latest=latest, instruments=aggregator
        )
        yield emitter, reader, exporter


def _normal(data: MetricsData) -> list[tuple[Any, ...]]:
    """Everything of an export but the times, metrics and series in a stable order (OTLP gives
    their order no meaning: the SDK lists metrics by first use, we by creation)."""
    out: list[tuple[Any, ...]] = []
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = []
                for point in metric.data.data_points:
                    attributes = tuple(sorted(point.attributes.items()))  # type: ignore[union-attr]
                    if isinstance(metric.data, HistogramData):
                        histogram: Any = point
                        points.append(
                            (
                                attributes,
                                histogram.count,
                                round(histogram.sum, 9),
                                tuple(histogram.bucket_counts),
                                tuple(histogram.explicit_bounds),
                                histogram.min,
                                histogram.max,
                            )
                        )
                    else:
                        points.append((attributes, round(point.value, 9)))  # type: ignore[union-attr]
                out.append(
                    (
                        resource_metrics.resource.attributes.get("service.name"),
                        scope_metrics.scope.name,
                        metric.name,
                        metric.unit,
                        metric.description,
                        type(metric.data).__name__,
                        getattr(metric.data, "aggregation_temporality", None),
                        getattr(metric.data, "is_monotonic", None),
                        sorted(points),
                    )
                )
    return sorted(out, key=lambda row: row[2])


def _times(data: MetricsData) -> dict[tuple[str, tuple[Any, ...]], tuple[int, int]]:
    return {
        (metric.name, tuple(sorted(point.attributes.items()))): (point.start_time_unix_nano, point.time_unix_nano)  # type: ignore[union-attr]
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric.data.data_points
        if metric.name != "agentportal.spans.dropped"
    }


@pytest.mark.parametrize("latest", [False, True], ids=["v1.41", "latest"])
@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_same_points_as_the_sdk(temporality: AggregationTemporality, latest: bool) -> None:
    rounds = [[_record(random.Random(f"{n}-{i}")) for i in range(300)] for n in range(3)]
    rounds[2] = rounds[2][:40]  # a quiet period: delta exports only what it saw
    results = []
    for emitter, reader, exporter in _pipelines(temporality, latest):
        for calls in rounds:
            for record in calls:
                emitter.record_metrics(record)
            reader.collect()
        reader.collect()  # nothing new since
        results.append(exporter.exports)
    sdk, ours = results
    assert len(sdk) == len(ours) == 4
    for n, (expected, got) in enumerate(zip(sdk, ours, strict=True)):
        assert _normal(got) == _normal(expected), f"collection {n}"
    names = {row[2] for row in _normal(ours[0])}
    assert ("gen_ai.client.inference.duration" in names) is latest
    assert ap.METRIC_COST in names and "agentportal.spans.dropped" in names

    # Times: a cumulative series keeps its start; a delta point starts where the last collection ended.
    first, second = _times(ours[0]), _times(ours[1])
    for key, (start, end) in second.items():
        assert start < end
        if key in first:
            expected_start = first[key][1] if temporality is AggregationTemporality.DELTA else first[key][0]
            assert start == expected_start, key


def test_overflow_past_the_cardinality_limit_as_the_sdk() -> None:
    results = []
    for ours in (False, True):
        exporter = Capture(AggregationTemporality.CUMULATIVE)
        aggregator = Aggregator(SCOPE)
        reader = (
            ProducingMetricReader(exporter, aggregator, RESOURCE, math.inf)
            if ours
            else PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
        )
        meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter(SCOPE_NAME, __version__)
        instruments: Any = aggregator if ours else meter
        histogram = instruments.create_histogram("h", "s", "d", explicit_bucket_boundaries_advisory=[0.1, 1.0])
        counter = instruments.create_counter("c", "1", "d")
        for i in range(CARDINALITY_LIMIT + 150):
            histogram.record(i / 1000, {"user": f"u{i}"})
            counter.add(1, {"user": f"u{i % (CARDINALITY_LIMIT + 10)}"})
        # Our reader exports when the SDK collected a point, which the drop counter always gives.
        meter.create_observable_counter("dropped", callbacks=[lambda _options: [_observation()]])
        reader.collect()
        results.append(_normal(exporter.exports[-1]))
    sdk, ours_ = results
    assert ours_ == sdk
    histogram_points = next(row[-1] for row in ours_ if row[2] == "h")
    assert len(histogram_points) == CARDINALITY_LIMIT + 1
    overflow = next(point for point in histogram_points if point[0] == (("otel.metric.overflow", True),))
    assert overflow[1] == 150


def _observation() -> Any:
    from opentelemetry.metrics import Observation

    return Observation(0, {"reason": "queue_full"})


def test_concurrent_records_are_all_counted() -> None:
    aggregator = Aggregator(SCOPE)
    exporter = Capture(AggregationTemporality.DELTA)
    reader = ProducingMetricReader(exporter, aggregator, RESOURCE, math.inf)
    meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter(SCOPE_NAME, __version__)
    meter.create_observable_counter("dropped", callbacks=[lambda _options: [_observation()]])
    histogram = aggregator.create_histogram("h", explicit_bucket_boundaries_advisory=[1.0])
    counter = aggregator.create_counter("c")
    stop = threading.Event()

    def collect() -> None:
        while not stop.wait(0.005):
            reader.collect()

    def work(seed: int) -> None:
        for i in range(10_000):
            attributes = {"team": f"t{(seed + i) % 7}"}
            histogram.record(0.5, attributes)
            counter.add(2, attributes)

    collector = threading.Thread(target=collect)
    collector.start()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    collector.join()
    reader.collect()
    counts = {"h": 0, "c": 0.0}
    for data in exporter.exports:
        for metric in data.resource_metrics[0].scope_metrics[0].metrics:
            for point in metric.data.data_points:
                if metric.name == "h":
                    counts["h"] += point.count  # type: ignore[union-attr]
                elif metric.name == "c":
                    counts["c"] += point.value  # type: ignore[union-attr]
    assert len(exporter.exports) > 3
    assert counts == {"h": 40_000, "c": 80_000}  # delta points add up to every record, none twice


def test_values_the_sdk_would_refuse_are_skipped() -> None:
    aggregator = Aggregator(SCOPE)
    store = aggregator.register({})
    histogram = aggregator.create_histogram("h", explicit_bucket_boundaries_advisory=[1.0])
    counter = aggregator.create_counter("c")
    for bad in (math.nan, math.inf, -math.inf):
        histogram.record(bad, {})
        counter.add(bad, {})
    counter.add(-1, {})
    histogram.record(-0.5, {})
    assert aggregator.collect(store) == []
    histogram.record(2.0, {})
    (metric,) = aggregator.collect(store)
    (point,) = metric.data.data_points
    assert (point.count, point.bucket_counts, point.min, point.max) == (1, (0, 1), 2.0, 2.0)  # type: ignore[union-attr]


def _owned(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> Aggregator | None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp", **environ})
    providers = build_providers(settings)
    try:
        return providers.aggregator
    finally:
        providers.tracer_provider.shutdown()
        assert providers.meter_provider is not None
        providers.meter_provider.shutdown(timeout_millis=100)


def test_owned_providers_aggregate_unless_the_exporter_wants_exponential_histograms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(_owned(monkeypatch, {}), Aggregator)
    exponential = {"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram"}
    assert _owned(monkeypatch, exponential) is None


def test_supports_explicit_bucket_histograms_only() -> None:
    exporter = Capture(AggregationTemporality.CUMULATIVE)
    assert supports(exporter)
    exporter._preferred_aggregation = {Histogram: ExplicitBucketHistogramAggregation()}
    assert supports(exporter)
    exporter._preferred_aggregation = {Histogram: ExponentialBucketHistogramAggregation()}
    assert not supports(exporter)
