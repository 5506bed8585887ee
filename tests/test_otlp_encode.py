"""``_otlp_encode.encode_spans_bytes`` parses to exactly what the SDK's OTLP encoder builds.

Real spans from the plugin (a LiteLLM call through the logger) and SDK spans covering every
field the encoder writes: remote and local parents, trace state, events, links, error status,
arrays, bools, negative and large ints, floats, empty strings, several resources and scopes.
The same batch is encoded twice so the cached attribute path is exercised too.
"""

from __future__ import annotations

import litellm
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from agentportal_otel import _otlp_encode
from agentportal_otel._otlp_encode import encode_spans_bytes
from aio import run, settle


def _assert_same(spans: list) -> None:  # type: ignore[type-arg]
    expected = encode_spans(spans)
    for _ in range(2):  # second pass: cached KeyValues
        ours = ExportTraceServiceRequest.FromString(encode_spans_bytes(spans))
        assert ours == expected


def test_plugin_spans_encode_like_the_sdk(make_logger, span_exporter: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    make_logger()

    async def calls() -> None:
        for prompt in ("hi", "again"):
            await litellm.acompletion(
                model="openai/gpt-4o-mini",
                messages=[{"role": "user", "content": prompt}],
                mock_response="hello",
                metadata={"user_api_key_team_id": "team-a", "tags": ["x", "y"]},
                temperature=0.0,
            )
        await settle(span_exporter, 2)

    run(calls())
    spans = list(span_exporter.get_finished_spans())
    assert spans
    _assert_same(spans)


@pytest.mark.parametrize("remote", [True, False])
def test_every_span_field_encodes_like_the_sdk(remote: bool) -> None:
    exporter = InMemorySpanExporter()
    providers = [
        TracerProvider(resource=Resource.create({"service.name": name, "n": 1}, schema_url=url))
        for name, url in (("a", ""), ("b", "https://opentelemetry.io/schemas/1.30.0"))
    ]
    for provider in providers:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=remote,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
    )
    context = set_span_in_context(NonRecordingSpan(parent))
    for provider in providers:
        for scope, version in (("one", "1.0"), ("two", None)):
            tracer = provider.get_tracer(scope, version)
            span = tracer.start_span(
                "chat gpt-4",
                context=context,
                kind=SpanKind.CLIENT,
                links=[Link(parent, {"link.attr": "l"})],
                attributes={
                    "s": "value",
                    "empty": "",
                    "b": True,
                    "f": False,
                    "i": 42,
                    "zero": 0,
                    "neg": -7,
                    "big": 2**62,
                    "d": 0.25,
                    "strs": ("a", "b"),
                    "ints": (1, -2),
                    "floats": (1.5,),
                    "bools": (True, False),
                    "ü": "ünïcode",
                },
                start_time=1_700_000_000_000_000_001,
            )
            span.add_event("exception", {"exception.type": "E", "n": 3}, timestamp=1_700_000_000_000_000_500)
            span.set_status(Status(StatusCode.ERROR, "boom"))
            span.end(end_time=1_700_000_001_000_000_000)
            root = tracer.start_span("root", kind=SpanKind.INTERNAL)
            root.set_status(Status(StatusCode.OK))
            root.end()
    spans = list(exporter.get_finished_spans())
    assert len(spans) == 8
    _assert_same(spans)


def test_the_cache_stays_bounded() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for i in range(200):
        tracer.start_span("s", attributes={f"k{j}": f"v{i}-{j}" for j in range(60)}).end()
    spans = list(exporter.get_finished_spans())
    _assert_same(spans)
    assert len(_otlp_encode._kv_cache) <= _otlp_encode._CACHE_LIMIT


def test_fast_span_start_keeps_the_sdk_limits() -> None:
    from opentelemetry.sdk.trace import SpanLimits

    from agentportal_otel._fastspan import start_span

    attributes = {"a": "x" * 50, "b": 1, "c": ("p", "q")}
    for limits, expected_a, expected_count in (
        (SpanLimits(), "x" * 50, 3),  # fast path: stored as given
        (SpanLimits(max_span_attribute_length=10), "x" * 10, 3),  # value limit: the SDK truncates
        (SpanLimits(max_span_attributes=2), None, 2),  # count limit: the SDK drops
    ):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(span_limits=limits)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        span = start_span(
            provider.get_tracer("t"), "s", context=None, kind=SpanKind.CLIENT, attributes=attributes, start_time=None
        )
        span.end()
        (finished,) = exporter.get_finished_spans()
        assert finished.attributes is not None and len(finished.attributes) == expected_count
        if expected_a is not None:
            assert finished.attributes["a"] == expected_a
        assert finished.attributes.get("c", ("p", "q")) == ("p", "q")


def test_fast_span_start_takes_the_fast_path_on_this_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard for the SDK private ``_fastspan`` relies on (``Span._attributes._dict``).

    If a new SDK renames it, :func:`start_span` falls back to ``set_attributes``: still correct
    (the test above), but slower. This test fails then, so the fallback is never silent.
    """
    from opentelemetry.sdk import trace as sdk_trace

    from agentportal_otel._fastspan import start_span

    calls: list[object] = []
    original = sdk_trace.Span.set_attributes

    def spy(self: sdk_trace.Span, attributes: object) -> None:
        calls.append(attributes)
        original(self, attributes)  # type: ignore[arg-type]

    monkeypatch.setattr(sdk_trace.Span, "set_attributes", spy)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3, "tags": ("a", "b")}
    start_span(
        provider.get_tracer("t"), "s", context=None, kind=SpanKind.CLIENT, attributes=attributes, start_time=None
    ).end()
    (finished,) = exporter.get_finished_spans()
    assert dict(finished.attributes or {}) == attributes
    assert calls == [], "_fastspan fell back to set_attributes: the SDK's attribute store changed"
