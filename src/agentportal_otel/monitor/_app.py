"""The monitoring ASGI app: the JSON/CSV API under ``/api/v1/`` and the page at ``/``.

:func:`create_app` builds it on an open :class:`~agentportal_otel.clickhouse.Backend`. Every data
endpoint resolves the request's :class:`~._auth.Principal` first and passes its team as
``team_scope`` to the query layer, so a team token can only ever read its own rows. Queries run
one at a time (chDB has one connection per process) in a worker thread, so the event loop keeps
serving while they run, and concurrent requests queue instead of failing.

Errors are JSON ``{"error": ..., "message": ..., "parameter": ...}``: 400 for any bad input
(naming the parameter), 401 without a valid token, 403 for a team token asking for another
team, 404 for an unknown or out-of-scope call or trace, 503 when ClickHouse does not answer.
No stack trace ever reaches a response.
"""

from __future__ import annotations

import argparse
import io
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentportal_otel import cli
from agentportal_otel._version import __version__
from agentportal_otel.clickhouse import _health
from agentportal_otel.clickhouse import _names as names
from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.clickhouse._backend import Backend
from agentportal_otel.monitor._auth import ADMIN, Principal, SessionStore, TokenTable

logger = logging.getLogger("agentportal_otel.monitor")
access_logger = logging.getLogger("agentportal_otel.monitor.access")

T = TypeVar("T")

COOKIE_NAME: Final = "agentportal_monitor_session"
MAX_LIMIT: Final = 1000
MAX_OFFSET: Final = 1_000_000
MAX_WINDOW: Final = timedelta(days=90)
MAX_VALUE_LENGTH: Final = 256
FILTERS: Final = ("team", "project", "model", "key_alias", "user", "status")
WINDOW_PARAMS: Final = ("since", "start", "end")

_STATIC: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


