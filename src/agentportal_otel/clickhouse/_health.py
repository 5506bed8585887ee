"""Is the traces table there? The monitoring server's ``/api/v1/health`` asks this.

Kept apart from :mod:`._queries` (usage questions) because it reads ``system.tables`` and
touches no span. ``system.tables`` lists only tables the user may read, so a read-only user
without ``SELECT`` on the table sees it as missing, which is what a health check should say.
"""

from __future__ import annotations

from agentportal_otel.clickhouse._backend import Backend
from agentportal_otel.clickhouse._queries import Target


def table_exists(backend: Backend, *, target: Target | None = None) -> bool:
    """``True`` when ``target``'s traces table exists and is visible; raises if ClickHouse is
    unreachable."""
    target = target or Target()
    target.traces()  # validates both identifiers
    rows = backend.query(
        "SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {table:String}",
        {"db": target.database, "table": target.table},
    )
    return bool(rows) and int(rows[0]["n"]) > 0
