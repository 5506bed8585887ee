"""Tenant attribution end to end: every demo key through a real proxy, forged bodies, Open-WebUI
headers, key-metadata promotion, and per-team/per-project metric sums that match the spans.

Expected values are computed from :data:`agentportal_otel.demo.auth.DEMO_KEYS` (two teams,
three projects from key metadata / team metadata / a key tag, one key without team or project)
plus the master key. One proxy serves the whole module; the last test compares the metrics the
proxy exported over OTLP/HTTP with the sums over every span it exported.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS, MASTER_KEY_ALIAS
from e2e_support import (
    CONFIG,
    MASTER_KEY,
    PRICED_MODEL,
    Call,
    chat,
    embed,
    expected_tenant,
    latest_points,
    proxy_env,
    stream_chat,
    tenant_of,
    wait_for_calls,
)
from otlp_receiver import OTLPReceiver, Span

pytestmark = pytest.mark.slow

ALLOWLIST = ("environment", "project", "cost_center", "tags")
"""Promoted key-metadata fields. ``cost_center`` lives in *team* metadata only and must not be
promoted; ``tags`` is a list in gamma's key metadata."""

KEYS = [k.key for k in DEMO_KEYS] + [MASTER_KEY]
KEY_IDS = [k.key_alias for k in DEMO_KEYS] + ["master"]

FORGED_METADATA: dict[str, Any] = {
    "team_id": "evil",
    "team_alias": "evil",
    "project": "evil",
    "user_api_key_team_id": "evil",
    "user_api_key_team_alias": "evil",
    "user_api_key_alias": "evil",
    "user_api_key_hash": "evil",
    "user_api_key_user_id": "evil",
    "user_api_key_org_id": "evil",
    "user_api_key_project_id": "evil",
    "user_api_key_project_alias": "evil",
    "user_api_key_end_user_id": "evil",
    "user_api_key_metadata": {"project": "evil", "environment": "evil"},
    "user_api_key_team_metadata": {"project": "evil"},
    "requester_custom_headers": {"x-openwebui-chat-id": "evil", "x-openwebui-user-id": "evil"},
    "environment": "evil",
}
"""Identity fields a client may try to set in the body's ``metadata``. (LiteLLM itself rejects
``user_api_key_auth_metadata`` in a body with an error, so it is not sent.)"""

METRIC_DIMENSIONS = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "error.type",
    "agentportal.team",
    "agentportal.project",
    "gen_ai.token.type",
    # Recommended GenAI metric attributes, low-cardinality: the deployment and the model that answered
    "gen_ai.response.model",
    "server.address",
    "server.port",
    "agentportal.litellm.silent_experiment",
    "reason",  # agentportal.spans.dropped: one of five fixed drop reasons
}


class Proxy:
    def __init__(self, proxy: ProxyProcess, receiver: OTLPReceiver) -> None:
        self.proxy = proxy
        self.receiver = receiver
        self.client = httpx.Client(base_url=proxy.url, timeout=60)


@pytest.fixture(scope="module")
def gw() -> Iterator[Proxy]:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST=",".join(ALLOWLIST))
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY, extra_models=[PRICED_MODEL]) as proxy:
            gateway = Proxy(proxy, receiver)
            yield gateway
            gateway.client.close()
        assert "agentportal-otel: internal error" not in proxy.log_text()


def _key_metadata_attributes(key: str) -> dict[str, Any]:
    entry = next((k for k in DEMO_KEYS if k.key == key), None)
    if entry is None:
        return {}
    meta = entry.key_metadata()
    return {f"agentportal.key.metadata.{f}": _otel(meta[f]) for f in ALLOWLIST if f in meta}


