"""A real proxy with ``--num_workers 2``: one span per call, nothing lost across a SIGTERM to the master.

LiteLLM hands ``--num_workers N`` to ``uvicorn.run(workers=N)``, which *spawns* the workers: each
imports the app, loads ``config.yaml`` in its own lifespan startup and so builds its own
providers; the master never loads the callback. On SIGTERM the master terminates every worker and
waits; each worker runs its own lifespan shutdown, where the plugin flushes. (Under
``--run_gunicorn`` the master preloads the app and *forks* the workers; the callback is still
loaded in each worker's lifespan, and a logger built before a fork rebuilds its providers in the
child, see ``AgentPortalLogger._after_fork_in_child``.)

Export intervals are far beyond the test (spans 60 s, metrics 10 min), so only the per-worker
flush at shutdown can deliver anything. A spool directory is set, shared by both workers: with
the collector up it must stay empty.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from e2e_support import CALL_ID, CONFIG, MASTER_KEY, burst, proxy_env, spans_by_call_id
from otlp_receiver import OTLPReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REQUESTS = 300
SLOW_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "600000"}
STARTUP_LINE = "agentportal-otel 0.1.0: spans ->"
# uvicorn's supervisor kills a worker that does not answer its health ping within 5 s, and a
# spawned worker only answers once `import litellm` is done: on a loaded 2-core machine that
# takes longer, so the workers would be killed and respawned in a loop.
WORKER_ARGS = ["--num_workers", "2", "--timeout_worker_healthcheck", "60"]


def test_two_workers_one_span_per_call_and_nothing_lost_at_sigterm(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **SLOW_EXPORT, AGENTPORTAL_OTEL_SPOOL_DIR=str(spool))
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY, extra_args=WORKER_ARGS, startup_timeout=150) as proxy:
            calls = burst(proxy, REQUESTS, "workers")
            assert [r for r in receiver.requests if r.path == "/v1/traces"] == [], (
                "spans were exported before shutdown: the test proves nothing"
            )
            code = proxy.stop(timeout=60)
            log = proxy.log_text()

    assert code in (0, -15), f"exit code {code}\n{log[-3000:]}"
    grouped = spans_by_call_id(s for s in receiver.spans if s.attributes.get(CALL_ID) in set(calls.call_ids))
    assert {k: len(v) for k, v in grouped.items() if len(v) != 1} == {}, "a call got more than one span"
    assert set(grouped) == set(calls.call_ids), f"{REQUESTS - len(grouped)} spans lost\n{log[-3000:]}"
    # One set of providers per worker, none in the master.
    assert log.count(STARTUP_LINE) == 2, log[-3000:]
    instances = {s.resource["service.instance.id"] for s in receiver.spans}
    print(f"\n2 workers: {len(grouped)}/{REQUESTS} spans, {len(instances)} worker instance(s) served")
    assert 1 <= len(instances) <= 2
    # Each worker flushed its own metrics: the duration counts add up to the calls, over workers.
    counts: dict[tuple[object, frozenset[tuple[str, object]]], int] = {}
    for point in receiver.metric_points("gen_ai.client.operation.duration"):
        key = (point.resource["service.instance.id"], frozenset(point.attributes.items()))
        counts[key] = max(counts.get(key, 0), point.count or 0)
    assert sum(counts.values()) == REQUESTS
    assert not list(spool.glob("*/*.otlp")), "the collector was up: nothing may be spooled"
    assert "agentportal-otel: internal error" not in log
