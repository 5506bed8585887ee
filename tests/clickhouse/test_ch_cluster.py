"""Cluster DDL: every statement parses with ClickHouse's own parser; the single-node one runs.

chDB cannot run ``ON CLUSTER`` (it has no cluster), but ``formatQuery`` is the server's parser:
it raises on anything a ClickHouse server would reject as a syntax error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from agentportal_otel.clickhouse import schema_statements
from agentportal_otel.clickhouse._rollup import TIERS

REPLICATED = schema_statements("otel", cluster="agentportal", replicated=True)


def test_replicated_layout() -> None:
    locals_ = ["otel_traces", "otel_traces_trace_id_ts", *(t.table("otel_traces") for t in TIERS)]
    assert all(" ON CLUSTER `agentportal`" in s for s in REPLICATED)
    for name in locals_:
        (table,) = [s for s in REPLICATED if f"`otel`.`{name}_local` ON CLUSTER" in s]
        assert re.search(
            r"ENGINE = Replicated(Aggregating)?MergeTree\('/clickhouse/tables/\{shard\}/\{database\}/\{table\}', "
            r"'\{replica\}'\)",
            table,
        ), name
        (distributed,) = [s for s in REPLICATED if f"`otel`.`{name}` ON CLUSTER" in s]
        assert f"AS `otel`.`{name}_local`" in distributed
        assert f"ENGINE = Distributed(`agentportal`, `otel`, `{name}_local`, " in distributed
    views = [s for s in REPLICATED if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 6 and all("_local`\n" in v.split("AS SELECT")[0] for v in views)
    assert all("FROM `otel`.`otel_traces`\n" not in v for v in views)  # views read the shard's rows
    with pytest.raises(ValueError, match="cluster"):
        schema_statements(replicated=True)
    assert "Replicated" not in "".join(schema_statements(cluster="c1"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "statements",
    [REPLICATED, schema_statements("otel", cluster="c1"), schema_statements("otel")],
    ids=["replicated", "on-cluster", "single-node"],
)
def test_every_statement_parses_with_clickhouse(backend: Any, statements: list[str]) -> None:
    for statement in statements:
        (row,) = backend.query("SELECT formatQuery({sql:String}) AS f", {"sql": statement})
        assert row["f"].startswith("CREATE")
    broken = statements[-1].replace(" AS ", " AS (", 1)
    with pytest.raises(Exception, match=r"Syntax error"):  # it is a parser, not a no-op
        backend.query("SELECT formatQuery({sql:String}) AS f", {"sql": broken})


@pytest.mark.slow
def test_single_node_variant_runs(backend: Any, fresh_db: str) -> None:
    for statement in schema_statements(fresh_db, rollup_ttl_days=90):
        backend.command(statement)
    tables = backend.query("SELECT name, engine FROM system.tables WHERE database = {db:String}", {"db": fresh_db})
    assert {r["engine"] for r in tables} == {"MergeTree", "AggregatingMergeTree", "MaterializedView"}
    ddl = backend.query(
        "SELECT create_table_query AS q FROM system.tables"
        " WHERE database = {db:String} AND name = 'otel_traces_usage_1h'",
        {"db": fresh_db},
    )
    assert "TTL Start + toIntervalDay(90)" in ddl[0]["q"]
