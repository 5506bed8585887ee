"""Real ``litellm.acompletion``/``aembedding`` calls (``mock_response``) through the logger.

Each test pops every attribute it expects, with its exact type, and ends with
``assert attributes == {}`` so nothing unexpected rides along.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from aio import run as run_async
from aio import settle

MESSAGES = [{"role": "user", "content": "hi"}]
LITELLM_VERSION = tuple(int(part) for part in version("litellm").split(".")[:2])


def _only_span(exporter: Any) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def _pop_typed(attributes: dict[str, Any], name: str, kind: type) -> Any:
    assert name in attributes, f"{name} missing from {sorted(attributes)}"
    value = attributes.pop(name)
    assert type(value) is kind, f"{name}: {type(value).__name__} is not {kind.__name__}"
    return value


def _pop_common(attributes: dict[str, Any], call_type: str) -> None:
    call_id = _pop_typed(attributes, "agentportal.litellm.call_id", str)
    assert len(call_id) >= 8
    assert _pop_typed(attributes, "agentportal.litellm.call_type", str) == call_type
    if LITELLM_VERSION >= (1, 110):
        # LiteLLM 1.110 says whether the cost is final; without a proxy it never is
        assert _pop_typed(attributes, "agentportal.cost.finalized", bool) is False


def test_chat_completion_span(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def run() -> Any:
        response = await litellm.acompletion(
            model="openai/gpt-4o",
            messages=MESSAGES,
            mock_response="hello",
            temperature=0,
            top_p=0.5,
            max_tokens=5,
            seed=0,
            stop="END",
            frequency_penalty=0,
            presence_penalty=0.25,
        )
        await settle(span_exporter, 1)
        return response

    response = run_async(run())
    span = _only_span(span_exporter)
    assert span.name == "chat gpt-4o"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None
    assert type(span.start_time) is int and type(span.end_time) is int
    assert span.end_time >= span.start_time
    assert span.instrumentation_scope.name == "agentportal_otel"

    attributes = dict(span.attributes or {})
    assert _pop_typed(attributes, "gen_ai.operation.name", str) == "chat"
    assert _pop_typed(attributes, "gen_ai.provider.name", str) == "openai"
    assert _pop_typed(attributes, "gen_ai.request.model", str) == "gpt-4o"
    assert _pop_typed(attributes, "gen_ai.response.model", str) == "gpt-4o"
    # Zero values are real values and must be recorded.
    assert _pop_typed(attributes, "gen_ai.request.temperature", float) == 0.0
    assert _pop_typed(attributes, "gen_ai.request.top_p", float) == 0.5
    assert _pop_typed(attributes, "gen_ai.request.frequency_penalty", float) == 0.0
    assert _pop_typed(attributes, "gen_ai.request.presence_penalty", float) == 0.25
    assert _pop_typed(attributes, "gen_ai.request.max_tokens", int) == 5
    assert _pop_typed(attributes, "gen_ai.request.seed", int) == 0
    assert _pop_typed(attributes, "gen_ai.request.stop_sequences", tuple) == ("END",)
    assert _pop_typed(attributes, "gen_ai.response.id", str) == response.id
    assert _pop_typed(attributes, "gen_ai.response.finish_reasons", tuple) == ("stop",)
    assert _pop_typed(attributes, "gen_ai.usage.input_tokens", int) == response.usage.prompt_tokens
    assert _pop_typed(attributes, "gen_ai.usage.output_tokens", int) == response.usage.completion_tokens
    cost = _pop_typed(attributes, "agentportal.cost.usd", float)
    assert cost == pytest.approx(litellm.completion_cost(response), rel=1e-9) and cost > 0
    assert _pop_typed(attributes, "server.address", str) == "api.openai.com"
    assert _pop_typed(attributes, "server.port", int) == 443
    _pop_common(attributes, "acompletion")
    assert attributes == {}
    assert list(span.events) == []


def test_streaming_span_has_time_to_first_chunk(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def run() -> str:
        stream = await litellm.acompletion(
            model="openai/gpt-4o", messages=MESSAGES, mock_response="hello streaming world", stream=True
        )
        text = ""
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
        await settle(span_exporter, 1)
        return text

    assert run_async(run()) == "hello streaming world"
    span = _only_span(span_exporter)
    assert span.name == "chat gpt-4o"
    attributes = dict(span.attributes or {})
    assert _pop_typed(attributes, "gen_ai.request.stream", bool) is True
    ttfc = _pop_typed(attributes, "gen_ai.response.time_to_first_chunk", float)
    duration_s = (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert 0 <= ttfc <= duration_s + 1e-3
    assert _pop_typed(attributes, "gen_ai.usage.output_tokens", int) > 0
    assert _pop_typed(attributes, "gen_ai.usage.input_tokens", int) > 0
    _pop_typed(attributes, "gen_ai.usage.reasoning.output_tokens", int)
    assert _pop_typed(attributes, "gen_ai.response.finish_reasons", tuple) == ("stop",)
    assert _pop_typed(attributes, "gen_ai.response.id", str).startswith("chatcmpl-")
    assert _pop_typed(attributes, "agentportal.cost.usd", float) > 0
    for name in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model"):
        _pop_typed(attributes, name, str)
    _pop_common(attributes, "acompletion")
    # LiteLLM reports the api_base of a mock stream in some releases (1.77) and not others
    # (1.108, 1.110); without one the call went to LiteLLM's default for the provider.
    assert _pop_typed(attributes, "server.address", str) == "api.openai.com"
    assert _pop_typed(attributes, "server.port", int) == 443
    assert attributes == {}


def test_failure_span(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def run() -> None:
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="litellm.RateLimitError")
        await settle(span_exporter, 1)

    run_async(run())
    span = _only_span(span_exporter)
    assert span.name == "chat gpt-4o"
    assert span.status.status_code is StatusCode.ERROR
    assert "mock rate limit error" in (span.status.description or "")
    attributes = dict(span.attributes or {})
    assert _pop_typed(attributes, "error.type", str) == "RateLimitError"
    assert _pop_typed(attributes, "agentportal.cost.usd", float) == 0.0
    # the latest conventions: a generation that failed reports the finish reason "error"
    assert _pop_typed(attributes, "gen_ai.response.finish_reasons", tuple) == ("error",)
    assert _pop_typed(attributes, "server.address", str) == "api.openai.com"
    assert _pop_typed(attributes, "server.port", int) == 443
    for name in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"):
        _pop_typed(attributes, name, str)
    _pop_common(attributes, "acompletion")
    # no response came back: no gen_ai.response.model, no usage, no response id
    assert attributes == {}, "a failed call carries no usage or response attributes"
    (event,) = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {}) == {
        "exception.type": "RateLimitError",
        "exception.message": span.status.description,
    }
    assert "exception.stacktrace" not in (event.attributes or {})


def test_embedding_span(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def run() -> None:
        await litellm.aembedding(model="openai/text-embedding-3-small", input=["a"], mock_response=[0.1, 0.2])
        await settle(span_exporter, 1)

    run_async(run())
    span = _only_span(span_exporter)
    assert span.name == "embeddings text-embedding-3-small"
    attributes = dict(span.attributes or {})
    assert _pop_typed(attributes, "gen_ai.operation.name", str) == "embeddings"
    assert _pop_typed(attributes, "gen_ai.usage.input_tokens", int) > 0
    assert "gen_ai.usage.output_tokens" not in attributes
    assert _pop_typed(attributes, "agentportal.cost.usd", float) >= 0
    for name in ("gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "server.address"):
        _pop_typed(attributes, name, str)
    _pop_typed(attributes, "server.port", int)
    _pop_common(attributes, "aembedding")
    assert attributes == {}


def test_text_completion_span(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def run() -> None:
        await litellm.atext_completion(model="openai/gpt-3.5-turbo-instruct", prompt="say hi", mock_response="hi")
        await settle(span_exporter, 1)

    run_async(run())
    span = _only_span(span_exporter)
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "text_completion"
    assert span.name == "text_completion " + str(span.attributes["gen_ai.request.model"])


def test_sync_completion_gives_exactly_one_span(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()
    litellm.completion(model="openai/gpt-4o", messages=MESSAGES, mock_response="sync")

    async def wait() -> None:
        await settle(span_exporter, 1, timeout=5)
        await asyncio.sleep(0.5)  # a duplicate async event would arrive in this window

    run_async(wait())
    span = _only_span(span_exporter)
    assert span.attributes is not None and span.attributes["agentportal.litellm.call_type"] == "completion"


def test_metrics_match_spans(span_exporter, metric_reader, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def run() -> None:
        for _ in range(3):
            await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="hello there")
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="litellm.RateLimitError")
        await settle(span_exporter, 4)

    run_async(run())
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 4
    metrics = {
        metric.name: metric
        for rm in metric_reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    tokens = metrics["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens.data.data_points}
    assert by_type["input"].sum == sum(int(s.attributes.get("gen_ai.usage.input_tokens", 0)) for s in spans)
    assert by_type["output"].sum == sum(int(s.attributes.get("gen_ai.usage.output_tokens", 0)) for s in spans)
    assert by_type["input"].count == 3

    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    errors = [p for p in duration.data.data_points if p.attributes.get("error.type") == "RateLimitError"]
    assert len(errors) == 1 and errors[0].count == 1
    assert sum(p.count for p in duration.data.data_points) == 4
    assert list(duration.data.data_points[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]

    for point in duration.data.data_points:
        # Recommended on metric points where known: the mock's default endpoint and, for the
        # calls that answered, the model that did.
        assert point.attributes["server.address"] == "api.openai.com"
        assert point.attributes["server.port"] == 443
        assert point.attributes.get("gen_ai.response.model") == (None if "error.type" in point.attributes else "gpt-4o")

    cost = metrics["agentportal.client.cost"]
    assert cost.unit == "{USD}"  # UCUM: an annotation, as {token}
    assert sum(p.value for p in cost.data.data_points) == pytest.approx(
        sum(float(s.attributes.get("agentportal.cost.usd", 0.0)) for s in spans)
    )
    for metric in metrics.values():
        for point in metric.data.data_points:
            keys = set(point.attributes)
            assert not keys & {"agentportal.litellm.call_id", "agentportal.key.hash", "agentportal.user.id"}
