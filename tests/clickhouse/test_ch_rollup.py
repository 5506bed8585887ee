"""Usage rollups against the raw table on the same spans: every dimension, filter and bucket.

Spans are written by the plugin's own ``ClickHouseSpanExporter`` and, for a third of them, as the
collector's exporter would write them (``reference_mapping``), into one chDB database whose
views fill the rollups. Counts and sums must equal the raw answer exactly; percentiles must be
within the rollup's stated rank tolerance of the exact values of the group.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from reference_mapping import rows_from_request

from agentportal_otel.clickhouse import ClickHouseSpanExporter, connect, schema_statements, span_to_row
from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.clickhouse import _rollup as rollup

pytestmark = pytest.mark.slow

DB = "rollup_db"
BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=4)
ATTR = {"team": "agentportal.team.id", "project": "agentportal.project", "model": "gen_ai.request.model"}
ATTR |= {"key_alias": "agentportal.key.alias", "user": "agentportal.user.id"}
TTFC = "gen_ai.response.time_to_first_chunk"
WINDOWS = {
    # Unaligned at both ends: raw edges, minutes, hours.
    "ragged": (BASE + timedelta(hours=5, minutes=17, seconds=23.5), BASE + timedelta(days=2, hours=3, seconds=7.25)),
    "aligned": (BASE + timedelta(hours=2), BASE + timedelta(days=1, hours=20)),
    "inside one minute": (BASE + timedelta(hours=30, seconds=1), BASE + timedelta(hours=30, seconds=59)),
}
FILTERS: dict[str, q.Filters] = {
    "none": q.Filters(),
    "project": q.Filters(project="project-a"),
    "team id": q.Filters(team="team-a"),
    "team alias": q.Filters(team="Team B"),
    "model": q.Filters(model="model-b"),
    "key_alias": q.Filters(key_alias="key_alias-a"),
    "user": q.Filters(user="user-b"),
    "empty user": q.Filters(user=""),
    "ok": q.Filters(status="ok"),
    "error": q.Filters(status="error", project="project-b"),
}
GROUPS: list[tuple[q.Dimension, ...]] = [
    (),
    *((d,) for d in q.DIMENSIONS),
    ("team", "project", "model", "key_alias", "user"),
]


def _ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _spans(count: int, seed: int, start: datetime, span: timedelta) -> list[ReadableSpan]:
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel")
    for _ in range(count):
        at = _ns(start) + rng.randrange(int(span.total_seconds() * 10**9))
        attrs: dict[str, Any] = {"gen_ai.operation.name": rng.choice(["chat", "embeddings"])}
        for dim, key in ATTR.items():
            if rng.random() < 0.85:
                attrs[key] = rng.choice([f"{dim}-a", f"{dim}-b", "", "O'Brien; --"])
        if "agentportal.team.id" in attrs and rng.random() < 0.9:
            attrs["agentportal.team.alias"] = rng.choice(["Team A", "Team B", ""])
        if rng.random() < 0.9:
            attrs["gen_ai.provider.name"] = rng.choice(["openai", "anthropic"])
        attrs["gen_ai.usage.input_tokens"] = rng.randrange(0, 5000)
        attrs["gen_ai.usage.output_tokens"] = rng.randrange(0, 900)
        if rng.random() < 0.5:
            attrs["gen_ai.usage.cache_read.input_tokens"] = rng.randrange(0, 3000)
        if rng.random() < 0.3:
            attrs["gen_ai.usage.reasoning.output_tokens"] = rng.randrange(0, 400)
        attrs["agentportal.cost.usd"] = rng.choice([0.00042, 7.5e-07, 0.0125, 1.0])
        if rng.random() < 0.4:
            attrs[TTFC] = rng.uniform(0.05, 3.0)
        failed = rng.random() < 0.2
        if failed and rng.random() < 0.9:
            attrs["error.type"] = rng.choice(["RateLimitError", "APIConnectionError"])
        sp = tracer.start_span("chat x", kind=SpanKind.CLIENT, attributes=attrs, start_time=at)
        if failed:
            sp.set_status(Status(StatusCode.ERROR, "boom"))
        sp.end(end_time=at + rng.randrange(1, 8 * 10**9))
        if rng.random() < 0.05:  # a non-LLM span: never counted
            tracer.start_span("proxy", start_time=at).end(end_time=at + 10)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _write(url: str, database: str, spans: Sequence[ReadableSpan]) -> None:
    """Two thirds through the plugin's exporter, one third as the collector writes them."""
    ours, theirs = [s for i, s in enumerate(spans) if i % 3], [s for i, s in enumerate(spans) if not i % 3]
    exporter = ClickHouseSpanExporter(url, database=database)
    assert exporter.export(ours).name == "SUCCESS"
    exporter.shutdown()
    backend = connect(url)
    try:
        backend.insert_rows(database, "otel_traces", rows_from_request(encode_spans(theirs)))
    finally:
        backend.close()


