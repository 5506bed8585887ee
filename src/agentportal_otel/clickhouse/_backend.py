"""Two ways to run the same SQL: a ClickHouse server over HTTP, or embedded chDB.

:func:`connect` parses a URL and returns a :class:`Backend`:

* ``http://user:password@host:8123/db`` / ``https://...``: ``clickhouse-connect`` (imported
  lazily). Parameters are bound server-side (``{name:Type}`` in the SQL, values sent apart).
* ``chdb:///abs/dir`` / ``chdb://relative/dir``: chDB in this process. A process can host one
  chDB engine bound to one directory, so connections are shared through a registry keyed by
  path and every call is serialized by one lock per engine (the exporter's worker thread and
  the CLI may use it at once). Opening a second, different directory raises ``ValueError``.

Values always travel as query parameters. chDB takes parameter values in ClickHouse's
*escaped* text form, so :func:`escape_param` escapes backslashes, tabs and newlines first;
nothing is ever formatted into the SQL text.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from agentportal_otel.clickhouse._schema import TRACES_COLUMNS, quote_identifier

ParamValue = str | int | float
Params = Mapping[str, ParamValue]
ResultRow = dict[str, Any]


class Backend(Protocol):
    """What the exporter, the queries and the CLI need from a ClickHouse connection."""

    @property
    def description(self) -> str:
        """Human description of the target, without any password."""
        ...

    def query(self, sql: str, params: Params | None = None) -> list[ResultRow]:
        """Run a SELECT and return rows as dicts (numbers may come back as strings)."""
        ...

    def command(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing (DDL)."""
        ...

    def insert_rows(self, database: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows keyed by :data:`TRACES_COLUMNS` names into ``database.table``."""
        ...

    def close(self) -> None:
        """Release the connection (a shared chDB engine stays open for other users)."""
        ...


@dataclass(frozen=True)
class ConnectionTarget:
    """A parsed connection URL. ``password`` is excluded from ``repr``."""

    scheme: str
    host: str = ""
    port: int | None = None
    path: str = ""
    user: str | None = None
    password: str | None = None
    url_database: str | None = None

    def __repr__(self) -> str:
        return f"ConnectionTarget({self.describe()!r})"

    def describe(self) -> str:
        """``scheme://user@host:port`` or ``chdb://path``; never the password."""
        if self.scheme == "chdb":
            return f"chdb://{self.path}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{user}{self.host}{port}"


def parse_url(url: str, variable: str = "url") -> ConnectionTarget:
    """Parse a connection URL; ``ValueError`` naming ``variable`` if it is malformed."""
    if not url or not url.strip():
        raise ValueError(f"{variable} is not set: expected http(s)://host:port or chdb:///path")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{variable} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise ValueError(f"{variable}: chdb URL needs a directory, e.g. chdb:///var/lib/agentportal")
        return ConnectionTarget(scheme="chdb", path=os.path.abspath(unquote(path)))
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{variable} must be http(s)://[user:password@]host:port[/database] or chdb:///path")
    database = unquote(parts.path.strip("/")) or None
    return ConnectionTarget(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        url_database=database,
    )


def escape_param(value: ParamValue) -> str:
    """Render a parameter value in ClickHouse's escaped text form (what chDB expects)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")
    )


def _column(name: str) -> str:
    # Only TRACES_COLUMNS names reach here (constants such as "Events.Name"), never user input.
    return f"`{name}`"


def _insert_structure() -> str:
    return ", ".join(f"{_column(name)} {ctype}" for name, ctype in TRACES_COLUMNS.items())


def _rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows)


class _ChdbEngine:
    """The process-wide chDB connection for one directory, with its lock and user count."""

    def __init__(self, path: str) -> None:
        import chdb  # lazy: chDB is an optional, large dependency

        os.makedirs(path, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.users = 0
        open_connection: Any = chdb.connect  # chdb ships without complete type hints
        self.conn: Any = open_connection(path)


_ENGINES: dict[str, _ChdbEngine] = {}
_ENGINES_LOCK = threading.Lock()


def _acquire_engine(path: str) -> _ChdbEngine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(path)
        if engine is None:
            others = [p for p, e in _ENGINES.items() if e.users > 0]
            if others:
                raise ValueError(
                    f"chDB is already open on {others[0]} in this process; one process can "
                    f"use one chDB directory at a time (asked for {path})"
                )
            for stale in list(_ENGINES):
                _ENGINES.pop(stale).conn.close()
            engine = _ENGINES[path] = _ChdbEngine(path)
        engine.users += 1
        return engine


def _release_engine(engine: _ChdbEngine) -> None:
    with _ENGINES_LOCK:
        engine.users = max(0, engine.users - 1)
        if engine.users == 0 and _ENGINES.get(engine.path) is engine:
            del _ENGINES[engine.path]
            with engine.lock:
                engine.conn.close()


class ChdbBackend:
    """Backend on the embedded chDB engine bound to one directory."""

    def __init__(self, path: str) -> None:
        self._engine = _acquire_engine(os.path.abspath(path))
        self._closed = False

    @property
    def description(self) -> str:
        return f"chdb://{self._engine.path}"

    def _run(self, sql: str, fmt: str, params: Params | None) -> Any:
        escaped = {name: escape_param(value) for name, value in (params or {}).items()}
        with self._engine.lock:
            if self._closed:
                raise RuntimeError("backend is closed")
            return self._engine.conn.query(sql, fmt, params=escaped)

    def query(self, sql: str, params: Params | None = None) -> list[ResultRow]:
        result = self._run(sql, "JSON", params)
        raw = result.bytes() if hasattr(result, "bytes") else bytes(result)
        if not raw:
            return []
        data: list[ResultRow] = json.loads(raw)["data"]
        return data

    def command(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, "CSV", params)

    def insert_rows(self, database: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = ", ".join(_column(name) for name in TRACES_COLUMNS)
        sql = (
            f"INSERT INTO {quote_identifier(database)}.{quote_identifier(table)} ({columns}) "
            f"SELECT * FROM format(JSONEachRow, '{_insert_structure()}', {{rows:String}})"
        )
        self._run(sql, "CSV", {"rows": _rows_json(rows)})

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_engine(self._engine)


class HttpBackend:
    """Backend on a ClickHouse server through ``clickhouse-connect`` (HTTP interface)."""

    def __init__(self, target: ConnectionTarget, user: str | None, password: str | None) -> None:
        import clickhouse_connect  # lazy: optional dependency

        self._target = target
        self._client: Any = clickhouse_connect.get_client(
            host=target.host,
            port=target.port or (8443 if target.scheme == "https" else 8123),
            username=user or target.user or "default",
            password=password if password is not None else (target.password or ""),
            secure=target.scheme == "https",
        )
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return self._target.describe()

    def query(self, sql: str, params: Params | None = None) -> list[ResultRow]:
        with self._lock:
            result = self._client.query(sql, parameters=dict(params or {}))
            return [dict(row) for row in result.named_results()]

    def command(self, sql: str, params: Params | None = None) -> None:
        with self._lock:
            self._client.command(sql, parameters=dict(params or {}))

    def insert_rows(self, database: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            self._client.raw_insert(
                f"{quote_identifier(database)}.{quote_identifier(table)}",
                column_names=list(TRACES_COLUMNS),
                insert_block=_rows_json(rows).encode("utf-8"),
                fmt="JSONEachRow",
            )

    def close(self) -> None:
        with self._lock:
            self._client.close()


def connect(url: str, user: str | None = None, password: str | None = None, variable: str = "url") -> Backend:
    """Open a backend for ``url`` (see the module docstring for the accepted forms)."""
    target = parse_url(url, variable)
    if target.scheme == "chdb":
        return ChdbBackend(target.path)
    return HttpBackend(target, user, password)
