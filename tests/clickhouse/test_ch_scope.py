"""Query-layer pieces the monitoring API stands on: team scope, p99 and time to first chunk,
paging totals, one call's detail with its events, errors over time. Checked against the very
spans the exporter wrote, on chDB."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from agentportal_otel.clickhouse import ClickHouseSpanExporter, connect
from agentportal_otel.clickhouse import _queries as q

pytestmark = pytest.mark.slow

BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
WINDOW = {"start": BASE - timedelta(hours=1), "end": BASE + timedelta(days=1), "target": q.Target("scope_db")}
TEAMS = ("team-a", "team-b")


def _ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 10**9


@pytest.fixture(scope="module")
def loaded(chdb_url: str) -> Any:
    """120 traces: a caller span (no team) with one LLM child of team-a or team-b, some
    streamed (time to first chunk), some failed with an exception event."""
    rng = random.Random(11)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel")
    for i in range(120):
        start = BASE + timedelta(minutes=rng.randrange(0, 20 * 60))
        caller = tracer.start_span("agent step", kind=SpanKind.SERVER, start_time=_ns(start))
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": rng.choice(["m1", "m2"]),
            "agentportal.team.id": TEAMS[i % 2],
            "gen_ai.usage.input_tokens": rng.randrange(1, 900),
            "gen_ai.usage.output_tokens": rng.randrange(1, 300),
            "agentportal.cost.usd": 0.001,
        }
        if i % 3 == 0:
            attrs["gen_ai.response.time_to_first_chunk"] = rng.randrange(5, 900) / 1000
        span = tracer.start_span(
            "chat m", context=set_span_in_context(caller), kind=SpanKind.CLIENT, attributes=attrs, start_time=_ns(start)
        )
        if i % 5 == 0:
            span.set_attribute("error.type", "RateLimitError")
            span.add_event("exception", {"exception.type": "RateLimitError", "exception.message": "slow down"})
            span.set_status(Status(StatusCode.ERROR, "slow down"))
        end = _ns(start) + rng.randrange(10**6, 3 * 10**9)
        span.end(end_time=end)
        caller.end(end_time=end + 10**6)
    provider.shutdown()
    exporter = ClickHouseSpanExporter(chdb_url, database="scope_db")
    assert exporter.export(memory.get_finished_spans()).name == "SUCCESS"
    exporter.shutdown()
    backend = connect(chdb_url)
    yield backend, [s for s in memory.get_finished_spans() if s.kind is SpanKind.CLIENT]
    backend.close()


def _team(span: ReadableSpan) -> str:
    return str((span.attributes or {})["agentportal.team.id"])


def _exact(values: list[float], level: float) -> float:
    # quantileExact picks the element at floor(level * n) of the sorted values.
    ordered = sorted(values)
    return ordered[int(level * len(ordered))]


@pytest.mark.parametrize("scope", [None, *TEAMS])
def test_usage_p99_ttfc_error_rate(loaded: Any, scope: str | None) -> None:
    backend, spans = loaded
    mine = [s for s in spans if scope is None or _team(s) == scope]
    (row,) = q.usage(backend, team_scope=scope, source="raw", **WINDOW)  # exact quantiles
    assert row.calls == len(mine)
    assert row.errors == sum(s.status.status_code is StatusCode.ERROR for s in mine)
    assert row.error_rate == pytest.approx(row.errors / row.calls)
    durations = [(s.end_time - s.start_time) / 1e6 for s in mine]
    assert row.p99_ms == pytest.approx(_exact(durations, 0.99))
    firsts = [
        float((s.attributes or {})["gen_ai.response.time_to_first_chunk"]) * 1e3
        for s in mine
        if "gen_ai.response.time_to_first_chunk" in (s.attributes or {})
    ]
    assert row.streams == len(firsts) > 0
    assert row.ttfc_p50_ms == pytest.approx(_exact(firsts, 0.5))
    assert row.ttfc_p95_ms == pytest.approx(_exact(firsts, 0.95))


def test_group_without_streams_has_no_ttfc(loaded: Any) -> None:
    backend, _ = loaded
    rows = q.usage(backend, group_by=("team",), bucket="hour", **WINDOW)
    without = [r for r in rows if r.streams == 0]
    assert without, "the data has hours with no streamed call"
    assert all(r.ttfc_p50_ms is None and r.ttfc_p95_ms is None for r in without)
    assert all(r.ttfc_p50_ms is not None for r in rows if r.streams > 0)


def test_team_scope_totals_equal_admin_filtered(loaded: Any) -> None:
    backend, _ = loaded
    for team in TEAMS:
        scoped = q.usage(backend, team_scope=team, group_by=("model",), **WINDOW)
        filtered = q.usage(backend, filters=q.Filters(team=team), group_by=("model",), **WINDOW)
        # Equal but for the order ClickHouse sums float costs in.
        assert [dataclasses.replace(r, cost_usd=0.0) for r in scoped] == [
            dataclasses.replace(r, cost_usd=0.0) for r in filtered
        ]
        assert [r.cost_usd for r in scoped] == pytest.approx([r.cost_usd for r in filtered])
        other = TEAMS[1 - TEAMS.index(team)]
        # A scoped caller filtering on another team gets nothing, never that team's rows.
        assert q.usage(backend, team_scope=team, filters=q.Filters(team=other), **WINDOW) == []
        assert q.recent_calls(backend, team_scope=team, filters=q.Filters(team=other), **WINDOW) == []
    with pytest.raises(ValueError):
        q.usage(backend, team_scope="", **WINDOW)


def test_count_calls_matches_paging(loaded: Any) -> None:
    backend, spans = loaded
    filters = q.Filters(status="error")
    total = q.count_calls(backend, filters=filters, team_scope="team-a", **WINDOW)
    expected = [s for s in spans if _team(s) == "team-a" and s.status.status_code is StatusCode.ERROR]
    assert total == len(expected) > 0
    pages = q.recent_calls(backend, filters=filters, team_scope="team-a", limit=1000, **WINDOW)
    assert len(pages) == total and {c.team for c in pages} == {"team-a"}


def test_call_detail_and_scope(loaded: Any) -> None:
    backend, spans = loaded
    failed = next(s for s in spans if s.status.status_code is StatusCode.ERROR)
    trace_id, span_id = format(failed.context.trace_id, "032x"), format(failed.context.span_id, "016x")
    detail = q.call_detail(backend, trace_id, span_id, target=WINDOW["target"])
    assert detail is not None and detail.trace_id == trace_id and detail.span_id == span_id
    assert detail.status == "Error" and detail.status_message == "slow down"
    assert detail.attributes["error.type"] == "RateLimitError"
    assert [e.name for e in detail.events] == ["exception"]
    assert detail.events[0].attributes["exception.message"] == "slow down"
    assert detail.events[0].timestamp.tzinfo is not None
    own, other = _team(failed), TEAMS[1 - TEAMS.index(_team(failed))]
    assert q.call_detail(backend, trace_id, span_id, target=WINDOW["target"], team_scope=own) == detail
    assert q.call_detail(backend, trace_id, span_id, target=WINDOW["target"], team_scope=other) is None
    # The caller's span is not an LLM call: no detail for it.
    assert q.call_detail(backend, trace_id, format(failed.parent.span_id, "016x"), target=WINDOW["target"]) is None
    for bad in ("xyz", "0" * 15, "'; DROP TABLE x; --"):
        with pytest.raises(ValueError, match="span id"):
            q.call_detail(backend, trace_id, bad, target=WINDOW["target"])


def test_trace_scope_keeps_callers_spans_and_hides_other_teams(loaded: Any) -> None:
    backend, spans = loaded
    span = spans[3]
    trace_id = format(span.context.trace_id, "032x")
    full = q.trace(backend, trace_id, target=WINDOW["target"])
    assert {r.span_kind for r in full} == {"Server", "Client"}
    assert q.trace(backend, trace_id, target=WINDOW["target"], team_scope=_team(span)) == full
    other = TEAMS[1 - TEAMS.index(_team(span))]
    assert q.trace(backend, trace_id, target=WINDOW["target"], team_scope=other) == []


def test_errors_over_time(loaded: Any) -> None:
    backend, spans = loaded
    rows = q.error_breakdown(backend, bucket="hour", **WINDOW)
    expected: dict[tuple[datetime, str], int] = defaultdict(int)
    for s in spans:
        if s.status.status_code is StatusCode.ERROR:
            moment = datetime.fromtimestamp(s.start_time // 10**9, tz=timezone.utc)
            expected[(moment.replace(minute=0, second=0), _label_model(s))] += 1
    assert {(r.bucket, r.model): r.calls for r in rows} == expected
    assert [r.bucket for r in rows] == sorted(r.bucket for r in rows if r.bucket is not None)
    assert all(r.bucket is None for r in q.error_breakdown(backend, **WINDOW))


def _label_model(span: ReadableSpan) -> str:
    return str((span.attributes or {})["gen_ai.request.model"])
