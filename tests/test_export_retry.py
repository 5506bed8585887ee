"""Export without loss through a real proxy: outages, 503 + Retry-After, 400, overflow, the spool.

Each test runs a real ``litellm`` proxy (:class:`~agentportal_otel.demo._proxy.ProxyProcess`)
exporting to the real OTLP/HTTP receiver of ``tests/otlp_receiver.py``, with a short retry cap
(``AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS``) so that recovery is quick:

1. the collector is down for 60 s while more than 1,000 requests flow: once it is back every span
   arrives exactly once, nothing is counted as dropped, and the proxy's memory stays bounded;
2. 503 with ``Retry-After``: the batch is retried no sooner than the header says, then arrives once;
3. 400: the spans are dropped, counted (``reason=rejected``) and the status logged once;
4. queue overflow while the collector is down, by span count and by bytes: every call either
   arrives once or is counted under its reason, nothing else;
5. SIGTERM while the collector is down: the unsent spans go to the spool, and a new proxy on the
   same directory, with the collector up, sends every one of them, once;
6. a corrupt and a truncated spool file left by a dead process are moved aside with one warning
   each, while the valid file next to them is sent.

The multi-worker proxy is covered by ``test_multiworker.py``.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from agentportal_otel._spool import encode_file
from agentportal_otel.demo._proxy import ProxyProcess
from e2e_support import (
    CALL_ID,
    CONFIG,
    DROPPED,
    MASTER_KEY,
    burst,
    dropped_by_reason,
    proxy_env,
    rss_bytes,
    spans_by_call_id,
    wait_exactly_once,
)
from otlp_receiver import OTLPReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

QUICK_RETRY = {
    "AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS": "2000",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
}
TRACES = "/v1/traces"
OUTAGE_S = 60
OUTAGE_ROUNDS = 12
OUTAGE_PER_ROUND = 92  # 1,104 requests over the minute
RSS_GROWTH_BOUND = 100 * 2**20  # the 1,104 queued spans need ~2 MB; generous for allocator noise


def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def latest_drops(receiver: OTLPReceiver, settle: float = 2.5) -> dict[str, int]:
    """Drop counts per reason after at least one more metric export (1 s interval)."""
    receiver.wait_for_metric(DROPPED, timeout=15)
    time.sleep(settle)
    return dropped_by_reason(receiver)


def test_collector_down_for_a_minute_loses_nothing() -> None:
    with (
        OTLPReceiver() as receiver,
        ProxyProcess(CONFIG, env=proxy_env(receiver, **QUICK_RETRY), master_key=MASTER_KEY) as proxy,
    ):
        warm = burst(proxy, 20, "warmup")
        wait_exactly_once(receiver, warm.call_ids)
        rss_before = peak = rss_bytes(proxy)

        receiver.down()
        started = time.monotonic()
        call_ids: list[str] = []
        for round_ in range(OUTAGE_ROUNDS):
            call_ids += burst(proxy, OUTAGE_PER_ROUND, f"outage-{round_}").call_ids
            peak = max(peak, rss_bytes(proxy))
            time.sleep(max(0.0, started + (round_ + 1) * OUTAGE_S / OUTAGE_ROUNDS - time.monotonic()))
        outage_s = time.monotonic() - started
        assert outage_s >= OUTAGE_S
        assert not any(s.attributes.get(CALL_ID) in set(call_ids) for s in receiver.spans)

        receiver.up()
        arrived = wait_exactly_once(receiver, call_ids, timeout=90)
        drops = latest_drops(receiver)
        log = proxy.log_text()

    lost = len(call_ids) - len(arrived)
    print(
        f"\ncollector down {outage_s:.0f} s: {len(call_ids)} requests, spans lost {lost} of {len(call_ids)}, "
        f"RSS {rss_before / 2**20:.0f} -> peak {peak / 2**20:.0f} MB, drops {drops}"
    )
    assert lost == 0
    assert sum(drops.values()) == 0, drops
    assert peak - rss_before < RSS_GROWTH_BOUND, (rss_before, peak)
    assert "stays queued and is retried" in log
    assert "works again after" in log
    assert "agentportal-otel: internal error" not in log


def test_503_with_retry_after_is_retried_no_sooner_than_asked() -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **{**QUICK_RETRY, "AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS": "5000"})
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            warm = burst(proxy, 10, "warmup")
            wait_exactly_once(receiver, warm.call_ids)

            receiver.fail(503, headers={"Retry-After": "2"}, path=TRACES)
            calls = burst(proxy, 40, "unavailable")

            def refused() -> list[float]:
                return [r.received_at for r in receiver.requests if r.path == TRACES and r.status == 503]

            wait_until(lambda: len(refused()) >= 3, 20, "three refused span exports")
            receiver.fail(None)
            wait_exactly_once(receiver, calls.call_ids)
            drops = latest_drops(receiver)

    times = refused()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Without Retry-After the first waits would be 0.5-1 s (backoff from 1 s with jitter).
    assert min(gaps) >= 1.8, gaps
    assert sum(drops.values()) == 0, drops


def test_400_drops_counts_and_logs_once() -> None:
    with (
        OTLPReceiver() as receiver,
        ProxyProcess(CONFIG, env=proxy_env(receiver, **QUICK_RETRY), master_key=MASTER_KEY) as proxy,
    ):
        warm = burst(proxy, 10, "warmup")
        wait_exactly_once(receiver, warm.call_ids)

        receiver.fail(400, path=TRACES)
        rejected = burst(proxy, 10, "rejected-1").call_ids
        wait_until(lambda: any(r.status == 400 for r in receiver.requests), 10, "a rejected export")
        rejected += burst(proxy, 10, "rejected-2").call_ids
        receiver.wait_for_metric(
            DROPPED,
            timeout=20,
            predicate=lambda p: p.attributes.get("reason") == "rejected" and (p.value or 0) >= 20,
        )
        receiver.fail(None)
        accepted = burst(proxy, 10, "accepted")
        wait_exactly_once(receiver, accepted.call_ids)
        drops = latest_drops(receiver)
        log = proxy.log_text()

    assert drops == {"queue_full": 0, "rejected": 20}
    assert not any(s.attributes.get(CALL_ID) in set(rejected) for s in receiver.spans), "a rejected batch was resent"
    assert log.count("was rejected with HTTP 400") == 1, log[-3000:]
    assert "Hint: the receiver could not decode the request" in log


@pytest.mark.parametrize(
    ("reason", "bound"),
    [
        ("queue_full", {"OTEL_BSP_MAX_QUEUE_SIZE": "64"}),
        ("queue_bytes", {"AGENTPORTAL_OTEL_MAX_QUEUE_BYTES": "40000"}),
    ],
)
def test_queue_overflow_is_counted_with_its_reason(reason: str, bound: dict[str, str]) -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **QUICK_RETRY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE="16", **bound)
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            warm = burst(proxy, 20, "warmup")
            wait_exactly_once(receiver, warm.call_ids)

            receiver.down()
            calls = burst(proxy, 200, "overflow")
            receiver.up()
            sent = set(calls.call_ids)
            drops: dict[str, int] = {}

            def settled() -> bool:
                # Every call either arrived or was counted: the backlog has drained.
                nonlocal drops
                drops = dropped_by_reason(receiver) if receiver.metric_points(DROPPED) else {}
                arrived = {s.attributes.get(CALL_ID) for s in receiver.spans} & sent
                return len(arrived) + sum(drops.values()) == len(sent)

            wait_until(settled, 40, "the backlog to drain and the drop counter to catch up")
            time.sleep(1.5)
            grouped = spans_by_call_id(s for s in receiver.spans if s.attributes.get(CALL_ID) in sent)
            log = proxy.log_text()

    assert {k: len(v) for k, v in grouped.items() if len(v) != 1} == {}
    assert drops[reason] > 0
    assert sum(drops.values()) == drops[reason], drops
    assert len(grouped) + drops[reason] == len(sent)
    assert f"reason={reason}" in log


def _valid_request(call_id: str) -> bytes:
    span = trace_pb2.Span(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        name="chat spooled",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_500_000_000,
        attributes=[common_pb2.KeyValue(key=CALL_ID, value=common_pb2.AnyValue(string_value=call_id))],
    )
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span])])]
    )
    return request.SerializeToString()


def test_sigterm_while_the_collector_is_down_spools_and_the_next_proxy_sends_it(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with OTLPReceiver() as receiver:
        env = proxy_env(
            receiver,
            **QUICK_RETRY,
            AGENTPORTAL_OTEL_SPOOL_DIR=str(spool),
            AGENTPORTAL_OTEL_SHUTDOWN_TIMEOUT_MS="4000",
        )
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as first:
            warm = burst(first, 10, "warmup")
            wait_exactly_once(receiver, warm.call_ids)
            receiver.down()
            calls = burst(first, 300, "down-at-sigterm")
            assert first.stop() in (0, -15)
            first_log = first.log_text()
        first_instance = receiver.spans[0].resource["service.instance.id"]
        spooled = sorted(spool.glob("*/*.otlp"))
        assert spooled, first_log[-3000:]
        assert {p.name.split(".")[1] for p in spooled} == {"traces", "metrics"}
        assert "were written to the spool" in first_log

        receiver.up()
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as second:
            arrived = wait_exactly_once(receiver, calls.call_ids, timeout=30)
            later = burst(second, 10, "second")
            wait_exactly_once(receiver, later.call_ids)
            wait_until(lambda: not list(spool.glob("*/*.otlp")), 10, "the spool to empty")
            second_log = second.log_text()

    assert {s.resource["service.instance.id"] for s in arrived.values()} == {first_instance}
    # The first proxy's final metrics came out of the spool too.
    assert any(p.resource.get("service.instance.id") == first_instance for p in receiver.metric_points(DROPPED))
    assert "sent" in second_log and "spooled requests" in second_log
    assert not list(spool.glob("*/*.tmp")) and not (spool / "corrupt").exists()
    grouped = spans_by_call_id(receiver.spans)
    assert {k: len(v) for k, v in grouped.items() if len(v) != 1} == {}


def test_a_corrupt_spool_file_is_moved_aside(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    dead = spool / "deadhost-1-0000dead"  # a process that died: its lock file is not held
    dead.mkdir(parents=True)
    (dead / ".lock").touch()
    good = encode_file(_valid_request("spooled-valid"))
    (dead / "00000000000000000001-000001.traces.otlp").write_bytes(good)
    (dead / "00000000000000000002-000002.traces.otlp").write_bytes(good[:-7])  # truncated
    (dead / "00000000000000000003-000003.traces.otlp").write_bytes(b"not a spool file at all")
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, **QUICK_RETRY, AGENTPORTAL_OTEL_SPOOL_DIR=str(spool))
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            receiver.wait_for_spans(1, timeout=20, predicate=lambda s: s.attributes.get(CALL_ID) == "spooled-valid")
            live = burst(proxy, 5, "live")
            wait_exactly_once(receiver, live.call_ids)
            wait_until(lambda: not dead.exists(), 10, "the emptied directory to be removed")
            log = proxy.log_text()

    aside = sorted(p.name for p in (spool / "corrupt").iterdir())
    assert aside == [
        "deadhost-1-0000dead-00000000000000000002-000002.traces.otlp",
        "deadhost-1-0000dead-00000000000000000003-000003.traces.otlp",
    ]
    assert log.count("is unusable") == 2, log[-3000:]
    assert "truncated" in log and "bad header" in log
    assert [s.attributes.get(CALL_ID) for s in receiver.spans].count("spooled-valid") == 1
