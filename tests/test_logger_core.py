"""The logger's guarantees: guarded hooks, private providers, bounded queue and shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import litellm
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentportal_otel import _guard
from agentportal_otel._providers import DroppingBatchSpanProcessor, build_providers
from agentportal_otel._settings import Settings
from agentportal_otel.logger import AgentPortalLogger
from aio import run as run_async
from aio import settle

MESSAGES = [{"role": "user", "content": "hi"}]


class BlockingExporter(SpanExporter):
    """Blocks every export until released: a collector that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_importing_the_package_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import sys, threading, agentportal_otel;"
        "assert 'litellm' not in sys.modules, 'litellm imported';"
        "assert 'agentportal_otel.logger' not in sys.modules;"
        "assert threading.active_count() == 1, threading.enumerate();"
        "from opentelemetry import trace;"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_guard_swallows_in_production(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    logger = AgentPortalLogger(Settings.from_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}))
    monkeypatch.setattr(_guard, "RAISE_UNDER_PYTEST", False)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("payload secret sk-should-not-be-logged")

    monkeypatch.setattr("agentportal_otel.logger.map_call", broken)
    before = _guard.internal_errors.count
    kwargs = {"standard_logging_object": {}}
    assert run_async(logger.async_log_success_event(kwargs, None, None, None)) is None
    assert run_async(logger.async_log_failure_event(kwargs, None, None, None)) is None
    assert logger.log_success_event(kwargs, None, None, None) is None
    assert logger.log_success_event(kwargs, None, None, None) is None
    assert _guard.internal_errors.count == before + 4
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "internal error" in r.getMessage()]
    assert len(errors) == 3, "logged once per hook and exception type"
    assert "sk-should-not-be-logged" not in caplog.text
    assert all(r.exc_info is None for r in errors)
    logger.shutdown(1000)


def test_guard_reraises_under_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = AgentPortalLogger(Settings.from_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}))
    monkeypatch.setattr("agentportal_otel.logger.map_call", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        logger.log_success_event({"standard_logging_object": {}}, None, None, None)
    logger.shutdown(1000)


def test_guard_lets_cancellation_through() -> None:
    import asyncio

    @_guard.guarded
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        run_async(cancelled())


def test_private_providers_leave_the_global_one_alone() -> None:
    before = trace.get_tracer_provider()
    logger = AgentPortalLogger(Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}))
    assert trace.get_tracer_provider() is before
    assert type(before).__name__ == "ProxyTracerProvider"
    assert logger.tracer_provider is not before
    resource = dict(logger.tracer_provider.resource.attributes)  # type: ignore[union-attr]
    assert resource["service.name"] == "litellm-proxy"
    assert logger.shutdown(2000) in (True, False)


def test_resource_attributes_and_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway")
    providers = build_providers(Settings.from_env())
    resource = dict(providers.tracer_provider.resource.attributes)
    assert resource["service.name"] == "gateway"
    assert resource["deployment.environment"] == "prod"
    providers.tracer_provider.shutdown()
    assert providers.meter_provider is not None
    providers.meter_provider.shutdown()


@pytest.mark.parametrize(("value", "kinds"), [("none", []), ("console", [ConsoleSpanExporter]), ("otlp,console", None)])
def test_traces_exporter_selection(value: str, kinds: list[type] | None) -> None:
    providers = build_providers(Settings.from_env({"OTEL_TRACES_EXPORTER": value, "OTEL_METRICS_EXPORTER": "none"}))
    exporters = [p.span_exporter for p in providers.span_processors]  # type: ignore[attr-defined]
    if kinds is not None:
        assert [type(e) for e in exporters] == kinds
    else:
        assert [type(e).__name__ for e in exporters] == ["RetryingSpanExporter", "ConsoleSpanExporter"]
    providers.tracer_provider.shutdown()


