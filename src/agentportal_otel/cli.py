"""The ``agentportal-otel`` command: usage, recent calls, one trace, errors, and ``doctor``.

::

    agentportal-otel usage --since 7d --by team,model --bucket day
    agentportal-otel calls --team search --status error --limit 20 --format json
    agentportal-otel trace 4bf92f3577b34da6a3ce929d0e0e4736
    agentportal-otel usage --since 30d --by team --source raw   # force the raw table (default auto)
    agentportal-otel schema --apply                 # create what is missing (e.g. the usage rollups)
    agentportal-otel schema --cluster prod --replicated   # print the DDL for a sharded cluster
    agentportal-otel rollup backfill --since 30d    # fill the rollups from older raw spans
    agentportal-otel doctor --timeout 20
    agentportal-otel demo --requests 60   # local proxy + sample traffic, no Docker
    agentportal-otel serve --url chdb://.agentportal-demo/chdb --no-auth   # the monitoring page

Connection: ``--url`` or ``CLICKHOUSE_URL`` (``http://user:pass@host:8123/db`` or
``chdb:///path``), ``--user``/``CLICKHOUSE_USER``, ``--password``/``CLICKHOUSE_PASSWORD``,
``--database``/``CLICKHOUSE_DATABASE``; each falls back to the exporter's
``AGENTPORTAL_OTEL_CLICKHOUSE_*`` variable. Passwords are never printed. Exit codes: 0 success
(doctor: nothing failed), 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from agentportal_otel import _doctor
from agentportal_otel.clickhouse import _env
from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.demo import _run as _demo

_SINCE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UsageError(Exception):
    """Bad command line or configuration (exit code 2)."""


def _parse_since(text: str) -> timedelta:
    match = _SINCE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected e.g. 30m, 24h, 7d, 2w; got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", help="ClickHouse URL (default: $CLICKHOUSE_URL)")
    connection.add_argument("--user", help="user (default: $CLICKHOUSE_USER)")
    connection.add_argument("--password", help="password (default: $CLICKHOUSE_PASSWORD)")
    connection.add_argument("--database", help="database (default: $CLICKHOUSE_DATABASE or otel)")
    connection.add_argument("--table", default=_env.DEFAULT_TRACES_TABLE, help="traces table")
    common = argparse.ArgumentParser(add_help=False, parents=[connection])
    common.add_argument("--format", choices=("table", "json", "csv"), default="table")

    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--since", type=_parse_since, default=timedelta(hours=24), help="e.g. 24h, 7d")
    window.add_argument("--start", type=_parse_time, help="ISO time (UTC if no offset)")
    window.add_argument("--end", type=_parse_time, help="ISO time (default: the next whole minute)")
    for name in ("project", "team", "model", "key-alias", "user-id"):
        window.add_argument(f"--{name}", dest=f"f_{name.replace('-', '_')}", help=f"only this {name}")
    window.add_argument("--status", choices=("ok", "error"))

    parser = argparse.ArgumentParser(prog="agentportal-otel", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    usage = sub.add_parser("usage", parents=[common, window], help="calls, tokens, cost, latency")
    usage.add_argument("--by", default="", help=f"comma list of {','.join(q.DIMENSIONS)}")
    usage.add_argument("--bucket", choices=("hour", "day"))
    errors = sub.add_parser("errors", parents=[common, window], help="failed calls by error.type")
    for reader in (usage, errors):
        reader.add_argument(
            "--source", choices=("auto", "rollup", "raw"), default="auto", help="usage rollups or raw spans"
        )
    calls = sub.add_parser("calls", parents=[common, window], help="recent LLM calls, newest first")
    calls.add_argument("--limit", type=int, default=50)
    calls.add_argument("--offset", type=int, default=0)
    trace = sub.add_parser("trace", parents=[common], help="every span of one trace")
    trace.add_argument("trace_id")
    doctor = sub.add_parser("doctor", parents=[common], help="check the export path end to end")
    doctor.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the probe")
    schema = sub.add_parser("schema", parents=[common], help="print the DDL, or run it with --apply")
    schema.add_argument("--apply", action="store_true", help="run it on --url (adds what is missing)")
    schema.add_argument("--cluster", help="add ON CLUSTER NAME to every statement")
    schema.add_argument("--replicated", action="store_true", help="Replicated* local tables + Distributed")
    schema.add_argument("--ttl-days", type=int, default=30, help="raw spans TTL (0: none)")
    schema.add_argument("--rollup-ttl-days", type=int, default=400, help="usage rollups TTL (0: none)")
    rollup = sub.add_parser("rollup", help="maintain the usage rollups")
    rollup_sub = rollup.add_subparsers(dest="rollup_command", required=True)
    backfill = rollup_sub.add_parser(
        "backfill", parents=[common], help="recompute the rollups from raw spans (idempotent, whole hours)"
    )
    backfill.add_argument("--since", type=_parse_since, default=timedelta(days=30), help="e.g. 30d")
    backfill.add_argument("--until", type=_parse_time, help="ISO time (default: the start of this hour)")
    demo = sub.add_parser("demo", help="local proxy + sample traffic into chDB, then the usage tables")
    _demo.add_arguments(demo)
    serve = sub.add_parser("serve", parents=[connection], help="the monitoring API and page (needs the monitor extra)")
    _add_serve_arguments(serve)
    return parser


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    from agentportal_otel.monitor import _serve

    _serve.add_arguments(parser)


def _env_first(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if environ.get(name):
            return environ[name]
    return None


def _connection(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str | None, str | None]:
    url = args.url or _env_first(environ, _env.CLICKHOUSE_URL, _env.AGENTPORTAL_OTEL_CLICKHOUSE_URL)
    if not url:
        raise UsageError("no ClickHouse connection: pass --url or set CLICKHOUSE_URL")
    user = args.user or _env_first(environ, _env.CLICKHOUSE_USER, _env.AGENTPORTAL_OTEL_CLICKHOUSE_USER)
    password = args.password or _env_first(environ, _env.CLICKHOUSE_PASSWORD, _env.AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD)
    return url, user, password


def _target(args: argparse.Namespace, environ: Mapping[str, str], url: str) -> q.Target:
    from agentportal_otel.clickhouse import parse_url

    database = (
        args.database
        or _env_first(environ, _env.CLICKHOUSE_DATABASE, _env.AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE)
        or parse_url(url, "--url").url_database
        or _env.DEFAULT_DATABASE
    )
    return q.Target(database=database, table=args.table)


def relative_end(now: datetime | None = None) -> datetime:
    """Where a window "the last N" ends: the next whole minute (``now`` itself on one).

    Both ends of ``[end - N, end)`` then fall on minute boundaries when N is whole minutes, so
    the usage rollups answer alone, without the raw rows of partial minutes at the edges. The
    window holds nothing later than now, and leaves out less than a minute at its old end."""
    now = now or datetime.now(timezone.utc)
    floor = now.replace(second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(minutes=1)


def _window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    end = args.end or relative_end()
    return (args.start or end - args.since), end


def _filters(args: argparse.Namespace) -> q.Filters:
    return q.Filters(
        project=args.f_project,
        team=args.f_team,
        model=args.f_model,
        key_alias=args.f_key_alias,
        user=args.f_user_id,
        status=args.status,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 9)
    return value


def _records(rows: Sequence[Any]) -> list[dict[str, Any]]:
    records = []
    for row in rows:
        record = dataclasses.asdict(row)
        for name, value in record.pop("dimensions", ()):
            record[name] = value
        if "attributes" in record:
            record["attributes"] = json.dumps(record["attributes"], sort_keys=True)
        records.append({k: _plain(v) for k, v in record.items()})
    return records


def _render(records: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump(records, out, indent=2, default=str)
        out.write("\n")
        return
    if not records:
        out.write("(no rows)\n" if fmt == "table" else "")
        return
    columns = list(records[0])
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return
    cells = [[("" if r[c] is None else str(r[c])) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _run_query(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    from agentportal_otel.clickhouse import connect

    url, user, password = _connection(args, environ)
    target = _target(args, environ, url)
    backend = connect(url, user, password, variable="--url")
    try:
        rows: Sequence[Any]
        if args.command == "trace":
            rows = q.trace(backend, args.trace_id, target=target)
        else:
            start, end = _window(args)
            window: dict[str, Any] = {"start": start, "end": end, "filters": _filters(args), "target": target}
            if args.command == "usage":
                by = [d.strip() for d in args.by.split(",") if d.strip()]
                rows = q.usage(backend, group_by=by, bucket=args.bucket, source=args.source, **window)
            elif args.command == "calls":
                rows = q.recent_calls(backend, limit=args.limit, offset=args.offset, **window)
            else:
                rows = q.error_breakdown(backend, source=args.source, **window)
        _render(_records(rows), args.format, out)
    finally:
        backend.close()
    return 0


def _run_schema(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    from agentportal_otel.clickhouse import connect, schema_statements

    url = None if not args.apply else _connection(args, environ)[0]
    database = (
        args.database
        or _env_first(environ, _env.CLICKHOUSE_DATABASE, _env.AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE)
        or (_target(args, environ, url).database if url else _env.DEFAULT_DATABASE)
    )
    statements = schema_statements(
        database,
        args.table,
        ttl_days=args.ttl_days,
        cluster=args.cluster,
        replicated=args.replicated,
        rollup_ttl_days=args.rollup_ttl_days,
    )
    if not args.apply:
        out.write(";\n\n".join(statements) + ";\n")
        return 0
    url, user, password = _connection(args, environ)
    backend = connect(url, user, password, variable="--url")
    try:
        for statement in statements:
            backend.command(statement)
    finally:
        backend.close()
    out.write(
        f"applied {len(statements)} statements to {database} (all IF NOT EXISTS: existing tables are untouched);"
        " if the traces table already held spans, run `agentportal-otel rollup backfill --since 30d`\n"
    )
    return 0


def _run_backfill(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    from agentportal_otel.clickhouse import _rollup, connect

    url, user, password = _connection(args, environ)
    target = _target(args, environ, url)
    until = args.until or datetime.now(timezone.utc)
    backend = connect(url, user, password, variable="--url")
    try:
        result = _rollup.backfill(
            backend, database=target.database, traces_table=target.table, since=until - args.since, until=until
        )
    finally:
        backend.close()
    _render(_records([result]), args.format, out)
    return 0


def _run_doctor(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    settings, problems = _doctor.load_settings(environ)
    checks = [_doctor.check_configuration(settings, problems), _doctor.check_litellm_names(environ)]
    probe_id = _doctor.new_probe_id()
    if "otlp" not in settings.traces_exporters and "clickhouse" in settings.traces_exporters:
        # Direct export: the probe goes through the plugin's own ClickHouse exporter.
        from agentportal_otel.clickhouse import create_span_exporter

        checks.append(_doctor.Check("endpoint accepts POST", "SKIP", "OTEL_TRACES_EXPORTER=clickhouse: no collector"))
        try:
            exporter = create_span_exporter(environ)
        except ValueError as error:
            checks.append(_doctor.Check("probe span exported", "FAIL", str(error), "fix the variable named above"))
        else:
            destination = settings.describe_destination()
            checks.append(_doctor.send_probe(exporter, destination, probe_id, 10.0, environ))
    else:
        endpoint = _doctor.Endpoint(settings.traces_endpoint, settings.traces_endpoint_source)
        headers = dict(settings.traces_headers)
        reachable = _doctor.check_endpoint(endpoint, headers, timeout=5.0)
        checks.append(reachable)
        if reachable.outcome == "PASS":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint.url, headers=headers, timeout=10.0)
            checks.append(_doctor.send_probe(exporter, endpoint.url, probe_id, 10.0, environ))
        else:
            checks.append(_doctor.Check("probe span exported", "SKIP", "endpoint not reachable"))
    sent = checks[-1].outcome == "PASS"
    with _doctor_clickhouse(args, environ) as clickhouse:
        checks.append(_check_stored(clickhouse, probe_id, sent, args.timeout))
        checks.append(_check_rollups(clickhouse))
    records = [dataclasses.asdict(c) for c in checks]
    if args.format == "table":
        for check in checks:
            out.write(f"[{check.outcome}] {check.name}: {check.detail}\n")
            if check.hint and check.outcome != "PASS":
                out.write(f"       fix: {check.hint}\n")
    else:
        _render(records, args.format, out)
    return 1 if any(c.outcome == "FAIL" for c in checks) else 0


@dataclasses.dataclass(frozen=True)
class _DoctorClickHouse:
    """The doctor's one ClickHouse connection, or why there is none (``detail``, ``hint``)."""

    backend: Any
    target: q.Target
    detail: str = ""
    hint: str = ""
    password: str | None = None
    """Scrubbed from every message the checks print."""


