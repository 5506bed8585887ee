"""Schema DDL on the real engine, and column-for-column parity with the collector's exporter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from reference_mapping import go_float, rows_from_request

from agentportal_otel.clickhouse import TRACES_COLUMNS, schema_statements, span_to_row
from agentportal_otel.clickhouse._rows import go_float_string

EXPORTER_INSERT_COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.00042, "0.00042"),
        (123.0, "123"),
        (7.5e-07, "7.5e-7"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (1.5e-10, "1.5e-10"),
        (-2.5e300, "-2.5e+300"),
        (0.0, "0"),
        (-0.0, "-0"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (float("nan"), "NaN"),
    ],
)
def test_go_float_formatting(value: float, expected: str) -> None:
    assert go_float_string(value) == expected
    assert go_float(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_matches_reference(value: float) -> None:
    assert go_float_string(value) == go_float(value)


def test_statements_are_deterministic_and_validated() -> None:
    assert schema_statements() == schema_statements()
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in schema_statements()[1]
    assert "TTL" not in schema_statements(ttl_days=None)[1]
    assert "ON CLUSTER `c1`" in schema_statements(cluster="c1")[0]
    for bad in ["otel; DROP TABLE x", "a`b", "", "1abc", "x y"]:
        with pytest.raises(ValueError):
            schema_statements(database=bad)
        with pytest.raises(ValueError):
            schema_statements(traces_table=bad)


@pytest.mark.slow
def test_ddl_runs_on_chdb_and_matches_insert_columns(backend: Any, fresh_db: str) -> None:
    for statement in schema_statements(fresh_db, ttl_days=7):
        backend.command(statement)
    for statement in schema_statements(fresh_db, ttl_days=7):  # idempotent
        backend.command(statement)
    described = backend.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'otel_traces'"
        " ORDER BY position",
        {"db": fresh_db},
    )
    assert [(r["name"], r["type"]) for r in described] == list(TRACES_COLUMNS.items())
    assert list(TRACES_COLUMNS) == EXPORTER_INSERT_COLUMNS
    tables = backend.query("SELECT name, engine FROM system.tables WHERE database = {db:String}", {"db": fresh_db})
    assert {r["name"]: r["engine"] for r in tables} == {
        "otel_traces": "MergeTree",
        "otel_traces_trace_id_ts": "MergeTree",
        "otel_traces_trace_id_ts_mv": "MaterializedView",
        "otel_traces_usage_1m": "AggregatingMergeTree",
        "otel_traces_usage_1m_mv": "MaterializedView",
        "otel_traces_usage_1h": "AggregatingMergeTree",
        "otel_traces_usage_1h_mv": "MaterializedView",
        "otel_traces_usage_team_1m": "AggregatingMergeTree",
        "otel_traces_usage_team_1m_mv": "MaterializedView",
        "otel_traces_usage_team_1h": "AggregatingMergeTree",
        "otel_traces_usage_team_1h_mv": "MaterializedView",
        "otel_traces_usage_team_1d": "AggregatingMergeTree",
        "otel_traces_usage_team_1d_mv": "MaterializedView",
    }


def build_spans() -> list[ReadableSpan]:
    """A root and a child LLM span with every attribute shape, events, a link, error status."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "litellm-proxy", "deployment.n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel", "0.1.0")
    attributes = {
        "zz.inserted_first": "z",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1234,
        "gen_ai.usage.output_tokens": 0,
        "agentportal.cost.usd": 0.00042,
        "f.int_like": 123.0,
        "f.tiny": 7.5e-07,
        "f.huge": 1e21,
        "f.neg": -1.5,
        "b.true": True,
        "b.false": False,
        "agentportal.tags": ["team:a", 'quote"<&>', "ünï"],
        "ints": [1, -2, 3],
        "floats": [0.5, 1e-7, 2.0],
        "bools": [True, False],
        "f.nan": float("nan"),
        "f.inf": float("inf"),
        "f.ninf": float("-inf"),
        "floats.nan": [1.0, float("nan")],
        "separators": ["a\u2028b\u2029c", "<&>"],
        "agentportal.team.alias": "O'Reilly; DROP TABLE otel_traces; --",
    }
    with tracer.start_as_current_span("proxy request", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.ok", True)
        linked = root.get_span_context()
        with tracer.start_as_current_span(
            "chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes, links=[Link(linked, {"l": 1})]
        ) as child:
            child.add_event("gen_ai.choice", {"index": 0, "finish": "stop", "p": 0.25})
            child.add_event("empty")
            child.set_status(Status(StatusCode.ERROR, "RateLimitError: slow down"))
            child.set_attribute("error.type", "RateLimitError")
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_rows_equal_collector_mapping() -> None:
    spans = build_spans()
    expected = rows_from_request(encode_spans(spans))
    ours = [span_to_row(span) for span in spans]
    assert len(ours) == 2
    by_id = {row["SpanId"]: row for row in expected}
    for row in ours:
        assert list(row) == EXPORTER_INSERT_COLUMNS
        assert row == by_id[row["SpanId"]]
    child = next(r for r in ours if r["SpanKind"] == "Client")
    root = next(r for r in ours if r["SpanKind"] == "Server")
    assert root["ParentSpanId"] == "" and child["ParentSpanId"] == root["SpanId"]
    attrs = child["SpanAttributes"]
    assert attrs["agentportal.cost.usd"] == "0.00042"
    assert attrs["f.int_like"] == "123" and attrs["f.tiny"] == "7.5e-7" and attrs["f.huge"] == "1e+21"
    assert attrs["b.true"] == "true" and attrs["ints"] == "[1,-2,3]"
    assert attrs["floats"] == "[0.5,1e-7,2]"
    assert attrs["agentportal.tags"] == '["team:a","quote\\"<&>","ünï"]'
    assert attrs["separators"] == '["a\\u2028b\\u2029c","<&>"]'
    assert (attrs["f.nan"], attrs["f.inf"], attrs["f.ninf"], attrs["floats.nan"]) == (
        "NaN",
        "Infinity",
        "-Infinity",
        "",
    )
    for row in ours:  # map keys in the collector's (sorted) order, not insertion order
        expected_row = by_id[row["SpanId"]]
        for column in ("ResourceAttributes", "SpanAttributes"):
            assert list(row[column]) == list(expected_row[column]) == sorted(row[column])
        assert [list(a) for a in row["Events.Attributes"]] == [list(a) for a in expected_row["Events.Attributes"]]
    assert list(attrs)[-1] == "zz.inserted_first"
    assert child["StatusCode"] == "Error" and child["StatusMessage"] == "RateLimitError: slow down"
    assert child["Events.Name"] == ["gen_ai.choice", "empty"]
    assert child["Events.Attributes"][0] == {"index": "0", "finish": "stop", "p": "0.25"}
    assert child["Links.SpanId"] == [root["SpanId"]]
    assert child["ResourceAttributes"]["deployment.n"] == "3"


@pytest.mark.slow
def test_rows_round_trip_through_chdb(backend: Any, fresh_db: str) -> None:
    for statement in schema_statements(fresh_db):
        backend.command(statement)
    spans = build_spans()
    backend.insert_rows(fresh_db, "otel_traces", [span_to_row(s) for s in spans])
    stored = backend.query(
        "SELECT *, toString(toUnixTimestamp64Nano(Timestamp)) AS ns,"
        " arrayMap(t -> toString(toUnixTimestamp64Nano(t)), `Events.Timestamp`) AS ens"
        " FROM {db:Identifier}.otel_traces",
        {"db": fresh_db},
    )
    expected = {r["SpanId"]: r for r in rows_from_request(encode_spans(spans))}
    for row in stored:
        ref = expected[row["SpanId"]]
        start = int(row["ns"])
        assert f"{start // 10**9}.{start % 10**9:09d}" == ref["Timestamp"]
        assert [f"{int(n) // 10**9}.{int(n) % 10**9:09d}" for n in row["ens"]] == ref["Events.Timestamp"]
        for column in EXPORTER_INSERT_COLUMNS:
            if column not in ("Timestamp", "Events.Timestamp"):
                assert (int(row[column]) if column == "Duration" else row[column]) == ref[column], column


def _one_span(end_offset: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer("t").start_span("chat", attributes={"gen_ai.operation.name": "chat"}, start_time=10**18)
    span.end(end_time=10**18 + end_offset)
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.parametrize(("offset", "duration"), [(-1, 2**64 - 1), (-(10**9), 2**64 - 10**9), (0, 0), (5, 5)])
def test_span_ending_before_it_starts_wraps_like_the_collector(offset: int, duration: int) -> None:
    spans = _one_span(offset)
    (theirs,) = rows_from_request(encode_spans(spans))
    assert span_to_row(spans[0])["Duration"] == theirs["Duration"] == duration


@pytest.mark.slow
def test_sorted_map_keys_and_wrapped_duration_on_chdb(backend: Any, fresh_db: str) -> None:
    for statement in schema_statements(fresh_db, ttl_days=None, rollup_ttl_days=None):  # _one_span is in 2001
        backend.command(statement)
    rows = [span_to_row(s) for s in [*build_spans(), *_one_span(-1)]]
    backend.insert_rows(fresh_db, "otel_traces", rows)  # the rollup views take the wrapped Duration too
    stored = backend.query(
        "SELECT SpanId, mapKeys(SpanAttributes) AS k, toString(Duration) AS d FROM {db:Identifier}.otel_traces",
        {"db": fresh_db},
    )
    assert {r["SpanId"]: r["k"] for r in stored} == {r["SpanId"]: sorted(r["SpanAttributes"]) for r in rows}
    assert str(2**64 - 1) in {r["d"] for r in stored}
    calls = backend.query("SELECT sum(Calls) AS n FROM {db:Identifier}.otel_traces_usage_1m", {"db": fresh_db})
    assert int(calls[0]["n"]) == 2