def test_disabled_sdk_makes_a_noop_logger() -> None:
    logger = AgentPortalLogger(Settings.from_env({"OTEL_SDK_DISABLED": "true"}))
    assert logger.tracer_provider is None
    assert logger.log_success_event({"standard_logging_object": {"call_type": "completion"}}, None, None, None) is None
    assert logger.flush() is True and logger.shutdown() is True


def test_full_queue_drops_and_counts_without_blocking(caplog: pytest.LogCaptureFixture) -> None:
    exporter = BlockingExporter()
    processor = DroppingBatchSpanProcessor(
        exporter, max_queue_size=16, schedule_delay_millis=10, max_export_batch_size=4, export_timeout_millis=1000
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    for index in range(500):
        tracer.start_span(f"s{index}").end()
    # The worker holds at most one batch in flight, which it may be taking off the full queue as
    # we read it: the queue is within one batch of its bound. The SDK's own deque is read, so a
    # change of its internals (a silent 0) fails here.
    assert 16 - 4 <= processor.queued_spans() <= 16
    assert 500 - 16 - 4 <= processor.dropped_spans <= 500 - 16
    drop_warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drop_warnings) == 1, "warned once, not once per span"
    exporter.release.set()
    provider.shutdown()
    assert exporter.exported + processor.dropped_spans == 500


