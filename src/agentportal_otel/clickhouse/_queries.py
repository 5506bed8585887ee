"""Typed, parameterized questions asked of the traces table, on a server or on chDB.

Every user-supplied value travels as a server-side parameter (``{name:Type}``); table and
database names are validated identifiers; every other SQL fragment is a constant of this
module. Only LLM-call spans are counted (those carrying ``gen_ai.operation.name``), so proxy
or probe spans never inflate usage. A missing attribute is reported as :data:`UNATTRIBUTED`
(``mapContains`` decides, so a present-but-empty value stays ``''`` and is never merged with
missing ones). Times are UTC.

``team_scope`` (a team id) is a security boundary, not a filter: every function that takes it
adds ``agentportal.team.id = team_scope`` to its query, so a caller scoped to one team can never
read another team's rows, whatever filters it passes.

``source`` (:func:`usage`, :func:`error_breakdown`) picks the table. ``"raw"`` reads
``otel_traces``. ``"rollup"`` reads the usage rollups of :mod:`._rollup` and raises
``ValueError`` if they do not exist. ``"auto"`` (the default) reads the rollups whenever they exist
and can answer, else the raw table: every dimension and filter of this module is a rollup key and
both buckets are multiples of both grains, so with the rollups in place ``auto`` reads them.
The rule at the edges: the window is never rounded. The day-aligned part of ``[start, end)``
is read from a daily rollup (when the question's key fits it), the hour-aligned rest from an
hourly one, the minute-aligned rest from the minute rollup, and the partial minutes at the two
edges from raw rows, all in one query (``UNION ALL`` of partial aggregates
and ``-State`` rows, merged with ``-Merge``). Calls, errors, tokens, cost, streams and
``last_seen`` are therefore exactly the raw answer (cost up to float summation order); p50/p95/
p99 and the time-to-first-chunk percentiles are t-digest estimates (rank error within
:data:`~._rollup.QUANTILE_RANK_TOLERANCE`) where the raw table gives ``quantileExact``. The
rollups hold what was inserted after their views were created plus what ``agentportal-otel rollup
backfill`` recomputed; run it once after adding them to a database that already has spans. ::

    backend = connect("chdb:///var/lib/agentportal")
    rows = usage(backend, start=..., end=..., group_by=("team", "model"), bucket="day")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal

from agentportal_otel.clickhouse import _names as names
from agentportal_otel.clickhouse import _rollup as rollup
from agentportal_otel.clickhouse._backend import Backend
from agentportal_otel.clickhouse._schema import quote_identifier, trace_id_ts_table

Dimension = Literal["team", "project", "model", "key_alias", "user"]
Bucket = Literal["hour", "day"]
Status = Literal["ok", "error"]
Source = Literal["auto", "rollup", "raw"]

DIMENSIONS: Final[Mapping[str, str]] = {
    "team": names.TEAM_ID,
    "project": names.PROJECT,
    "model": names.REQUEST_MODEL,
    "key_alias": names.KEY_ALIAS,
    "user": names.USER_ID,
}
"""Group-by dimension -> span attribute it reads."""

UNATTRIBUTED: Final = names.UNATTRIBUTED
_LLM_ONLY: Final = f"mapContains(SpanAttributes, '{names.OPERATION_NAME}')"
_WINDOW: Final = (
    "Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})"
)
_BUCKETS: Final[Mapping[str, str]] = {
    "hour": "toUnixTimestamp(toStartOfHour(Timestamp, 'UTC'))",
    "day": "toUnixTimestamp(toStartOfDay(Timestamp, 'UTC'))",
}


@dataclass(frozen=True)
class Target:
    """Where the traces live: database and traces table (validated when used)."""

    database: str = "otel"
    table: str = "otel_traces"

    def traces(self) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(self.table)}"

    def lookup(self) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(trace_id_ts_table(self.table))}"

    def rollup(self, tier: rollup.Tier) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(tier.table(self.table))}"


@dataclass(frozen=True)
class Filters:
    """Exact-match filters; ``None`` means no filter. ``team`` matches team id or alias."""

    project: str | None = None
    team: str | None = None
    model: str | None = None
    key_alias: str | None = None
    user: str | None = None
    status: Status | None = None


@dataclass(frozen=True)
class UsageRow:
    """One group of :func:`usage`. ``dimensions`` are ``(name, value)`` in ``group_by`` order."""

    bucket: datetime | None
    dimensions: tuple[tuple[str, str], ...]
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_rate: float
    """``errors / calls``."""
    streams: int
    """Streamed calls in the group: those with a time to first chunk."""
    ttfc_p50_ms: float | None
    """Time to first chunk percentiles over ``streams``; ``None`` when the group has no stream."""
    ttfc_p95_ms: float | None
    cache_read_tokens: int = 0
    """Input tokens read from the provider's prompt cache (``gen_ai.usage.cache_read.input_tokens``)."""
    reasoning_tokens: int = 0
    """Output tokens spent on reasoning (``gen_ai.usage.reasoning.output_tokens``)."""