@dataclass(frozen=True)
class Call:
    at: int
    attrs: dict[str, str]
    error: bool
    duration: int


@pytest.fixture(scope="module")
def loaded(chdb_url: str) -> Iterator[tuple[Any, list[Call]]]:
    spans = _spans(2500, 5, BASE, timedelta(days=3))
    _write(chdb_url, DB, spans)
    calls = [
        Call(s.start_time or 0, row["SpanAttributes"], row["StatusCode"] == "Error", row["Duration"])
        for s, row in ((s, span_to_row(s)) for s in spans)
        if "gen_ai.operation.name" in (s.attributes or {})
    ]
    backend = connect(chdb_url)
    yield backend, calls
    backend.close()


def _matches(call: Call, filters: q.Filters, scope: str | None) -> bool:
    a = call.attrs
    if scope is not None and a.get(ATTR["team"]) != scope:
        return False
    for name in ("project", "model", "key_alias", "user"):
        value = getattr(filters, name)
        if value is not None and a.get(ATTR[name]) != value:
            return False
    if filters.team is not None and filters.team not in (a.get(ATTR["team"]), a.get("agentportal.team.alias")):
        return False
    return filters.status is None or (filters.status == "error") == call.error


def _within_rank(value: float, values: list[float], level: float) -> bool:
    ordered, n = sorted(values), len(values)
    tolerance = rollup.QUANTILE_RANK_TOLERANCE
    lo = max(0, math.floor((level - tolerance) * n) - 1)
    hi = min(n - 1, math.ceil((level + tolerance) * n))
    slack = 1e-6 * max(abs(ordered[lo]), abs(ordered[hi]))  # t-digest keeps Float32 centroids
    return ordered[lo] - slack <= value <= ordered[hi] + slack


