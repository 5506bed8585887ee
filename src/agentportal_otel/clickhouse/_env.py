"""Environment variables of the direct ClickHouse exporter and of the ``agentportal-otel`` CLI.

The exporter (``OTEL_TRACES_EXPORTER=clickhouse``) reads the ``AGENTPORTAL_OTEL_CLICKHOUSE_*``
variables through :func:`agentportal_otel.clickhouse.create_span_exporter`. The CLI reads the
shorter ``CLICKHOUSE_*`` variables (the ones the ClickHouse tools use), and falls back to the
exporter's variables so one environment serves both.
"""

from __future__ import annotations

from typing import Final

AGENTPORTAL_OTEL_CLICKHOUSE_URL: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_URL"
"""Where spans are written; required. ``http(s)://[user:password@]host:port[/database]`` for a
ClickHouse server (HTTP interface, usually port 8123/8443), ``chdb:///abs/dir`` or
``chdb://relative/dir`` for an embedded chDB store in a local directory."""

AGENTPORTAL_OTEL_CLICKHOUSE_USER: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_USER"
"""User name for a server URL; overrides the URL's user. Default: the URL's, else ``default``."""

AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD"
"""Password for a server URL; overrides the URL's password. Default: the URL's, else empty."""

AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE"
"""Database of the traces table. Default: the URL path's database, else ``otel``."""

AGENTPORTAL_OTEL_CLICKHOUSE_TRACES_TABLE: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_TRACES_TABLE"
"""Traces table name, as the collector's ``traces_table_name``. Default ``otel_traces``."""

AGENTPORTAL_OTEL_CLICKHOUSE_CREATE_SCHEMA: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_CREATE_SCHEMA"
"""``true``/``false``: create the database, table and lookup view on first export. Default
``true`` for ``chdb://`` and ``false`` for a server (create production tables yourself)."""

CLICKHOUSE_URL: Final = "CLICKHOUSE_URL"
"""CLI connection URL, same forms as ``AGENTPORTAL_OTEL_CLICKHOUSE_URL`` (used when unset)."""

CLICKHOUSE_USER: Final = "CLICKHOUSE_USER"
"""CLI user name (falls back to ``AGENTPORTAL_OTEL_CLICKHOUSE_USER``)."""

CLICKHOUSE_PASSWORD: Final = "CLICKHOUSE_PASSWORD"
"""CLI password (falls back to ``AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD``). Never printed."""

CLICKHOUSE_DATABASE: Final = "CLICKHOUSE_DATABASE"
"""CLI database (falls back to ``AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE``, then ``otel``)."""

DEFAULT_DATABASE: Final = "otel"
DEFAULT_TRACES_TABLE: Final = "otel_traces"