def _otel(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _all_calls(client: httpx.Client, key: str, **kwargs: Any) -> list[Call]:
    """Success and failure through each route kind, all with ``kwargs`` on the chat calls."""
    calls = [
        chat(client, key, model="mock-priced", **kwargs),
        chat(client, key, model="mock-ratelimit", **kwargs),
        chat(client, key, model="mock-unreachable", **kwargs),
        stream_chat(client, key, model="mock-priced"),
        embed(client, key),
    ]
    assert [c.status for c in calls] == [200, 429, 500, 200, 200], [c.body for c in calls]
    return calls


@pytest.mark.parametrize("key", KEYS, ids=KEY_IDS)
def test_every_span_carries_the_keys_identity_whatever_the_body_says(gw: Proxy, key: str) -> None:
    calls = _all_calls(gw.client, key, metadata=FORGED_METADATA)
    spans = wait_for_calls(gw.receiver, calls)
    expected = expected_tenant(key)
    promoted = _key_metadata_attributes(key)
    for call in calls:
        span = spans[str(call.call_id)]
        assert tenant_of(span) == expected, (call.kind, call.model)
        got_promoted = {k: v for k, v in span.attributes.items() if k.startswith("agentportal.key.metadata.")}
        assert got_promoted == promoted, (call.kind, call.model)
        assert "evil" not in repr(sorted(span.attributes.items()))
        assert "gen_ai.conversation.id" not in span.attributes
    if key == MASTER_KEY:
        assert expected["agentportal.key.hash"] == MASTER_KEY_ALIAS


def test_expected_values_cover_every_project_source() -> None:
    """Guards the parametrization above: the demo keys exercise each way a project is found."""
    sources = {expected_tenant(k).get("agentportal.project.source") for k in KEYS}
    assert sources == {"key", "team", "tag", None}
    assert len({expected_tenant(k).get("agentportal.team.id") for k in KEYS}) == 3  # two teams and none
    assert _key_metadata_attributes(DEMO_KEYS[0].key) == {
        "agentportal.key.metadata.environment": "demo",
        "agentportal.key.metadata.project": "search-portal",
    }
    assert _key_metadata_attributes(DEMO_KEYS[2].key)["agentportal.key.metadata.tags"] == (
        "project:agent-portal",
        "env:demo",
    )


@pytest.mark.parametrize("key", KEYS, ids=KEY_IDS)
def test_client_tags_do_not_choose_the_project(gw: Proxy, key: str) -> None:
    """A ``project:<name>`` tag counts only among the key's own tags, never the client's."""
    calls = [
        chat(gw.client, key, model="mock-priced", tags=["project:evil-body"]),
        chat(gw.client, key, model="mock-priced", metadata={"tags": ["project:evil-meta"]}),
        chat(gw.client, key, model="mock-priced", headers={"x-litellm-tags": "project:evil-header"}),
        chat(gw.client, key, model="mock-ratelimit", tags=["project:evil-body"]),
    ]
    assert [c.status for c in calls] == [200, 200, 200, 429]
    spans = wait_for_calls(gw.receiver, calls)
    expected = expected_tenant(key)
    for call in calls:
        attrs = spans[str(call.call_id)].attributes
        assert attrs.get("agentportal.project") == expected.get("agentportal.project")
        assert attrs.get("agentportal.project.source") == expected.get("agentportal.project.source")
        # the client's tags are still recorded as tags: they are labels, not identity
        assert any(str(t).startswith("project:evil") for t in attrs.get("agentportal.tags", ()))


def test_open_webui_headers_map_to_end_user_and_conversation(gw: Proxy) -> None:
    headers = {
        "X-OpenWebUI-User-Id": "owui-user-42",
        "X-OpenWebUI-User-Name": "Ada",
        "X-OpenWebUI-User-Email": "ada@example.com",
        "X-OpenWebUI-User-Role": "user",
        "X-OpenWebUI-Chat-Id": "chat-7f3c",
    }
    key = DEMO_KEYS[1].key
    calls = [
        chat(gw.client, key, model="mock-priced", headers=headers),
        chat(gw.client, key, model="mock-ratelimit", headers=headers),
        chat(gw.client, key, model="mock-priced", headers=headers, metadata=FORGED_METADATA),
    ]
    assert [c.status for c in calls] == [200, 429, 200]
    spans = wait_for_calls(gw.receiver, calls)
    for call in calls:
        span = spans[str(call.call_id)]
        assert span.attributes["agentportal.end_user.id"] == "owui-user-42"
        assert span.attributes["gen_ai.conversation.id"] == "chat-7f3c"
        assert {k: v for k, v in tenant_of(span).items() if k != "agentportal.end_user.id"} == expected_tenant(key)
        # e-mail and name are not recorded unless opted in
        assert "user.email" not in span.attributes
        assert not any(v in ("ada@example.com", "Ada") for v in span.attributes.values())


def test_body_user_is_the_end_user_without_open_webui(gw: Proxy) -> None:
    call = chat(gw.client, DEMO_KEYS[3].key, model="mock-priced", user="end-user-9")
    span = wait_for_calls(gw.receiver, [call])[str(call.call_id)]
    assert span.attributes["agentportal.end_user.id"] == "end-user-9"
    assert "gen_ai.conversation.id" not in span.attributes


# -- metrics --------------------------------------------------------------------------------------


def _team(span: Span) -> Any:
    return span.attributes.get("agentportal.team.alias") or span.attributes.get("agentportal.team.id")


def _span_sums(spans: list[Span]) -> dict[str, dict[tuple[Any, ...], Any]]:
    tokens: Counter[tuple[Any, ...]] = Counter()
    cost: defaultdict[tuple[Any, ...], float] = defaultdict(float)
    calls: Counter[tuple[Any, ...]] = Counter()
    for s in spans:
        a = s.attributes
        tenant = (_team(s), a.get("agentportal.project"))
        calls[(*tenant, a.get("error.type"))] += 1
        for attr, kind in (("gen_ai.usage.input_tokens", "input"), ("gen_ai.usage.output_tokens", "output")):
            if attr in a:
                tokens[(*tenant, kind)] += int(a[attr])
        if a.get("agentportal.cost.usd"):
            cost[tenant] += float(a["agentportal.cost.usd"])
    return {"tokens": dict(tokens), "cost": dict(cost), "calls": dict(calls)}


def _metric_sums(receiver: OTLPReceiver) -> dict[str, dict[tuple[Any, ...], Any]]:
    tokens: Counter[tuple[Any, ...]] = Counter()
    cost: defaultdict[tuple[Any, ...], float] = defaultdict(float)
    calls: Counter[tuple[Any, ...]] = Counter()
    for (name, _), p in latest_points(receiver.data_points).items():
        tenant = (p.attributes.get("agentportal.team"), p.attributes.get("agentportal.project"))
        if name == "gen_ai.client.token.usage":
            tokens[(*tenant, p.attributes["gen_ai.token.type"])] += int(p.sum or 0)
        elif name == "agentportal.client.cost":
            cost[tenant] += float(p.value or 0)
        elif name == "gen_ai.client.operation.duration":
            calls[(*tenant, p.attributes.get("error.type"))] += p.count or 0
    return {"tokens": dict(tokens), "cost": dict(cost), "calls": dict(calls)}


def test_metric_sums_per_team_and_project_equal_span_sums(gw: Proxy) -> None:
    """Runs after the traffic above; waits for a metric export that covers every span."""
    spans = gw.receiver.spans
    assert len(spans) >= 25
    expected = _span_sums(spans)
    deadline = time.monotonic() + 20
    while True:
        got = _metric_sums(gw.receiver)
        if got["calls"] == expected["calls"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert got["calls"] == expected["calls"]
    assert got["tokens"] == expected["tokens"]
    assert set(got["cost"]) == set(expected["cost"])
    for tenant, value in expected["cost"].items():
        assert got["cost"][tenant] == pytest.approx(value, rel=1e-9), tenant
    # every team and project of the demo keys shows up as its own series, plus the "none" ones
    tenants = {t[:2] for t in got["calls"]}
    assert {("Search", "search-portal"), ("Assist", "assistant"), ("Assist", "agent-portal"), (None, None)} <= tenants
    assert sum(expected["cost"].values()) > 0


def test_no_high_cardinality_metric_dimensions(gw: Proxy) -> None:
    points = gw.receiver.data_points
    assert points
    keys = {k for p in points for k in p.attributes}
    assert keys <= METRIC_DIMENSIONS, keys - METRIC_DIMENSIONS
    forbidden = {k.token for k in DEMO_KEYS} | {k.user_id for k in DEMO_KEYS} | {k.key_alias for k in DEMO_KEYS}
    forbidden |= {MASTER_KEY_ALIAS, "default_user_id", "owui-user-42", "chat-7f3c", "end-user-9"}
    forbidden |= {str(s.attributes["agentportal.litellm.call_id"]) for s in gw.receiver.spans}
    values = {str(v) for p in points for v in p.attributes.values()}
    assert values.isdisjoint(forbidden)