@dataclass(frozen=True)
class CallRow:
    """One LLM call of :func:`recent_calls`."""

    timestamp: datetime
    trace_id: str
    span_id: str
    span_name: str
    model: str
    project: str
    team: str
    key_alias: str
    user: str
    status: str
    error_type: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_ms: float


@dataclass(frozen=True)
class SpanRow:
    """One span of :func:`trace`, any kind."""

    timestamp: datetime
    span_id: str
    parent_span_id: str
    span_name: str
    span_kind: str
    service_name: str
    status: str
    status_message: str
    duration_ms: float
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRow:
    """One span event (e.g. ``exception``) of :func:`call_detail`."""

    timestamp: datetime
    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallDetail(SpanRow):
    """One LLM call of :func:`call_detail`: the span (the fields of :class:`SpanRow`), its trace
    and its events."""

    trace_id: str = field(kw_only=True)
    events: tuple[EventRow, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class ErrorRow:
    """One ``error.type`` (per model, and per bucket when asked) of :func:`error_breakdown`."""

    bucket: datetime | None
    error_type: str
    model: str
    calls: int
    last_seen: datetime


def _attr(key: str) -> str:
    # Keys are module constants; refuse anything else rather than quote it.
    if not key.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"unexpected attribute key {key!r}")
    return f"SpanAttributes['{key}']"


def _labelled(key: str) -> str:
    return f"if(mapContains(SpanAttributes, '{key}'), {_attr(key)}, NULL)"


def _filter_clauses(filters: Filters, params: dict[str, Any]) -> list[str]:
    clauses: list[str] = []
    exact = {"project": names.PROJECT, "model": names.REQUEST_MODEL, "key_alias": names.KEY_ALIAS}
    exact["user"] = names.USER_ID
    for name, key in exact.items():
        value = getattr(filters, name)
        if value is not None:
            params[f"f_{name}"] = value
            clauses.append(f"(mapContains(SpanAttributes, '{key}') AND {_attr(key)} = {{f_{name}:String}})")
    if filters.team is not None:
        params["f_team"] = filters.team
        clauses.append(
            f"((mapContains(SpanAttributes, '{names.TEAM_ID}') AND {_attr(names.TEAM_ID)} = {{f_team:String}})"
            f" OR (mapContains(SpanAttributes, '{names.TEAM_ALIAS}')"
            f" AND {_attr(names.TEAM_ALIAS)} = {{f_team:String}}))"
        )
    if filters.status == "error":
        clauses.append("StatusCode = 'Error'")
    elif filters.status == "ok":
        clauses.append("StatusCode != 'Error'")
    elif filters.status is not None:
        raise ValueError(f"status must be 'ok' or 'error', got {filters.status!r}")
    return clauses


