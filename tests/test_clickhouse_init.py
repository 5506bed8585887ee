"""docker/clickhouse/init: generated from the package DDL, and valid on a real ClickHouse engine.

The compose stack's ClickHouse runs ``docker/clickhouse/init/*.sql`` once on an empty volume; the
collector then inserts with ``create_schema: false``. So the committed file must be exactly the
rendering of ``agentportal_otel.clickhouse._schema.schema_statements()`` and, executed on
ClickHouse (chdb, in-process), must give the column names and types the package declares.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
INIT_DIR = ROOT / "docker" / "clickhouse" / "init"


def _load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_render_init", ROOT / "docker/clickhouse/render_init.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_init = _load_renderer()


def _schema() -> ModuleType:
    import agentportal_otel.clickhouse._schema as schema

    return schema


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_init_dir_holds_only_the_generated_script() -> None:
    assert sorted(p.name for p in INIT_DIR.iterdir()) == ["001_otel_traces.sql", "002_monitor_reader.sh"]


def test_monitor_reader_script() -> None:
    import os

    script = INIT_DIR / "002_monitor_reader.sh"
    text = script.read_text()
    assert os.access(script, os.X_OK)  # the entrypoint executes it (instead of sourcing it)
    assert "GRANT SELECT ON ${CLICKHOUSE_DB}.* TO ${CLICKHOUSE_MONITOR_USER}" in text
    assert "INSERT" not in text and "ALL" not in text.replace("ALLOW", "")  # SELECT only
    assert "readonly = 2" in text


def test_committed_init_script_equals_the_rendered_ddl() -> None:
    _schema()
    assert render_init.INIT_FILE.read_text() == render_init.render(), (
        "docker/clickhouse/init is stale: run python docker/clickhouse/render_init.py"
    )
    assert render_init.main(["--check"]) == 0


def test_init_database_matches_env_example_and_collector() -> None:
    yaml = pytest.importorskip("yaml")
    assert _env_example()["CLICKHOUSE_DB"] == render_init.DEFAULT_DATABASE
    collector = yaml.safe_load((ROOT / "docker/otel-collector/config.yaml").read_text())
    traces_exporter = collector["exporters"]["clickhouse"]
    assert traces_exporter["database"] == "${env:CLICKHOUSE_DB}"
    assert traces_exporter["traces_table_name"] == render_init.DEFAULT_TRACES_TABLE
    assert traces_exporter["ttl"] == f"{render_init.DEFAULT_TTL_DAYS * 24}h"


@pytest.fixture
def chdb_session(tmp_path: Path) -> Iterator[Any]:
    session_mod = pytest.importorskip("chdb.session")
    sess = session_mod.Session(str(tmp_path / "chdb"))
    try:
        yield sess
    finally:
        sess.close()


def _run_script(sess: Any, text: str) -> None:
    # clickhouse-client --multiquery semantics for this file: statements end with ';' at a line end.
    for statement in re.split(r";\s*\n", text):
        if any(line.strip() and not line.lstrip().startswith("--") for line in statement.splitlines()):
            sess.query(statement)


def _rows(sess: Any, sql: str) -> list[list[Any]]:
    return json.loads(sess.query(sql, "JSONCompact").data())["data"]


@pytest.mark.slow
def test_init_script_on_clickhouse_gives_the_package_columns(chdb_session: Any) -> None:
    schema = _schema()
    _run_script(chdb_session, render_init.INIT_FILE.read_text())

    columns = _rows(
        chdb_session,
        "SELECT name, type FROM system.columns WHERE database = 'otel' AND table = 'otel_traces' ORDER BY position",
    )
    assert [tuple(c) for c in columns] == list(schema.TRACES_COLUMNS.items())

    tables = dict(
        (name, engine)
        for name, engine in _rows(chdb_session, "SELECT name, engine FROM system.tables WHERE database = 'otel'")
    )
    assert tables == {
        "otel_traces": "MergeTree",
        "otel_traces_trace_id_ts": "MergeTree",
        "otel_traces_trace_id_ts_mv": "MaterializedView",
        "otel_traces_usage_1m": "AggregatingMergeTree",
        "otel_traces_usage_1m_mv": "MaterializedView",
        "otel_traces_usage_1h": "AggregatingMergeTree",
        "otel_traces_usage_1h_mv": "MaterializedView",
        "otel_traces_usage_team_1m": "AggregatingMergeTree",
        "otel_traces_usage_team_1m_mv": "MaterializedView",
        "otel_traces_usage_team_1h": "AggregatingMergeTree",
        "otel_traces_usage_team_1h_mv": "MaterializedView",
        "otel_traces_usage_team_1d": "AggregatingMergeTree",
        "otel_traces_usage_team_1d_mv": "MaterializedView",
    }
    lookup = _rows(
        chdb_session,
        "SELECT name, type FROM system.columns WHERE database = 'otel' AND table = 'otel_traces_trace_id_ts' "
        "ORDER BY position",
    )
    assert [tuple(c) for c in lookup] == [("TraceId", "String"), ("Start", "DateTime"), ("End", "DateTime")]

    # Running it again is harmless (every statement is IF NOT EXISTS): the volume may be reused.
    _run_script(chdb_session, render_init.INIT_FILE.read_text())


@pytest.mark.slow
def test_exporter_style_insert_lands_and_feeds_the_trace_id_lookup(chdb_session: Any) -> None:
    schema = _schema()
    _run_script(chdb_session, render_init.INIT_FILE.read_text())
    cols = ", ".join(f"`{c}`" for c in schema.TRACES_COLUMNS)
    chdb_session.query(
        f"INSERT INTO otel.otel_traces ({cols}) VALUES ("
        "now64(9), 'aa11', 'bb22', '', '', 'chat mock-chat', 'Client', 'litellm-proxy', "
        "map('deployment.environment.name', 'compose'), 'agentportal_otel', '0.1.0', "
        "map('gen_ai.request.model', 'mock-chat', 'agentportal.project', 'search-portal'), "
        "1500000, 'Unset', '', [], [], [], [], [], [], [])"
    )
    assert _rows(chdb_session, "SELECT SpanAttributes['agentportal.project'], Duration FROM otel.otel_traces") == [
        ["search-portal", 1500000]
    ]
    assert _rows(chdb_session, "SELECT TraceId FROM otel.otel_traces_trace_id_ts") == [["aa11"]]
    # An LLM span (it carries gen_ai.operation.name) feeds both usage rollups through their views.
    chdb_session.query(
        f"INSERT INTO otel.otel_traces ({cols}) VALUES ("
        "now64(9), 'aa12', 'bb23', '', '', 'chat mock-chat', 'Client', 'litellm-proxy', map(), '', '', "
        "map('gen_ai.operation.name', 'chat', 'gen_ai.usage.input_tokens', '12', 'agentportal.team.id', 't1'), "
        "2500000, 'Error', '', [], [], [], [], [], [], [])"
    )
    for table in (
        "otel_traces_usage_1m",
        "otel_traces_usage_1h",
        "otel_traces_usage_team_1h",
        "otel_traces_usage_team_1d",
    ):
        assert _rows(
            chdb_session, f"SELECT TeamId, sum(Calls), sum(Errors), sum(InputTokens) FROM otel.{table} GROUP BY TeamId"
        ) == [["t1", 1, 1, 12]]


def test_renderer_options_are_passed_to_the_schema(tmp_path: Path) -> None:
    _schema()
    out = tmp_path / "x.sql"
    assert render_init.main(["--database", "obs", "--ttl-days", "7", "--output", str(out)]) == 0
    text = out.read_text()
    assert "CREATE DATABASE IF NOT EXISTS `obs`;" in text
    assert "toIntervalDay(7)" in text
    assert "Start + toIntervalDay(90)" not in text
    assert render_init.main(["--rollup-ttl-days", "90", "--output", str(out)]) == 0
    assert "TTL Start + toIntervalDay(90)" in out.read_text()
    assert render_init.main(["--database", "obs", "--output", str(out), "--check"]) == 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
