"""Usage rollups of ``otel_traces``: per-minute and per-hour aggregates fed by materialized views.

Five ``AggregatingMergeTree`` tables (tiers), named after the traces table:

* ``<traces>_usage_1m``: one row per minute and key, filled by ``<traces>_usage_1m_mv`` on every
  INSERT into ``<traces>``, whoever inserts (the collector's exporter or
  :class:`~agentportal_otel.clickhouse.ClickHouseSpanExporter`). Only LLM spans (those carrying
  ``gen_ai.operation.name``) feed it. Key: team id, team alias, project, request model,
  provider, operation, key alias, user, ``error.type`` and ``StatusCode``.
* ``<traces>_usage_1h``: the same key per hour, filled by its view from the blocks the minute
  view writes (an insert into the raw table is parsed once, not once per tier).
* ``<traces>_usage_team_1m``, ``_team_1h`` and ``_team_1d``: per minute (fed from the raw
  table), hour and day (each fed from the finer one), without key alias and user. Their size
  follows teams, projects and models, not users or spans, so the common dashboard questions
  (by team, project, model, errors, time series) read a few thousand rows at any traffic,
  edges included; questions about keys or users read ``usage_1h`` and ``usage_1m``.

Key columns are ``Nullable``: ``NULL`` is a missing
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
idempotent: it recomputes whole days, deleting the rollup rows of those days first and
aggregating them again from the raw table, so running it twice gives the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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

_TEAM_KEY: Final = tuple(k for k in KEY_COLUMNS if k not in ("KeyAlias", "UserId"))


@dataclass(frozen=True)
class Tier:
    """One rollup table: name suffix, grain (seconds), key columns, and what its view reads."""

    suffix: str
    grain_seconds: int
    key: tuple[str, ...]
    """Key columns besides ``Start`` (a subset of :data:`KEY_COLUMNS`, in its order)."""
    parent: Tier | None
    """The finer tier whose inserted blocks the view aggregates; ``None``: the raw table."""
    start_expr: str
    """``Start`` of a row, from the rows the view reads (raw ``Timestamp`` or a finer ``Start``)."""

    def table(self, traces_table: str) -> str:
        return f"{validate_identifier(traces_table, 'table name')}_{self.suffix}"

    def has(self, columns: Iterable[str]) -> bool:
        return set(columns) <= set(self.key)


MINUTE: Final = Tier("usage_1m", 60, tuple(KEY_COLUMNS), None, "toStartOfMinute(toDateTime(Timestamp, 'UTC'))")
HOUR: Final = Tier("usage_1h", 3600, tuple(KEY_COLUMNS), MINUTE, "toStartOfHour(Start, 'UTC')")
TEAM_MINUTE: Final = Tier("usage_team_1m", 60, _TEAM_KEY, None, MINUTE.start_expr)
TEAM_HOUR: Final = Tier("usage_team_1h", 3600, _TEAM_KEY, TEAM_MINUTE, "toStartOfHour(Start, 'UTC')")
TEAM_DAY: Final = Tier("usage_team_1d", 86400, _TEAM_KEY, TEAM_HOUR, "toStartOfDay(Start, 'UTC')")
TIERS: Final = (TEAM_DAY, TEAM_HOUR, HOUR, TEAM_MINUTE, MINUTE)
"""Coarsest and smallest first. A question reads, per grain, the first tier whose key holds its
dimensions and filters, coarse grains in the middle of the window and finer ones at its edges.
The ``team`` tiers leave out key alias and user: their size follows teams, projects and models,
not users, so most dashboard questions read a few thousand rows whatever the traffic."""
FEED_ORDER: Final = (MINUTE, HOUR, TEAM_MINUTE, TEAM_HOUR, TEAM_DAY)
"""Creation order: a view's source table exists before the view."""


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


def raw_select(tier: Tier) -> str:
    """Select list aggregating raw rows into rows of ``tier`` (``GROUP BY Start, <key>``)."""
    items = [f"{tier.start_expr} AS Start"]
    items += [f"{KEY_COLUMNS[name][1]} AS {name}" for name in tier.key]
    items += [f"{expr} AS {name}" for name, (_, expr, _) in MEASURE_COLUMNS.items()]
    return ",\n    ".join(items)


def _rollup_select(tier: Tier) -> str:
    items = [f"{tier.start_expr} AS Start", *tier.key]
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
    tables, views = [], []
    for tier in FEED_ORDER:
        columns = [f"    {name} {KEY_COLUMNS[name][0]}" for name in tier.key]
        columns += [f"    {name} {ctype}" for name, (ctype, _, _) in MEASURE_COLUMNS.items()]
        key = ", ".join(tier.key)
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
        if tier.parent is None:
            source, where, select = traces_table, f"WHERE {LLM_ONLY}\n", raw_select(tier)
        else:
            source, where, select = tier.parent.table(traces_table), "", _rollup_select(tier)
        views.append(
            _VIEW.format(
                db=db,
                view=quote_identifier(tier.table(traces_table) + "_mv"),
                cluster=cluster,
                target=quote_identifier(table),
                select=select,
                source=quote_identifier(validate_identifier(source, "table name") + local_suffix),
                where=where,
                key=key,
            )
        )
    return tables + views


