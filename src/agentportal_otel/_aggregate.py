"""Our own aggregation of the call metrics, for the providers the plugin builds itself.

The SDK's synchronous instruments cost about 17 µs per ``record()`` on a quiet machine (SDK
1.45): every measurement re-validates its attribute dict (``_clean_attribute_value``), builds a
``Measurement``, asks the exemplar filter, copies the attributes and sorts and hashes them
(``_hash_attributes``) before adding one number.  A call records four to nine points, so that
was about half of the plugin's CPU per request (issue 11).  The attribute sets here come from
the mapping, already valid, and repeat from call to call: a ``frozenset`` of their items finds
the series, and a point costs about 1 µs.

:class:`Aggregator` offers the two synchronous instruments the emitter uses (explicit-bucket
histograms and monotonic counters) with the SDK's signatures, and :class:`ProducingMetricReader`
hands what they aggregated to the exporter together with whatever the SDK's own instruments
(the observable drop counter) collected, in one export, as a MetricProducer of the OTel
specification would.  What reaches the exporter is what the SDK would have made of the same
measurements: the same temporality per the exporter's preference (cumulative or delta), the same
start times, min and max, and the same ``otel.metric.overflow`` series past 2000 attribute sets
per instrument (``tests/test_aggregate.py`` compares both on the same calls).

It is used only when the exporter wants what it implements; with
``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=base2_exponential_bucket_histogram``,
or with providers injected by a host, the emitter records through the SDK's instruments as
before.  No exemplars are recorded (the SDK records none either: its default filter wants a
sampled span in the context, and the hooks run outside any).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from math import inf, isfinite
from typing import Any, Final

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.view import DefaultAggregation, ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

CARDINALITY_LIMIT: Final = 2000
"""Attribute sets per instrument and reader before new ones go to the overflow series: the SDK's
default (``_view_instrument_match._DEFAULT_CARDINALITY_LIMIT``) and the specification's."""
_OVERFLOW: Final[Mapping[str, AttributeValue]] = {"otel.metric.overflow": True}
_OVERFLOW_KEY: Final = frozenset(_OVERFLOW.items())


class _Store:
    """One reader's series: per instrument, attribute set -> mutable state."""

    __slots__ = ("delta", "last_collect_ns", "series")

    def __init__(self, temporality: Mapping[type, AggregationTemporality], instruments: int) -> None:
        self.delta = {
            kind: temporality.get(kind, AggregationTemporality.CUMULATIVE) is AggregationTemporality.DELTA
            for kind in (Histogram, Counter)
        }
        self.last_collect_ns = 0
        self.series: list[dict[frozenset[tuple[str, AttributeValue]], list[Any]]] = [{} for _ in range(instruments)]


class _Instrument:
    kind: type

    def __init__(self, aggregator: Aggregator, index: int, name: str, unit: str, description: str) -> None:
        self._aggregator = aggregator
        self._index = index
        self.name = name
        self.unit = unit
        self.description = description

    def _series(
        self, store: _Store, key: frozenset[tuple[str, AttributeValue]], attributes: Mapping[str, AttributeValue]
    ) -> list[Any]:
        """A new series (the aggregator's lock is held): start time as the SDK chooses it."""
        series = store.series[self._index]
        if len(series) >= CARDINALITY_LIMIT:
            key, attributes = _OVERFLOW_KEY, _OVERFLOW
            found = series.get(key)
            if found is not None:
                return found
        state = self._new_state(dict(attributes), store.last_collect_ns or time.time_ns())
        series[key] = state
        return state

    def _new_state(self, attributes: dict[str, AttributeValue], start_ns: int) -> list[Any]:
        raise NotImplementedError


