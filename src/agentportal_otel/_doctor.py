"""``agentportal-otel doctor``: check, step by step, that spans leave the proxy and land.

Steps (each PASS, WARN, FAIL or SKIP, with a hint on how to fix it):

1. configuration, read by the plugin's own :class:`~agentportal_otel._settings.Settings`: SDK
   not disabled, traces exporter not ``none``, no malformed variable, and which OTLP traces
   endpoint the plugin will use and from which variable;
2. LiteLLM-only variables (``OTEL_EXPORTER``, ``OTEL_ENDPOINT``, ``OTEL_HEADERS``) that the
   OpenTelemetry SDK ignores;
3. the endpoint accepts ``POST`` of an empty ``ExportTraceServiceRequest``;
4. a probe span (attribute ``agentportal.probe.id``) exported through the plugin's own
   pipeline (:func:`~agentportal_otel._providers.build_tracer_provider`, OTLP/HTTP exporter);
5. the probe found in ClickHouse within the timeout.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from agentportal_otel import _env
from agentportal_otel._settings import Settings
from agentportal_otel.clickhouse._names import PROBE_ID

Outcome = Literal["PASS", "WARN", "FAIL", "SKIP"]
_LITELLM_ONLY = _env.LITELLM_ONLY_NAMES


@dataclass(frozen=True)
class Check:
    """The result of one doctor step."""

    name: str
    outcome: Outcome
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class Endpoint:
    url: str
    source: str


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def load_settings(environ: Mapping[str, str]) -> tuple[Settings, list[str]]:
    """The plugin's own settings for ``environ``, and the configuration problems it reported."""
    collect = _Collect()
    logger = logging.getLogger("agentportal_otel")
    logger.addHandler(collect)
    try:
        settings = Settings.from_env(environ)
    finally:
        logger.removeHandler(collect)
    # LiteLLM-only names are a check of their own (check_litellm_names), not a configuration error.
    return settings, [m for m in collect.messages if "read only by LiteLLM" not in m]


def check_configuration(settings: Settings, problems: Sequence[str]) -> Check:
    """Judge the settings (and the problems :func:`load_settings` reported for them)."""
    name = "configuration"
    if not settings.enabled:
        return Check(name, "FAIL", "OTEL_SDK_DISABLED=true: no spans are exported", "unset it")
    if settings.traces_exporters == ("none",):
        return Check(name, "FAIL", "OTEL_TRACES_EXPORTER=none", "unset it or set it to otlp")
    detail = settings.describe_destination()
    if problems:
        return Check(name, "FAIL", f"{detail}; " + " | ".join(problems), "fix the variables named above")
    if "otlp" not in settings.traces_exporters:
        return Check(name, "WARN", f"{detail}; the OTLP checks below do not apply", "")
    return Check(name, "PASS", detail)


def check_litellm_names(environ: Mapping[str, str]) -> Check:
    found = [name for name in _LITELLM_ONLY if environ.get(name)]
    if not found:
        return Check("litellm-only variables", "PASS", "none set")
    hint = "; ".join(f"{name} -> {_LITELLM_ONLY[name]}" for name in found)
    return Check(
        "litellm-only variables",
        "WARN",
        f"{', '.join(found)} set: only LiteLLM's own otel callback reads them",
        f"use the standard names: {hint}",
    )


def check_endpoint(endpoint: Endpoint, headers: Mapping[str, str], timeout: float) -> Check:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    request = urllib.request.Request(
        endpoint.url,
        data=body,
        method="POST",
        headers={**headers, "Content-Type": "application/x-protobuf"},
    )
    name = "endpoint accepts POST"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            name,
            "FAIL",
            f"{endpoint.url}: {reason}",
            "collector down or wrong host/port: start the collector, check its otlp receiver "
            "listens on 0.0.0.0:4318 (http), and the endpoint variable",
        )
    if status == 200:
        return Check(name, "PASS", f"{endpoint.url} answered 200")
    hints = {
        404: "wrong path: OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (/v1/traces is appended); "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be the full URL ending in /v1/traces",
        401: "authentication: set OTEL_EXPORTER_OTLP_HEADERS",
        403: "authorization: check OTEL_EXPORTER_OTLP_HEADERS",
        415: "the receiver does not accept protobuf: is this an OTLP/HTTP port (4318)?",
    }
    return Check(name, "FAIL", f"{endpoint.url} answered {status}", hints.get(status, "check collector logs"))


def send_probe(
    inner: SpanExporter, destination: str, probe_id: str, timeout: float, environ: Mapping[str, str]
) -> Check:
    """Export one probe span through the plugin's own pipeline into ``inner``; report the result."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    from agentportal_otel._providers import build_tracer_provider

    results: list[SpanExportResult] = []

    class _Recording(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            result = inner.export(spans)
            results.append(result)
            return result

        def shutdown(self) -> None:
            cast(Any, inner).shutdown()  # untyped in the SDK

    settings, _ = load_settings({**environ, "OTEL_SERVICE_NAME": "agentportal-otel-doctor"})
    provider = build_tracer_provider(settings, exporters=[_Recording()]).tracer_provider
    span = provider.get_tracer("agentportal_otel.doctor").start_span(
        "agentportal-otel doctor probe", attributes={PROBE_ID: probe_id}
    )
    span.end()
    provider.force_flush(int(timeout * 1000))
    provider.shutdown()
    name = "probe span exported"
    if results and results[-1] is SpanExportResult.SUCCESS:
        return Check(name, "PASS", f"probe {probe_id} accepted by {destination}")
    return Check(name, "FAIL", f"probe {probe_id} not accepted by {destination}", "see the checks above")


def wait_for_probe(count: Callable[[], int], probe_id: str, timeout: float) -> Check:
    name = "probe stored in ClickHouse"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if count() > 0:
                return Check(name, "PASS", f"probe {probe_id} found")
        except Exception as exc:
            return Check(name, "FAIL", f"query failed: {exc}", "check --url/--database/--table and credentials")
        if time.monotonic() >= deadline:
            return Check(
                name,
                "FAIL",
                f"probe {probe_id} not found after {timeout:g}s: collector or clickhouse exporter problem",
                "check the collector logs; that the traces pipeline has the clickhouse exporter; the "
                "exporter's database/traces_table_name match --database/--table; create_schema or "
                "the tables exist",
            )
        time.sleep(0.25)


def new_probe_id() -> str:
    return uuid.uuid4().hex
