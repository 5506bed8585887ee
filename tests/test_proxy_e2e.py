"""End to end through a real LiteLLM proxy process: exactly one well-formed span per LLM call.

One proxy (``litellm/config.yaml`` with the demo ``custom_auth``) and one OTLP/HTTP receiver are
shared by the module; every request made through :class:`Traffic` is remembered so the last
test can check that the receiver got nothing but those calls' spans. The restart test runs
its own pair of proxies.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentportal_otel import __version__
from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS
from e2e_support import (
    CALL_ID,
    CONFIG,
    MASTER_KEY,
    Call,
    chat,
    complete,
    embed,
    expected_tenant,
    proxy_env,
    stream_chat,
    wait_for_calls,
)
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

KEY = DEMO_KEYS[0].key  # alpha-search: team "Search", project from the key's metadata
assert DEMO_KEYS[0].project_source == "key_metadata"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
METRICS = {
    "gen_ai.client.operation.duration",
    "gen_ai.client.token.usage",
    "gen_ai.client.operation.time_to_first_chunk",
    "agentportal.client.cost",
}


class Traffic:
    """The module's proxy, receiver and HTTP client; remembers every LLM call it made."""

    def __init__(self, proxy: ProxyProcess, receiver: OTLPReceiver) -> None:
        self.proxy = proxy
        self.receiver = receiver
        self.client = httpx.Client(base_url=proxy.url, timeout=60)
        self.calls: list[Call] = []

    def send(self, func: Callable[..., Call], *args: Any, **kwargs: Any) -> Call:
        call = func(self.client, *args, **kwargs)
        self.calls.append(call)
        return call


@pytest.fixture(scope="module")
def traffic() -> Iterator[Traffic]:
    with OTLPReceiver() as receiver:
        with ProxyProcess(CONFIG, env=proxy_env(receiver), master_key=MASTER_KEY) as proxy:
            t = Traffic(proxy, receiver)
            yield t
            t.client.close()
        assert "agentportal-otel: internal error" not in proxy.log_text()


# -- one request of each kind -----------------------------------------------------------------

_COMMON = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    CALL_ID,
    "agentportal.litellm.call_type",
    "agentportal.litellm.model_id",
    "agentportal.cost.usd",
    # LiteLLM reports no api_base for mocked streams and 429s: the plugin names the endpoint
    # the deployment uses (LiteLLM's default for openai/ models without api_base).
    "server.address",
    "server.port",
}
_ANSWERED = {"gen_ai.response.model"}  # only when a response came back
_GENERATED = {
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
}
_STREAMED = {"gen_ai.request.stream", "gen_ai.response.time_to_first_chunk", "gen_ai.usage.reasoning.output_tokens"}
_FAILED = {"error.type", "gen_ai.response.finish_reasons"}  # finish reason "error"
_SERVERS = {"mock-unreachable": ("127.0.0.1", 9)}
"""The deployments with an ``api_base``; every other mock is an ``openai/`` model without one."""

# kind, request, HTTP status, span name, call type, further attribute names, error.type
CASES: list[tuple[str, Callable[[httpx.Client], Call], int, str, str, set[str], str | None]] = [
    ("chat", lambda c: chat(c, KEY), 200, "chat mock-chat", "acompletion", _ANSWERED | _GENERATED, None),
    (
        "stream",
        lambda c: stream_chat(c, KEY),
        200,
        "chat mock-chat",
        "acompletion",
        _ANSWERED | _GENERATED | _STREAMED,
        None,
    ),
    (
        "embedding",
        lambda c: embed(c, KEY),
        200,
        "embeddings mock-embed",
        "aembedding",
        _ANSWERED | {"gen_ai.usage.input_tokens"},
        None,
    ),
    (
        "completion",
        lambda c: complete(c, KEY),
        200,
        "text_completion mock-chat",
        "atext_completion",
        # LiteLLM's raw provider for /v1/completions is "text-completion-openai"
        _ANSWERED | _GENERATED | {"agentportal.litellm.provider"},
        None,
    ),
    (
        "ratelimit",
        lambda c: chat(c, KEY, model="mock-ratelimit"),
        429,
        "chat mock-ratelimit",
        "acompletion",
        _FAILED,
        "RateLimitError",
    ),
    (
        # LiteLLM maps the OpenAI client's connection error to InternalServerError (HTTP 500).
        "unreachable",
        lambda c: chat(c, KEY, model="mock-unreachable"),
        500,
        "chat mock-unreachable",
        "acompletion",
        _FAILED,
        "InternalServerError",
    ),
]


