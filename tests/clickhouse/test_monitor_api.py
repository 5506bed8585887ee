"""The monitoring API over chDB data written by the plugin's exporter: every endpoint, every
filter, paging totals, CSV, a 400 for each bad input, and the same numbers as the CLI.

The app runs in-process (FastAPI's TestClient over httpx) on the session's chDB directory, in a
database of its own. Auth and scope: tests/clickhouse/test_monitor_auth.py.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import monitor_data
import pytest
from fastapi.testclient import TestClient

from agentportal_otel import cli
from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.clickhouse import connect
from agentportal_otel.monitor._app import MonitorConfig, create_app
from agentportal_otel.monitor._auth import load_tokens

pytestmark = pytest.mark.slow

DB = "monitor_api_db"
ADMIN = "admin-token-" + "a" * 20
SEARCH = "search-token-" + "s" * 20
NOW = datetime.now(timezone.utc).replace(microsecond=0)
START, END = (NOW - timedelta(days=1)).isoformat(), (NOW + timedelta(minutes=1)).isoformat()
WINDOW = {"start": START, "end": END}


@pytest.fixture(scope="module")
def data(chdb_url: str) -> Iterator[dict[str, Any]]:
    spans = monitor_data.write(chdb_url, DB, now=NOW)
    backend = connect(chdb_url)
    tokens = load_tokens(
        {"AGENTPORTAL_MONITOR_ADMIN_TOKEN": ADMIN, "AGENTPORTAL_MONITOR_TEAM_TOKENS": f"team-search={SEARCH}"}
    )
    app = create_app(backend, MonitorConfig(target=q.Target(DB), tokens=tokens))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        yield {"client": client, "spans": spans, "url": chdb_url}
    backend.close()


def _get(data: dict[str, Any], path: str, **params: Any) -> Any:
    response = data["client"].get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _cli(data: dict[str, Any], *argv: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    code = cli.main([*argv, "--url", data["url"], "--database", DB, "--format", "json"], environ={})
    assert code == 0
    return json.loads(capsys.readouterr().out)


def _llm(data: dict[str, Any]) -> list[Any]:
    return [s for s in data["spans"] if "gen_ai.operation.name" in (s.attributes or {})]


def test_health_and_openapi(data: dict[str, Any], chdb_url: str) -> None:
    anonymous = TestClient(data["client"].app)
    health = anonymous.get("/api/v1/health")
    assert health.status_code == 200 and health.json() == {
        "status": "ok",
        "clickhouse": "reachable",
        "table": f"{DB}.otel_traces",
    }
    backend = connect(chdb_url)
    try:
        missing = create_app(backend, MonitorConfig(target=q.Target("no_such_db"), tokens=None))
        answer = TestClient(missing).get("/api/v1/health")
        assert answer.status_code == 503 and answer.json()["table"] == "missing"
    finally:
        backend.close()
    schema = anonymous.get("/openapi.json").json()
    assert {
        "/api/v1/usage",
        "/api/v1/calls",
        "/api/v1/calls/{trace_id}/{span_id}",
        "/api/v1/traces/{trace_id}",
        "/api/v1/errors",
        "/api/v1/health",
        "/api/v1/session",
    } <= set(schema["paths"])
    # The schema documents exactly the parameters each endpoint accepts (any other is a 400).
    window_and_filters = {"since", "start", "end", "team", "project", "model", "key_alias", "user", "status"}
    for path, own in (
        ("/api/v1/usage", {"by", "bucket", "format"}),
        ("/api/v1/calls", {"limit", "offset", "format"}),
        ("/api/v1/errors", {"bucket", "format"}),
    ):
        params = schema["paths"][path]["get"]["parameters"]
        assert {p["name"] for p in params} == window_and_filters | own, path
        assert all(p["in"] == "query" and p.get("description") for p in params), path
        unknown = data["client"].get(path, params={"since": "1h", "colour": "red"})
        assert unknown.status_code == 400 and "colour" in unknown.text, path


@pytest.mark.parametrize(
    ("by", "bucket", "extra"),
    [
        ("", None, []),
        ("team,project", None, []),
        ("model", "hour", []),
        ("key_alias,user", "day", []),
        ("team", None, ["--status", "error"]),
    ],
)
def test_usage_equals_cli(
    data: dict[str, Any], capsys: pytest.CaptureFixture[str], by: str, bucket: str | None, extra: list[str]
) -> None:
    params: dict[str, Any] = {**WINDOW, "by": by}
    argv = ["usage", "--start", START, "--end", END, "--by", by, *extra]
    if bucket:
        params["bucket"] = bucket
        argv += ["--bucket", bucket]
    if extra:
        params["status"] = extra[1]
    api = _get(data, "/api/v1/usage", **params)
    assert api["items"] == _cli(data, *argv, capsys=capsys)
    assert api["items"], "the window holds data"
    row = api["items"][0]
    for name in ("calls", "errors", "input_tokens", "output_tokens", "cost_usd", "p50_ms", "p95_ms"):
        assert name in row  # the CLI's fields ...
    for name in ("p99_ms", "error_rate", "ttfc_p50_ms", "ttfc_p95_ms", "streams"):
        assert name in row  # ... plus p99, error rate and time to first chunk


def test_totals_match_the_spans(data: dict[str, Any]) -> None:
    (row,) = _get(data, "/api/v1/usage", **WINDOW)["items"]
    llm = _llm(data)
    assert row["calls"] == len(llm)
    assert row["errors"] == sum(s.status.status_code.name == "ERROR" for s in llm)
    assert row["input_tokens"] == sum(int(s.attributes["gen_ai.usage.input_tokens"]) for s in llm)
    assert row["streams"] == sum("gen_ai.response.time_to_first_chunk" in s.attributes for s in llm)
    assert row["error_rate"] == pytest.approx(row["errors"] / row["calls"])


FILTER_CASES = [
    ("team", "team-assist", "--team", "agentportal.team.id"),
    ("project", "ranker", "--project", "agentportal.project"),
    ("model", "gpt-4o-mini", "--model", "gen_ai.request.model"),
    ("key_alias", "assistant-key", "--key-alias", "agentportal.key.alias"),
    ("user", "user-3", "--user-id", "agentportal.user.id"),
]


@pytest.mark.parametrize(("name", "value", "flag", "attribute"), FILTER_CASES)
def test_every_filter(
    data: dict[str, Any], capsys: pytest.CaptureFixture[str], name: str, value: str, flag: str, attribute: str
) -> None:
    expected = [s for s in _llm(data) if s.attributes.get(attribute) == value]
    assert expected
    usage = _get(data, "/api/v1/usage", **WINDOW, **{name: value})["items"]
    assert usage == _cli(data, "usage", "--start", START, "--end", END, flag, value, capsys=capsys)
    assert usage[0]["calls"] == len(expected)
    calls = _get(data, "/api/v1/calls", **WINDOW, limit=1000, **{name: value})
    assert calls["total"] == len(expected) == len(calls["items"])
    assert {c[name] for c in calls["items"]} == {value}
    errors = _get(data, "/api/v1/errors", **WINDOW, **{name: value})["items"]
    assert sum(e["calls"] for e in errors) == sum(s.status.status_code.name == "ERROR" for s in expected)


def test_status_filter(data: dict[str, Any]) -> None:
    failed = _get(data, "/api/v1/calls", **WINDOW, status="error", limit=1000)
    ok = _get(data, "/api/v1/calls", **WINDOW, status="ok", limit=1000)
    assert {c["status"] for c in failed["items"]} == {"Error"}
    assert "Error" not in {c["status"] for c in ok["items"]}
    assert failed["total"] + ok["total"] == len(_llm(data))


def test_calls_paging_and_cli(data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    everything = _get(data, "/api/v1/calls", **WINDOW, limit=1000)
    assert everything["total"] == len(_llm(data)) == len(everything["items"])
    assert everything["items"] == _cli(data, "calls", "--start", START, "--end", END, "--limit", "1000", capsys=capsys)
    pages, offset = [], 0
    while True:
        page = _get(data, "/api/v1/calls", **WINDOW, limit=40, offset=offset)
        assert page["total"] == everything["total"] and page["limit"] == 40 and page["offset"] == offset
        if not page["items"]:
            break
        pages += page["items"]
        offset += 40
    assert pages == everything["items"]  # no row twice, none missing
    stamps = [c["timestamp"] for c in pages]
    assert stamps == sorted(stamps, reverse=True)


def test_errors_endpoint_and_cli(data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    totals = _get(data, "/api/v1/errors", **WINDOW)
    assert totals["items"] == _cli(data, "errors", "--start", START, "--end", END, capsys=capsys)
    assert {e["error_type"] for e in totals["items"]} == {"RateLimitError", "APIConnectionError"}
    hourly = _get(data, "/api/v1/errors", **WINDOW, bucket="hour")["items"]
    assert all(e["bucket"] for e in hourly)
    assert sum(e["calls"] for e in hourly) == sum(e["calls"] for e in totals["items"])


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/usage", {"by": "team,model"}),
        ("/api/v1/calls", {"limit": 25}),
        ("/api/v1/errors", {}),
    ],
)
def test_csv_equals_json(data: dict[str, Any], path: str, params: dict[str, Any]) -> None:
    client = data["client"]
    as_json = client.get(path, params={**WINDOW, **params}).json()["items"]
    response = client.get(path, params={**WINDOW, **params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(as_json) > 0
    for row, item in zip(rows, as_json, strict=True):
        assert row == {k: "" if v is None else str(v) for k, v in item.items()}


def test_since_window(data: dict[str, Any]) -> None:
    before = datetime.now(timezone.utc)
    last_hour = _get(data, "/api/v1/calls", since="1h", limit=1000)
    after = datetime.now(timezone.utc)
    day = _get(data, "/api/v1/calls", since="24h", limit=1000)
    assert 0 < last_hour["total"] < day["total"]
    moment = datetime.fromisoformat(last_hour["start"])
    # A relative window ends at the next whole minute, so the rollups answer it without raw edges.
    end = datetime.fromisoformat(last_hour["end"])
    assert end - moment == timedelta(hours=1)
    assert (end.second, end.microsecond) == (0, 0)
    # The server took its "now" between before and after (a minute may turn in between).
    assert cli.relative_end(before) <= end <= cli.relative_end(after)


def test_relative_windows_end_on_the_next_whole_minute() -> None:
    from agentportal_otel.cli import relative_end

    on = datetime(2026, 12, 4, 2, 30, tzinfo=timezone.utc)
    assert relative_end(on) == on
    assert relative_end(on + timedelta(microseconds=1)) == on + timedelta(minutes=1)
    assert relative_end(on - timedelta(seconds=59)) == on


def test_call_detail(data: dict[str, Any]) -> None:
    llm = _llm(data)
    failed = next(s for s in llm if s.status.status_code.name == "ERROR")
    tid, sid = format(failed.context.trace_id, "032x"), format(failed.context.span_id, "016x")
    detail = _get(data, f"/api/v1/calls/{tid}/{sid}")
    attrs = failed.attributes
    assert detail["trace_id"] == tid and detail["span_id"] == sid
    assert detail["tenant"]["project"] == attrs["agentportal.project"]
    assert detail["tenant"]["key_alias"] == attrs["agentportal.key.alias"]
    assert detail["model"]["request"] == attrs["gen_ai.request.model"]
    assert detail["usage"]["input_tokens"] == attrs["gen_ai.usage.input_tokens"]
    assert detail["cost_usd"] == pytest.approx(attrs["agentportal.cost.usd"])
    assert detail["timings"]["duration_ms"] == pytest.approx((failed.end_time - failed.start_time) / 1e6)
    assert detail["error"] == {"type": attrs["error.type"], "message": f"{attrs['error.type']}: try again"}
    assert [e["name"] for e in detail["events"]] == ["exception"]
    assert detail["content"] is None  # not captured on this call
    # Upper-case ids are accepted (normalized), and content appears where it was captured.
    captured = next(s for s in llm if "gen_ai.input.messages" in s.attributes)
    tid, sid = format(captured.context.trace_id, "032X"), format(captured.context.span_id, "016X")
    content = _get(data, f"/api/v1/calls/{tid}/{sid}")["content"]
    assert json.loads(content["input_messages"])[0]["role"] == "user"
    streamed = next(s for s in llm if "gen_ai.response.time_to_first_chunk" in s.attributes)
    ref = f"{format(streamed.context.trace_id, '032x')}/{format(streamed.context.span_id, '016x')}"
    ttfc = _get(data, f"/api/v1/calls/{ref}")["timings"]["time_to_first_chunk_ms"]
    assert ttfc == pytest.approx(streamed.attributes["gen_ai.response.time_to_first_chunk"] * 1e3)
    absent = data["client"].get(f"/api/v1/calls/{'0' * 32}/{'0' * 16}")
    assert absent.status_code == 404 and absent.json()["error"] == "not_found"


def test_trace_includes_the_callers_spans(data: dict[str, Any]) -> None:
    caller = next(s for s in data["spans"] if s.name == "triage ticket")
    tid = format(caller.context.trace_id, "032x")
    trace = _get(data, f"/api/v1/traces/{tid}")
    spans = {s["span_name"]: s for s in trace["spans"]}
    assert len(trace["spans"]) == 3 and "triage ticket" in spans
    assert spans["triage ticket"]["llm"] is False and spans["triage ticket"]["service_name"] == "ticket-agent"
    children = [s for s in trace["spans"] if s["llm"]]
    assert len(children) == 2 and {c["parent_span_id"] for c in children} == {format(caller.context.span_id, "016x")}
    assert trace["spans"][0]["offset_ms"] == 0
    assert trace["duration_ms"] == pytest.approx((caller.end_time - caller.start_time) / 1e6, abs=0.01)
    assert data["client"].get(f"/api/v1/traces/{'1' * 32}").status_code == 404


BAD_INPUTS = [
    ("/api/v1/usage", {"since": "yesterday"}, "since"),
    ("/api/v1/usage", {"since": "0m"}, "since"),
    ("/api/v1/usage", {"since": "91d"}, "since"),
    ("/api/v1/usage", {"since": "99999999999w"}, "since"),
    ("/api/v1/usage", {"start": "not-a-time"}, "start"),
    ("/api/v1/usage", {"start": "2026-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "start"),
    ("/api/v1/usage", {"start": "2025-01-01T00:00:00Z", "end": "2025-06-01T00:00:00Z"}, "start"),
    ("/api/v1/usage", {"end": "2026-13-01"}, "end"),
    ("/api/v1/usage", {"since": "1h", "start": "2026-01-01T00:00:00Z"}, "since"),
    ("/api/v1/usage", {"by": "team,colour"}, "by"),
    ("/api/v1/usage", {"by": "team,team"}, "by"),
    ("/api/v1/usage", {"bucket": "minute"}, "bucket"),
    ("/api/v1/usage", {"status": "failed"}, "status"),
    ("/api/v1/usage", {"team": ""}, "team"),
    ("/api/v1/usage", {"project": "x" * 300}, "project"),
    ("/api/v1/usage", {"format": "xml"}, "format"),
    ("/api/v1/usage", {"team_scope": "team-assist"}, "team_scope"),
    ("/api/v1/calls", {"limit": "1001"}, "limit"),
    ("/api/v1/calls", {"limit": "0"}, "limit"),
    ("/api/v1/calls", {"limit": "-1"}, "limit"),
    ("/api/v1/calls", {"limit": "ten"}, "limit"),
    ("/api/v1/calls", {"offset": "-5"}, "offset"),
    ("/api/v1/calls", {"offset": "1e9"}, "offset"),
    ("/api/v1/calls", {"by": "team"}, "by"),
    ("/api/v1/errors", {"bucket": "week"}, "bucket"),
    ("/api/v1/errors", {"model": "x", "limit": "5"}, "limit"),
    ("/api/v1/calls/xyz/0000000000000001", {}, "trace_id"),
    (f"/api/v1/calls/{'a' * 31}/0000000000000001", {}, "trace_id"),
    (f"/api/v1/calls/{'a' * 32}/zz", {}, "span_id"),
    (f"/api/v1/calls/{'a' * 32}/{'0' * 16}'--", {}, "span_id"),
    ("/api/v1/traces/'; DROP TABLE otel_traces; --", {}, "trace_id"),
    (f"/api/v1/traces/{'a' * 33}", {}, "trace_id"),
    ("/api/v1/traces/" + "a" * 32, {"since": "1h"}, "since"),
]


@pytest.mark.parametrize(("path", "params", "parameter"), BAD_INPUTS)
def test_bad_input_is_a_400_naming_the_parameter(
    data: dict[str, Any], path: str, params: dict[str, str], parameter: str
) -> None:
    response = data["client"].get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_request" and body["parameter"] == parameter
    assert "Traceback" not in response.text


def test_repeated_parameter_is_a_400(data: dict[str, Any]) -> None:
    response = data["client"].get("/api/v1/usage?team=team-assist&team=team-search")
    assert response.status_code == 400 and response.json()["parameter"] == "team"


def test_clickhouse_outage_is_a_503_without_details(chdb_url: str) -> None:
    broken = connect(chdb_url)
    broken.close()  # every query now raises inside the backend
    app = create_app(broken, MonitorConfig(target=q.Target(DB), tokens=None))
    client = TestClient(app)
    response = client.get("/api/v1/usage")
    assert response.status_code == 503
    assert response.json() == {"error": "unavailable", "message": "ClickHouse did not answer the query"}
    assert client.get("/api/v1/health").status_code == 503
