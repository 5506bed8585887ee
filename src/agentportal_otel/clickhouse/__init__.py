"""ClickHouse support: the collector's traces schema, a direct span exporter, typed queries.

* :func:`schema_statements` / :data:`TRACES_COLUMNS`: the ``otel_traces`` DDL of the
  collector's ``clickhouse`` exporter (plus its trace-id lookup table and view).
* :class:`ClickHouseSpanExporter` / :func:`create_span_exporter`: write spans without a
  collector, to a server (``http(s)://``) or to embedded chDB (``chdb:///dir``); configured by
  the ``AGENTPORTAL_OTEL_CLICKHOUSE_*`` variables in :mod:`._env`.
* :mod:`._queries`: usage, recent calls, one trace, error breakdown, on either backend.

Importing this package imports neither ``chdb`` nor ``clickhouse_connect`` nor ``litellm``;
they are imported when a connection is opened. Needs the ``clickhouse`` extra.
"""

from __future__ import annotations

from agentportal_otel.clickhouse._backend import Backend, connect, parse_url
from agentportal_otel.clickhouse._exporter import ClickHouseSpanExporter, create_span_exporter
from agentportal_otel.clickhouse._rows import attribute_string, span_to_row
from agentportal_otel.clickhouse._schema import TRACES_COLUMNS, schema_statements

__all__ = [
    "TRACES_COLUMNS",
    "Backend",
    "ClickHouseSpanExporter",
    "attribute_string",
    "connect",
    "create_span_exporter",
    "parse_url",
    "schema_statements",
    "span_to_row",
]
