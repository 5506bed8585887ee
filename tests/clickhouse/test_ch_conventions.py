"""The query layer reads the same numbers from spans written with either GenAI convention.

The usage queries read ``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.request.model``,
``gen_ai.operation.name``, ``error.type`` and our ``agentportal.*`` names, none of which the
latest conventions rename (``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` renames
``gen_ai.usage.cache_creation.input_tokens``). Recorded LiteLLM payloads are mapped and emitted
once per convention, exported into chDB, and queried.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentportal_otel._emit import Emitter
from agentportal_otel._mapping import map_call
from agentportal_otel._settings import Settings
from agentportal_otel.clickhouse import ClickHouseSpanExporter, connect
from agentportal_otel.clickhouse import _queries as q

pytestmark = pytest.mark.slow

PAYLOADS = sorted((Path(__file__).resolve().parents[1] / "payloads").glob("litellm-*.json"))
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
CONVENTIONS = {
    "v1.41.0": {},
    "latest": {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"},
}


def _events() -> list[dict[str, Any]]:
    events = [event for path in PAYLOADS for event in json.loads(path.read_text())]
    for event in events:  # a cache write on every success, so the renamed attribute is on the spans
        slo = event["kwargs"]["standard_logging_object"]
        slo["metadata"]["usage_object"] = {
            **(slo["metadata"].get("usage_object") or {}),
            "cache_creation_input_tokens": 3,
        }
    return events


def _write(chdb_url: str, database: str, environ: dict[str, str]) -> list[Any]:
    settings = Settings.from_env(environ)
    memory = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    emitter = Emitter(tracer_provider.get_tracer("agentportal_otel"), MeterProvider().get_meter("t"), 1000)
    for i, event in enumerate(_events()):
        start = NOW - dt.timedelta(minutes=30) + dt.timedelta(seconds=i)
        end = start + dt.timedelta(milliseconds=100 + 10 * i)
        record = map_call(event["kwargs"], None, start, end, settings, failed=event["kind"] == "failure")
        emitter.emit_span(record)
    tracer_provider.shutdown()
    spans = list(memory.get_finished_spans())
    exporter = ClickHouseSpanExporter(chdb_url, database=database)
    assert exporter.export(spans).name == "SUCCESS"
    exporter.shutdown()
    return spans


@pytest.fixture(scope="module")
def written(chdb_url: str) -> dict[str, list[Any]]:
    return {name: _write(chdb_url, f"conv_{i}_db", env) for i, (name, env) in enumerate(CONVENTIONS.items())}


def test_the_conventions_really_differ(written: dict[str, list[Any]]) -> None:
    default = {k for s in written["v1.41.0"] for k in (s.attributes or {})}
    latest = {k for s in written["latest"] for k in (s.attributes or {})}
    assert default ^ latest == {"gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"}


@pytest.mark.parametrize("group_by", [(), ("team",), ("model", "project"), ("key_alias", "user")])
def test_usage_is_the_same_under_either_convention(
    chdb_url: str, written: dict[str, list[Any]], group_by: tuple[q.Dimension, ...]
) -> None:
    backend = connect(chdb_url)
    try:
        start, end = NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1)
        results = [
            q.usage(backend, start=start, end=end, group_by=group_by, target=q.Target(database=f"conv_{i}_db"))
            for i in range(len(CONVENTIONS))
        ]
    finally:
        backend.close()
    spans = written["v1.41.0"]
    assert results[0] == results[1]
    assert sum(r.calls for r in results[0]) == len(spans)
    assert sum(r.errors for r in results[0]) == sum(1 for s in spans if "error.type" in (s.attributes or {}))
    assert sum(r.input_tokens for r in results[0]) == sum(
        int((s.attributes or {}).get("gen_ai.usage.input_tokens", 0)) for s in spans
    )
    assert sum(r.cost_usd for r in results[0]) == pytest.approx(
        sum(float((s.attributes or {}).get("agentportal.cost.usd", 0.0)) for s in spans)
    )