def _ns(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("pass timezone-aware datetimes (UTC)")
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _scope_clause(team_scope: str | None, params: dict[str, Any]) -> list[str]:
    if team_scope is None:
        return []
    if not team_scope:
        raise ValueError("team_scope must be a non-empty team id or None")
    params["scope_team"] = team_scope
    return [f"{_attr(names.TEAM_ID)} = {{scope_team:String}}"]


def _where(
    start: datetime, end: datetime, filters: Filters, params: dict[str, Any], team_scope: str | None = None
) -> str:
    params["start_ns"], params["end_ns"] = _ns(start), _ns(end)
    return " AND ".join([_LLM_ONLY, _WINDOW, *_scope_clause(team_scope, params), *_filter_clauses(filters, params)])


def _check_bucket(bucket: str | None) -> None:
    if bucket is not None and bucket not in _BUCKETS:
        raise ValueError(f"bucket must be 'hour', 'day' or None, got {bucket!r}")


def _label(value: Any) -> str:
    return UNATTRIBUTED if value is None else str(value)


def _utc(seconds: Any) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc)


def _from_ns(nanos: Any) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(nanos) // 1000)


def usage(
    backend: Backend,
    *,
    start: datetime,
    end: datetime,
    group_by: Sequence[Dimension] = (),
    bucket: Bucket | None = None,
    filters: Filters = Filters(),
    target: Target = Target(),
    team_scope: str | None = None,
    source: Source = "auto",
) -> list[UsageRow]:
    """Calls, errors, tokens, cost, latency and time-to-first-chunk percentiles per group in
    ``[start, end)``; ``source`` picks the rollups or the raw table (see the module docstring)."""
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown or len(set(group_by)) != len(group_by):
        raise ValueError(f"group_by must be distinct names from {sorted(DIMENSIONS)}, got {list(group_by)}")
    _check_bucket(bucket)
    tiers = _tiers(backend, target, source, bucket, start, end, _needed_columns(group_by, filters, team_scope))
    params: dict[str, Any] = {}
    keys = (["bucket"] if bucket else []) + [f"d_{d}" for d in group_by]
    order = " ORDER BY " + ", ".join((["bucket"] if bucket else []) + ["calls DESC"] + [f"d_{d}" for d in group_by])
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    if tiers is None:
        where = _where(start, end, filters, params, team_scope)
        ttfc = f"toFloat64OrNull({_attr(names.TIME_TO_FIRST_CHUNK)})"
        dims = [f"{_labelled(DIMENSIONS[d])} AS d_{d}" for d in group_by]
        sql = (
            f"SELECT {_BUCKETS[bucket] if bucket else 'NULL'} AS bucket, "
            + "".join(f"{d}, " for d in dims)
            + "".join(f"{rollup.MEASURE_COLUMNS[column][1]} AS {name}, " for name, column in _SUMS.items())
            + "quantileExact(0.5)(Duration) / 1e6 AS p50_ms, quantileExact(0.95)(Duration) / 1e6 AS p95_ms, "
            "quantileExact(0.99)(Duration) / 1e6 AS p99_ms, "
            f"quantileExact(0.5)({ttfc}) * 1e3 AS ttfc_p50_ms, quantileExact(0.95)({ttfc}) * 1e3 AS ttfc_p95_ms "
            f"FROM {target.traces()} WHERE {where}{group}{order}"
        )
    else:
        union = _union(
            tiers,
            start,
            end,
            target,
            bucket,
            group_by,
            filters,
            team_scope,
            params,
            raw_measures=[f"{rollup.MEASURE_COLUMNS[c][1]} AS {n}" for n, c in _ROLLUP_MEASURES.items()],
            rollup_measures=[f"{c} AS {n}" for n, c in _ROLLUP_MEASURES.items()],
        )
        if union is None:
            return []
        merge = rollup.DIGEST_MERGE
        sql = (
            f"SELECT {'bucket' if bucket else 'NULL AS bucket'}, "
            + "".join(f"d_{d}, " for d in group_by)
            + "".join(f"sum({name}) AS {name}, " for name in _SUMS)
            # Each digest is merged once (ClickHouse computes identical aggregates once); indexing
            # it in place keeps the arrays out of the result, a third less to transfer and parse.
            + f"{merge}(dq)[1] / 1e6 AS p50_ms, {merge}(dq)[2] / 1e6 AS p95_ms, {merge}(dq)[3] / 1e6 AS p99_ms, "
            f"{merge}(tq)[1] * 1e3 AS ttfc_p50_ms, {merge}(tq)[2] * 1e3 AS ttfc_p95_ms "
            f"FROM ({union}){group}{order}"
        )
    rows = backend.query(sql, params)
    return [_usage_row(row, group_by) for row in rows if int(row["calls"]) > 0]