class FastHistogram(_Instrument):
    """An explicit-bucket histogram: per series ``[attributes, start, counts, sum, min, max]``."""

    kind = Histogram

    def __init__(
        self, aggregator: Aggregator, index: int, name: str, unit: str, description: str, bounds: Sequence[float]
    ) -> None:
        super().__init__(aggregator, index, name, unit, description)
        self.bounds = tuple(float(bound) for bound in bounds)

    def _new_state(self, attributes: dict[str, AttributeValue], start_ns: int) -> list[Any]:
        return [attributes, start_ns, [0] * (len(self.bounds) + 1), 0, inf, -inf]

    def record(self, amount: float, attributes: Mapping[str, AttributeValue]) -> None:
        if amount < 0 or not isfinite(amount):  # the SDK's Histogram refuses both
            return
        key = frozenset(attributes.items())
        bucket = bisect_left(self.bounds, amount)
        aggregator = self._aggregator
        with aggregator.lock:
            for store in aggregator.stores:
                state = store.series[self._index].get(key) or self._series(store, key, attributes)
                state[2][bucket] += 1
                state[3] += amount
                if amount < state[4]:
                    state[4] = amount
                if amount > state[5]:
                    state[5] = amount

    def point(self, state: list[Any], start_ns: int, now_ns: int) -> HistogramDataPoint:
        counts = state[2]
        return HistogramDataPoint(
            attributes=state[0],
            start_time_unix_nano=start_ns,
            time_unix_nano=now_ns,
            count=sum(counts),
            sum=state[3],
            bucket_counts=tuple(counts),
            explicit_bounds=self.bounds,
            min=state[4],
            max=state[5],
            exemplars=[],
        )


class FastCounter(_Instrument):
    """A monotonic counter: per series ``[attributes, start, value]``."""

    kind = Counter

    def _new_state(self, attributes: dict[str, AttributeValue], start_ns: int) -> list[Any]:
        return [attributes, start_ns, 0]

    def add(self, amount: float, attributes: Mapping[str, AttributeValue]) -> None:
        if amount < 0 or not isfinite(amount):  # the SDK's Counter refuses negative amounts too
            return
        key = frozenset(attributes.items())
        aggregator = self._aggregator
        with aggregator.lock:
            for store in aggregator.stores:
                state = store.series[self._index].get(key) or self._series(store, key, attributes)
                state[2] += amount

    def point(self, state: list[Any], start_ns: int, now_ns: int) -> NumberDataPoint:
        return NumberDataPoint(
            attributes=state[0], start_time_unix_nano=start_ns, time_unix_nano=now_ns, value=state[2], exemplars=[]
        )


class Aggregator:
    """The emitter's synchronous instruments, aggregated here instead of in the SDK.

    ``create_histogram`` and ``create_counter`` take the arguments of the OTel ``Meter``'s;
    :class:`ProducingMetricReader` registers a store per reader and collects it.
    """

    def __init__(self, scope: InstrumentationScope) -> None:
        self.scope = scope
        self.lock = threading.Lock()
        self.stores: tuple[_Store, ...] = ()
        self._instruments: list[FastHistogram | FastCounter] = []

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float],
    ) -> FastHistogram:
        with self.lock:
            instrument = FastHistogram(
                self, len(self._instruments), name, unit, description, explicit_bucket_boundaries_advisory
            )
            self._add(instrument)
        return instrument

    def create_counter(self, name: str, unit: str = "", description: str = "") -> FastCounter:
        with self.lock:
            instrument = FastCounter(self, len(self._instruments), name, unit, description)
            self._add(instrument)
        return instrument

    def _add(self, instrument: FastHistogram | FastCounter) -> None:
        self._instruments.append(instrument)
        for store in self.stores:
            store.series.append({})

    def register(self, temporality: Mapping[type, AggregationTemporality]) -> _Store:
        """A store for one reader; ``temporality`` is its exporter's preference per instrument class."""
        with self.lock:
            store = _Store(temporality, len(self._instruments))
            self.stores = (*self.stores, store)
        return store

    def collect(self, store: _Store) -> list[Metric]:
        """The store's points now, in instrument order; a delta store starts afresh."""
        now_ns = time.time_ns()
        with self.lock:
            store.last_collect_ns = now_ns
            taken: list[tuple[FastHistogram | FastCounter, bool, list[list[Any]]]] = []
            for instrument, series in zip(self._instruments, store.series, strict=True):
                delta = store.delta[instrument.kind]
                if delta:
                    states = list(series.values())
                    series.clear()
                else:  # copy what a later record() would change
                    states = [
                        [state[0], state[1], list(state[2]), *state[3:]]
                        if isinstance(instrument, FastHistogram)
                        else list(state)
                        for state in series.values()
                    ]
                taken.append((instrument, delta, states))
        metrics: list[Metric] = []
        for instrument, delta, states in taken:
            if not states:
                continue
            temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
            # A delta store's series were made since the last collection, with it as their start.
            points = [instrument.point(state, state[1], now_ns) for state in states]
            data: HistogramData | Sum
            if isinstance(instrument, FastHistogram):
                data = HistogramData(data_points=points, aggregation_temporality=temporality)  # type: ignore[arg-type]
            else:
                data = Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=True)  # type: ignore[arg-type]
            metrics.append(
                Metric(name=instrument.name, description=instrument.description, unit=instrument.unit, data=data)
            )
        return metrics


