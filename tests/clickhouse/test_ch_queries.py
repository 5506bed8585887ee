"""Each query against totals computed in Python from the very spans the exporter wrote."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentportal_otel.clickhouse import ClickHouseSpanExporter
from agentportal_otel.clickhouse import _queries as q

pytestmark = pytest.mark.slow

# Recent enough that the 30-day TTL of the default schema never drops the test data.
BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)
ATTR = {"team": "agentportal.team.id", "project": "agentportal.project", "model": "gen_ai.request.model"}
ATTR |= {"key_alias": "agentportal.key.alias", "user": "agentportal.user.id"}


def _ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 10**9


@pytest.fixture(scope="module")
def loaded(chdb_url: str) -> Any:
    rng = random.Random(7)
    memory = InMemorySpanExporter()
    exporter = ClickHouseSpanExporter(chdb_url, database="q_db")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel")
    for i in range(400):
        start = BASE + timedelta(minutes=rng.randrange(0, 3 * 24 * 60), microseconds=rng.randrange(10**6))
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        for dim, key in ATTR.items():
            if rng.random() < 0.85:
                attrs[key] = rng.choice([f"{dim}-a", f"{dim}-b", "", "O'Brien; DROP TABLE otel_traces; --"])
        attrs["gen_ai.usage.input_tokens"] = rng.randrange(0, 5000)
        attrs["gen_ai.usage.output_tokens"] = rng.randrange(0, 900)
        attrs["agentportal.cost.usd"] = rng.choice([0.00042, 7.5e-07, 0.0125, 1.0])
        failed = rng.random() < 0.2
        if failed:
            attrs["error.type"] = rng.choice(["RateLimitError", "APIConnectionError"])
        span = tracer.start_span("chat x", kind=SpanKind.CLIENT, attributes=attrs, start_time=_ns(start))
        if failed:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=_ns(start) + rng.randrange(1, 5 * 10**9))
        if i % 10 == 0:  # a non-LLM span: must never be counted
            tracer.start_span("proxy", start_time=_ns(start)).end(end_time=_ns(start) + 10)
    provider.shutdown()
    assert exporter.export(memory.get_finished_spans()).name == "SUCCESS"
    exporter.shutdown()
    from agentportal_otel.clickhouse import connect

    backend = connect(chdb_url)
    yield backend, [s for s in memory.get_finished_spans() if "gen_ai.operation.name" in (s.attributes or {})]
    backend.close()


def _label(span: ReadableSpan, dim: str) -> str:
    attrs = span.attributes or {}
    return str(attrs[ATTR[dim]]) if ATTR[dim] in attrs else "unattributed"


def _quantile(values: list[int], level: float) -> float:
    ordered = sorted(values)
    return ordered[int(level * len(ordered))] / 1e6


@pytest.mark.parametrize(
    ("group_by", "bucket"),
    [((), None), (("team",), None), (("team", "model"), "day"), (("project", "key_alias", "user"), "hour")],
)
def test_usage_matches_python(loaded: Any, group_by: tuple[q.Dimension, ...], bucket: Any) -> None:
    backend, spans = loaded
    start, end = BASE + timedelta(hours=5), BASE + timedelta(days=2, hours=3)
    target = q.Target(database="q_db")
    rows = q.usage(backend, start=start, end=end, group_by=group_by, bucket=bucket, target=target, source="raw")
    groups: dict[Any, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        moment = datetime.fromtimestamp(span.start_time // 10**9, tz=timezone.utc)
        if not (start <= moment < end):
            continue
        key_bucket = None
        if bucket == "hour":
            key_bucket = moment.replace(minute=0, second=0)
        elif bucket == "day":
            key_bucket = moment.replace(hour=0, minute=0, second=0)
        groups[(key_bucket, tuple((d, _label(span, d)) for d in group_by))].append(span)
    assert len(rows) == len(groups)
    for row in rows:
        members = groups[(row.bucket, row.dimensions)]
        attrs = [s.attributes or {} for s in members]
        durations = [s.end_time - s.start_time for s in members]
        assert row.calls == len(members)
        assert row.errors == sum(s.status.status_code is StatusCode.ERROR for s in members)
        assert row.input_tokens == sum(a["gen_ai.usage.input_tokens"] for a in attrs)
        assert row.output_tokens == sum(a["gen_ai.usage.output_tokens"] for a in attrs)
        assert row.cost_usd == pytest.approx(sum(a["agentportal.cost.usd"] for a in attrs))
        assert row.p50_ms == pytest.approx(_quantile(durations, 0.5))
        assert row.p95_ms == pytest.approx(_quantile(durations, 0.95))


def test_unattributed_and_empty_are_separate(loaded: Any) -> None:
    backend, _ = loaded
    rows = q.usage(backend, start=BASE, end=BASE + timedelta(days=4), group_by=("team",), target=q.Target("q_db"))
    labels = [dict(r.dimensions)["team"] for r in rows]
    assert "unattributed" in labels and "" in labels and len(labels) == len(set(labels))


def test_recent_calls_filters_and_paging(loaded: Any) -> None:
    backend, spans = loaded
    start, end = BASE, BASE + timedelta(days=4)
    filters = q.Filters(team="team-a", status="error")
    expected = sorted(
        (
            s
            for s in spans
            if (s.attributes or {}).get("agentportal.team.id") == "team-a" and s.status.status_code is StatusCode.ERROR
        ),
        key=lambda s: (-s.start_time, format(s.context.span_id, "016x")),
    )
    page1 = q.recent_calls(backend, start=start, end=end, filters=filters, limit=5, target=q.Target("q_db"))
    page2 = q.recent_calls(backend, start=start, end=end, filters=filters, limit=5, offset=5, target=q.Target("q_db"))
    got = [c.span_id for c in page1 + page2]
    assert got == [format(s.context.span_id, "016x") for s in expected[:10]]
    assert all(c.status == "Error" and c.team == "team-a" for c in page1)


def test_trace_lookup_and_errors(loaded: Any) -> None:
    backend, spans = loaded
    span = spans[17]
    rows = q.trace(backend, format(span.context.trace_id, "032x"), target=q.Target("q_db"))
    assert [r.span_id for r in rows] == [format(span.context.span_id, "016x")]
    assert rows[0].attributes["gen_ai.operation.name"] == "chat"
    assert q.trace(backend, "0" * 31 + "1", target=q.Target("q_db")) == []
    with pytest.raises(ValueError):
        q.trace(backend, "'; DROP TABLE otel_traces; --", target=q.Target("q_db"))
    errors = q.error_breakdown(backend, start=BASE, end=BASE + timedelta(days=4), target=q.Target("q_db"))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for s in spans:
        if s.status.status_code is StatusCode.ERROR:
            counts[(str((s.attributes or {})["error.type"]), _label(s, "model"))] += 1
    assert {(e.error_type, e.model): e.calls for e in errors} == counts


@pytest.mark.parametrize(
    "hostile",
    ["'; DROP TABLE otel_traces; --", "team-a' OR '1'='1", "x\\'; SELECT 1; --", "a\tb\nc", "{f_team:String}"],
)
def test_injection_through_filters_is_inert(loaded: Any, hostile: str) -> None:
    backend, spans = loaded
    window = {"start": BASE, "end": BASE + timedelta(days=4), "target": q.Target("q_db")}
    for name in ("project", "team", "model", "key_alias", "user"):
        calls = q.recent_calls(backend, filters=q.Filters(**{name: hostile}), limit=1000, **window)
        literal = [s for s in spans if hostile in (s.attributes or {}).values()]
        assert all(hostile in (c.project, c.team, c.model, c.key_alias, c.user) for c in calls)
        assert len(calls) <= len(literal)
    assert backend.query("EXISTS TABLE q_db.otel_traces")[0]["result"] == 1