@contextlib.contextmanager
def _doctor_clickhouse(args: argparse.Namespace, environ: Mapping[str, str]) -> Iterator[_DoctorClickHouse]:
    """One connection for every ClickHouse check, closed after them; a missing URL or a failed
    connection is reported by each check instead of ending the doctor."""
    try:
        url, user, password = _connection(args, environ)
    except UsageError:
        yield _DoctorClickHouse(None, q.Target(), "not checked: no ClickHouse URL", "pass --url or set CLICKHOUSE_URL")
        return
    from agentportal_otel.clickhouse import connect

    target = _target(args, environ, url)
    try:
        backend = connect(url, user, password, variable="--url")
    except Exception as error:  # the doctor reports, it does not crash
        yield _DoctorClickHouse(
            None,
            target,
            detail=f"not checked: cannot connect: {_scrub(str(error), [password])}",
            hint="check --url/CLICKHOUSE_URL, the server and the credentials",
        )
        return
    try:
        yield _DoctorClickHouse(backend, target, password=password)
    finally:
        backend.close()


def _check_stored(clickhouse: _DoctorClickHouse, probe_id: str, sent: bool, timeout: float) -> Any:
    name = "probe stored in ClickHouse"
    if not sent:
        return _doctor.Check(name, "SKIP", "no probe was sent")
    if clickhouse.backend is None:
        return _doctor.Check(name, "WARN", clickhouse.detail, clickhouse.hint)
    backend, target = clickhouse.backend, clickhouse.target
    check = _doctor.wait_for_probe(lambda: q.probe_count(backend, probe_id, target=target), probe_id, timeout)
    return dataclasses.replace(check, detail=_scrub(check.detail, [clickhouse.password]))


