"""The ``agentportal-otel`` CLI: query subcommands, hostile filters, and ``doctor``."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from collector_standin import CollectorStandIn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentportal_otel.cli import main
from agentportal_otel.clickhouse import ClickHouseSpanExporter, schema_statements

HOSTILE = ["'; DROP TABLE otel_traces; --", "search' OR '1'='1", 'x"; SELECT 1', "a\\'b", "{f_team:String}"]


@pytest.fixture(scope="module")
def cli_db(chdb_url: str) -> str:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel")
    now = datetime.now(timezone.utc)
    teams = ["search", "'; DROP TABLE otel_traces; --", None]
    for i in range(30):
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": f"m{i % 2}"}
        attrs |= {"gen_ai.usage.input_tokens": 10, "agentportal.cost.usd": 0.001}
        if teams[i % 3] is not None:
            attrs["agentportal.team.id"] = teams[i % 3]
        start = int((now - timedelta(minutes=i)).timestamp() * 1e9)
        span = tracer.start_span("chat m", kind=SpanKind.CLIENT, attributes=attrs, start_time=start)
        if i % 5 == 0:
            span.set_attribute("error.type", "RateLimitError")
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + 10**8)
    exporter = ClickHouseSpanExporter(chdb_url, database="cli_db")
    assert exporter.export(memory.get_finished_spans()).name == "SUCCESS"
    exporter.shutdown()
    return "cli_db"


def run(capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    code = main(list(argv), environ=env or {})
    captured = capsys.readouterr()
    return code, captured.out + captured.err


pytestmark = pytest.mark.slow


def test_usage_calls_errors_trace(chdb_url: str, cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"CLICKHOUSE_URL": chdb_url, "CLICKHOUSE_DATABASE": cli_db}
    code, out = run(capsys, "usage", "--by", "team", "--format", "json", env=env)
    assert code == 0
    by_team = {r["team"]: r for r in json.loads(out)}
    assert set(by_team) == {"search", "'; DROP TABLE otel_traces; --", "unattributed"}
    assert by_team["search"]["calls"] == 10 and by_team["search"]["input_tokens"] == 100
    code, out = run(capsys, "usage", "--by", "model", "--bucket", "hour", env=env)
    assert code == 0 and "calls" in out.splitlines()[0]
    code, out = run(capsys, "calls", "--team", "search", "--status", "error", "--format", "csv", env=env)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("timestamp,trace_id") and len(lines) == 1 + 2
    trace_id = lines[1].split(",")[1]
    code, out = run(capsys, "trace", trace_id, "--format", "json", env=env)
    assert code == 0 and json.loads(out)[0]["span_kind"] == "Client"
    code, out = run(capsys, "errors", env=env)
    assert code == 0 and "RateLimitError" in out


def test_usage_errors_exit_2(chdb_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "usage")[0] == 2  # no URL
    assert run(capsys, "usage", "--by", "color", "--url", chdb_url)[0] == 2
    assert run(capsys, "trace", "not-a-trace", "--url", chdb_url)[0] == 2
    assert run(capsys, "bogus")[0] == 2
    assert run(capsys, "usage", "--since", "forever", "--url", chdb_url)[0] == 2
    code, out = run(capsys, "usage", "--url", "http://u:hunter2@127.0.0.1:1", "--password", "hunter2")
    assert code == 1 and "hunter2" not in out


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_filters_match_literally(
    chdb_url: str, cli_db: str, hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"CLICKHOUSE_URL": chdb_url, "CLICKHOUSE_DATABASE": cli_db}
    for flag in ("--project", "--team", "--model", "--key-alias", "--user-id"):
        for command in ("usage", "calls", "errors"):
            code, out = run(capsys, command, flag, hostile, "--format", "json", env=env)
            assert code == 0, out
            rows = json.loads(out)
            if flag == "--team" and hostile == HOSTILE[0] and command == "calls":
                assert len(rows) == 10 and all(r["team"] == hostile for r in rows)
            elif not (flag == "--team" and hostile == HOSTILE[0]):
                assert rows == []
    code, out = run(capsys, "calls", "--limit", "1000", "--format", "json", env=env)
    assert len(json.loads(out)) == 30  # table intact, nothing dropped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _doctor_env(chdb_url: str, db: str, endpoint: str) -> dict[str, str]:
    return {"CLICKHOUSE_URL": chdb_url, "CLICKHOUSE_DATABASE": db, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}


@pytest.fixture
def doctor_db(backend: Any, fresh_db: str) -> str:
    for statement in schema_statements(fresh_db):
        backend.command(statement)
    return fresh_db


def test_doctor_all_green(chdb_url: str, backend: Any, doctor_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with CollectorStandIn(backend, doctor_db) as collector:
        code, out = run(capsys, "doctor", "--timeout", "10", env=_doctor_env(chdb_url, doctor_db, collector.base_url))
    assert code == 0, out
    assert out.count("[PASS]") == 6 and collector.received == 1
    assert "[PASS] usage rollups cover otel_traces" in out


def test_doctor_endpoint_down(chdb_url: str, doctor_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    env = _doctor_env(chdb_url, doctor_db, f"http://127.0.0.1:{_free_port()}")
    env["OTEL_ENDPOINT"] = "http://old"
    code, out = run(capsys, "doctor", "--timeout", "1", env=env)
    assert code == 1
    assert "[FAIL] endpoint accepts POST" in out and "collector down" in out
    assert "[WARN] litellm-only variables" in out and "OTEL_EXPORTER_OTLP_ENDPOINT" in out


def test_doctor_wrong_path_and_probe_never_lands(
    chdb_url: str, backend: Any, doctor_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with CollectorStandIn(backend, doctor_db, store=False) as collector:
        env = _doctor_env(chdb_url, doctor_db, collector.base_url)
        code, out = run(capsys, "doctor", "--timeout", "1", env=env)
        assert code == 1 and "[PASS] probe span exported" in out
        assert "[FAIL] probe stored in ClickHouse" in out and "collector or clickhouse exporter" in out
        env = {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.base_url + "/v1/trace"}
        code, out = run(capsys, "doctor", "--timeout", "1", env=env)
        assert code == 1 and "answered 404" in out and "wrong path" in out


def test_doctor_direct_clickhouse_export(chdb_url: str, doctor_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """OTEL_TRACES_EXPORTER=clickhouse: the probe goes through the plugin's ClickHouse exporter."""
    env = {
        "OTEL_TRACES_EXPORTER": "clickhouse",
        "AGENTPORTAL_OTEL_CLICKHOUSE_URL": chdb_url,
        "AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE": doctor_db,
        "CLICKHOUSE_URL": chdb_url,
        "CLICKHOUSE_DATABASE": doctor_db,
    }
    code, out = run(capsys, "doctor", "--timeout", "10", env=env)
    assert code == 0, out
    assert "[SKIP] endpoint accepts POST" in out
    assert "[PASS] probe span exported" in out and "[PASS] probe stored in ClickHouse" in out