@pytest.mark.parametrize(
    ("kind", "request_fn", "status", "name", "call_type", "extra", "error_type"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_one_span_per_request_with_exact_attributes(
    traffic: Traffic,
    kind: str,
    request_fn: Callable[[httpx.Client], Call],
    status: int,
    name: str,
    call_type: str,
    extra: set[str],
    error_type: str | None,
) -> None:
    call = traffic.send(lambda c: request_fn(c))
    assert call.status == status, call.body
    span = wait_for_calls(traffic.receiver, [call])[call.call_id]  # type: ignore[index]

    assert span.name == name
    assert span.kind == "SPAN_KIND_CLIENT"
    assert span.scope_name == "agentportal_otel"
    assert span.scope_version == __version__
    assert span.resource["service.name"] == "litellm-proxy"
    assert span.parent_span_id == ""  # no traceparent: a new root
    assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano
    # the span covers the call, not more than the wall-clock time of the test
    assert span.end_time_unix_nano <= time.time_ns()

    attrs = dict(span.attributes)
    tenant = expected_tenant(KEY)
    for attr, value in tenant.items():
        assert attrs.pop(attr) == value, attr
    # LiteLLM 1.110+ says whether the cost is final; older releases do not
    finalized = attrs.pop("agentportal.cost.finalized", None)
    assert finalized is None or type(finalized) is bool
    assert set(attrs) == _COMMON | extra, sorted(set(attrs) ^ (_COMMON | extra))
    operation, model = name.split(" ", 1)
    assert (attrs["server.address"], attrs["server.port"]) == _SERVERS.get(model, ("api.openai.com", 443))

    assert attrs["gen_ai.operation.name"] == operation
    assert attrs["gen_ai.request.model"] == model
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs[CALL_ID] == call.call_id
    assert attrs["agentportal.litellm.call_type"] == call_type
    assert HEX64.match(str(attrs["agentportal.litellm.model_id"]))
    assert type(attrs["server.port"]) is int
    assert type(attrs["agentportal.cost.usd"]) is float and attrs["agentportal.cost.usd"] >= 0

    if error_type is None:
        assert span.status_code == "STATUS_CODE_UNSET"
        assert span.events == ()
        assert type(attrs["gen_ai.usage.input_tokens"]) is int and attrs["gen_ai.usage.input_tokens"] > 0
        assert "error.type" not in attrs
        assert attrs["gen_ai.response.model"] == model
        if kind == "completion":
            assert attrs["agentportal.litellm.provider"] == "text-completion-openai"
        if "gen_ai.usage.output_tokens" in extra:
            assert type(attrs["gen_ai.usage.output_tokens"]) is int and attrs["gen_ai.usage.output_tokens"] > 0
            assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        if kind in ("chat", "completion"):
            # what the client got back, token for token
            usage = call.body["usage"]
            assert attrs["gen_ai.response.id"] == call.body["id"]
            assert attrs["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
            assert attrs["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
        if kind == "stream":
            assert attrs["gen_ai.request.stream"] is True
            ttfc = attrs["gen_ai.response.time_to_first_chunk"]
            assert type(ttfc) is float and 0 <= ttfc <= (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
            assert attrs["gen_ai.response.id"] in call.body
    else:
        assert span.status_code == "STATUS_CODE_ERROR"
        assert attrs["error.type"] == error_type
        assert attrs["gen_ai.response.finish_reasons"] == ("error",)
        assert span.status_message
        assert not any(k.startswith("gen_ai.usage.") for k in attrs)
        assert [(e.name, e.attributes["exception.type"]) for e in span.events] == [("exception", error_type)]


def test_mixed_burst_gives_exactly_one_span_per_request(traffic: Traffic) -> None:
    before = len(traffic.receiver.spans)
    senders: list[Callable[[httpx.Client], Call]] = [c[1] for c in CASES] * 3
    calls = [traffic.send(lambda c, fn=fn: fn(c)) for fn in senders]
    assert sorted({c.status for c in calls}) == [200, 429, 500]
    spans = wait_for_calls(traffic.receiver, calls, settle=1.5)
    assert len(spans) == len(calls) == 18
    # nothing else arrived in the meantime
    assert len(traffic.receiver.spans) == before + len(calls)


# -- trace context --------------------------------------------------------------------------------

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_traceparent_parents_the_span(traffic: Traffic) -> None:
    headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": "vendor=opaque,agentportal=1"}
    call = traffic.send(chat, KEY, headers=headers)
    failed = traffic.send(chat, KEY, model="mock-ratelimit", headers=headers)
    spans = wait_for_calls(traffic.receiver, [call, failed])
    for span in spans.values():
        assert span.trace_id == CALLER_TRACE
        assert span.parent_span_id == CALLER_SPAN
        assert span.span_id not in (CALLER_SPAN, "0" * 16)
        assert span.trace_state == "vendor=opaque,agentportal=1"
    assert len({s.span_id for s in spans.values()}) == 2


def test_without_traceparent_each_call_is_a_new_root(traffic: Traffic) -> None:
    calls = [traffic.send(chat, KEY) for _ in range(3)]
    spans = wait_for_calls(traffic.receiver, calls)
    assert {s.parent_span_id for s in spans.values()} == {""}
    trace_ids = {s.trace_id for s in spans.values()}
    assert len(trace_ids) == 3 and CALLER_TRACE not in trace_ids
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t != "0" * 32 for t in trace_ids)


def test_invalid_traceparent_is_ignored(traffic: Traffic) -> None:
    call = traffic.send(chat, KEY, headers={"traceparent": "00-zzzz-not-a-traceparent-01"})
    assert call.status == 200
    span = wait_for_calls(traffic.receiver, [call])[call.call_id]  # type: ignore[index]
    assert span.parent_span_id == ""


# -- nothing but our spans ------------------------------------------------------------------------


def test_non_llm_routes_emit_no_spans(traffic: Traffic) -> None:
    before = len(traffic.receiver.spans)
    for path in ("/health/liveliness", "/health/readiness", "/v1/models"):
        response = traffic.client.get(path, headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 200, (path, response.text)
    time.sleep(1.5)
    assert len(traffic.receiver.spans) == before


def test_metrics_arrive_with_our_resource_and_scope(traffic: Traffic) -> None:
    traffic.receiver.wait_for_metric("gen_ai.client.operation.time_to_first_chunk", timeout=15)
    points = [p for p in traffic.receiver.data_points if p.name in METRICS]
    assert {p.name for p in points} == METRICS
    assert {p.scope_name for p in points} == {"agentportal_otel"}
    assert {p.resource["service.name"] for p in points} == {"litellm-proxy"}
    units = {p.name: p.unit for p in points}
    assert units == {
        "gen_ai.client.operation.duration": "s",
        "gen_ai.client.token.usage": "{token}",
        "gen_ai.client.operation.time_to_first_chunk": "s",
        "agentportal.client.cost": "{USD}",
    }


def test_receiver_got_only_the_spans_of_our_calls(traffic: Traffic) -> None:
    """Runs last in the module: every span the proxy ever exported is one of our calls' span.

    FastAPI starts emitting four spans per request once a *global* tracer provider exists; a
    plugin that set one would show up here as spans of another scope or kind.
    """
    time.sleep(1.0)
    spans = traffic.receiver.spans
    assert traffic.receiver.errors == []
    assert {s.scope_name for s in spans} == {"agentportal_otel"}
    assert {s.kind for s in spans} == {"SPAN_KIND_CLIENT"}
    sent = [c.call_id for c in traffic.calls]
    assert sorted(str(s.attributes[CALL_ID]) for s in spans) == sorted(str(i) for i in sent)
    assert {r.path for r in traffic.receiver.requests} <= {"/v1/traces", "/v1/metrics"}
    assert {r.status for r in traffic.receiver.requests} == {200}


# -- restart --------------------------------------------------------------------------------------


def test_restart_with_same_config_does_not_duplicate(tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(receiver, OTEL_SERVICE_NAME="agentportal-e2e-gateway")
        runs: list[list[Call]] = []
        for _ in range(2):
            # Same overlay, same work directory, same receiver: a container restart.
            with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY, workdir=tmp_path) as proxy:
                with httpx.Client(base_url=proxy.url, timeout=60) as client:
                    runs.append(
                        [chat(client, KEY), stream_chat(client, KEY), chat(client, KEY, model="mock-ratelimit")]
                    )
                assert proxy.stop() in (0, -15)
        calls = [c for run in runs for c in run]
        spans = wait_for_calls(receiver, calls, settle=1.5)
        assert len(receiver.spans) == len(spans) == 6
        assert {s.resource["service.name"] for s in receiver.spans} == {"agentportal-e2e-gateway"}
        assert {p.resource["service.name"] for p in receiver.data_points} == {"agentportal-e2e-gateway"}
        # two processes, two resources
        instances = [{spans[str(c.call_id)].resource["service.instance.id"] for c in run} for run in runs]
        assert len(instances[0]) == len(instances[1]) == 1 and instances[0] != instances[1]
