"""A ``SpanExporter`` that writes spans straight into the collector's ClickHouse traces table.

Use it when there is no collector: ``OTEL_TRACES_EXPORTER=clickhouse`` (wired by the core)
calls :func:`create_span_exporter` with the process environment; see
:mod:`agentportal_otel.clickhouse._env` for the variables. Rows are identical to those the
collector's ``clickhouse`` exporter writes (:mod:`~agentportal_otel.clickhouse._rows`), so
dashboards and ``agentportal-otel`` queries work on either path.

``export()`` runs on the ``BatchSpanProcessor`` worker thread. It never raises: a failed insert
is retried with exponential backoff until the export timeout (``OTEL_BSP_EXPORT_TIMEOUT``,
default 30 s) is spent or the exporter shuts down, then the batch is dropped and counted in
:attr:`ClickHouseSpanExporter.failed_exports` / :attr:`~ClickHouseSpanExporter.dropped_spans`.
Failures are logged at most once per ``log_interval_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentportal_otel.clickhouse import _env
from agentportal_otel.clickhouse._backend import Backend, connect, parse_url
from agentportal_otel.clickhouse._rows import span_to_row
from agentportal_otel.clickhouse._schema import schema_statements, validate_identifier

_logger = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_BSP_EXPORT_TIMEOUT = "OTEL_BSP_EXPORT_TIMEOUT"
_DEFAULT_TIMEOUT_S = 30.0


class ClickHouseSpanExporter(SpanExporter):
    """Insert finished spans into ``database.traces_table`` (server over HTTP, or chDB).

    The connection is opened, and the schema created when ``create_schema`` is true, on the
    first export, so building the exporter does no I/O. ``create_schema`` defaults to true for
    ``chdb://`` URLs and false for servers. ``backend_factory`` replaces :func:`connect` (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str = _env.DEFAULT_DATABASE,
        traces_table: str = _env.DEFAULT_TRACES_TABLE,
        create_schema: bool | None = None,
        ttl_days: int | None = 30,
        timeout_s: float = _DEFAULT_TIMEOUT_S,
        log_interval_s: float = 60.0,
        backend_factory: Callable[[], Backend] | None = None,
    ) -> None:
        target = parse_url(url)
        self._database = validate_identifier(database, "database name")
        self._table = validate_identifier(traces_table, "table name")
        self._create_schema = target.scheme == "chdb" if create_schema is None else create_schema
        self._ttl_days = ttl_days
        self._timeout_s = timeout_s
        self._log_interval_s = log_interval_s
        self._factory: Callable[[], Backend] = backend_factory or (lambda: connect(url, user, password))
        self._backend: Backend | None = None
        self._schema_ready = not self._create_schema
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_log = -float("inf")
        self.exported_spans = 0
        """Spans inserted successfully."""
        self.failed_exports = 0
        """Batches given up on after retries (or refused after shutdown)."""
        self.dropped_spans = 0
        """Spans in those batches, lost."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Insert ``spans``; retry within the timeout; never raise."""
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            if self._stop.is_set():
                raise RuntimeError("exporter is shut down")
            rows = [span_to_row(span) for span in spans]
            self._insert_with_retry(rows)
        except Exception as exc:
            self._count_failure(len(spans), exc)
            return SpanExportResult.FAILURE
        with self._lock:
            self.exported_spans += len(spans)
        return SpanExportResult.SUCCESS

    def _insert_with_retry(self, rows: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + self._timeout_s
        delay = 0.1
        while True:
            try:
                self._ready_backend().insert_rows(self._database, self._table, rows)
                return
            except Exception:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    raise
                self._drop_backend_if_broken()
                self._stop.wait(min(delay, remaining))
                delay = min(delay * 2, 5.0)

    def _ready_backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._factory()
        if not self._schema_ready:
            for statement in schema_statements(self._database, self._table, self._ttl_days):
                self._backend.command(statement)
            self._schema_ready = True
        return self._backend

    def _drop_backend_if_broken(self) -> None:
        # An HTTP client whose first ping failed is useless; chDB handles stay valid.
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                _logger.debug("closing a failed ClickHouse backend raised", exc_info=True)

    def _count_failure(self, span_count: int, exc: Exception) -> None:
        with self._lock:
            self.failed_exports += 1
            self.dropped_spans += span_count
            now = time.monotonic()
            if now - self._last_log < self._log_interval_s:
                return
            self._last_log = now
            failed, dropped = self.failed_exports, self.dropped_spans
        _logger.warning(
            "ClickHouse span export to %s.%s failed (%d failed batches, %d spans dropped so far): %s",
            self._database,
            self._table,
            failed,
            dropped,
            exc,
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here: every export is written before it returns."""
        return True

    def shutdown(self) -> None:
        """Stop retrying, refuse further exports and release the connection."""
        self._stop.set()
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                _logger.debug("closing the ClickHouse backend raised", exc_info=True)


def _flag(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    _logger.warning("Ignoring %s=%r: expected true or false; using the default", name, raw)
    return None


def _timeout_s(environ: Mapping[str, str]) -> float:
    raw = environ.get(_BSP_EXPORT_TIMEOUT, "").strip()
    if not raw:
        return _DEFAULT_TIMEOUT_S
    try:
        millis = float(raw)
    except ValueError:
        millis = -1.0
    if millis <= 0:
        _logger.warning("Ignoring %s=%r: expected a positive number of milliseconds", _BSP_EXPORT_TIMEOUT, raw)
        return _DEFAULT_TIMEOUT_S
    return millis / 1000.0


def _identifier(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip() or default
    try:
        return validate_identifier(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def create_span_exporter(environ: Mapping[str, str], *, timeout_s: float | None = None) -> SpanExporter:
    """Build a :class:`ClickHouseSpanExporter` from ``AGENTPORTAL_OTEL_CLICKHOUSE_*`` variables.

    ``timeout_s`` bounds the retries of one batch; when omitted it is read from
    ``OTEL_BSP_EXPORT_TIMEOUT`` (the plugin passes the value its settings already parsed).

    Raises ``ValueError`` naming the variable when the URL is missing or malformed, or a
    database/table name is not a plain identifier (writing elsewhere than asked is worse than
    failing at start-up). A bad ``..._CREATE_SCHEMA`` value is logged and the default is used.
    """
    url = environ.get(_env.AGENTPORTAL_OTEL_CLICKHOUSE_URL, "").strip()
    target = parse_url(url, _env.AGENTPORTAL_OTEL_CLICKHOUSE_URL)
    return ClickHouseSpanExporter(
        url,
        user=environ.get(_env.AGENTPORTAL_OTEL_CLICKHOUSE_USER) or None,
        password=environ.get(_env.AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD),
        database=_identifier(
            environ,
            _env.AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE,
            target.url_database or _env.DEFAULT_DATABASE,
        ),
        traces_table=_identifier(environ, _env.AGENTPORTAL_OTEL_CLICKHOUSE_TRACES_TABLE, _env.DEFAULT_TRACES_TABLE),
        create_schema=_flag(environ, _env.AGENTPORTAL_OTEL_CLICKHOUSE_CREATE_SCHEMA),
        timeout_s=_timeout_s(environ) if timeout_s is None else timeout_s,
    )