def _floor_day(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class BackfillResult:
    """What :func:`backfill` recomputed: whole days ``[start, end)`` and the LLM calls in them."""

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
    """Recompute the rollups of the whole UTC days covering ``[since, until)``, a day at a time.

    Days are the grain of the coarsest tier: ``since`` is rounded down, ``until`` (default: now)
    up to a day boundary. For each day the rollup rows of every tier are deleted first
    (``ALTER TABLE ... DELETE``, synchronous), then the raw rows of that day are aggregated again
    into the minute tiers, whose views refill the coarser ones. Running it twice therefore
    doubles nothing. The one race: a span inserted while its own day is being recomputed (in
    practice, today's day, for the seconds it takes) may be counted twice; pass an ``until`` at
    midnight to leave the live day to the views."""
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise ValueError("pass timezone-aware datetimes (UTC)")
    until = until if until is not None else datetime.now(timezone.utc)
    start, end = _floor_day(since), _floor_day(until)
    if end < until:
        end += timedelta(days=1)
    if start >= end:
        return BackfillResult(start, end, 0)
    db = quote_identifier(database, "database name")
    raw = f"{db}.{quote_identifier(traces_table, 'table name')}"
    minute = f"{db}.{quote_identifier(MINUTE.table(traces_table))}"
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
        for tier in FEED_ORDER:
            if tier.parent is None:  # the others refill from these through their views
                backend.command(
                    f"INSERT INTO {db}.{quote_identifier(tier.table(traces_table))}"
                    f" ({', '.join(['Start', *tier.key, *MEASURE_COLUMNS])})"
                    f" SELECT {raw_select(tier)} FROM {raw}"
                    f" WHERE {LLM_ONLY} AND Timestamp >= toDateTime64({{lo:UInt32}}, 9, 'UTC')"
                    " AND Timestamp < toDateTime64({hi:UInt32}, 9, 'UTC')"
                    f" GROUP BY Start, {', '.join(tier.key)}",
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


def existing_tables(backend: Backend, database: str, tables: Sequence[str]) -> set[str]:
    """Which of ``tables`` exist in ``database`` (and are visible to this user)."""
    params: dict[str, str | int | float] = {f"t{i}": t for i, t in enumerate(tables)}
    params["db"] = database
    rows = backend.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name IN ("
        + ", ".join(f"{{t{i}:String}}" for i in range(len(tables)))
        + ")",
        params,
    )
    return {str(row["name"]) for row in rows}


@dataclass(frozen=True)
class Coverage:
    """Whether the rollups can answer for the raw table's spans (what ``doctor`` reports)."""

    missing: tuple[str, ...]
    """Rollup tables that do not exist (all of them on a database made by the older DDL)."""
    rollup_start: datetime | None
    """The oldest minute in the minute tier; ``None`` when it is empty or missing."""
    uncovered_since: datetime | None
    """The oldest raw span, when an LLM span older than ``rollup_start`` exists (or the rollup
    is empty while LLM spans exist): the rollups were added after those spans and
    :func:`backfill` was not run for them. ``None``: nothing older is missing."""

    def backfill_days(self, now: datetime) -> int:
        """Whole days a ``rollup backfill --since <N>d`` needs to reach ``uncovered_since``."""
        if self.uncovered_since is None:
            return 0
        return max(1, -(-int((now - self.uncovered_since).total_seconds()) // 86400))


def coverage(backend: Backend, *, database: str, traces_table: str) -> Coverage:
    """Look for rollup tables that are missing and for LLM spans older than the rollups.

    Cheap at any size: ``min`` of a partition-key column is answered from part metadata, and
    the search for an older LLM span stops at the first one (it reads the older days in full
    only when they hold no LLM span)."""
    db = quote_identifier(database, "database name")
    raw = f"{db}.{quote_identifier(traces_table, 'table name')}"
    tables = [tier.table(traces_table) for tier in FEED_ORDER]
    present = existing_tables(backend, database, tables)
    missing = tuple(t for t in tables if t not in present)
    if MINUTE.table(traces_table) not in present:
        return Coverage(missing, None, None)
    minute = f"{db}.{quote_identifier(MINUTE.table(traces_table))}"
    rows = backend.query(f"SELECT count() AS n, toUnixTimestamp(min(Start)) AS start FROM {minute}")
    rollup_start = (
        datetime.fromtimestamp(int(rows[0]["start"]), timezone.utc) if rows and int(rows[0]["n"]) > 0 else None
    )
    older, params = "", dict[str, str | int | float]()
    if rollup_start is not None:
        older = " AND Timestamp < toDateTime64({start:UInt32}, 9, 'UTC')"
        params = {"start": int(rollup_start.timestamp())}
    found = backend.query(f"SELECT 1 AS found FROM {raw} WHERE {LLM_ONLY}{older} LIMIT 1", params)
    if not found:
        return Coverage(missing, rollup_start, None)
    rows = backend.query(f"SELECT toUnixTimestamp(min(Timestamp)) AS oldest FROM {raw}")
    return Coverage(missing, rollup_start, datetime.fromtimestamp(int(rows[0]["oldest"]), timezone.utc))
