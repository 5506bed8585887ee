"""Benchmark the ClickHouse query layer on embedded chDB: raw spans against the usage rollups.

For each size in ``--spans`` (default ``1000000,10000000``) loads that many synthetic LLM-call
spans, spread over 7 days, into its own database with one ``INSERT ... SELECT FROM numbers()``
per chunk (the rollup views fill as they would from the collector), then times every usage,
error and time-series question against the raw table (``source="raw"``) and against the
rollups (``source="rollup"``), printing both and the ratio. It also times inserts with and
without the rollup views (``--insert-spans`` rows by SQL generate, and the exporter's own path
in 512-span batches), and, on the largest size, the questions only the raw table answers.

Synthetic tenants: 2,000 users, each with one key alias (200), project (25) and team (8; 3% of
users have none), a main model (90% of their calls; 5 models), 2% errors, 30% streamed. Tying a
user to their key, project and team is what real traffic looks like, and it is what bounds a
rollup's size: rows are (grain x active key combinations), not spans. ::

    python bench/bench_clickhouse_usage.py                               # 1M and 10M spans
    python bench/bench_clickhouse_usage.py --spans 200000 --repeat 3     # quick
    python bench/bench_clickhouse_usage.py --dir D --reuse --optimize --insert-spans 0   # again, merged
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from agentportal_otel.cli import relative_end
from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.clickhouse import connect, schema_statements, span_to_row
from agentportal_otel.clickhouse._rollup import TIERS

DB = "{db}"
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
        'agentportal.team.id', if(user % 33 = 0, '', team),
        'agentportal.team.alias', if(user % 33 = 0, '', concat(team, ' team')),
        'agentportal.project', concat('proj-', toString(user % 200 % 25)),
        'agentportal.key.alias', concat('key-', toString(user % 200)),
        'agentportal.user.id', concat('user-', toString(user)),
        'agentportal.litellm.call_id', toString(generateUUIDv4(number)),
        'gen_ai.usage.cache_read.input_tokens',
            if({H.format(salt=16)} % 4 = 0, toString({H.format(salt=17)} % 2000), ''),
        'gen_ai.response.time_to_first_chunk',
            if({H.format(salt=18)} % 10 < 3, toString(round(({H.format(salt=19)} % 3000) / 1e3 + 0.05, 3)), ''),
        'error.type', if(failed, 'RateLimitError', '')
    )),
    200000000 + {H.format(salt=12)} % 7800000000,
    if(failed, 'Error', 'Unset'),
    if(failed, 'RateLimitError: slow down', '')
FROM (
    SELECT number, user,
        arrayElement(['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet', 'llama-3.1-70b', 'mistral-large'],
                     if({H.format(salt=13)} % 10 = 0, {H.format(salt=20)} % 5, user % 5) + 1) AS model,
        arrayElement(['search', 'support', 'ads', 'infra', 'research', 'growth', 'risk', 'data'],
                     user % 200 % 25 % 8 + 1) AS team,
        {H.format(salt=15)} % 50 = 0 AS failed
    FROM (SELECT number, {H.format(salt=11)} % 2000 AS user FROM numbers({{offset:UInt64}}, {{count:UInt64}}))
)
"""


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` runs, and the last result."""
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def create(backend: Any, db: str, *, views: bool = True) -> None:
    backend.command(f"DROP DATABASE IF EXISTS `{db}`")
    for statement in schema_statements(db):
        if views or "_usage_1" not in statement:
            backend.command(statement)


def load(backend: Any, db: str, spans: int, chunk: int = 500_000) -> float:
    """Seconds to insert ``spans`` generated rows (views included, if any)."""
    now_ns = time.time_ns()
    started = time.perf_counter()
    for offset in range(0, spans, chunk):
        count = min(chunk, spans - offset)
        backend.command(GENERATE.replace("{db}", db), {"now_ns": now_ns, "offset": offset, "count": count})
    return time.perf_counter() - started


def exporter_path(backend: Any, db: str, count: int) -> float:
    """Seconds to insert ``count`` exporter rows in 512-span batches (the mapping is not timed)."""
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
        attrs |= {"agentportal.user.id": f"user-{i % 2000}", "agentportal.key.alias": f"key-{i % 200}"}
        tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attrs).end()
    rows = [span_to_row(s) for s in memory.get_finished_spans()]
    started = time.perf_counter()
    for i in range(0, len(rows), 512):  # BatchSpanProcessor's default batch size
        backend.insert_rows(db, "otel_traces", rows[i : i + 512])
    return time.perf_counter() - started


def insert_cost(backend: Any, spans: int, exporter_spans: int) -> None:
    print(f"insert cost of the rollup views ({spans:,} generated rows; {exporter_spans:,} exporter rows):")
    results: dict[bool, tuple[float, float]] = {}
    for _ in range(2):  # alternate, twice: the machine is shared
        for views in (False, True):
            db = f"bench_insert_{int(views)}"
            create(backend, db, views=views)
            generated, batched = load(backend, db, spans), exporter_path(backend, db, exporter_spans)
            best = results.get(views, (float("inf"), float("inf")))
            results[views] = (min(best[0], generated), min(best[1], batched))
            backend.command(f"DROP DATABASE `{db}`")
    (g0, b0), (g1, b1) = results[False], results[True]
    print(f"  generated, one INSERT per 500k rows   without views {g0:7.2f} s   with {g1:7.2f} s   x{g1 / g0:.2f}")
    print(f"  exporter path, 512-span batches        without views {b0:7.2f} s   with {b1:7.2f} s   x{b1 / b0:.2f}")


QUESTIONS: list[tuple[str, str, Callable[..., Any]]] = [
    ("usage, 7 days, no grouping", "week", lambda b, **kw: q.usage(b, **kw)),
    (
        "usage, 7 days, by team+model, daily",
        "week",
        lambda b, **kw: q.usage(b, group_by=("team", "model"), bucket="day", **kw),
    ),
    (
        "usage, 24 h, by project+key+user, hourly",
        "day",
        lambda b, **kw: q.usage(b, group_by=("project", "key_alias", "user"), bucket="hour", **kw),
    ),
    (
        "usage, 7 days, team=search, by model",
        "week",
        lambda b, **kw: q.usage(b, filters=q.Filters(team="search"), group_by=("model",), **kw),
    ),
    (
        "time series, 7 days, by model, hourly",
        "week",
        lambda b, **kw: q.usage(b, group_by=("model",), bucket="hour", **kw),
    ),
    (
        "time series, 24 h, team scope, hourly",
        "day",
        lambda b, **kw: q.usage(b, team_scope="search", bucket="hour", **kw),
    ),
    ("error breakdown, 7 days", "week", lambda b, **kw: q.error_breakdown(b, **kw)),
    ("errors over time, 7 days, hourly", "week", lambda b, **kw: q.error_breakdown(b, bucket="hour", **kw)),
]


def rollup_rows(backend: Any, db: str) -> str:
    counts = []
    for tier in TIERS:
        rows = backend.query(
            "SELECT sum(rows) AS n FROM system.parts WHERE active AND database = {db:String} AND table = {t:String}",
            {"db": db, "t": tier.table("otel_traces")},
        )
        counts.append(f"{tier.suffix} {int(rows[0]['n'] or 0):,} rows")
    return ", ".join(counts)


def questions(backend: Any, db: str, spans: int, repeat: int) -> dict[str, tuple[float, float, float]]:
    """Each question on the raw table, then from the rollups over two windows: one that is not
    minute-aligned (the raw rows of its partial edge minutes are read too) and the one the CLI
    and the monitoring API use for "the last N" (ends on the next whole minute: rollups only)."""
    target = q.Target(database=db)
    ragged_end = datetime.now(timezone.utc) + timedelta(minutes=1, seconds=7)
    aligned_end = relative_end()
    windows = {
        (kind, end_name): {"start": end - span, "end": end}
        for kind, span in (("week", timedelta(days=8)), ("day", timedelta(days=1)))
        for end_name, end in (("ragged", ragged_end), ("aligned", aligned_end))
    }
    print(f"{spans:,} spans ({rollup_rows(backend, db)}); median of {repeat}, ms:")
    print(f"  {'question':<44} {'raw':>9} {'rollup':>9} {'aligned':>9} {'raw/rollup':>11}")
    times = {}
    for label, window, ask in QUESTIONS:
        kw = {"target": target, **windows[(window, "ragged")]}
        raw_ms, raw = timed(functools.partial(ask, backend, source="raw", **kw), max(1, repeat // 2))
        rollup_ms, rolled = timed(functools.partial(ask, backend, source="rollup", **kw), repeat)
        assert [r.calls for r in rolled] == [r.calls for r in raw], label
        aligned = {"target": target, **windows[(window, "aligned")]}
        aligned_ms, _ = timed(functools.partial(ask, backend, source="rollup", **aligned), repeat)
        times[label] = (raw_ms, rollup_ms, aligned_ms)
        print(f"  {label:<44} {raw_ms:9.1f} {rollup_ms:9.1f} {aligned_ms:9.1f} {raw_ms / rollup_ms:10.1f}x")
    return times


def raw_only(backend: Any, db: str, repeat: int) -> None:
    target = q.Target(database=db)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    week, day = {"start": end - timedelta(days=8), "end": end}, {"start": end - timedelta(days=1), "end": end}
    ms, calls = timed(lambda: q.recent_calls(backend, target=target, **day), repeat)
    print(f"  {'recent calls, 24 h, newest 50':<44} {ms:9.1f}")
    ms, _ = timed(
        lambda: q.recent_calls(
            backend, filters=q.Filters(team="search", status="error"), offset=1000, target=target, **week
        ),
        repeat,
    )
    print(f"  {'recent calls, 7 days, team+errors, offset 1000':<44} {ms:9.1f}")
    trace_id = calls[0].trace_id
    ms, _ = timed(lambda: q.trace(backend, trace_id, target=target), repeat)
    print(f"  {'trace lookup by id (via trace_id_ts)':<44} {ms:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", default="1000000,10000000", help="comma list of sizes")
    parser.add_argument("--insert-spans", type=int, default=1_000_000, help="rows for the insert-cost test (0: skip)")
    parser.add_argument("--exporter-spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", help="chDB directory (default: a fresh temporary one)")
    parser.add_argument("--reuse", action="store_true", help="keep databases --dir already holds (no reload)")
    parser.add_argument(
        "--optimize", action="store_true", help="OPTIMIZE ... FINAL the rollups first (merged parts, steady state)"
    )
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.spans.split(","))
    directory = args.dir or tempfile.mkdtemp(prefix="agentportal-bench-")
    backend = connect(f"chdb://{directory}")
    if args.insert_spans:
        insert_cost(backend, args.insert_spans, args.exporter_spans)
    results = {}
    for spans in sizes:
        db = f"bench_{spans}"
        if not (args.reuse and backend.query("EXISTS TABLE {db:Identifier}.otel_traces", {"db": db})[0]["result"]):
            create(backend, db)
            elapsed = load(backend, db, spans)
            print(f"loaded {spans:,} spans in {elapsed:.1f} s ({spans / elapsed:,.0f} spans/s, views included)")
        if args.optimize:
            started = time.perf_counter()
            for tier in TIERS:
                backend.command(f"OPTIMIZE TABLE `{db}`.`{tier.table('otel_traces')}` FINAL")
            print(f"merged the rollups of {spans:,} spans (OPTIMIZE FINAL) in {time.perf_counter() - started:.1f} s")
        results[spans] = questions(backend, db, spans, args.repeat)
    raw_only(backend, f"bench_{sizes[-1]}", args.repeat)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"rollup scaling, {large:,} vs {small:,} spans (ms; ragged window, then aligned):")
        for label, _, _ in QUESTIONS:
            a, b = results[small][label][1], results[large][label][1]
            c, d = results[small][label][2], results[large][label][2]
            print(f"  {label:<44} {a:9.1f} {b:9.1f} {b / a:6.2f}x   {c:9.1f} {d:9.1f} {d / c:6.2f}x")
    backend.close()
    print(f"chDB directory: {directory}")


if __name__ == "__main__":
    main()
