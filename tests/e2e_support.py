"""Helpers shared by the end-to-end tests that run a real LiteLLM proxy (``@pytest.mark.slow``).

A test starts an :class:`~otlp_receiver.OTLPReceiver`, points a
:class:`~agentportal_otel.demo._proxy.ProxyProcess` at it with :func:`proxy_env`, sends requests
with :func:`chat` and friends (each returns the HTTP status and LiteLLM's call id from the
``x-litellm-call-id`` response header) and then matches the spans that arrived to those calls
with :func:`spans_by_call_id`. Cumulative metric points are reduced to the latest value of
each series with :func:`latest_points`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS, MASTER_KEY_ALIAS, DemoKey
from otlp_receiver import DataPoint, OTLPReceiver, Span

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "litellm" / "config.yaml"
MASTER_KEY = "sk-agentportal-e2e-master-0000"
"""Master key of the test proxies (the ``ProxyProcess`` default is avoided so a scan cannot
pass because of a value another module happened to use)."""

CALL_ID = "agentportal.litellm.call_id"
DROPPED = "agentportal.spans.dropped"
KEYS = (DEMO_KEYS[0].key, DEMO_KEYS[1].key)  # two teams, two projects
CONCURRENCY = 8
PAGE = os.sysconf("SC_PAGE_SIZE")
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}

PRICED_MODEL: dict[str, Any] = {
    # A mock with a price in LiteLLM's local cost map, so cost sums are not all zero.
    "model_name": "mock-priced",
    "litellm_params": {
        "model": "openai/gpt-4o-mini",
        "api_key": "mock-key-not-a-secret",
        "mock_response": "Priced hello.",
    },
}

PROJECT_SOURCES = {"key_metadata": "key", "team_metadata": "team", "key_tag": "tag"}
"""``DemoKey.project_source`` -> the ``agentportal.project.source`` value the plugin writes."""


def proxy_env(receiver: OTLPReceiver, **extra: str | None) -> dict[str, str | None]:
    """Child environment exporting to ``receiver`` with fast batch/metric intervals."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        # The test runner's own OTEL_* settings must not leak into the proxy.
        "OTEL_SERVICE_NAME": None,
        "OTEL_RESOURCE_ATTRIBUTES": None,
        "OTEL_TRACES_EXPORTER": None,
        "OTEL_METRICS_EXPORTER": None,
        "OTEL_SDK_DISABLED": None,
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": None,
        "AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST": None,
        # Inherited from pytest, it would make the plugin's guard re-raise inside the proxy
        # (where LiteLLM swallows it silently) instead of logging as in production.
        "PYTEST_CURRENT_TEST": None,
        **FAST_EXPORT,
        **extra,
    }


@dataclass(frozen=True)
class Call:
    """One request sent through the proxy."""

    kind: str
    model: str
    status: int
    call_id: str | None
    body: Any


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def _call(
    client: httpx.Client, kind: str, model: str, path: str, key: str, payload: dict[str, Any], **headers: str
) -> Call:
    response = client.post(path, headers=auth(key, **headers), json={"model": model, **payload})
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return Call(kind, model, response.status_code, response.headers.get("x-litellm-call-id"), body)


def chat(client: httpx.Client, key: str, model: str = "mock-chat", prompt: str = "Say hello.", **extra: Any) -> Call:
    headers = extra.pop("headers", {})
    payload = {"messages": [{"role": "user", "content": prompt}], **extra}
    return _call(client, "chat", model, "/v1/chat/completions", key, payload, **headers)


def stream_chat(client: httpx.Client, key: str, model: str = "mock-chat", prompt: str = "Say hello.") -> Call:
    payload = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    with client.stream("POST", "/v1/chat/completions", headers=auth(key), json=payload) as response:
        text = response.read().decode()
        return Call("stream", model, response.status_code, response.headers.get("x-litellm-call-id"), text)


def embed(client: httpx.Client, key: str, model: str = "mock-embed", text: str = "embed me") -> Call:
    return _call(client, "embedding", model, "/v1/embeddings", key, {"input": text})


def complete(client: httpx.Client, key: str, model: str = "mock-chat", prompt: str = "Once upon") -> Call:
    return _call(client, "completion", model, "/v1/completions", key, {"prompt": prompt})


def spans_by_call_id(spans: Iterable[Span]) -> dict[str, list[Span]]:
    result: dict[str, list[Span]] = {}
    for span in spans:
        result.setdefault(str(span.attributes.get(CALL_ID)), []).append(span)
    return result


def wait_for_calls(
    receiver: OTLPReceiver, calls: Iterable[Call], timeout: float = 20.0, settle: float = 1.0
) -> dict[str, Span]:
    """Wait until every call's span arrived, wait ``settle`` more seconds, then return them by call id.

    Fails if a call has no call id, or if any call id got more than one span (also counting
    spans that arrived during the settle time).
    """
    ids = [c.call_id for c in calls]
    assert all(ids), f"calls without x-litellm-call-id: {calls}"
    wanted = set(ids)
    assert len(wanted) == len(ids), "LiteLLM reused a call id"
    receiver.wait_for_spans(len(wanted), timeout=timeout, predicate=lambda s: s.attributes.get(CALL_ID) in wanted)
    time.sleep(settle)
    grouped = spans_by_call_id(s for s in receiver.spans if s.attributes.get(CALL_ID) in wanted)
    duplicates = {k: len(v) for k, v in grouped.items() if len(v) != 1}
    assert duplicates == {}, f"call ids with more than one span: {duplicates}"
    return {k: v[0] for k, v in grouped.items()}


