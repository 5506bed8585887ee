"""Usage rollups of ``otel_traces``: per-minute and per-hour aggregates fed by materialized views.

Two ``AggregatingMergeTree`` tables, both named after the traces table:

* ``<traces>_usage_1m``: one row per minute and key, filled by ``<traces>_usage_1m_mv`` on every
  INSERT into ``<traces>``, whoever inserts (the collector's exporter or
  :class:`~agentportal_otel.clickhouse.ClickHouseSpanExporter`). Only LLM spans (those carrying
  ``gen_ai.operation.name``) feed it.
* ``<traces>_usage_1h``: the same, per hour, filled by ``<traces>_usage_1h_mv`` from the blocks
  the first view writes (so an insert into the raw table is aggregated once, not twice). Long
  windows read 60 times fewer rows from it.

Key (every tier): team id, team alias, project, request model, provider, operation, key alias,
user, ``error.type`` and ``StatusCode``. Key columns are ``Nullable``: ``NULL`` is a missing
attribute, ``''`` a present but empty one, exactly the distinction the raw queries make with
``mapContains``. Measures: calls, errors, input/output/cache-read/reasoning tokens, cost, streamed
calls, the newest span start (``LastSeen``), and t-digest states of duration and of time to first
chunk (``quantilesTDigest(0.5, 0.95, 0.99)``; ClickHouse documents its relative error as at most
1%; read back with ``quantilesTDigestMerge``). Counts and sums are exact.

Every expression of the views is total (``OrZero``/``OrNull``, ``-If``), because an exception in a
view's SELECT would fail the INSERT into the raw table, i.e. the collector's export. The rollups
have their own TTL (:data:`DEFAULT_ROLLUP_TTL_DAYS`), so cost history outlives raw spans; months
are partitions and ``ttl_only_drop_parts = 1`` drops a month when its last row expires.

:func:`backfill` fills the rollups from raw rows inserted before the views existed. It is
idempotent: it recomputes whole hours, deleting the rollup rows of ``[since, until)`` first and
aggregating them again from the raw table, so running it twice gives the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from agentportal_otel.clickhouse import _names as names
from agentportal_otel.clickhouse._identifiers import quote_identifier, validate_identifier

if TYPE_CHECKING:
    from agentportal_otel.clickhouse._backend import Backend

DEFAULT_ROLLUP_TTL_DAYS: Final = 400
"""Days a rollup row is kept (raw spans keep their own, shorter, TTL)."""

QUANTILE_LEVELS: Final = (0.5, 0.95, 0.99)
_LEVELS: Final = ", ".join(str(level) for level in QUANTILE_LEVELS)
DIGEST_STATE: Final = f"quantilesTDigestState({_LEVELS})"
DIGEST_STATE_IF: Final = f"quantilesTDigestStateIf({_LEVELS})"
DIGEST_MERGE_STATE: Final = f"quantilesTDigestMergeState({_LEVELS})"
DIGEST_MERGE: Final = f"quantilesTDigestMerge({_LEVELS})"
QUANTILE_RANK_TOLERANCE: Final = 0.01
"""Stated error of rollup percentiles: the value's rank is within 1% of the asked level."""


@dataclass(frozen=True)
class Tier:
    """One rollup table: its name suffix and grain (seconds)."""

    suffix: str
    grain_seconds: int
    start_expr: str
    """``Start`` of a row, from the rows the view reads (raw ``Timestamp`` or a finer ``Start``)."""

    def table(self, traces_table: str) -> str:
        return f"{validate_identifier(traces_table, 'table name')}_{self.suffix}"


MINUTE: Final = Tier("usage_1m", 60, "toStartOfMinute(toDateTime(Timestamp, 'UTC'))")
HOUR: Final = Tier("usage_1h", 3600, "toStartOfHour(Start, 'UTC')")
TIERS: Final = (HOUR, MINUTE)
"""Coarsest first: a question reads the coarsest tier that covers it, finer ones at the edges."""


