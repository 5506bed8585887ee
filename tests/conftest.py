"""Shared fixtures: in-memory exporters and providers, no globals, shut down after each test.

Modelled on the OTel GenAI instrumentations' fixtures: a synchronous span processor so a
test sees its span as soon as the hook has run, and an in-memory metric reader.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).parent))

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def make_logger(tracer_provider: TracerProvider, meter_provider: MeterProvider):  # type: ignore[no-untyped-def]
    """Build an AgentPortalLogger on the in-memory providers and register it with LiteLLM."""
    import litellm

    from agentportal_otel._settings import Settings
    from agentportal_otel.logger import AgentPortalLogger

    litellm.logging_callback_manager._reset_all_callbacks()

    def build(environ: dict[str, str] | None = None, **explicit: object) -> AgentPortalLogger:
        settings = Settings.from_env(environ or {}, **explicit)
        logger = AgentPortalLogger(
            settings, tracer_provider=tracer_provider, meter_provider=meter_provider, install_shutdown_hooks=False
        )
        litellm.callbacks = [logger]
        return logger

    yield build
    # LiteLLM copies callbacks into internal success/failure lists on first use: reset
    # them all, or the next test's calls would still reach this test's logger.
    litellm.logging_callback_manager._reset_all_callbacks()


def pytest_runtest_setup(item: pytest.Item) -> None:
    from agentportal_otel.demo._proxy import take_exit_reports

    take_exit_reports()  # forget exits of earlier tests: a report belongs to the test it broke


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On a failure, attach the log of every proxy that exited on its own (exit code, stacks)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    from agentportal_otel.demo._proxy import take_exit_reports

    for exited in take_exit_reports():
        report.sections.append((f"proxy pid {exited.pid} exited on its own with {exited.returncode}", exited.log_tail))