def _bucket(at: int, bucket: str | None) -> datetime | None:
    if bucket is None:
        return None
    width = 3600 if bucket == "hour" else 86400
    return datetime.fromtimestamp(at // 10**9 // width * width, tz=timezone.utc)


def _check_usage(
    backend: Any, calls: list[Call], window: tuple[datetime, datetime], group_by: tuple[q.Dimension, ...], **kw: Any
) -> None:
    start, end = window
    args = {"start": start, "end": end, "group_by": group_by, "target": q.Target(DB), **kw}
    raw = q.usage(backend, source="raw", **args)
    rolled = q.usage(backend, source="rollup", **args)
    assert [(r.bucket, r.dimensions) for r in rolled] == [(r.bucket, r.dimensions) for r in raw]
    members: dict[Any, list[Call]] = defaultdict(list)
    for call in calls:
        if _ns(start) <= call.at < _ns(end) and _matches(call, kw.get("filters", q.Filters()), kw.get("team_scope")):
            label = tuple((d, call.attrs.get(ATTR[d], "unattributed")) for d in group_by)
            members[(_bucket(call.at, kw.get("bucket")), label)].append(call)
    for exact, approx in zip(raw, rolled, strict=True):
        for name in ("calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
            assert getattr(approx, name) == getattr(exact, name), name
        assert (approx.streams, approx.error_rate) == (exact.streams, exact.error_rate)
        assert approx.cost_usd == pytest.approx(exact.cost_usd, rel=1e-9)
        group = members[(exact.bucket, exact.dimensions)]
        assert len(group) == exact.calls
        durations = [c.duration / 1e6 for c in group]
        for level, value in zip(rollup.QUANTILE_LEVELS, (approx.p50_ms, approx.p95_ms, approx.p99_ms), strict=True):
            assert _within_rank(value, durations, level), (level, value)
        firsts = [float(c.attrs[TTFC]) * 1e3 for c in group if TTFC in c.attrs]
        assert len(firsts) == approx.streams
        if firsts:
            assert approx.ttfc_p50_ms is not None and approx.ttfc_p95_ms is not None
            assert _within_rank(approx.ttfc_p50_ms, firsts, 0.5) and _within_rank(approx.ttfc_p95_ms, firsts, 0.95)
        else:
            assert approx.ttfc_p50_ms is None and exact.ttfc_p50_ms is None


def _check_errors(backend: Any, window: tuple[datetime, datetime], **kw: Any) -> None:
    start, end = window
    args = {"start": start, "end": end, "target": q.Target(DB), **kw}
    assert q.error_breakdown(backend, source="rollup", **args) == q.error_breakdown(backend, source="raw", **args)


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("bucket", [None, "hour", "day"])
def test_usage_rollup_equals_raw_for_every_dimension(loaded: Any, window: str, bucket: str | None) -> None:
    backend, calls = loaded
    for group_by in GROUPS:
        _check_usage(backend, calls, WINDOWS[window], group_by, bucket=bucket)


@pytest.mark.parametrize("bucket", [None, "hour", "day"])
@pytest.mark.parametrize("name", list(FILTERS))
def test_usage_and_errors_rollup_equal_raw_for_every_filter(loaded: Any, name: str, bucket: str | None) -> None:
    backend, calls = loaded
    for group_by in [("model",), ("team", "user")]:
        _check_usage(backend, calls, WINDOWS["ragged"], group_by, bucket=bucket, filters=FILTERS[name])
    for window in WINDOWS.values():
        _check_errors(backend, window, bucket=bucket, filters=FILTERS[name])


@pytest.mark.parametrize("scope", ["team-a", "team-b", "O'Brien; --"])
def test_team_scope_on_the_rollup(loaded: Any, scope: str) -> None:
    backend, calls = loaded
    for bucket in (None, "hour"):
        _check_usage(backend, calls, WINDOWS["ragged"], ("model",), bucket=bucket, team_scope=scope)
        _check_usage(
            backend, calls, WINDOWS["ragged"], (), bucket=bucket, team_scope=scope, filters=FILTERS["team alias"]
        )
        _check_errors(backend, WINDOWS["ragged"], bucket=bucket, team_scope=scope)


def test_auto_reads_the_rollup_and_raw_is_forced(loaded: Any) -> None:
    backend, _ = loaded
    start, end = WINDOWS["ragged"]
    args = {"start": start, "end": end, "group_by": ("team",), "target": q.Target(DB)}
    auto, forced = q.usage(backend, **args), q.usage(backend, source="rollup", **args)
    assert [(r.dimensions, r.calls, r.input_tokens, r.streams) for r in auto] == [
        (r.dimensions, r.calls, r.input_tokens, r.streams) for r in forced
    ]
    with pytest.raises(ValueError, match="source"):
        q.usage(backend, source="fast", **args)  # type: ignore[arg-type]
    assert q.usage(backend, start=end, end=start, target=q.Target(DB)) == []


def test_cover_splits_a_window_into_hours_minutes_and_raw_edges() -> None:
    s = 10**9
    assert rollup.cover(3590 * s + 5, 7260 * s + 7, [3600, 60]) == [
        (None, 3590 * s + 5, 3600 * s),
        (0, 3600 * s, 7200 * s),
        (1, 7200 * s, 7260 * s),
        (None, 7260 * s, 7260 * s + 7),
    ]
    assert rollup.cover(10 * s, 50 * s, [3600, 60]) == [(None, 10 * s, 50 * s)]
    assert rollup.cover(5, 5, [60]) == []


BEFORE = Path(__file__).parent / "data" / "schema_before_rollups.sql"


def _run_script(backend: Any, text: str, database: str) -> None:
    text = text.replace("`otel`", f"`{database}`")
    for statement in re.split(r";\s*\n", text):
        if any(line.strip() and not line.lstrip().startswith("--") for line in statement.splitlines()):
            backend.command(statement)


def test_schema_apply_and_backfill_on_a_database_made_by_the_previous_ddl(chdb_url: str, fresh_db: str) -> None:
    backend = connect(chdb_url)
    try:
        _run_script(backend, BEFORE.read_text(), fresh_db)
        old = _spans(600, 9, BASE, timedelta(days=2))
        backend.insert_rows(fresh_db, "otel_traces", [span_to_row(s) for s in old])
        ddl = "SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = 'otel_traces'"
        before = backend.query(ddl, {"db": fresh_db})
        raw_count = "SELECT count() AS n FROM {db:Identifier}.otel_traces"
        assert int(backend.query(raw_count, {"db": fresh_db})[0]["n"]) == len(old)
        target = q.Target(fresh_db)
        window = {"start": BASE - timedelta(hours=1), "end": BASE + timedelta(days=3), "target": target}
        (auto,) = q.usage(backend, source="auto", **window)  # no rollup yet: the raw table answers
        assert (auto.calls, auto.p50_ms) == (
            len(old) - sum(s.name == "proxy" for s in old),
            q.usage(backend, source="raw", **window)[0].p50_ms,
        )
        with pytest.raises(ValueError, match="schema --apply"):
            q.usage(backend, source="rollup", **window)

        for statement in schema_statements(fresh_db):  # what `agentportal-otel schema --apply` runs
            backend.command(statement)
        assert backend.query(ddl, {"db": fresh_db}) == before
        assert int(backend.query(raw_count, {"db": fresh_db})[0]["n"]) == len(old)
        assert q.usage(backend, source="rollup", **window) == []  # the views see new inserts only

        expected = q.usage(backend, source="raw", group_by=("team", "model"), bucket="hour", **window)
        for _ in range(2):  # idempotent: the second run doubles nothing
            result = rollup.backfill(backend, database=fresh_db, traces_table="otel_traces", since=BASE)
            assert result.calls == sum(r.calls for r in expected)
            got = q.usage(backend, source="rollup", group_by=("team", "model"), bucket="hour", **window)
            assert [(r.bucket, r.dimensions, r.calls, r.input_tokens) for r in got] == [
                (r.bucket, r.dimensions, r.calls, r.input_tokens) for r in expected
            ]

        new = _spans(300, 10, BASE + timedelta(days=1), timedelta(hours=5))
        backend.insert_rows(fresh_db, "otel_traces", [span_to_row(s) for s in new])
        rollup.backfill(backend, database=fresh_db, traces_table="otel_traces", since=BASE)
        for group_by in [(), ("user",)]:
            exact = q.usage(backend, source="raw", group_by=group_by, bucket="day", **window)
            rolled = q.usage(backend, source="rollup", group_by=group_by, bucket="day", **window)
            assert [(r.bucket, r.dimensions, r.calls, r.errors, r.output_tokens) for r in rolled] == [
                (r.bucket, r.dimensions, r.calls, r.errors, r.output_tokens) for r in exact
            ]
    finally:
        backend.close()


def test_coverage_finds_llm_spans_older_than_the_rollups(chdb_url: str, fresh_db: str) -> None:
    backend = connect(chdb_url)
    try:
        _run_script(backend, BEFORE.read_text(), fresh_db)
        coverage = rollup.coverage(backend, database=fresh_db, traces_table="otel_traces")
        assert coverage.missing == tuple(t.table("otel_traces") for t in rollup.FEED_ORDER)
        now = datetime.now(timezone.utc)
        since = now - timedelta(days=4, hours=12)  # off the hour grid: 5 days of backfill at any minute
        old = _spans(100, 12, since, timedelta(days=1))
        backend.insert_rows(fresh_db, "otel_traces", [span_to_row(s) for s in old])
        for statement in schema_statements(fresh_db):
            backend.command(statement)
        new = _spans(50, 13, now - timedelta(hours=2), timedelta(hours=1))
        backend.insert_rows(fresh_db, "otel_traces", [span_to_row(s) for s in new])

        coverage = rollup.coverage(backend, database=fresh_db, traces_table="otel_traces")
        newest_llm = min(s.start_time or 0 for s in new if s.name != "proxy")
        assert coverage.missing == ()
        assert coverage.rollup_start == datetime.fromtimestamp(newest_llm // 10**9 // 60 * 60, timezone.utc)
        oldest = min(s.start_time or 0 for s in old + new)
        assert coverage.uncovered_since == datetime.fromtimestamp(oldest // 10**9, timezone.utc)
        assert timedelta(days=4) < now - coverage.uncovered_since < timedelta(days=4, hours=12)
        assert coverage.backfill_days(now) == 5

        rollup.backfill(backend, database=fresh_db, traces_table="otel_traces", since=since)
        coverage = rollup.coverage(backend, database=fresh_db, traces_table="otel_traces")
        assert coverage.uncovered_since is None and coverage.backfill_days(now) == 0
        oldest_llm = min(s.start_time or 0 for s in old if s.name != "proxy")
        assert coverage.rollup_start == datetime.fromtimestamp(oldest_llm // 10**9 // 60 * 60, timezone.utc)
    finally:
        backend.close()


def test_cli_schema_apply_backfill_and_source(chdb_url: str, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from agentportal_otel.cli import main

    env = {"CLICKHOUSE_URL": chdb_url, "CLICKHOUSE_DATABASE": fresh_db}
    assert main(["schema", "--database", fresh_db], environ={}) == 0
    printed = capsys.readouterr().out
    assert printed == ";\n\n".join(schema_statements(fresh_db)) + ";\n"
    assert main(["schema", "--cluster", "prod", "--replicated"], environ={}) == 0
    assert "ON CLUSTER `prod`" in capsys.readouterr().out
    assert main(["schema", "--replicated"], environ={}) == 2  # needs --cluster
    capsys.readouterr()

    # Half a day off the hour grid, so that the oldest span (a few minutes after the start) is
    # 4.4-4.5 days old whatever the minute the test runs at: the backfill it needs is 5 days.
    spans = _spans(200, 3, datetime.now(timezone.utc) - timedelta(days=4, hours=12), timedelta(days=1))
    oldest_llm = datetime.fromtimestamp(min(s.start_time or 0 for s in spans if s.name != "proxy") / 1e9, timezone.utc)
    assert timedelta(days=4, hours=9) < datetime.now(timezone.utc) - oldest_llm < timedelta(days=4, hours=12)
    backend = connect(chdb_url)
    try:
        _run_script(backend, BEFORE.read_text(), fresh_db)
        backend.insert_rows(fresh_db, "otel_traces", [span_to_row(s) for s in spans])
    finally:
        backend.close()
    # doctor (collector down: only its ClickHouse checks matter here) names the missing rollups ...
    doctor_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    main(["doctor", "--timeout", "1"], environ=doctor_env)
    out = capsys.readouterr().out
    assert f"[WARN] usage rollups cover otel_traces: missing in {fresh_db}: otel_traces_usage_1m" in out, out
    assert "fix: run `agentportal-otel schema --apply`" in out
    assert main(["schema", "--apply"], environ=env) == 0
    assert "rollup backfill" in capsys.readouterr().out
    # ... then the spans older than them, with the backfill that covers them ...
    main(["doctor", "--timeout", "1"], environ=doctor_env)
    out = capsys.readouterr().out
    assert "[WARN] usage rollups cover otel_traces: otel_traces has LLM spans from" in out, out
    assert "nowhere (empty)" in out and "fix: run `agentportal-otel rollup backfill --since 5d`" in out
    for _ in range(2):
        assert main(["rollup", "backfill", "--since", "30d", "--format", "json"], environ=env) == 0
        (result,) = json.loads(capsys.readouterr().out)
        assert result["calls"] == sum(1 for s in spans if s.name != "proxy")
    # ... and nothing once the backfill ran.
    main(["doctor", "--timeout", "1"], environ=doctor_env)
    out = capsys.readouterr().out
    assert f"[PASS] usage rollups cover otel_traces: from {oldest_llm:%Y-%m-%d}" in out, out
    answers = {}
    for source in ("raw", "rollup", "auto"):
        assert (
            main(["usage", "--since", "7d", "--by", "team", "--source", source, "--format", "json"], environ=env) == 0
        )
        answers[source] = [(r["team"], r["calls"], r["input_tokens"]) for r in json.loads(capsys.readouterr().out)]
        assert main(["errors", "--since", "7d", "--source", source, "--format", "json"], environ=env) == 0
        assert json.loads(capsys.readouterr().out)
    assert answers["raw"] == answers["rollup"] == answers["auto"] != []
    assert main(["usage", "--source", "fast"], environ=env) == 2


def test_questions_read_the_smallest_tier_that_holds_their_key(loaded: Any) -> None:
    backend, _ = loaded
    start, end = WINDOWS["ragged"]

    def pick(columns: set[str], bucket: str | None = None) -> list[str]:
        tiers = q._tiers(backend, q.Target(DB), "auto", bucket, start, end, columns)
        return [t.suffix for t in tiers or ()]

    assert pick({"TeamId", "RequestModel"}) == ["usage_team_1d", "usage_team_1h", "usage_team_1m"]
    assert pick({"TeamId"}, "hour") == ["usage_team_1h", "usage_team_1m"]
    assert pick({"UserId", "Project"}) == ["usage_1h", "usage_1m"]
    assert pick(set(), "day") == ["usage_team_1d", "usage_team_1h", "usage_team_1m"]
