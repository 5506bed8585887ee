"""Benchmark the ClickHouse query layer on embedded chDB with synthetic LLM-call spans.

Loads ``--spans`` rows (default 1,000,000) spread over 7 days, 8 teams, 25 projects, 5 models,
200 key aliases and 2,000 users (3% without a team, 2% errors) into a fresh chDB directory with
one ``INSERT ... SELECT FROM numbers()`` per chunk, then times the queries the CLI runs. It also
times the exporter's own path (SDK spans -> rows -> insert) on ``--exporter-spans`` spans. ::

    python bench/bench_clickhouse_usage.py --spans 1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.clickhouse import connect, schema_statements, span_to_row

DB = "bench"
H = "cityHash64(number, {salt})"
GENERATE = f"""
INSERT INTO `{DB}`.`otel_traces` (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind,
    ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode,
    StatusMessage)
SELECT
    fromUnixTimestamp64Nano({{now_ns:Int64}} - toInt64({H.format(salt=1)} % (7 * 86400 * 1000000000))),
    concat(leftPad(lower(hex({H.format(salt=2)})), 16, '0'), leftPad(lower(hex({H.format(salt=3)})), 16, '0')),
    leftPad(lower(hex({H.format(salt=4)})), 16, '0'),
    '', '',
    concat('chat ', model),
    'Client', 'litellm-proxy',
    map('service.name', 'litellm-proxy', 'service.version', '0.1.0', 'host.name', 'proxy-1'),
    'agentportal_otel', '0.1.0',
    mapFilter((k, v) -> v != '', map(
        'gen_ai.operation.name', 'chat',
        'gen_ai.provider.name', 'openai',
        'gen_ai.request.model', model,
        'gen_ai.response.model', model,
        'gen_ai.usage.input_tokens', toString({H.format(salt=5)} % 4000),
        'gen_ai.usage.output_tokens', toString({H.format(salt=6)} % 800),
        'agentportal.cost.usd', toString(round(({H.format(salt=7)} % 50000) / 1e7, 7)),
        'agentportal.team.id', if({H.format(salt=8)} % 100 < 3, '', team),
        'agentportal.team.alias', if({H.format(salt=8)} % 100 < 3, '', concat(team, ' team')),
        'agentportal.project', concat('proj-', toString({H.format(salt=9)} % 25)),
        'agentportal.key.alias', concat('key-', toString({H.format(salt=10)} % 200)),
        'agentportal.user.id', concat('user-', toString({H.format(salt=11)} % 2000)),
        'agentportal.litellm.call_id', toString(generateUUIDv4(number)),
        'error.type', if(failed, 'RateLimitError', '')
    )),
    200000000 + {H.format(salt=12)} % 7800000000,
    if(failed, 'Error', 'Unset'),
    if(failed, 'RateLimitError: slow down', '')
FROM (
    SELECT number,
        arrayElement(['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet', 'llama-3.1-70b', 'mistral-large'],
                     {H.format(salt=13)} % 5 + 1) AS model,
        arrayElement(['search', 'support', 'ads', 'infra', 'research', 'growth', 'risk', 'data'],
                     {H.format(salt=14)} % 8 + 1) AS team,
        {H.format(salt=15)} % 50 = 0 AS failed
    FROM numbers({{offset:UInt64}}, {{count:UInt64}})
)
"""


def timed(label: str, fn: Callable[[], Any], repeat: int) -> Any:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    print(f"  {label:<48} median {statistics.median(samples):8.1f} ms   min {min(samples):8.1f} ms")
    return result


def load(backend: Any, spans: int, chunk: int = 250_000) -> None:
    now_ns = time.time_ns()
    started = time.perf_counter()
    for offset in range(0, spans, chunk):
        backend.command(GENERATE, {"now_ns": now_ns, "offset": offset, "count": min(chunk, spans - offset)})
    elapsed = time.perf_counter() - started
    print(f"loaded {spans:,} spans in {elapsed:.1f} s ({spans / elapsed:,.0f} spans/s, SQL generate)")


def exporter_path(backend: Any, count: int) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel")
    for i in range(count):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "agentportal.cost.usd": 0.00042}
        attrs |= {"gen_ai.usage.input_tokens": i % 4000, "agentportal.team.id": f"team-{i % 8}"}
        tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attrs).end()
    spans = memory.get_finished_spans()
    started = time.perf_counter()
    rows = [span_to_row(s) for s in spans]
    mapped = time.perf_counter()
    for i in range(0, len(rows), 512):  # BatchSpanProcessor's default batch size
        backend.insert_rows(DB, "otel_traces", rows[i : i + 512])
    done = time.perf_counter()
    print(
        f"exporter path: {count:,} spans mapped in {(mapped - started) * 1000:.0f} ms "
        f"({count / (mapped - started):,.0f}/s), inserted in 512-span batches in "
        f"{(done - mapped) * 1000:.0f} ms ({count / (done - mapped):,.0f}/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--exporter-spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", help="chDB directory (default: a fresh temporary one)")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="agentportal-bench-")
    backend = connect(f"chdb://{directory}")
    for statement in schema_statements(DB):
        backend.command(statement)
    load(backend, args.spans)
    target = q.Target(database=DB)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    week, day = {"start": end - timedelta(days=8), "end": end}, {"start": end - timedelta(days=1), "end": end}
    print(f"queries over {args.spans:,} spans (repeat {args.repeat}):")
    r = args.repeat
    timed("usage, 7 days, no grouping", lambda: q.usage(backend, target=target, **week), r)
    rows = timed(
        "usage, 7 days, by team+model, daily buckets",
        lambda: q.usage(backend, group_by=("team", "model"), bucket="day", target=target, **week),
        r,
    )
    print(f"    ({len(rows)} groups)")
    timed(
        "usage, 24 h, by project+key_alias+user, hourly",
        lambda: q.usage(backend, group_by=("project", "key_alias", "user"), bucket="hour", target=target, **day),
        r,
    )
    timed(
        "usage, 7 days, team=search",
        lambda: q.usage(backend, filters=q.Filters(team="search"), group_by=("model",), target=target, **week),
        r,
    )
    calls = timed("recent calls, 24 h, newest 50", lambda: q.recent_calls(backend, target=target, **day), r)
    timed(
        "recent calls, 7 days, team+errors, page 20 (offset 1000)",
        lambda: q.recent_calls(
            backend, filters=q.Filters(team="search", status="error"), offset=1000, target=target, **week
        ),
        r,
    )
    timed("error breakdown, 7 days", lambda: q.error_breakdown(backend, target=target, **week), r)
    trace_id = calls[0].trace_id
    spans = timed("trace lookup by id (via trace_id_ts)", lambda: q.trace(backend, trace_id, target=target), r)
    assert len(spans) == 1
    exporter_path(backend, args.exporter_spans)
    backend.close()
    print(f"chDB directory: {directory}")


if __name__ == "__main__":
    main()