def test_an_sdk_without_the_known_queue_is_named_and_still_exports(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A future SDK whose queue is not the deque this release reads (simulated with a wrapper,
    since no such release exists): one warning naming the consequence, and spans still go out."""
    from opentelemetry.sdk import _shared_internal

    class OtherQueue:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __len__(self) -> int:
            return len(self.inner)

        def __bool__(self) -> bool:
            return bool(self.inner)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    original = _shared_internal.BatchProcessor.__init__

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._queue = OtherQueue(self._queue)

    monkeypatch.setattr(_shared_internal.BatchProcessor, "__init__", wrapped)
    exporter = InMemorySpanExporter()
    processor = DroppingBatchSpanProcessor(
        exporter, max_queue_size=16, schedule_delay_millis=10, max_export_batch_size=4, export_timeout_millis=1000
    )
    warnings = [r.getMessage() for r in caplog.records if "keeps its span queue" in r.getMessage()]
    assert len(warnings) == 1 and "OTEL_BSP_MAX_QUEUE_SIZE are not counted" in warnings[0]
    assert processor.queued_spans() == 0
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("test").start_span("kept").end()
    provider.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["kept"]


def test_shutdown_is_bounded_when_the_exporter_hangs() -> None:
    exporter = BlockingExporter()
    settings = Settings.from_env({"OTEL_METRICS_EXPORTER": "none"})
    logger = AgentPortalLogger(settings, install_shutdown_hooks=False)
    provider = TracerProvider()
    provider.add_span_processor(
        DroppingBatchSpanProcessor(
            exporter,
            max_queue_size=64,
            schedule_delay_millis=60_000,
            max_export_batch_size=8,
            export_timeout_millis=100,
        )
    )
    logger.tracer_provider = provider
    provider.get_tracer("t").start_span("queued").end()
    assert logger.flush(timeout_millis=300) is False, "a hung export is reported, not waited for"
    exporter.release.set()
    assert logger.flush(timeout_millis=5000) is True
    assert exporter.exported == 1
    logger.shutdown(1000)


def test_router_fallback_attempts_are_separate_spans(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()
    router = litellm.Router(
        model_list=[
            {
                "model_name": "primary",
                "litellm_params": {"model": "openai/p", "api_key": "x", "mock_response": "litellm.RateLimitError"},
            },
            {
                "model_name": "backup",
                "litellm_params": {"model": "openai/b", "api_key": "x", "mock_response": "from backup"},
            },
        ],
        fallbacks=[{"primary": ["backup"]}],
        num_retries=0,
    )

    async def call() -> Any:
        response = await router.acompletion(model="primary", messages=MESSAGES)
        await settle(span_exporter, 2)
        return response

    response = run_async(call())
    assert response.choices[0].message.content == "from backup"
    spans = span_exporter.get_finished_spans()
    by_model = {s.attributes["gen_ai.request.model"]: s for s in spans}
    assert len(spans) == 2 and set(by_model) == {"primary", "backup"}
    assert by_model["primary"].attributes["error.type"] == "RateLimitError"
    assert by_model["primary"].status.status_code is trace.StatusCode.ERROR
    assert "error.type" not in by_model["backup"].attributes
    call_ids = {s.attributes["agentportal.litellm.call_id"] for s in spans}
    assert len(call_ids) == 2


def test_interpreter_exit_flushes_queued_spans(tmp_path: Any) -> None:
    """SDK use: a script that never calls shutdown still delivers (atexit), despite long delays."""
    import os
    import subprocess
    import sys

    from otlp_receiver import OTLPReceiver

    script = tmp_path / "script.py"
    script.write_text(
        "import litellm\n"
        "from agentportal_otel.logger import AgentPortalLogger\n"
        "litellm.callbacks = [AgentPortalLogger()]\n"
        "for _ in range(3):\n"
        "    litellm.completion(model='openai/gpt-4o', messages=[{'role': 'user', 'content': 'hi'}],"
        " mock_response='ok')\n"
        "import time; time.sleep(0.5)\n"
    )
    with OTLPReceiver() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120)
        spans = receiver.wait_for_spans(3, timeout=5)
        assert len([s for s in spans if s.name == "chat gpt-4o"]) == 3
        assert receiver.wait_for_metric("gen_ai.client.token.usage", timeout=5)


def test_fuzzed_payloads_through_the_hooks() -> None:
    """Property test: the real hooks (mapping + span + metrics) never raise on odd payloads."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from test_mapping import FUZZ_SETTINGS, _valid, payloads

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    logger = AgentPortalLogger(
        FUZZ_SETTINGS,
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        install_shutdown_hooks=False,
    )

    @settings(max_examples=400, deadline=None)
    @given(payloads(), st.booleans())
    def check(kwargs: dict[str, Any], failed: bool) -> None:
        exporter.clear()
        hook = logger.log_failure_event if failed else logger.log_success_event
        assert hook(kwargs, None, None, None) is None
        for span in exporter.get_finished_spans():
            for value in (span.attributes or {}).values():
                assert _valid(value, 512)

    check()
    reader.get_metrics_data()  # the metric pipeline accepted every point


def test_tenant_cardinality_cap_folds_into_other(  # type: ignore[no-untyped-def]
    span_exporter, metric_reader, make_logger, caplog: pytest.LogCaptureFixture
) -> None:
    logger = make_logger({"AGENTPORTAL_OTEL_MAX_TENANT_VALUES": "2"})
    for index in range(5):
        kwargs = {
            "standard_logging_object": {
                "litellm_call_id": f"call-{index}",
                "call_type": "acompletion",
                "model_group": "m",
                "custom_llm_provider": "openai",
                "prompt_tokens": 1,
                "metadata": {"user_api_key_team_alias": f"team-{index}"},
            },
            "litellm_params": {"metadata": {"user_api_key_metadata": {"project": f"project-{index}"}}},
        }
        logger.log_success_event(kwargs, None, None, None)
    teams = {s.attributes["agentportal.team.alias"] for s in span_exporter.get_finished_spans()}
    assert teams == {f"team-{i}" for i in range(5)}, "spans keep the real values"
    points = [
        point
        for rm in metric_reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "gen_ai.client.operation.duration"
        for point in metric.data.data_points
    ]
    assert sorted(p.attributes["agentportal.team"] for p in points) == ["other", "team-0", "team-1"]
    assert sorted(p.attributes["agentportal.project"] for p in points) == ["other", "project-0", "project-1"]
    assert sum(p.count for p in points) == 5
    warnings = [r.getMessage() for r in caplog.records if "distinct" in r.getMessage()]
    assert len(warnings) == 2, "one warning per dimension, once"