_SUMS: Final[Mapping[str, str]] = {
    "calls": "Calls",
    "errors": "Errors",
    "input_tokens": "InputTokens",
    "output_tokens": "OutputTokens",
    "cache_read_tokens": "CacheReadTokens",
    "reasoning_tokens": "ReasoningTokens",
    "cost_usd": "CostUsd",
    "streams": "Streams",
}
"""Summed :class:`UsageRow` field -> rollup measure column (whose raw aggregate gives the field)."""
_ROLLUP_MEASURES: Final[Mapping[str, str]] = {**_SUMS, "dq": "DurationQuantiles", "tq": "TtfcQuantiles"}
_ROLLUP_BUCKETS: Final[Mapping[str, str]] = {
    "hour": "toUnixTimestamp(toStartOfHour(Start, 'UTC'))",
    "day": "toUnixTimestamp(toStartOfDay(Start, 'UTC'))",
}
_BUCKET_SECONDS: Final[Mapping[str, int]] = {"hour": 3600, "day": 86400}
_MAX_DATETIME_NS: Final = (2**32 - 1) * 1_000_000_000


def _needed_columns(group_by: Sequence[str], filters: Filters, team_scope: str | None) -> set[str]:
    """Rollup key columns a question reads: its dimensions, filters and scope."""
    columns = {rollup.DIMENSION_COLUMNS[d] for d in group_by}
    columns |= {rollup.DIMENSION_COLUMNS[name] for name in DIMENSIONS if getattr(filters, name) is not None}
    if filters.team is not None:
        columns.add("TeamAlias")
    if filters.status is not None:
        columns.add("StatusCode")
    if team_scope is not None:
        columns.add("TeamId")
    return columns


def _tiers(
    backend: Backend,
    target: Target,
    source: str,
    bucket: str | None,
    start: datetime,
    end: datetime,
    columns: set[str],
) -> tuple[rollup.Tier, ...] | None:
    """The rollup tiers that answer, coarsest first (one per grain), or ``None``: read raw rows.

    A tier qualifies when its key holds every column the question reads and the bucket is a
    multiple of its grain; per grain the first (smallest) qualifying tier is used. Every
    dimension and filter of this module is in the minute tier, so with the rollups present
    ``auto`` always reads them."""
    if source not in ("auto", "rollup", "raw"):
        raise ValueError(f"source must be 'auto', 'rollup' or 'raw', got {source!r}")
    if source == "raw":
        return None
    width = _BUCKET_SECONDS[bucket] if bucket else None
    chosen: dict[int, rollup.Tier] = {}
    for tier in rollup.TIERS:
        if (width is None or width % tier.grain_seconds == 0) and tier.has(columns):
            chosen.setdefault(tier.grain_seconds, tier)
    tiers = tuple(chosen.values())
    names_ = [t.table(target.table) for t in tiers]
    missing = not tiers or len(rollup.existing_tables(backend, target.database, names_)) < len(tiers)
    out_of_range = _ns(start) < 0 or _ns(end) > _MAX_DATETIME_NS
    if missing or out_of_range:
        if source == "rollup":
            why = "run `agentportal-otel schema --apply`" if missing else "the window is outside 1970..2106"
            raise ValueError(f"the usage rollups of {target.traces()} cannot answer: {why}")
        return None
    return tiers


