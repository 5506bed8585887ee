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

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
"""Database, table and cluster names accepted by this package (no quoting tricks possible)."""

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
ENGINE = MergeTree()
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
ENGINE = MergeTree()
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


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain ClickHouse identifier, else raise ``ValueError``."""
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"invalid ClickHouse {what} {name!r}: expected {IDENTIFIER_RE.pattern}")
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    """Validate ``name`` and return it backquoted for use in SQL."""
    return f"`{validate_identifier(name, what)}`"


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


def schema_statements(
    database: str = "otel",
    traces_table: str = "otel_traces",
    ttl_days: int | None = 30,
    cluster: str | None = None,
) -> list[str]:
    """Return the DDL statements (without trailing ``;``) that create the traces schema.

    Every statement is idempotent (``IF NOT EXISTS``). ``ttl_days`` of ``None`` or ``0`` means
    no TTL. ``cluster`` adds ``ON CLUSTER`` (engines stay ``MergeTree``, as the exporter's
    default; use replicated engines by writing your own DDL).
    """
    db = quote_identifier(database, "database name")
    lookup = trace_id_ts_table(traces_table)
    on_cluster = _cluster_clause(cluster)
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}{on_cluster}",
        _TRACES_TABLE.format(
            db=db,
            table=quote_identifier(traces_table, "table name"),
            cluster=on_cluster,
            ttl=_ttl_clause("toDateTime(Timestamp)", ttl_days),
        ),
        _TRACE_ID_TS_TABLE.format(
            db=db,
            table=quote_identifier(lookup),
            cluster=on_cluster,
            ttl=_ttl_clause("toDateTime(Start)", ttl_days),
        ),
        _TRACE_ID_TS_MV.format(
            db=db,
            view=quote_identifier(lookup + "_mv"),
            cluster=on_cluster,
            target=quote_identifier(lookup),
            source=quote_identifier(traces_table),
        ),
    ]
