"""DDL of the traces table written by the collector's ``clickhouse`` exporter.

``schema_statements()`` returns, in order, the statements that create the database, the
``otel_traces`` table, the ``otel_traces_trace_id_ts`` lookup table and the materialized view
``otel_traces_trace_id_ts_mv`` that feeds it. Column names and types are exactly those of the
exporter's INSERT (``exporter/clickhouseexporter/internal/sqltemplates/traces_*.sql`` in
opentelemetry-collector-contrib), so rows written by the collector and by
:class:`~agentportal_otel.clickhouse.ClickHouseSpanExporter` land in the same table and are read
by the same queries. Codecs, indexes, partitioning, ordering and TTL follow the exporter's
defaults (``ttl_only_drop_parts = 1``: expired days are dropped as whole partitions).

The output is deterministic, so it can be rendered into a ClickHouse init script::

    print(";\\n\\n".join(schema_statements()) + ";")

Identifiers are validated against :data:`IDENTIFIER_RE` and backquoted; nothing else is
interpolated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from agentportal_otel.clickhouse import _rollup
from agentportal_otel.clickhouse._identifiers import IDENTIFIER_RE as IDENTIFIER_RE
from agentportal_otel.clickhouse._identifiers import quote_identifier as quote_identifier
from agentportal_otel.clickhouse._identifiers import validate_identifier as validate_identifier

_ATTR_MAP: Final = "Map(LowCardinality(String), String)"

TRACES_COLUMNS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Timestamp": "DateTime64(9)",
        "TraceId": "String",
        "SpanId": "String",
        "ParentSpanId": "String",
        "TraceState": "String",
        "SpanName": "LowCardinality(String)",
        "SpanKind": "LowCardinality(String)",
        "ServiceName": "LowCardinality(String)",
        "ResourceAttributes": _ATTR_MAP,
        "ScopeName": "String",
        "ScopeVersion": "String",
        "SpanAttributes": _ATTR_MAP,
        "Duration": "UInt64",
        "StatusCode": "LowCardinality(String)",
        "StatusMessage": "String",
        "Events.Timestamp": "Array(DateTime64(9))",
        "Events.Name": "Array(LowCardinality(String))",
        "Events.Attributes": f"Array({_ATTR_MAP})",
        "Links.TraceId": "Array(String)",
        "Links.SpanId": "Array(String)",
        "Links.TraceState": "Array(String)",
        "Links.Attributes": f"Array({_ATTR_MAP})",
    }
)
"""Insert columns of the traces table, in the exporter's INSERT order, name -> ClickHouse type.