def _rollup_filter_clauses(filters: Filters, params: dict[str, Any], team_scope: str | None) -> list[str]:
    """:func:`_filter_clauses` on rollup rows (``NULL`` key = missing attribute, never equal)."""
    clauses: list[str] = []
    if team_scope is not None:
        _scope_clause(team_scope, params)
        clauses.append("TeamId = {scope_team:String}")
    for name in ("project", "model", "key_alias", "user"):
        value = getattr(filters, name)
        if value is not None:
            params[f"f_{name}"] = value
            clauses.append(f"{rollup.DIMENSION_COLUMNS[name]} = {{f_{name}:String}}")
    if filters.team is not None:
        params["f_team"] = filters.team
        clauses.append("(TeamId = {f_team:String} OR TeamAlias = {f_team:String})")
    if filters.status == "error":
        clauses.append("StatusCode = 'Error'")
    elif filters.status == "ok":
        clauses.append("StatusCode != 'Error'")
    elif filters.status is not None:
        raise ValueError(f"status must be 'ok' or 'error', got {filters.status!r}")
    return clauses


def _union(
    tiers: Sequence[rollup.Tier],
    start: datetime,
    end: datetime,
    target: Target,
    bucket: str | None,
    group_by: Sequence[str],
    filters: Filters,
    team_scope: str | None,
    params: dict[str, Any],
    *,
    raw_measures: Sequence[str],
    rollup_measures: Sequence[str],
    raw_dims: Sequence[tuple[str, str]] = (),
    rollup_dims: Sequence[tuple[str, str]] = (),
    errors_only: bool = False,
) -> str | None:
    """``UNION ALL`` of partial aggregates: rollup rows of whole grains, and raw rows of the
    edges aggregated into the same states; the caller's query merges them."""
    pieces = rollup.cover(_ns(start), _ns(end), [t.grain_seconds for t in tiers])
    if not pieces:
        return None
    raw_dims = [*raw_dims, *((f"d_{d}", _labelled(DIMENSIONS[d])) for d in group_by)]
    rollup_dims = [*rollup_dims, *((f"d_{d}", rollup.DIMENSION_COLUMNS[d]) for d in group_by)]
    keys = (["bucket"] if bucket else []) + [alias for alias, _ in raw_dims]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    raw_where = [*_scope_clause(team_scope, params), *_filter_clauses(filters, params)]
    rollup_where = _rollup_filter_clauses(filters, params, team_scope)
    if errors_only:
        raw_where.append("StatusCode = 'Error'")
        rollup_where.append("StatusCode = 'Error'")
    # One SELECT per source: the pieces of a tier (both edges of the window) share it, as one
    # OR of ranges, so a question costs at most one scan per tier (each SELECT has a fixed cost).
    ranges: dict[int | None, list[str]] = {}
    for i, (level, lo, hi) in enumerate(pieces):
        if level is None:
            params[f"lo{i}"], params[f"hi{i}"] = lo, hi
            ranges.setdefault(level, []).append(
                f"Timestamp >= fromUnixTimestamp64Nano({{lo{i}:Int64}})"
                f" AND Timestamp < fromUnixTimestamp64Nano({{hi{i}:Int64}})"
            )
        else:
            params[f"lo{i}"], params[f"hi{i}"] = lo // 1_000_000_000, hi // 1_000_000_000
            ranges.setdefault(level, []).append(
                f"Start >= toDateTime({{lo{i}:UInt32}}, 'UTC') AND Start < toDateTime({{hi{i}:UInt32}}, 'UTC')"
            )
    selects = []
    for level, spans in ranges.items():
        within = spans[0] if len(spans) == 1 else "(" + " OR ".join(f"({r})" for r in spans) + ")"
        if level is None:
            where = [rollup.LLM_ONLY, within, *raw_where]
            columns = [f"{_BUCKETS[bucket] if bucket else 'NULL'} AS bucket"]
            columns += [f"{expr} AS {alias}" for alias, expr in raw_dims] + list(raw_measures)
            source = target.traces()
        else:
            where = [within, *rollup_where]
            columns = [f"{_ROLLUP_BUCKETS[bucket] if bucket else 'NULL'} AS bucket"]
            columns += [f"{expr} AS {alias}" for alias, expr in rollup_dims] + list(rollup_measures)
            source = target.rollup(tiers[level])
        # Rollup rows pass through as they are (states, partial sums): the outer query merges
        # them once; re-aggregating them here first would merge every t-digest twice.
        selects.append(
            f"SELECT {', '.join(columns)} FROM {source} WHERE {' AND '.join(where)}{group if level is None else ''}"
        )
    return " UNION ALL ".join(selects)