def _attr(key: str) -> str:
    if not key.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"unexpected attribute key {key!r}")
    return f"SpanAttributes['{key}']"


def labelled(key: str) -> str:
    """The attribute, or ``NULL`` when the span does not carry it (``''`` stays ``''``)."""
    return f"if(mapContains(SpanAttributes, '{key}'), {_attr(key)}, NULL)"


_LC_NULLABLE: Final = "LowCardinality(Nullable(String))"

KEY_COLUMNS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "TeamId": (_LC_NULLABLE, labelled(names.TEAM_ID)),
        "TeamAlias": (_LC_NULLABLE, labelled(names.TEAM_ALIAS)),
        "Project": (_LC_NULLABLE, labelled(names.PROJECT)),
        "RequestModel": (_LC_NULLABLE, labelled(names.REQUEST_MODEL)),
        "Provider": (_LC_NULLABLE, labelled(names.PROVIDER)),
        "Operation": ("LowCardinality(String)", _attr(names.OPERATION_NAME)),
        "KeyAlias": ("Nullable(String)", labelled(names.KEY_ALIAS)),
        "UserId": ("Nullable(String)", labelled(names.USER_ID)),
        "ErrorType": (_LC_NULLABLE, labelled(names.ERROR_TYPE)),
        "StatusCode": ("LowCardinality(String)", "StatusCode"),
    }
)
"""Rollup key column -> (type, expression over a raw ``otel_traces`` row)."""

DIMENSION_COLUMNS: Final[Mapping[str, str]] = MappingProxyType(
    {"team": "TeamId", "project": "Project", "model": "RequestModel", "key_alias": "KeyAlias", "user": "UserId"}
)
"""Query-layer dimension -> rollup key column."""

_TTFC: Final = _attr(names.TIME_TO_FIRST_CHUNK)
_HAS_TTFC: Final = f"isNotNull(toFloat64OrNull({_TTFC}))"

MEASURE_COLUMNS: Final[Mapping[str, tuple[str, str, str]]] = MappingProxyType(
    {
        "Calls": ("SimpleAggregateFunction(sum, UInt64)", "count()", "sum(Calls)"),
        "Errors": ("SimpleAggregateFunction(sum, UInt64)", "countIf(StatusCode = 'Error')", "sum(Errors)"),
        "InputTokens": (
            "SimpleAggregateFunction(sum, UInt64)",
            f"sum(toUInt64OrZero({_attr(names.INPUT_TOKENS)}))",
            "sum(InputTokens)",
        ),
        "OutputTokens": (
            "SimpleAggregateFunction(sum, UInt64)",
            f"sum(toUInt64OrZero({_attr(names.OUTPUT_TOKENS)}))",
            "sum(OutputTokens)",
        ),
        "CacheReadTokens": (
            "SimpleAggregateFunction(sum, UInt64)",
            f"sum(toUInt64OrZero({_attr(names.CACHE_READ_TOKENS)}))",
            "sum(CacheReadTokens)",
        ),
        "ReasoningTokens": (
            "SimpleAggregateFunction(sum, UInt64)",
            f"sum(toUInt64OrZero({_attr(names.REASONING_TOKENS)}))",
            "sum(ReasoningTokens)",
        ),
        "CostUsd": (
            "SimpleAggregateFunction(sum, Float64)",
            f"sum(toFloat64OrZero({_attr(names.COST_USD)}))",
            "sum(CostUsd)",
        ),
        "Streams": ("SimpleAggregateFunction(sum, UInt64)", f"countIf({_HAS_TTFC})", "sum(Streams)"),
        "LastSeen": ("SimpleAggregateFunction(max, DateTime64(9))", "max(Timestamp)", "max(LastSeen)"),
        "DurationQuantiles": (
            f"AggregateFunction(quantilesTDigest({_LEVELS}), UInt64)",
            f"{DIGEST_STATE}(Duration)",
            f"{DIGEST_MERGE_STATE}(DurationQuantiles)",
        ),
        "TtfcQuantiles": (
            f"AggregateFunction(quantilesTDigest({_LEVELS}), Float64)",
            f"{DIGEST_STATE_IF}(toFloat64OrZero({_TTFC}), {_HAS_TTFC})",
            f"{DIGEST_MERGE_STATE}(TtfcQuantiles)",
        ),
    }
)
"""Measure column -> (type, aggregate over raw rows, aggregate over rollup rows)."""

