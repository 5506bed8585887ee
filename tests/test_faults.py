"""Collector faults through a real proxy process: the proxy keeps serving, telemetry recovers.

Each test runs its own :class:`~agentportal_otel.demo._proxy.ProxyProcess` with a deliberately
small export pipeline (``OTEL_BSP_MAX_QUEUE_SIZE=64``, 8 spans per export, 1 s export timeout)
so that a short burst overflows the queue the way a long outage would overflow the default one:

1. collector down (connection refused) for a whole burst;
2. collector answering 503, then answering only after longer than the export timeout;
3. a proxy restarted with the same config and work directory after an outage.

Guarantees checked: every request is answered 200; the median request latency during the
fault stays within a generous factor of a baseline burst measured in the same test with the
collector up (a sanity bound against blocking on the request path, not a timing assertion:
the machine is shared and noisy); the proxy's RSS stays bounded; drops are reported (the
rate-limited ``... spans dropped so far`` warning in the proxy log and the
``agentportal.spans.dropped`` counter once the collector is back); spans of calls made after
the collector recovered arrive exactly once. SIGTERM right after a burst with a healthy
collector is covered by ``test_shutdown.py``; outages that fit in the queue (nothing lost),
rejections, the byte bound and the disk spool by ``test_export_retry.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from e2e_support import (
    CALL_ID,
    CONFIG,
    DROPPED,
    MASTER_KEY,
    Burst,
    burst,
    dropped_total,
    proxy_env,
    rss_bytes,
    spans_by_call_id,
    wait_exactly_once,
)
from otlp_receiver import OTLPReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

QUEUE = 64
SMALL_PIPELINE = {
    "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "8",  # slow draining while exports fail: the queue overflows
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "AGENTPORTAL_OTEL_SHUTDOWN_TIMEOUT_MS": "5000",
}
DROP_WARNING = "spans dropped so far"
LATENCY_FACTOR = 3.0  # generous: a sanity bound on a shared 2-core machine, not a benchmark
LATENCY_SLACK_S = 0.05  # absolute slack for very fast baselines
RSS_GROWTH_BOUND = 150 * 2**20


def assert_not_blocked(baseline: Burst, faulty: Burst, what: str) -> None:
    # Sanity bound (see the module docstring): export never runs on the request path, so a
    # dead collector must not show up in request latency beyond machine noise.
    bound = LATENCY_FACTOR * baseline.p50 + LATENCY_SLACK_S
    assert faulty.p50 <= bound, f"{what}: p50 {faulty.p50 * 1000:.0f} ms vs baseline {baseline.p50 * 1000:.0f} ms"


def wait_drained(proxy: ProxyProcess, receiver: OTLPReceiver, timeout: float = 90.0) -> int:
    """Wait until the proxy's export queue has caught up with the collector; return probes sent.

    A 2xx seen by the receiver is not proof: a request sent while the collector was slow is
    answered after the client gave up on it (the batch stays queued and is retried), and the
    exporter may still be sleeping out its backoff (up to ``AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS``)
    with the queue full. So one probe call is made every 2 s until a probe's span arrives. The
    queue is first in, first out, so by then everything queued before that probe has been sent
    and the exporter is awake; probes made while the queue was still full are dropped and
    counted like any other span.
    """
    deadline = time.monotonic() + timeout
    probes: set[str] = set()
    while time.monotonic() < deadline:
        probes.update(burst(proxy, 1, "probe").call_ids)
        try:
            receiver.wait_for_spans(1, timeout=2.0, predicate=lambda s: s.attributes.get(CALL_ID) in probes)
        except TimeoutError:
            continue
        return len(probes)
    raise AssertionError(f"no probe span arrived within {timeout} s: the export never recovered")


def wait_dropped(receiver: OTLPReceiver, timeout: float = 15.0) -> int:
    receiver.wait_for_metric(DROPPED, timeout=timeout, predicate=lambda p: (p.value or 0) > 0)
    time.sleep(1.5)  # one more metric export: every reason's latest value
    return dropped_total(receiver)


def test_collector_down_for_a_whole_burst() -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **SMALL_PIPELINE)
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            burst(proxy, 20, "warmup")
            baseline = burst(proxy, 100, "baseline")
            wait_exactly_once(receiver, baseline.call_ids)
            rss_before = rss_bytes(proxy)

            receiver.down()
            outage = burst(proxy, 300, "outage")
            rss_after = rss_bytes(proxy)
            assert_not_blocked(baseline, outage, "collector down")
            assert rss_after - rss_before < RSS_GROWTH_BOUND, (rss_before, rss_after)

            receiver.up()
            probes = wait_drained(proxy, receiver)
            recovered = burst(proxy, 30, "recovered")
            wait_exactly_once(receiver, recovered.call_ids)
            dropped = wait_dropped(receiver)
            log = proxy.log_text()

        print(
            f"\ncollector down: p50 {baseline.p50 * 1000:.0f} -> {outage.p50 * 1000:.0f} ms, "
            f"RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB, dropped {dropped} of {len(outage.call_ids)}, "
            f"{probes} probe(s) until the backlog drained"
        )
        # A 64-span queue drained 8 spans per (failing) export cannot hold a 300-request burst.
        assert 0 < dropped <= len(outage.call_ids) + probes
        assert DROP_WARNING in log, log[-3000:]
        assert "agentportal-otel: internal error" not in log
        # Spans that arrived from the outage burst were queued, never duplicated or invented.
        outage_spans = spans_by_call_id(s for s in receiver.spans if s.attributes.get(CALL_ID) in set(outage.call_ids))
        assert all(len(v) == 1 for v in outage_spans.values())
        assert len(outage_spans) <= len(outage.call_ids) - (dropped - probes)  # probes may be dropped too


def test_collector_unavailable_then_slower_than_the_export_timeout() -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **SMALL_PIPELINE)
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            burst(proxy, 20, "warmup")
            baseline = burst(proxy, 100, "baseline")
            wait_exactly_once(receiver, baseline.call_ids)
            rss_before = rss_bytes(proxy)

            receiver.fail(503, headers={"Retry-After": "1"})
            unavailable = burst(proxy, 200, "unavailable")
            receiver.fail(None)
            receiver.set_delay(2.5)  # > OTEL_EXPORTER_OTLP_TIMEOUT (1 s): every export times out
            slow = burst(proxy, 200, "slow")
            rss_after = rss_bytes(proxy)
            assert_not_blocked(baseline, unavailable, "collector answering 503")
            assert_not_blocked(baseline, slow, "collector slower than the export timeout")
            assert rss_after - rss_before < RSS_GROWTH_BOUND, (rss_before, rss_after)
            assert any(r.status == 503 for r in receiver.requests), "the 503 phase was never exercised"

            receiver.heal()
            probes = wait_drained(proxy, receiver)
            recovered = burst(proxy, 30, "recovered")
            wait_exactly_once(receiver, recovered.call_ids)
            dropped = wait_dropped(receiver)
            log = proxy.log_text()

        print(
            f"\n503 then slow: p50 {baseline.p50 * 1000:.0f} -> {unavailable.p50 * 1000:.0f} (503) / "
            f"{slow.p50 * 1000:.0f} (slow) ms, "
            f"RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB, dropped {dropped} of 400, "
            f"{probes} probe(s) until the backlog drained"
        )
        assert 0 < dropped <= len(unavailable.call_ids) + len(slow.call_ids) + probes
        assert DROP_WARNING in log, log[-3000:]
        assert "agentportal-otel: internal error" not in log


def test_restart_after_an_outage_keeps_no_stale_state(tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **SMALL_PIPELINE)
        # Same overlay, same work directory, same receiver: a container restart.
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY, workdir=tmp_path, keep_files=True) as first:
            burst(first, 10, "first-warmup")
            receiver.down()
            outage = burst(first, 200, "first-outage")
            receiver.up()
            # SIGTERM: the shutdown flush sends what is still queued, and the final metrics.
            assert first.stop() in (0, -15)
            first_log = first.log_text()
        assert DROP_WARNING in first_log
        receiver.wait_for_metric(DROPPED, timeout=10, predicate=lambda p: (p.value or 0) > 0)
        first_spans = list(receiver.spans)
        assert first_spans, "nothing flushed at the first proxy's shutdown"
        (first_instance,) = {s.resource["service.instance.id"] for s in first_spans}
        first_dropped = dropped_total(receiver, first_instance)
        assert first_dropped > 0

        (tmp_path / "proxy.log").unlink()
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY, workdir=tmp_path) as second:
            calls = burst(second, 60, "second")
            second_spans = wait_exactly_once(receiver, calls.call_ids)
            time.sleep(1.5)  # at least one metric export of the second process
            second_log = second.log_text()

        assert not set(calls.call_ids) & set(outage.call_ids)
        (second_instance,) = {s.resource["service.instance.id"] for s in second_spans.values()}
        assert second_instance != first_instance
        # Nothing of the first process is re-sent by the second: every span is unique, and every
        # span the second process exported belongs to one of its own calls.
        grouped = spans_by_call_id(receiver.spans)
        assert {k: len(v) for k, v in grouped.items() if len(v) != 1} == {}
        from_second = {
            str(s.attributes[CALL_ID]) for s in receiver.spans if s.resource["service.instance.id"] == second_instance
        }
        assert from_second == set(calls.call_ids)
        # The drop counter and its warning start from zero in the new process.
        assert dropped_total(receiver, second_instance) == 0
        assert DROP_WARNING not in second_log
        assert dropped_total(receiver, first_instance) == first_dropped
