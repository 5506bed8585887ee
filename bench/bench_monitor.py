"""Benchmark the monitoring API (``agentportal-otel serve``) on embedded chDB at 1M spans.

Loads ``--spans`` synthetic LLM-call spans (default 1,000,000 over 7 days; the generator of
``bench_clickhouse_usage.py``: 8 teams, 25 projects, 5 models, 200 key aliases, 2,000 users)
into a fresh chDB directory, builds the real app (admin token, as a browser would use it after
login), and times each endpoint through the ASGI stack (FastAPI's TestClient: routing,
validation, the one-query-at-a-time store, JSON), printing p50/p95 per endpoint. Then it
replays what the page fetches on its first load (HTML, script, style, icon and its five API
calls for the default 24 h view) and prints the page's total transfer size. ::

    python bench/bench_monitor.py                 # 1M spans, 20 requests per endpoint
    python bench/bench_monitor.py --spans 200000 --repeat 10
    python bench/bench_monitor.py --dir /tmp/bench-chdb --reuse   # again on the same spans

Targets (issue 9): the overview (``/api/v1/usage?since=24h``, the page's figures) p95 <= 300 ms at
1M spans; the page <= 300 KB in total.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from agentportal_otel.clickhouse import _queries as q  # noqa: E402
from agentportal_otel.clickhouse import connect, schema_statements  # noqa: E402

TOKEN = "bench-admin-token-" + "0" * 20


def _usage_bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_clickhouse_usage", ROOT / "bench" / "bench_clickhouse_usage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _percentile(samples: list[float], level: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(level * len(ordered)))]


def timed(client: Any, label: str, path: str, repeat: int) -> Any:
    client.get(path)  # warm-up (first query of a shape compiles/loads marks)
    samples, response = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    p50, p95 = statistics.median(samples), _percentile(samples, 0.95)
    print(f"  {label:<44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {path}")
    return response


def page_transfer(client: Any) -> int:
    """Bytes the page's first load moves: the documents plus the API answers of the default view."""
    paths = [
        "/",
        "/static/app.js",
        "/static/app.css",
        "/static/favicon.svg",
        "/api/v1/session",
        "/api/v1/usage?since=24h",
        "/api/v1/usage?since=24h&by=team&bucket=hour",
        "/api/v1/usage?since=24h&by=team%2Cproject",
        "/api/v1/errors?since=24h",
        "/api/v1/calls?since=24h&limit=20&offset=0",
    ]
    total = 0
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        header_bytes = sum(len(k) + len(v) + 4 for k, v in response.headers.items())
        size = len(response.content) + header_bytes
        total += size
        print(f"    {size:8,d} B  {path}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dir", help="chDB directory (default: a fresh temporary one)")
    parser.add_argument("--reuse", action="store_true", help="--dir already holds the spans: do not load")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from agentportal_otel.monitor._app import MonitorConfig, create_app
    from agentportal_otel.monitor._auth import load_tokens

    usage_bench = _usage_bench()
    directory = args.dir or tempfile.mkdtemp(prefix="agentportal-bench-monitor-")
    backend = connect(f"chdb://{directory}")
    if not args.reuse:
        for statement in schema_statements(usage_bench.DB):
            backend.command(statement)
        usage_bench.load(backend, args.spans)
        backend.command(f"OPTIMIZE TABLE {usage_bench.DB}.otel_traces FINAL")  # as after a day of merges
    app = create_app(
        backend,
        MonitorConfig(
            target=q.Target(database=usage_bench.DB),
            tokens=load_tokens({"AGENTPORTAL_MONITOR_ADMIN_TOKEN": TOKEN}),
        ),
    )
    client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
    print(f"endpoints over {args.spans:,} spans ({args.repeat} requests each, after one warm-up):")
    r = args.repeat
    timed(client, "overview (figures), 24 h", "/api/v1/usage?since=24h", r)
    timed(client, "usage by team, hourly, 24 h (charts)", "/api/v1/usage?since=24h&by=team&bucket=hour", r)
    timed(client, "usage by team x project, 24 h (table)", "/api/v1/usage?since=24h&by=team,project", r)
    timed(client, "usage by model, daily, 7 d", "/api/v1/usage?since=7d&by=model&bucket=day", r)
    timed(client, "usage, one team, 24 h", "/api/v1/usage?since=24h&team=search", r)
    timed(client, "usage, 24 h, CSV by team x project", "/api/v1/usage?since=24h&by=team,project&format=csv", r)
    calls = timed(client, "calls, 24 h, newest 20 + total", "/api/v1/calls?since=24h&limit=20", r)
    timed(
        client,
        "calls, 7 d, team + errors, offset 1000",
        "/api/v1/calls?since=7d&team=search&status=error&offset=1000",
        r,
    )
    timed(client, "errors by type and model, 24 h", "/api/v1/errors?since=24h", r)
    timed(client, "errors over time, hourly, 24 h", "/api/v1/errors?since=24h&bucket=hour", r)
    first = calls.json()["items"][0]
    timed(client, "one call", f"/api/v1/calls/{first['trace_id']}/{first['span_id']}", r)
    timed(client, "one trace", f"/api/v1/traces/{first['trace_id']}", r)
    timed(client, "health (no auth)", "/api/v1/health", r)
    print("page, first load of the default view (body + headers, uncompressed):")
    total = page_transfer(client)
    print(f"  total {total:,} B = {total / 1024:.1f} KB (target <= 300 KB)")
    backend.close()
    print(f"chDB directory: {directory}")


if __name__ == "__main__":
    main()