LLM_ONLY: Final = f"mapContains(SpanAttributes, '{names.OPERATION_NAME}')"

_TABLE: Final = """\
CREATE TABLE IF NOT EXISTS {db}.{table}{cluster}
(
    Start DateTime('UTC') CODEC(Delta, ZSTD(1)),
{columns}
)
ENGINE = {engine}
PARTITION BY toYYYYMM(Start)
ORDER BY (Start, {key})
{ttl}SETTINGS index_granularity = 8192, allow_nullable_key = 1, ttl_only_drop_parts = 1"""

_VIEW: Final = """\
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view}{cluster}
TO {db}.{target}
AS SELECT
    {select}
FROM {db}.{source}
{where}GROUP BY Start, {key}"""


def raw_select(start_expr: str = MINUTE.start_expr) -> str:
    """Select list aggregating raw rows into rollup rows (``GROUP BY Start, <key>``)."""
    items = [f"{start_expr} AS Start"]
    items += [f"{expr} AS {name}" for name, (_, expr) in KEY_COLUMNS.items()]
    items += [f"{expr} AS {name}" for name, (_, expr, _) in MEASURE_COLUMNS.items()]
    return ",\n    ".join(items)


def _rollup_select(start_expr: str) -> str:
    items = [f"{start_expr} AS Start", *KEY_COLUMNS]
    items += [f"{merge} AS {name}" for name, (_, _, merge) in MEASURE_COLUMNS.items()]
    return ",\n    ".join(items)


def rollup_statements(
    database: str,
    traces_table: str,
    *,
    cluster: str,
    engine: str,
    ttl_clause: str,
    local_suffix: str = "",
) -> list[str]:
    """Tables then views of every tier (internal: :func:`~._schema.schema_statements` calls it).

    ``cluster`` is the ``ON CLUSTER`` clause (or ``''``), ``engine`` the engine of the tables,
    ``local_suffix`` the suffix of the shard-local tables the views read and write."""
    db = quote_identifier(database, "database name")
    columns = [f"    {name} {ctype}" for name, (ctype, _) in KEY_COLUMNS.items()]
    columns += [f"    {name} {ctype}" for name, (ctype, _, _) in MEASURE_COLUMNS.items()]
    key = ", ".join(KEY_COLUMNS)
    tables, views = [], []
    source = validate_identifier(traces_table, "table name") + local_suffix
    where = f"WHERE {LLM_ONLY}\n"
    select = raw_select()
    for tier in reversed(TIERS):  # finest first: the hourly view reads what the minute view writes
        table = tier.table(traces_table) + local_suffix
        tables.append(
            _TABLE.format(
                db=db,
                table=quote_identifier(table),
                cluster=cluster,
                columns=",\n".join(columns),
                engine=engine,
                key=key,
                ttl=ttl_clause,
            )
        )
        views.append(
            _VIEW.format(
                db=db,
                view=quote_identifier(tier.table(traces_table) + "_mv"),
                cluster=cluster,
                target=quote_identifier(table),
                select=select,
                source=quote_identifier(source),
                where=where,
                key=key,
            )
        )
        source, where, select = table, "", _rollup_select(HOUR.start_expr)
    return tables + views


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class BackfillResult:
    """What :func:`backfill` recomputed: whole hours ``[start, end)`` and the LLM calls in them."""

    start: datetime
    end: datetime
    calls: int