def _usage_row(row: Mapping[str, Any], group_by: Sequence[str]) -> UsageRow:
    calls, streams = int(row["calls"]), int(row["streams"])
    return UsageRow(
        bucket=None if row["bucket"] is None else _utc(row["bucket"]),
        dimensions=tuple((d, _label(row[f"d_{d}"])) for d in group_by),
        calls=calls,
        errors=int(row["errors"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_usd=float(row["cost_usd"]),
        p50_ms=float(row["p50_ms"]),
        p95_ms=float(row["p95_ms"]),
        p99_ms=float(row["p99_ms"]),
        error_rate=int(row["errors"]) / calls,
        streams=streams,
        ttfc_p50_ms=float(row["ttfc_p50_ms"]) if streams else None,
        ttfc_p95_ms=float(row["ttfc_p95_ms"]) if streams else None,
        cache_read_tokens=int(row["cache_read_tokens"]),
        reasoning_tokens=int(row["reasoning_tokens"]),
    )


_CALL_COLUMNS: Final = ", ".join(
    [
        "toString(toUnixTimestamp64Nano(Timestamp)) AS ts_ns",
        "TraceId",
        "SpanId",
        "SpanName",
        "StatusCode",
        f"{_labelled(names.REQUEST_MODEL)} AS model",
        f"{_labelled(names.PROJECT)} AS project",
        f"{_labelled(names.TEAM_ID)} AS team",
        f"{_labelled(names.KEY_ALIAS)} AS key_alias",
        f"{_labelled(names.USER_ID)} AS user",
        f"{_attr(names.ERROR_TYPE)} AS error_type",
        f"toUInt64OrZero({_attr(names.INPUT_TOKENS)}) AS input_tokens",
        f"toUInt64OrZero({_attr(names.OUTPUT_TOKENS)}) AS output_tokens",
        f"toFloat64OrZero({_attr(names.COST_USD)}) AS cost_usd",
        "Duration / 1e6 AS duration_ms",
    ]
)


def recent_calls(
    backend: Backend,
    *,
    start: datetime,
    end: datetime,
    filters: Filters = Filters(),
    limit: int = 50,
    offset: int = 0,
    target: Target = Target(),
    team_scope: str | None = None,
) -> list[CallRow]:
    """LLM calls in ``[start, end)``, newest first, ``limit`` rows after skipping ``offset``."""
    if not 0 < limit <= 10_000 or offset < 0:
        raise ValueError("limit must be 1..10000 and offset >= 0")
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    sql = (
        f"SELECT {_CALL_COLUMNS} FROM {target.traces()} WHERE {_where(start, end, filters, params, team_scope)}"
        " ORDER BY Timestamp DESC, SpanId LIMIT {limit:UInt32} OFFSET {offset:UInt64}"
    )
    return [_call_row(row) for row in backend.query(sql, params)]


def count_calls(
    backend: Backend,
    *,
    start: datetime,
    end: datetime,
    filters: Filters = Filters(),
    target: Target = Target(),
    team_scope: str | None = None,
) -> int:
    """How many LLM calls :func:`recent_calls` pages through for the same window and filters."""
    params: dict[str, Any] = {}
    rows = backend.query(
        f"SELECT count() AS n FROM {target.traces()} WHERE {_where(start, end, filters, params, team_scope)}", params
    )
    return int(rows[0]["n"]) if rows else 0


def _call_row(row: Mapping[str, Any]) -> CallRow:
    return CallRow(
        timestamp=_from_ns(row["ts_ns"]),
        trace_id=str(row["TraceId"]),
        span_id=str(row["SpanId"]),
        span_name=str(row["SpanName"]),
        model=_label(row["model"]),
        project=_label(row["project"]),
        team=_label(row["team"]),
        key_alias=_label(row["key_alias"]),
        user=_label(row["user"]),
        status=str(row["StatusCode"]),
        error_type=str(row["error_type"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_usd=float(row["cost_usd"]),
        duration_ms=float(row["duration_ms"]),
    )


def _hex_id(value: str, digits: int, what: str) -> str:
    normalized = value.strip().lower()
    if len(normalized) != digits or any(c not in "0123456789abcdef" for c in normalized):
        raise ValueError(f"{what} must be {digits} hex digits, got {value!r}")
    return normalized


def normalize_trace_id(trace_id: str) -> str:
    """Lowercase 32-hex-digit trace id, or ``ValueError``."""
    return _hex_id(trace_id, 32, "trace id")


def normalize_span_id(span_id: str) -> str:
    """Lowercase 16-hex-digit span id, or ``ValueError``."""
    return _hex_id(span_id, 16, "span id")


_SPAN_COLUMNS: Final = (
    "toString(toUnixTimestamp64Nano(Timestamp)) AS ts_ns, TraceId, SpanId, ParentSpanId, SpanName,"
    " SpanKind, ServiceName, StatusCode, StatusMessage, Duration / 1e6 AS duration_ms, SpanAttributes"
)


def _trace_window(backend: Backend, trace_id: str, target: Target) -> dict[str, Any] | None:
    """The trace's time window from the lookup table, as query parameters (``None``: unknown)."""
    params: dict[str, Any] = {"trace_id": normalize_trace_id(trace_id)}
    window = backend.query(
        "SELECT toUnixTimestamp(min(Start)) AS lo, toUnixTimestamp(max(End)) + 1 AS hi, count() AS n "
        f"FROM {target.lookup()} WHERE TraceId = {{trace_id:String}}",
        params,
    )
    if not window or int(window[0]["n"]) == 0:
        return None
    return {**params, "lo": int(window[0]["lo"]), "hi": int(window[0]["hi"])}


_IN_TRACE: Final = (
    "TraceId = {trace_id:String} AND Timestamp >= toDateTime({lo:UInt32}) AND Timestamp <= toDateTime({hi:UInt32})"
)


def trace(
    backend: Backend, trace_id: str, *, target: Target = Target(), team_scope: str | None = None
) -> list[SpanRow]:
    """Every span of one trace, oldest first; the lookup table bounds the scan to its window.

    With ``team_scope``, the trace is returned only if one of its LLM spans belongs to that team,
    and LLM spans of other teams are left out (the caller's own non-LLM spans stay)."""
    params = _trace_window(backend, trace_id, target)
    if params is None:
        return []
    where = _IN_TRACE
    if team_scope is not None:
        scope = " AND ".join(_scope_clause(team_scope, params))
        where += f" AND (NOT {_LLM_ONLY} OR {scope})"
        owned = backend.query(
            f"SELECT count() AS n FROM {target.traces()} WHERE {_IN_TRACE} AND {_LLM_ONLY} AND {scope}", params
        )
        if not owned or int(owned[0]["n"]) == 0:
            return []
    rows = backend.query(
        f"SELECT {_SPAN_COLUMNS} FROM {target.traces()} WHERE {where} ORDER BY Timestamp, SpanId", params
    )
    return [_span_row(row) for row in rows]


def call_detail(
    backend: Backend,
    trace_id: str,
    span_id: str,
    *,
    target: Target = Target(),
    team_scope: str | None = None,
) -> CallDetail | None:
    """One LLM call (span) with its attributes and events; ``None`` if absent or out of scope."""
    params = _trace_window(backend, trace_id, target)
    if params is None:
        return None
    params["span_id"] = normalize_span_id(span_id)
    clauses = [_IN_TRACE, "SpanId = {span_id:String}", _LLM_ONLY, *_scope_clause(team_scope, params)]
    rows = backend.query(
        f"SELECT {_SPAN_COLUMNS}, arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS ev_ts,"
        f" Events.Name AS ev_name, Events.Attributes AS ev_attrs FROM {target.traces()}"
        f" WHERE {' AND '.join(clauses)} LIMIT 1",
        params,
    )
    if not rows:
        return None
    row = rows[0]
    events = tuple(
        EventRow(timestamp=_from_ns(ts), name=str(name), attributes=dict(attrs))
        for ts, name, attrs in zip(row["ev_ts"], row["ev_name"], row["ev_attrs"], strict=True)
    )
    span = _span_row(row)
    return CallDetail(trace_id=str(row["TraceId"]), events=events, **vars(span))


def _span_row(row: Mapping[str, Any]) -> SpanRow:
    return SpanRow(
        timestamp=_from_ns(row["ts_ns"]),
        span_id=str(row["SpanId"]),
        parent_span_id=str(row["ParentSpanId"]),
        span_name=str(row["SpanName"]),
        span_kind=str(row["SpanKind"]),
        service_name=str(row["ServiceName"]),
        status=str(row["StatusCode"]),
        status_message=str(row["StatusMessage"]),
        duration_ms=float(row["duration_ms"]),
        attributes=dict(row["SpanAttributes"]),
    )


def error_breakdown(
    backend: Backend,
    *,
    start: datetime,
    end: datetime,
    filters: Filters = Filters(),
    target: Target = Target(),
    bucket: Bucket | None = None,
    team_scope: str | None = None,
    source: Source = "auto",
) -> list[ErrorRow]:
    """Failed LLM calls (status ``Error``) per ``error.type`` and model (and ``bucket``, oldest
    first, when given), most frequent first."""
    _check_bucket(bucket)
    columns = _needed_columns(("model",), filters, team_scope) | {"ErrorType", "StatusCode"}
    tiers = _tiers(backend, target, source, bucket, start, end, columns)
    params: dict[str, Any] = {}
    keys = (["bucket"] if bucket else []) + ["error_type", "model"]
    tail = f" GROUP BY {', '.join(keys)} ORDER BY {'bucket, ' if bucket else ''}calls DESC, error_type, model"
    if tiers is None:
        where = _where(start, end, filters, params, team_scope) + " AND StatusCode = 'Error'"
        sql = (
            f"SELECT {_BUCKETS[bucket] if bucket else 'NULL'} AS bucket,"
            f" {_labelled(names.ERROR_TYPE)} AS error_type, {_labelled(names.REQUEST_MODEL)} AS model,"
            " count() AS calls, toUnixTimestamp(max(Timestamp)) AS last_seen"
            f" FROM {target.traces()} WHERE {where}{tail}"
        )
    else:
        union = _union(
            tiers,
            start,
            end,
            target,
            bucket,
            (),
            filters,
            team_scope,
            params,
            raw_measures=["count() AS calls", "max(Timestamp) AS last_seen"],
            rollup_measures=["Calls AS calls", "LastSeen AS last_seen"],
            raw_dims=[("error_type", _labelled(names.ERROR_TYPE)), ("model", _labelled(names.REQUEST_MODEL))],
            rollup_dims=[("error_type", "ErrorType"), ("model", "RequestModel")],
            errors_only=True,
        )
        if union is None:
            return []
        sql = (
            f"SELECT {'bucket' if bucket else 'NULL AS bucket'}, error_type, model,"
            " sum(calls) AS calls, toUnixTimestamp(max(last_seen)) AS last_seen"
            f" FROM ({union}){tail}"
        )
    return [
        ErrorRow(
            bucket=None if row["bucket"] is None else _utc(row["bucket"]),
            error_type=_label(row["error_type"]),
            model=_label(row["model"]),
            calls=int(row["calls"]),
            last_seen=_utc(row["last_seen"]),
        )
        for row in backend.query(sql, params)
        if int(row["calls"]) > 0
    ]


def probe_count(backend: Backend, probe_id: str, *, target: Target = Target()) -> int:
    """How many spans carry ``agentportal.probe.id = probe_id`` (written in the last day)."""
    rows = backend.query(
        f"SELECT count() AS n FROM {target.traces()}"
        " WHERE Timestamp >= now64(9) - INTERVAL 1 DAY"
        f" AND {_attr(names.PROBE_ID)} = {{probe_id:String}}",
        {"probe_id": probe_id},
    )
    return int(rows[0]["n"]) if rows else 0