def supports(exporter: MetricExporter) -> bool:
    """Whether :class:`Aggregator` implements the histogram aggregation ``exporter`` asks for."""
    preferred = getattr(exporter, "_preferred_aggregation", None) or {}
    wanted = preferred.get(Histogram, DefaultAggregation())
    return isinstance(wanted, DefaultAggregation | ExplicitBucketHistogramAggregation)


class ProducingMetricReader(PeriodicExportingMetricReader):
    """A periodic reader that exports the :class:`Aggregator`'s points with the SDK's.

    The aggregator's metrics join the scope of the same name in the SDK's collection, so one
    OTLP request per export carries everything, as before.  The SDK calls
    ``_receive_metrics`` only when its own instruments collected something (``collect`` is
    final): the emitter's ``agentportal.spans.dropped`` reports ``reason=queue_full`` from the
    first collection on, even at 0, so that is every time.
    """

    def __init__(
        self, exporter: MetricExporter, aggregator: Aggregator, resource: Resource, export_interval_millis: float
    ) -> None:
        super().__init__(exporter, export_interval_millis=export_interval_millis)
        self._aggregator = aggregator
        self._resource = resource
        self._store = aggregator.register(getattr(exporter, "_preferred_temporality", None) or {})

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        merged = _merge(metrics_data, self._aggregator.collect(self._store), self._aggregator.scope, self._resource)
        super()._receive_metrics(merged, timeout_millis=timeout_millis, **kwargs)


def _merge(data: MetricsData, metrics: list[Metric], scope: InstrumentationScope, resource: Resource) -> MetricsData:
    """``data`` with ``metrics`` first in the scope of the same name and version (the SDK's order:
    synchronous instruments were created before the observable one)."""
    if not metrics:
        return data
    resources = list(data.resource_metrics)
    for r, resource_metrics in enumerate(resources):
        if resource_metrics.resource != resource:
            continue
        scopes = list(resource_metrics.scope_metrics)
        for s, scope_metrics in enumerate(scopes):
            if (scope_metrics.scope.name, scope_metrics.scope.version) == (scope.name, scope.version):
                scopes[s] = ScopeMetrics(
                    scope=scope_metrics.scope,
                    metrics=[*metrics, *scope_metrics.metrics],
                    schema_url=scope_metrics.schema_url,
                )
                break
        else:
            scopes.append(ScopeMetrics(scope=scope, metrics=metrics, schema_url=scope.schema_url or ""))
        resources[r] = ResourceMetrics(
            resource=resource_metrics.resource, scope_metrics=scopes, schema_url=resource_metrics.schema_url
        )
        return MetricsData(resource_metrics=resources)
    own = ResourceMetrics(
        resource=resource,
        scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics, schema_url=scope.schema_url or "")],
        schema_url=resource.schema_url,
    )
    return MetricsData(resource_metrics=[*resources, own])