``Events.*`` and ``Links.*`` are the flattened ``Nested`` sub-columns (``flatten_nested = 1``,
the server default), which is how the exporter inserts them."""

_TRACES_TABLE: Final = """\
CREATE TABLE IF NOT EXISTS {db}.{table}{cluster}
(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
)
ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
{ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""

_TRACE_ID_TS_TABLE: Final = """\
CREATE TABLE IF NOT EXISTS {db}.{table}{cluster}
(
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {engine}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
{ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""

_TRACE_ID_TS_MV: Final = """\
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view}{cluster}
TO {db}.{target}
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM {db}.{source}
WHERE TraceId != ''
GROUP BY TraceId"""


def trace_id_ts_table(traces_table: str) -> str:
    """Name of the trace-id lookup table the exporter derives from the traces table name."""
    return validate_identifier(traces_table, "table name") + "_trace_id_ts"


def _cluster_clause(cluster: str | None) -> str:
    return "" if cluster is None else f" ON CLUSTER {quote_identifier(cluster, 'cluster name')}"


def _ttl_clause(column_expr: str, ttl_days: int | None) -> str:
    if ttl_days is None or ttl_days == 0:
        return ""
    if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or ttl_days < 0:
        raise ValueError(f"ttl_days must be a non-negative int or None, got {ttl_days!r}")
    return f"TTL {column_expr} + toIntervalDay({ttl_days})\n"


_REPLICATED_PARAMS: Final = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
LOCAL_SUFFIX: Final = "_local"
"""Suffix of the shard-local tables when the schema is replicated (``otel_traces_local``)."""


def _engine(name: str, replicated: bool) -> str:
    return f"Replicated{name}({_REPLICATED_PARAMS})" if replicated else f"{name}()"


def _distributed(db: str, table: str, cluster: str, on_cluster: str, sharding: str) -> str:
    local = quote_identifier(table + LOCAL_SUFFIX)
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{quote_identifier(table)}{on_cluster} AS {db}.{local}\n"
        f"ENGINE = Distributed({quote_identifier(cluster)}, {db}, {local}, {sharding})"
    )


def schema_statements(
    database: str = "otel",
    traces_table: str = "otel_traces",
    ttl_days: int | None = 30,
    cluster: str | None = None,
    *,
    replicated: bool = False,
    rollup_ttl_days: int | None = _rollup.DEFAULT_ROLLUP_TTL_DAYS,
) -> list[str]:
    """Return the DDL statements (without trailing ``;``) that create the traces schema.

    In order: the database, the traces table, the trace-id lookup table and its view, then the
    usage rollups (:mod:`._rollup`): their tables and the views that feed them. Every statement
    is idempotent (``IF NOT EXISTS``), so running them on a database made by an older release
    adds what is missing (the rollups) and leaves ``otel_traces`` alone. ``ttl_days`` (raw spans)
    and ``rollup_ttl_days`` (rollups) of ``None`` or ``0`` mean no TTL.

    ``cluster`` adds ``ON CLUSTER`` to every statement. With ``replicated=True`` (needs
    ``cluster``) the tables become shard-local ``Replicated*MergeTree`` tables named
    ``<name>_local``, with the ``{shard}``/``{replica}`` macros in their ZooKeeper/Keeper path, and
    a ``Distributed`` table with the original name sits over each one: the collector inserts into
    ``otel_traces`` and the query layer reads ``otel_traces`` and the rollups unchanged, while the
    views run on every shard against its local rows.
    """
    if replicated and cluster is None:
        raise ValueError("replicated=True needs a cluster name")
    db = quote_identifier(database, "database name")
    lookup = trace_id_ts_table(traces_table)
    on_cluster = _cluster_clause(cluster)
    suffix = LOCAL_SUFFIX if replicated else ""
    rollup_ttl = _ttl_clause("Start", rollup_ttl_days)
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {db}{on_cluster}",
        _TRACES_TABLE.format(
            db=db,
            table=quote_identifier(traces_table + suffix, "table name"),
            cluster=on_cluster,
            engine=_engine("MergeTree", replicated),
            ttl=_ttl_clause("toDateTime(Timestamp)", ttl_days),
        ),
        _TRACE_ID_TS_TABLE.format(
            db=db,
            table=quote_identifier(lookup + suffix),
            cluster=on_cluster,
            engine=_engine("MergeTree", replicated),
            ttl=_ttl_clause("toDateTime(Start)", ttl_days),
        ),
        _TRACE_ID_TS_MV.format(
            db=db,
            view=quote_identifier(lookup + "_mv"),
            cluster=on_cluster,
            target=quote_identifier(lookup + suffix),
            source=quote_identifier(traces_table + suffix),
        ),
    ]
    rollups = _rollup.rollup_statements(
        database,
        traces_table,
        cluster=on_cluster,
        engine=_engine("AggregatingMergeTree", replicated),
        ttl_clause=rollup_ttl,
        local_suffix=suffix,
    )
    if not replicated:
        return statements + rollups
    assert cluster is not None
    distributed = [
        _distributed(db, traces_table, cluster, on_cluster, "cityHash64(TraceId)"),
        _distributed(db, lookup, cluster, on_cluster, "cityHash64(TraceId)"),
        *(_distributed(db, t.table(traces_table), cluster, on_cluster, "rand()") for t in _rollup.FEED_ORDER),
    ]
    return statements + rollups + distributed
