"""Nothing is lost when the proxy is stopped right after a burst (SIGTERM as from a container
runtime, SIGINT as from Ctrl-C).

Export intervals are set far beyond the test's duration (spans 60 s, metrics 10 min) and the
burst stays below the batch size, so only the plugin's flush on the proxy's shutdown path can
deliver anything: the receiver is checked to be empty right before the signal.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import httpx
import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS
from e2e_support import CALL_ID, CONFIG, MASTER_KEY, latest_points, proxy_env, totals
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

REQUESTS = 200  # below OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512): no size-triggered export
CONCURRENCY = 16
KEYS = (DEMO_KEYS[0].key, DEMO_KEYS[1].key)  # two teams, two projects
SLOW_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "600000"}


async def _burst(url: str) -> list[tuple[int, str | None]]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    results: list[tuple[int, str | None]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(i)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await client.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {KEYS[i % 2]}"},
                    json={"model": "mock-chat", "messages": [{"role": "user", "content": f"request {i}"}]},
                )
                results.append((response.status_code, response.headers.get("x-litellm-call-id")))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_right_after_a_burst_flushes_every_span_and_metric(sig: signal.Signals) -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **SLOW_EXPORT)
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            results = asyncio.run(_burst(proxy.url))
            assert receiver.requests == [], "something was exported before shutdown: the test proves nothing"
            code = proxy.stop(sig, timeout=30)
            log = proxy.log_text()

        # uvicorn re-raises the signal after its graceful shutdown
        assert code in (0, -sig), f"exit code {code}\n{log[-3000:]}"
        ok = [call_id for status, call_id in results if status == 200]
        assert len(ok) == REQUESTS, Counter(status for status, _ in results)
        assert len(set(ok)) == REQUESTS

        spans = receiver.spans
        assert receiver.errors == []
        assert sorted(str(s.attributes[CALL_ID]) for s in spans) == sorted(str(i) for i in ok)
        assert "agentportal-otel: internal error" not in log

        # metrics: the final cumulative points match the spans, series by series
        points = latest_points(receiver.data_points)
        assert points, "no metrics were flushed at shutdown"
        durations = totals(points, "gen_ai.client.operation.duration", "agentportal.team")
        counts: Counter[tuple[object, ...]] = Counter()
        for (name, _), point in points.items():
            if name == "gen_ai.client.operation.duration":
                counts[(point.attributes.get("agentportal.team"),)] += point.count or 0
        expected_counts = Counter((s.attributes.get("agentportal.team.alias"),) for s in spans)
        assert counts == expected_counts
        assert sum(counts.values()) == REQUESTS
        assert set(durations) == set(expected_counts)

        tokens = totals(points, "gen_ai.client.token.usage", "agentportal.team", "gen_ai.token.type")
        expected_tokens: Counter[tuple[object, ...]] = Counter()
        for s in spans:
            team = s.attributes.get("agentportal.team.alias")
            expected_tokens[(team, "input")] += int(s.attributes["gen_ai.usage.input_tokens"])
            expected_tokens[(team, "output")] += int(s.attributes["gen_ai.usage.output_tokens"])
        assert tokens == expected_tokens
        assert {team for team, _ in tokens} == {"Search", "Assist"}