def _check_rollups(clickhouse: _DoctorClickHouse) -> Any:
    """Usage answers come from the rollups: are they there, and do they cover the raw spans?"""
    name = "usage rollups cover otel_traces"
    if clickhouse.backend is None:
        return _doctor.Check(name, "WARN", clickhouse.detail, clickhouse.hint)
    from agentportal_otel.clickhouse import _rollup

    target = clickhouse.target
    try:
        found = _rollup.coverage(clickhouse.backend, database=target.database, traces_table=target.table)
    except Exception as error:  # reported, like an unreachable server
        return _doctor.Check(name, "WARN", f"not checked: {_scrub(str(error), [clickhouse.password])}")
    now = datetime.now(timezone.utc)
    if found.missing:
        return _doctor.Check(
            name,
            "WARN",
            f"missing in {target.database}: {', '.join(found.missing)}; usage questions scan {target.table}",
            "run `agentportal-otel schema --apply`, then `agentportal-otel rollup backfill --since 30d`",
        )
    if found.uncovered_since is not None:
        start = found.rollup_start.strftime("%Y-%m-%d %H:%M UTC") if found.rollup_start else "nowhere (empty)"
        return _doctor.Check(
            name,
            "WARN",
            f"{target.table} has LLM spans from {found.uncovered_since:%Y-%m-%d %H:%M} UTC, the rollups start"
            f" {start}: usage answered from the rollups misses the older calls",
            f"run `agentportal-otel rollup backfill --since {found.backfill_days(now)}d` (idempotent)",
        )
    since = f"from {found.rollup_start:%Y-%m-%d %H:%M} UTC" if found.rollup_start else "no LLM spans yet"
    return _doctor.Check(name, "PASS", since)


def _scrub(message: str, secrets: Sequence[str | None]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    env = os.environ if environ is None else environ
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "demo":
        return _demo.run(args)
    if args.command == "serve":
        from agentportal_otel.monitor import _serve

        return _serve.run(args, env)
    out = sys.stdout
    secrets = [args.password, env.get(_env.CLICKHOUSE_PASSWORD), env.get(_env.AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD)]
    try:
        if args.command == "doctor":
            return _run_doctor(args, env, out)
        if args.command == "schema":
            return _run_schema(args, env, out)
        if args.command == "rollup":
            return _run_backfill(args, env, out)
        return _run_query(args, env, out)
    except (UsageError, ValueError) as exc:
        print(f"agentportal-otel: error: {_scrub(str(exc), secrets)}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"agentportal-otel: {type(exc).__name__}: {_scrub(str(exc), secrets)}", file=sys.stderr)
        return 1


__all__ = ["main"]