def test_doctor_reports_malformed_configuration(
    chdb_url: str, doctor_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _doctor_env(chdb_url, doctor_db, "otel-collector:4318")
    code, out = run(capsys, "doctor", "--timeout", "1", env=env)
    assert code == 1
    assert "[FAIL] configuration" in out and "OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL" in out


def test_doctor_reports_an_unreachable_clickhouse_without_its_password(
    chdb_url: str, backend: Any, doctor_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The probe reaches the collector; ClickHouse refuses connections: both ClickHouse checks say
    so (one connection attempt), the doctor ends normally, and the URL's password is never printed."""
    secret = "s3cret-clickhouse-pass"
    with CollectorStandIn(backend, doctor_db, store=False) as collector:
        env = _doctor_env(f"http://probe:{secret}@127.0.0.1:{_free_port()}", doctor_db, collector.base_url)
        code, out = run(capsys, "doctor", "--timeout", "1", env=env)
    assert code == 0, out  # WARN, not FAIL: the collector path itself works
    assert "[PASS] probe span exported" in out
    assert "[WARN] probe stored in ClickHouse: not checked: cannot connect" in out, out
    assert "[WARN] usage rollups cover otel_traces: not checked: cannot connect" in out, out
    assert "fix: check --url/CLICKHOUSE_URL, the server and the credentials" in out
    assert secret not in out
