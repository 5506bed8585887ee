"""The direct ClickHouse span exporter: chDB end to end, retries, counters, env factory."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind

from agentportal_otel.clickhouse import ClickHouseSpanExporter, create_span_exporter
from agentportal_otel.clickhouse._env import AGENTPORTAL_OTEL_CLICKHOUSE_URL


class FlakyBackend:
    """Fails the first ``failures`` inserts, then records rows."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: list[Mapping[str, Any]] = []
        self.commands: list[str] = []
        self.description = "fake"

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        return []

    def command(self, sql: str, params: Any = None) -> None:
        self.commands.append(sql)

    def insert_rows(self, database: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("clickhouse down")
        self.rows.extend(rows)

    def close(self) -> None:
        pass


def _spans(n: int) -> list[Any]:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        provider.get_tracer("t").start_span(f"chat m{i}", kind=SpanKind.CLIENT).end()
    return list(memory.get_finished_spans())


def test_retries_then_succeeds() -> None:
    fake = FlakyBackend(failures=2)
    exporter = ClickHouseSpanExporter("http://h:8123", timeout_s=5, backend_factory=lambda: fake)
    assert exporter.export(_spans(3)) is SpanExportResult.SUCCESS
    assert len(fake.rows) == 3 and exporter.exported_spans == 3 and exporter.dropped_spans == 0
    assert fake.commands == []  # servers: no schema creation by default


def test_gives_up_within_timeout_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FlakyBackend(failures=10**6)
    exporter = ClickHouseSpanExporter("http://h:8123", timeout_s=0.3, backend_factory=lambda: fake)
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        assert exporter.export(_spans(2)) is SpanExportResult.FAILURE
        assert exporter.export(_spans(5)) is SpanExportResult.FAILURE
        assert time.monotonic() - started < 2.0
    assert (exporter.failed_exports, exporter.dropped_spans) == (2, 7)
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


def test_shutdown_refuses_and_never_raises() -> None:
    exporter = ClickHouseSpanExporter("http://h:8123", backend_factory=lambda: FlakyBackend(0))
    exporter.shutdown()
    assert exporter.export(_spans(1)) is SpanExportResult.FAILURE
    assert exporter.dropped_spans == 1


def test_factory_requires_url_and_validates() -> None:
    with pytest.raises(ValueError, match=AGENTPORTAL_OTEL_CLICKHOUSE_URL):
        create_span_exporter({})
    with pytest.raises(ValueError, match=AGENTPORTAL_OTEL_CLICKHOUSE_URL):
        create_span_exporter({AGENTPORTAL_OTEL_CLICKHOUSE_URL: "ftp://x"})
    with pytest.raises(ValueError, match="AGENTPORTAL_OTEL_CLICKHOUSE_TRACES_TABLE"):
        create_span_exporter(
            {
                AGENTPORTAL_OTEL_CLICKHOUSE_URL: "chdb:///tmp/x",
                "AGENTPORTAL_OTEL_CLICKHOUSE_TRACES_TABLE": "a;b",
            }
        )
    exporter = create_span_exporter(
        {
            AGENTPORTAL_OTEL_CLICKHOUSE_URL: "http://u:secret@h:8123/analytics",
            "AGENTPORTAL_OTEL_CLICKHOUSE_CREATE_SCHEMA": "maybe",
        }
    )
    assert isinstance(exporter, ClickHouseSpanExporter)
    assert exporter._database == "analytics" and exporter._create_schema is False
    assert "secret" not in repr(exporter.__dict__.get("_factory"))


@pytest.mark.slow
def test_batch_processor_into_chdb_creates_schema(chdb_url: str, fresh_db: str, backend: Any) -> None:
    exporter = create_span_exporter(
        {AGENTPORTAL_OTEL_CLICKHOUSE_URL: chdb_url, "AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE": fresh_db}
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for i in range(50):
        tracer.start_span(f"chat m{i % 3}", kind=SpanKind.CLIENT, attributes={"i": i}).end()
    provider.force_flush()
    provider.shutdown()
    assert exporter.exported_spans == 50  # type: ignore[attr-defined]
    count = backend.query("SELECT count() AS n FROM {db:Identifier}.otel_traces", {"db": fresh_db})
    assert int(count[0]["n"]) == 50


def test_import_is_lazy() -> None:
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); import agentportal_otel.clickhouse, agentportal_otel.cli; "
        "print(sorted(m for m in ('chdb', 'clickhouse_connect', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