class ApiError(Exception):
    """An answer other than 200, with a short message that is safe to show."""

    def __init__(self, status: int, error: str, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.parameter = status, error, message, parameter


def bad(parameter: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", message, parameter)


@dataclass(frozen=True)
class MonitorConfig:
    """How the app reads and protects data. ``tokens=None`` means ``--no-auth``."""

    target: q.Target
    tokens: TokenTable | None
    frame_ancestors: str = "'self'"
    cookie_samesite: str = "Strict"
    session_hours: float = 12.0


# -- parameters ---------------------------------------------------------------------------------


def _reject_unknown(request: Request, allowed: Sequence[str]) -> None:
    params = request.query_params
    for name in params:
        if name not in allowed:
            raise bad(name, f"unknown parameter {name!r}; allowed: {', '.join(allowed)}")
        if len(params.getlist(name)) > 1:
            raise bad(name, f"parameter {name!r} is given more than once")
        if len(params[name]) > MAX_VALUE_LENGTH:
            raise bad(name, f"{name} is longer than {MAX_VALUE_LENGTH} characters")


def _window(since: str | None, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    if since is not None and (start is not None or end is not None):
        raise bad("since", "give either since or start/end, not both")
    try:
        span = cli._parse_since(since) if since is not None else timedelta(hours=24)
    except (argparse.ArgumentTypeError, OverflowError):
        raise bad(
            "since", f"since must be a number and a unit m, h, d or w (e.g. 15m, 24h, 7d), got {since!r}"
        ) from None
    moments: dict[str, datetime | None] = {}
    for name, text in (("start", start), ("end", end)):
        try:
            moments[name] = cli._parse_time(text) if text is not None else None
        except (argparse.ArgumentTypeError, OverflowError):
            raise bad(name, f"{name} must be an ISO 8601 time (e.g. 2026-01-31T12:00:00Z), got {text!r}") from None
    stop = moments["end"] or cli.relative_end()
    try:
        begin = moments["start"] or stop - span
    except OverflowError:
        raise bad("since", "since is too long") from None
    if begin >= stop:
        raise bad("start" if start is not None else "since", "the window is empty: start must be before end")
    if stop - begin > MAX_WINDOW:
        raise bad("start" if start is not None else "since", "the window is longer than 90 days")
    return begin, stop


class _WindowParams:
    """``since``/``start``/``end`` of every windowed endpoint; :meth:`window` checks them."""

    def __init__(
        self,
        since: str | None = Query(None, description="window ending now: 15m, 24h, 7d (default 24h)"),
        start: str | None = Query(None, description="ISO 8601 start (UTC if no offset)"),
        end: str | None = Query(None, description="ISO 8601 end (default now)"),
    ) -> None:
        self.since, self.start, self.end = since, start, end

    def window(self) -> tuple[datetime, datetime]:
        return _window(self.since, self.start, self.end)


class _FilterParams:
    """The exact-match filters, declared once for the OpenAPI schema of every endpoint that takes
    them; :func:`_filters` reads and checks them against the caller's team scope."""

    def __init__(
        self,
        team: str | None = Query(None, description="team id or alias (a team's token: its own only)"),
        project: str | None = Query(None, description="project, exact"),
        model: str | None = Query(None, description="requested model (gen_ai.request.model), exact"),
        key_alias: str | None = Query(None, description="virtual key alias, exact"),
        user: str | None = Query(None, description="LiteLLM user id, exact"),
        status: str | None = Query(None, description="ok or error"),
    ) -> None:
        self.declared = (team, project, model, key_alias, user, status)


_FORMAT_DOC: Final = "json (default) or csv"


def _filters(request: Request, principal: Principal) -> q.Filters:
    params = request.query_params
    values = {name: params.get(name) for name in FILTERS}
    for name, value in values.items():
        if value is not None and not value.strip():
            raise bad(name, f"{name} must not be empty")
    status = values["status"]
    if status is not None and status not in ("ok", "error"):
        raise bad("status", f"status must be ok or error, got {status!r}")
    team = values["team"]
    if principal.team is not None and team is not None and team != principal.team:
        raise ApiError(403, "forbidden", f"this token reads team {principal.team!r} only")
    return q.Filters(
        team=team,
        project=values["project"],
        model=values["model"],
        key_alias=values["key_alias"],
        user=values["user"],
        status=status,  # type: ignore[arg-type]  # checked above
    )


def _format(value: str | None) -> str:
    if value not in (None, "json", "csv"):
        raise bad("format", f"format must be json or csv, got {value!r}")
    return value or "json"


def _bucket(value: str | None) -> q.Bucket | None:
    if value not in (None, "hour", "day"):
        raise bad("bucket", f"bucket must be hour or day, got {value!r}")
    return value  # type: ignore[return-value]


def _by(value: str | None) -> list[q.Dimension]:
    dims = [d.strip() for d in (value or "").split(",") if d.strip()]
    for dim in dims:
        if dim not in q.DIMENSIONS:
            raise bad("by", f"by must be a comma list of {', '.join(q.DIMENSIONS)}; got {dim!r}")
    if len(set(dims)) != len(dims):
        raise bad("by", "by names a dimension twice")
    return dims  # type: ignore[return-value]


def _int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise bad(name, f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def _hex(name: str, value: str, normalize: Callable[[str], str]) -> str:
    try:
        return normalize(value)
    except ValueError:
        digits = 32 if name == "trace_id" else 16
        raise bad(name, f"{name} must be {digits} hex digits") from None


# -- rendering ----------------------------------------------------------------------------------


def _csv(records: list[dict[str, Any]], name: str) -> Response:
    out = io.StringIO()
    cli._render(records, "csv", out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _int_attr(attrs: Mapping[str, str], key: str) -> int | None:
    value = attrs.get(key)
    return int(value) if value is not None and value.isdigit() else None


def _float_attr(attrs: Mapping[str, str], key: str) -> float | None:
    try:
        return float(attrs[key]) if key in attrs else None
    except ValueError:
        return None


def _detail(detail: q.CallDetail) -> dict[str, Any]:
    attrs = dict(detail.attributes)
    ttfc = _float_attr(attrs, names.TIME_TO_FIRST_CHUNK)
    exception = next((e for e in detail.events if e.name == "exception"), None)
    error = None
    if detail.status == "Error" or names.ERROR_TYPE in attrs:
        error = {
            "type": attrs.get(names.ERROR_TYPE) or (exception.attributes.get("exception.type") if exception else None),
            "message": detail.status_message
            or (exception.attributes.get("exception.message") if exception else None)
            or None,
        }
    content = {
        key: attrs[attr]
        for key, attr in (("input_messages", "gen_ai.input.messages"), ("output_messages", "gen_ai.output.messages"))
        if attr in attrs
    }
    return {
        "trace_id": detail.trace_id,
        "span_id": detail.span_id,
        "parent_span_id": detail.parent_span_id,
        "timestamp": _iso(detail.timestamp),
        "span_name": detail.span_name,
        "span_kind": detail.span_kind,
        "service_name": detail.service_name,
        "status": detail.status,
        "tenant": {
            "team": attrs.get(names.TEAM_ID),
            "team_alias": attrs.get(names.TEAM_ALIAS),
            "project": attrs.get(names.PROJECT),
            "key_alias": attrs.get(names.KEY_ALIAS),
            "user": attrs.get(names.USER_ID),
            "org": attrs.get(names.ORG_ID),
            "end_user": attrs.get(names.END_USER_ID),
        },
        "model": {
            "operation": attrs.get(names.OPERATION_NAME),
            "request": attrs.get(names.REQUEST_MODEL),
            "response": attrs.get("gen_ai.response.model"),
            "provider": attrs.get("gen_ai.provider.name"),
        },
        "usage": {
            "input_tokens": _int_attr(attrs, names.INPUT_TOKENS),
            "output_tokens": _int_attr(attrs, names.OUTPUT_TOKENS),
            "cache_read_input_tokens": _int_attr(attrs, "gen_ai.usage.cache_read.input_tokens"),
            "reasoning_output_tokens": _int_attr(attrs, "gen_ai.usage.reasoning.output_tokens"),
        },
        "cost_usd": _float_attr(attrs, names.COST_USD),
        "timings": {
            "start": _iso(detail.timestamp),
            "end": _iso(detail.timestamp + timedelta(milliseconds=detail.duration_ms)),
            "duration_ms": detail.duration_ms,
            "time_to_first_chunk_ms": None if ttfc is None else ttfc * 1e3,
        },
        "error": error,
        "content": content or None,
        "events": [
            {"timestamp": _iso(e.timestamp), "name": e.name, "attributes": dict(e.attributes)} for e in detail.events
        ],
        "attributes": attrs,
    }


def _trace(trace_id: str, spans: list[q.SpanRow]) -> dict[str, Any]:
    origin = min(s.timestamp for s in spans)
    end = max(s.timestamp + timedelta(milliseconds=s.duration_ms) for s in spans)
    return {
        "trace_id": trace_id,
        "start": _iso(origin),
        "duration_ms": (end - origin) / timedelta(milliseconds=1),
        "spans": [
            {
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "span_name": s.span_name,
                "span_kind": s.span_kind,
                "service_name": s.service_name,
                "status": s.status,
                "status_message": s.status_message,
                "timestamp": _iso(s.timestamp),
                "offset_ms": (s.timestamp - origin) / timedelta(milliseconds=1),
                "duration_ms": s.duration_ms,
                "llm": names.OPERATION_NAME in s.attributes,
                "team": s.attributes.get(names.TEAM_ID),
                "model": s.attributes.get(names.REQUEST_MODEL),
                "attributes": dict(s.attributes),
            }
            for s in spans
        ],
    }


# -- the app ------------------------------------------------------------------------------------


class _Store:
    """The backend behind one lock, called from a worker thread (one query at a time)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)

        def call() -> T:
            with self._lock:
                return fn(self.backend, *args, **kwargs)

        try:
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)
        except ValueError as exc:  # the query layer refused an argument we did not catch first
            raise ApiError(400, "bad_request", str(exc)) from None
        except Exception as exc:
            logger.warning("ClickHouse query failed: %s", type(exc).__name__)
            raise ApiError(503, "unavailable", "ClickHouse did not answer the query") from None


def _csp(frame_ancestors: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        f" font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )


def create_app(backend: Backend, config: MonitorConfig) -> FastAPI:
    """The monitoring app on ``backend`` (see the module docstring)."""
    store = _Store(backend)
    sessions = SessionStore(config.session_hours * 3600)
    tokens = config.tokens
    target = config.target
    static = {name: (resources.files(__package__) / "static" / name).read_bytes() for name in _STATIC}
    index = (resources.files(__package__) / "static" / "index.html").read_bytes()
    security_headers = {
        "Content-Security-Policy": _csp(config.frame_ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
    }

    app = FastAPI(
        title="agentportal-otel monitor",
        version=__version__,
        description="Team-scoped LLM usage, calls, traces and errors over the ClickHouse traces table. "
        "Send `Authorization: Bearer <token>`; a team token reads its own team's rows only.",
        docs_url=None,
        redoc_url=None,
    )

    @app.middleware("http")
    async def headers_and_access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        began = time.perf_counter()
        response = await call_next(request)
        response.headers.update(security_headers)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        # Method, path and status only: no query string, no header (a token can never be logged).
        access_logger.info(
            "%s %s %d %.1fms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - began) * 1e3,
        )
        return response

    def error_response(exc: ApiError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.error, "message": exc.message}
        if exc.parameter is not None:
            body["parameter"] = exc.parameter
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        loc = [
            str(part) for part in (errors[0].get("loc", ()) if errors else ()) if part not in ("query", "path", "body")
        ]
        parameter = loc[0] if loc else "request"
        return error_response(bad(parameter, f"{parameter} is invalid"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return error_response(ApiError(exc.status_code, kind, str(exc.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected %s on %s", type(exc).__name__, request.url.path)
        return error_response(ApiError(500, "internal", "internal error"))

    def principal_of(request: Request) -> Principal:
        if tokens is None:
            return ADMIN
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            principal = tokens.lookup(token.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                raise ApiError(401, "unauthorized", "invalid bearer token")
            return principal
        principal = sessions.get(request.cookies.get(COOKIE_NAME))
        if principal is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> or log in")
        return principal

    def check_same_origin(request: Request) -> None:
        # The session endpoints change state: refuse cross-site callers (login CSRF). Hosts are
        # compared, not schemes, so a TLS-terminating proxy in front does not break login.
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise ApiError(403, "forbidden", "cross-origin request refused")
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise ApiError(403, "forbidden", "cross-site request refused")

    def session_body(principal: Principal) -> dict[str, Any]:
        return {
            "authenticated": True,
            "scope": "admin" if principal.is_admin else "team",
            "team": principal.team,
            "auth": "off" if tokens is None else "token",
            "table": f"{target.database}.{target.table}",
        }

    # -- session ---------------------------------------------------------------------------------

    @app.get("/api/v1/session", tags=["session"], summary="Who am I: the scope of the token or session")
    async def get_session(request: Request) -> dict[str, Any]:
        _reject_unknown(request, ())
        if tokens is not None and "authorization" not in request.headers:
            # Not signed in (or an expired session) is an answer here, not an error: the page
            # then shows its login form.
            principal = sessions.get(request.cookies.get(COOKIE_NAME))
            return session_body(principal) if principal else {"authenticated": False, "auth": "token"}
        return session_body(principal_of(request))

    @app.post("/api/v1/session", tags=["session"], summary="Log in: swap a token for an HttpOnly session cookie")
    async def login(request: Request) -> JSONResponse:
        check_same_origin(request)
        if tokens is None:
            return JSONResponse(session_body(ADMIN))
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise bad("body", 'send JSON {"token": "..."} with Content-Type: application/json')
        try:
            payload = await request.json()
        except ValueError:
            raise bad("body", 'send JSON {"token": "..."}') from None
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise bad("token", "token is missing")
        principal = tokens.lookup(token)
        if principal is None:
            raise ApiError(401, "unauthorized", "invalid token")
        response = JSONResponse(session_body(principal))
        samesite = config.cookie_samesite.lower()
        response.set_cookie(
            COOKIE_NAME,
            sessions.create(principal),
            max_age=int(config.session_hours * 3600),
            path="/",
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]  # validated at startup
            secure=samesite == "none" or request.url.scheme == "https",
        )
        return response

    @app.delete("/api/v1/session", tags=["session"], summary="Log out")
    async def logout(request: Request) -> JSONResponse:
        check_same_origin(request)
        sessions.drop(request.cookies.get(COOKIE_NAME))
        response = JSONResponse({"status": "logged out"})
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    # -- data ------------------------------------------------------------------------------------

    @app.get("/api/v1/health", tags=["health"], summary="ClickHouse reachable and the traces table exists (no auth)")
    async def health() -> JSONResponse:
        try:
            exists = await store.run(_health.table_exists, target=target)
        except ApiError:
            return JSONResponse({"status": "unavailable", "clickhouse": "unreachable"}, status_code=503)
        table = f"{target.database}.{target.table}"
        if not exists:
            return JSONResponse({"status": "unavailable", "clickhouse": "reachable", "table": "missing"}, 503)
        return JSONResponse({"status": "ok", "clickhouse": "reachable", "table": table})

    @app.get("/api/v1/usage", tags=["data"], summary="Calls, tokens, cost, latency and errors per group")
    async def usage(
        request: Request,
        params: Annotated[_WindowParams, Depends()],
        _declared: Annotated[_FilterParams, Depends()],
        by: str | None = Query(None, description="comma list of team, project, model, key_alias, user"),
        bucket: str | None = Query(None, description="hour or day"),
        format: str | None = Query(None, description=_FORMAT_DOC),
    ) -> Any:
        principal = principal_of(request)
        _reject_unknown(request, (*WINDOW_PARAMS, "by", "bucket", *FILTERS, "format"))
        begin, stop = params.window()
        fmt, dims, buck, filters = _format(format), _by(by), _bucket(bucket), _filters(request, principal)
        rows = await store.run(
            q.usage,
            start=begin,
            end=stop,
            group_by=dims,
            bucket=buck,
            filters=filters,
            target=target,
            team_scope=principal.team,
        )
        records = cli._records(rows)
        if fmt == "csv":
            return _csv(records, "usage")
        return {"start": _iso(begin), "end": _iso(stop), "by": dims, "bucket": buck, "items": records}

    @app.get("/api/v1/calls", tags=["data"], summary="LLM calls, newest first, with paging")
    async def calls(
        request: Request,
        params: Annotated[_WindowParams, Depends()],
        _declared: Annotated[_FilterParams, Depends()],
        limit: str | None = Query(None, description=f"1..{MAX_LIMIT} (default 50)"),
        offset: str | None = Query(None, description="rows to skip (default 0)"),
        format: str | None = Query(None, description=_FORMAT_DOC),
    ) -> Any:
        principal = principal_of(request)
        _reject_unknown(request, (*WINDOW_PARAMS, *FILTERS, "limit", "offset", "format"))
        begin, stop = params.window()
        fmt, filters = _format(format), _filters(request, principal)
        size = _int("limit", limit, 50, 1, MAX_LIMIT)
        skip = _int("offset", offset, 0, 0, MAX_OFFSET)
        scope = {"start": begin, "end": stop, "filters": filters, "target": target, "team_scope": principal.team}
        rows = await store.run(q.recent_calls, limit=size, offset=skip, **scope)
        records = cli._records(rows)
        if fmt == "csv":
            return _csv(records, "calls")
        total = await store.run(q.count_calls, **scope)
        return {
            "start": _iso(begin),
            "end": _iso(stop),
            "limit": size,
            "offset": skip,
            "total": total,
            "items": records,
        }

    @app.get("/api/v1/calls/{trace_id}/{span_id}", tags=["data"], summary="One LLM call")
    async def call(
        request: Request,
        trace_id: str = Path(description="32 hex digits"),
        span_id: str = Path(description="16 hex digits"),
    ) -> dict[str, Any]:
        principal = principal_of(request)
        _reject_unknown(request, ())
        tid = _hex("trace_id", trace_id, q.normalize_trace_id)
        sid = _hex("span_id", span_id, q.normalize_span_id)
        detail = await store.run(q.call_detail, tid, sid, target=target, team_scope=principal.team)
        if detail is None:
            raise ApiError(404, "not_found", "no such call")
        return _detail(detail)

    @app.get("/api/v1/traces/{trace_id}", tags=["data"], summary="Every span of one trace")
    async def trace(request: Request, trace_id: str = Path(description="32 hex digits")) -> dict[str, Any]:
        principal = principal_of(request)
        _reject_unknown(request, ())
        tid = _hex("trace_id", trace_id, q.normalize_trace_id)
        spans = await store.run(q.trace, tid, target=target, team_scope=principal.team)
        if not spans:
            raise ApiError(404, "not_found", "no such trace")
        return _trace(tid, spans)

    @app.get("/api/v1/errors", tags=["data"], summary="Failed calls by error type and model, over time")
    async def errors(
        request: Request,
        params: Annotated[_WindowParams, Depends()],
        _declared: Annotated[_FilterParams, Depends()],
        bucket: str | None = Query(None, description="hour or day; none: totals over the window"),
        format: str | None = Query(None, description=_FORMAT_DOC),
    ) -> Any:
        principal = principal_of(request)
        _reject_unknown(request, (*WINDOW_PARAMS, "bucket", *FILTERS, "format"))
        begin, stop = params.window()
        fmt, buck, filters = _format(format), _bucket(bucket), _filters(request, principal)
        rows = await store.run(
            q.error_breakdown,
            start=begin,
            end=stop,
            bucket=buck,
            filters=filters,
            target=target,
            team_scope=principal.team,
        )
        records = cli._records(rows)
        if fmt == "csv":
            return _csv(records, "errors")
        return {"start": _iso(begin), "end": _iso(stop), "bucket": buck, "items": records}

    # -- the page --------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in static:
            raise ApiError(404, "not_found", "no such file")
        return Response(static[name], media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})

    return app