def latest_points(points: Iterable[DataPoint]) -> dict[tuple[str, frozenset[tuple[str, Any]]], DataPoint]:
    """The most recent point of each cumulative series, keyed by (metric name, attributes)."""
    latest: dict[tuple[str, frozenset[tuple[str, Any]]], DataPoint] = {}
    for point in points:
        key = (point.name, frozenset(point.attributes.items()))
        if key not in latest or point.time_unix_nano >= latest[key].time_unix_nano:
            latest[key] = point
    return latest


def totals(
    points: Mapping[tuple[str, frozenset[tuple[str, Any]]], DataPoint], name: str, *dims: str
) -> dict[tuple[Any, ...], float]:
    """Per ``dims`` values: the histogram sum (or counter value) of metric ``name``."""
    result: defaultdict[tuple[Any, ...], float] = defaultdict(float)
    for (metric, _), point in points.items():
        if metric != name:
            continue
        value = point.sum if point.type == "histogram" else point.value
        result[tuple(point.attributes.get(d) for d in dims)] += value or 0
    return dict(result)


def expected_tenant(key: str) -> dict[str, Any]:
    """The tenant attributes a span of a request made with ``key`` must carry (from DEMO_KEYS)."""
    entry = next((k for k in DEMO_KEYS if k.key == key), None)
    if entry is None:  # the master key, as LiteLLM reports it
        return {"agentportal.key.hash": MASTER_KEY_ALIAS, "agentportal.user.id": "default_user_id"}
    return demo_tenant(entry)


def demo_tenant(entry: DemoKey) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "agentportal.key.hash": entry.token,
        "agentportal.key.alias": entry.key_alias,
        "agentportal.user.id": entry.user_id,
        "agentportal.org.id": entry.org_id,
    }
    if entry.team_id is not None:
        expected["agentportal.team.id"] = entry.team_id
    if entry.team_alias is not None:
        expected["agentportal.team.alias"] = entry.team_alias
    if entry.project is not None and entry.project_source is not None:
        expected["agentportal.project"] = entry.project
        expected["agentportal.project.source"] = PROJECT_SOURCES[entry.project_source]
    if entry.tags:
        expected["agentportal.tags"] = tuple(entry.tags)
    return expected


def tenant_of(span: Span) -> dict[str, Any]:
    """The span's ``agentportal.*`` identity attributes (not call/cost/key-metadata ones)."""
    identity = (
        "agentportal.key.",
        "agentportal.team.",
        "agentportal.user.",
        "agentportal.org.",
        "agentportal.project",
        "agentportal.tags",
        "agentportal.end_user.",
    )
    return {
        k: v
        for k, v in span.attributes.items()
        if k.startswith(identity) and not k.startswith("agentportal.key.metadata.")
    }


# -- load and fault helpers (test_faults.py, test_export_retry.py, test_multiworker.py) --------


@dataclass(frozen=True)
class Burst:
    statuses: list[int]
    call_ids: list[str]
    latencies: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


async def _burst_async(url: str, count: int, tag: str) -> Burst:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    statuses: list[int] = []
    call_ids: list[str] = []
    latencies: list[float] = []
    numbers = iter(range(count))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for i in numbers:
                start = time.perf_counter()
                response = await client.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {KEYS[i % 2]}"},
                    json={"model": "mock-chat", "messages": [{"role": "user", "content": f"{tag} {i}"}]},
                )
                latencies.append(time.perf_counter() - start)
                statuses.append(response.status_code)
                if call_id := response.headers.get("x-litellm-call-id"):
                    call_ids.append(call_id)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return Burst(statuses, call_ids, latencies)


def burst(proxy: ProxyProcess, count: int, tag: str) -> Burst:
    result = asyncio.run(_burst_async(proxy.url, count, tag))
    assert result.statuses == [200] * count, f"{tag}: {sorted(set(result.statuses))}\n{proxy.log_tail()}"
    assert len(set(result.call_ids)) == count, f"{tag}: missing or repeated call ids"
    return result


def rss_bytes(proxy: ProxyProcess) -> int:
    """Resident memory of every process in the proxy's process group."""
    pgid = proxy.pid
    assert pgid is not None
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[21]) * PAGE
    return total


def wait_exactly_once(receiver: OTLPReceiver, call_ids: Iterable[str], timeout: float = 30.0) -> dict[str, Span]:
    wanted = set(call_ids)
    receiver.wait_for_spans(len(wanted), timeout=timeout, predicate=lambda s: s.attributes.get(CALL_ID) in wanted)
    time.sleep(1.0)  # anything sent twice would arrive within this second
    grouped = spans_by_call_id(s for s in receiver.spans if s.attributes.get(CALL_ID) in wanted)
    assert {k: len(v) for k, v in grouped.items() if len(v) != 1} == {}
    assert set(grouped) == wanted
    return {k: v[0] for k, v in grouped.items()}


def dropped_by_reason(receiver: OTLPReceiver, instance: str | None = None) -> dict[str, int]:
    """The latest ``agentportal.spans.dropped`` value per ``reason`` (of one process, if given)."""
    points = [
        p
        for p in receiver.metric_points(DROPPED)
        if instance is None or p.resource.get("service.instance.id") == instance
    ]
    assert points, f"no {DROPPED} points"
    latest: dict[tuple[object, str], DataPoint] = {}
    for point in points:
        key = (point.resource.get("service.instance.id"), str(point.attributes.get("reason")))
        if key not in latest or point.time_unix_nano >= latest[key].time_unix_nano:
            latest[key] = point
    counts: dict[str, int] = {}
    for (_, reason), point in latest.items():
        counts[reason] = counts.get(reason, 0) + int(point.value or 0)
    return counts


def dropped_total(receiver: OTLPReceiver, instance: str | None = None) -> int:
    """The latest ``agentportal.spans.dropped`` value, all reasons (of one process, if given)."""
    return sum(dropped_by_reason(receiver, instance).values())
