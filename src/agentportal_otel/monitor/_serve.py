"""``agentportal-otel serve``: the monitoring API and page under uvicorn.

::

    AGENTPORTAL_MONITOR_ADMIN_TOKEN=$(openssl rand -hex 32) agentportal-otel serve --url http://reader:pw@clickhouse:8123
    agentportal-otel serve --url chdb://.agentportal-demo/chdb --no-auth     # loopback only

The connection is read as the CLI reads it (``--url``/``CLICKHOUSE_*``, ``--database``,
``--table``); tokens and headers from the ``AGENTPORTAL_MONITOR_*`` variables of
:mod:`agentportal_otel.monitor._env`. One startup line says which data is read and which auth
mode is on. Without any token the server refuses to start, unless ``--no-auth`` is given and
``--host`` is a loopback address.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from agentportal_otel.monitor import _env
from agentportal_otel.monitor._auth import ConfigError, TokenTable, load_tokens

_SOURCE = re.compile(r"^(?:'self'|'none'|[a-z][a-z0-9+.-]*:(?://[A-Za-z0-9.*:_\[\]-]+)?(?:/[^\s;,']*)?)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve`` beyond the CLI's connection options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without tokens: everyone reads every team (refused unless --host is a loopback address)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def frame_ancestors(environ: Mapping[str, str]) -> str:
    """The ``frame-ancestors`` sources, checked so nothing else can be smuggled into the CSP."""
    value = " ".join(environ.get(_env.AGENTPORTAL_MONITOR_FRAME_ANCESTORS, "").split())
    if not value:
        return _env.DEFAULT_FRAME_ANCESTORS
    for source in value.split(" "):
        if not _SOURCE.fullmatch(source):
            raise ConfigError(
                f"{_env.AGENTPORTAL_MONITOR_FRAME_ANCESTORS}: {source!r} is not a CSP source"
                " ('self', 'none', https://host[:port] or a scheme such as https:)"
            )
    return value


def cookie_samesite(environ: Mapping[str, str]) -> str:
    value = environ.get(_env.AGENTPORTAL_MONITOR_COOKIE_SAMESITE, "").strip() or "Strict"
    if value.lower() not in ("strict", "lax", "none"):
        raise ConfigError(f"{_env.AGENTPORTAL_MONITOR_COOKIE_SAMESITE} must be Strict, Lax or None, got {value!r}")
    return value.capitalize()


def session_hours(environ: Mapping[str, str]) -> float:
    text = environ.get(_env.AGENTPORTAL_MONITOR_SESSION_HOURS, "").strip()
    if not text:
        return _env.DEFAULT_SESSION_HOURS
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 30:
        raise ConfigError(f"{_env.AGENTPORTAL_MONITOR_SESSION_HOURS} must be hours between 0 and 720, got {text!r}")
    return hours


def auth_mode(args: argparse.Namespace, environ: Mapping[str, str]) -> TokenTable | None:
    """The tokens, or ``None`` for ``--no-auth``; :class:`ConfigError` when refusing to start."""
    tokens = load_tokens(environ)
    if args.no_auth:
        if not is_loopback(args.host):
            raise ConfigError(f"--no-auth is allowed on a loopback address only, not on --host {args.host}")
        if tokens:
            raise ConfigError("--no-auth is given but monitor tokens are configured: drop one of them")
        return None
    if not tokens:
        raise ConfigError(
            f"no access token configured: set {_env.AGENTPORTAL_MONITOR_ADMIN_TOKEN},"
            f" {_env.AGENTPORTAL_MONITOR_TEAM_TOKENS} or {_env.AGENTPORTAL_MONITOR_TOKENS_FILE}"
            " (or pass --no-auth on a loopback --host)"
        )
    return tokens


def build(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Any, Any, str]:
    """Open the backend and build the app; returns ``(app, backend, startup line)``."""
    from agentportal_otel import cli
    from agentportal_otel._version import __version__
    from agentportal_otel.clickhouse import connect
    from agentportal_otel.monitor._app import MonitorConfig, create_app

    tokens = auth_mode(args, environ)
    ancestors, samesite, hours = frame_ancestors(environ), cookie_samesite(environ), session_hours(environ)
    url, user, password = cli._connection(args, environ)
    target = cli._target(args, environ, url)
    target.traces()  # validates --database and --table before anything listens
    backend = connect(url, user, password, variable="--url")
    config = MonitorConfig(
        target=target, tokens=tokens, frame_ancestors=ancestors, cookie_samesite=samesite, session_hours=hours
    )
    app = create_app(backend, config)
    auth = (
        "OFF (--no-auth: anyone who reaches this loopback port reads every team)"
        if tokens is None
        else tokens.describe()
    )
    line = (
        f"agentportal-otel {__version__} monitor: reading {backend.description} table {target.database}.{target.table};"
        f" auth: {auth}; listening on http://{args.host}:{args.port}/"
    )
    return app, backend, line


def _describe_failure(exc: Exception, args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """``Type: message`` with every password that could be in it replaced by ``***``."""
    from agentportal_otel import cli
    from agentportal_otel.clickhouse import _env as ch_env
    from agentportal_otel.clickhouse import parse_url

    secrets = [args.password, environ.get(ch_env.CLICKHOUSE_PASSWORD)]
    secrets.append(environ.get(ch_env.AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD))
    try:
        url, _, _ = cli._connection(args, environ)
        secrets.append(parse_url(url).password)
    except (cli.UsageError, ValueError):
        pass
    return f"{type(exc).__name__}: {cli._scrub(str(exc), secrets)}"


def run(args: argparse.Namespace, environ: Mapping[str, str], err: TextIO | None = None) -> int:
    """Serve until interrupted; returns the exit code (2: refused to start)."""
    err = err or sys.stderr
    try:
        import uvicorn
    except ImportError:
        err.write("agentportal-otel serve: error: needs the monitor extra: pip install 'agentportal-otel[monitor]'\n")
        return 2
    try:
        app, backend, line = build(args, environ)
    except (ConfigError, ValueError) as exc:
        err.write(f"agentportal-otel serve: error: {exc}\n")
        return 2
    except ImportError as exc:
        err.write(
            f"agentportal-otel serve: error: {exc.name or exc} is missing:"
            " pip install 'agentportal-otel[monitor,clickhouse]' (or clickhouse-connect alone for a server URL)\n"
        )
        return 2
    except Exception as exc:  # ClickHouse unreachable at startup: say so, without a traceback
        err.write(f"agentportal-otel serve: cannot open ClickHouse: {_describe_failure(exc, args, environ)}\n")
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    err.write(line + "\n")
    err.flush()
    try:
        # uvicorn's own access log is off: ours logs method, path and status, never a header.
        uvicorn.run(
            app, host=args.host, port=args.port, access_log=False, log_level=args.log_level, server_header=False
        )
    finally:
        backend.close()
    return 0