def backfill(
    backend: Backend,
    *,
    database: str,
    traces_table: str,
    since: datetime,
    until: datetime | None = None,
    chunk: timedelta = timedelta(days=1),
) -> BackfillResult:
    """Recompute the rollups of ``[since, until)`` from the raw table, whole hours, a day at a time.

    ``since`` is rounded down and ``until`` (default: now) down to the hour, so the current hour,
    which the views are still filling, is never touched. For each chunk the rollup rows are
    deleted first (``ALTER TABLE ... DELETE``, synchronous) and aggregated again from the raw rows
    into the minute table, whose view refills the hour table. Running it twice therefore doubles
    nothing. Spans inserted with a start inside the chunk while it is recomputed may be counted
    twice; run it for the past (the default ``until`` keeps it off the live hour)."""
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise ValueError("pass timezone-aware datetimes (UTC)")
    start = _floor_hour(since)
    end = _floor_hour(until if until is not None else datetime.now(timezone.utc))
    if start >= end:
        return BackfillResult(start, end, 0)
    db = quote_identifier(database, "database name")
    raw = f"{db}.{quote_identifier(traces_table, 'table name')}"
    minute = f"{db}.{quote_identifier(MINUTE.table(traces_table))}"
    columns = ", ".join(["Start", *KEY_COLUMNS, *MEASURE_COLUMNS])
    calls = 0
    lo = start
    while lo < end:
        hi = min(lo + chunk, end)
        params: dict[str, str | int | float] = {"lo": int(lo.timestamp()), "hi": int(hi.timestamp())}
        for tier in TIERS:
            backend.command(
                f"ALTER TABLE {db}.{quote_identifier(tier.table(traces_table))} DELETE"
                " WHERE Start >= toDateTime({lo:UInt32}, 'UTC') AND Start < toDateTime({hi:UInt32}, 'UTC')"
                " SETTINGS mutations_sync = 2",
                params,
            )
        backend.command(
            f"INSERT INTO {minute} ({columns}) SELECT {raw_select()} FROM {raw}"
            f" WHERE {LLM_ONLY} AND Timestamp >= toDateTime64({{lo:UInt32}}, 9, 'UTC')"
            " AND Timestamp < toDateTime64({hi:UInt32}, 9, 'UTC')"
            f" GROUP BY Start, {', '.join(KEY_COLUMNS)}",
            params,
        )
        rows = backend.query(
            f"SELECT sum(Calls) AS n FROM {minute}"
            " WHERE Start >= toDateTime({lo:UInt32}, 'UTC') AND Start < toDateTime({hi:UInt32}, 'UTC')",
            params,
        )
        calls += int(rows[0]["n"]) if rows else 0
        lo = hi
    return BackfillResult(start, end, calls)


def cover(lo: int, hi: int, grains: Sequence[int]) -> list[tuple[int | None, int, int]]:
    """Split ``[lo, hi)`` (nanoseconds) into ``(tier index or None for raw, lo, hi)`` pieces.

    ``grains`` are tier grains in seconds, coarsest first. The coarsest tier takes the whole
    grain-aligned middle, finer tiers the aligned parts of what is left, the raw table the
    partial minutes at the edges."""
    return _cover(lo, hi, grains, 0)


def _cover(lo: int, hi: int, grains: Sequence[int], level: int) -> list[tuple[int | None, int, int]]:
    if lo >= hi:
        return []
    if level == len(grains):
        return [(None, lo, hi)]
    grain = grains[level] * 1_000_000_000
    first, last = -(-lo // grain) * grain, hi // grain * grain
    if first >= last:
        return _cover(lo, hi, grains, level + 1)
    return [*_cover(lo, first, grains, level + 1), (level, first, last), *_cover(last, hi, grains, level + 1)]
