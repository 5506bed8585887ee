"""``agentportal-otel doctor``: check, step by step, that spans leave the proxy and land.

Steps (each PASS, WARN, FAIL or SKIP, with a hint on how to fix it):

1. configuration: SDK not disabled, traces exporter not ``none``, which OTLP traces endpoint the
   plugin will use and from which variable (the OTel spec's resolution:
   ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as is, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` +
   ``/v1/traces``, else ``http://localhost:4318/v1/traces``);
2. LiteLLM-only variables (``OTEL_EXPORTER``, ``OTEL_ENDPOINT``, ``OTEL_HEADERS``) that the
   OpenTelemetry SDK ignores;
3. the endpoint accepts ``POST`` of an empty ``ExportTraceServiceRequest``;
4. a probe span (attribute ``agentportal.probe.id``) exported through a private
   ``TracerProvider`` + ``BatchSpanProcessor`` + ``OTLPSpanExporter``;
5. the probe found in ClickHouse within the timeout.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from opentelemetry.sdk.trace import ReadableSpan

Outcome = Literal["PASS", "WARN", "FAIL", "SKIP"]
DEFAULT_TRACES_ENDPOINT = "http://localhost:4318/v1/traces"
_LITELLM_ONLY = {
    "OTEL_EXPORTER": "OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
    "OTEL_ENDPOINT": "OTEL_EXPORTER_OTLP_ENDPOINT (base URL; /v1/traces is appended)",
    "OTEL_HEADERS": "OTEL_EXPORTER_OTLP_HEADERS",
}


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


def resolve_traces_endpoint(environ: Mapping[str, str]) -> Endpoint:
    """The OTLP/HTTP traces URL per the OTel spec, and the variable it came from."""
    # TODO(lead): replace with agentportal_otel._settings once it exposes this resolution.
    signal = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if signal:
        return Endpoint(signal, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return Endpoint(base.rstrip("/") + "/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT")
    return Endpoint(DEFAULT_TRACES_ENDPOINT, "default")


def otlp_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """Headers from ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` or ``OTEL_EXPORTER_OTLP_HEADERS``."""
    raw = environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    headers: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(value.strip())
    return headers


def check_configuration(environ: Mapping[str, str]) -> Check:
    endpoint = resolve_traces_endpoint(environ)
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Check("configuration", "FAIL", "OTEL_SDK_DISABLED=true: no spans are exported", "unset it")
    exporters = [e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    if "none" in exporters:
        return Check("configuration", "FAIL", "OTEL_TRACES_EXPORTER=none", "unset it or set it to otlp")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    detail = f"traces go to {endpoint.url} (from {endpoint.source})"
    if protocol and protocol.strip() != "http/protobuf":
        return Check("configuration", "WARN", f"{detail}; protocol {protocol!r} is not used", "use http/protobuf")
    return Check("configuration", "PASS", detail)


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


def send_probe(endpoint: Endpoint, headers: Mapping[str, str], probe_id: str, timeout: float) -> Check:
    """Export one probe span through the plugin's pipeline shape and report the export result."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    results: list[SpanExportResult] = []
    inner = OTLPSpanExporter(endpoint=endpoint.url, headers=dict(headers), timeout=timeout)

    class _Recording(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            result = inner.export(spans)
            results.append(result)
            return result

        def shutdown(self) -> None:
            cast(Any, inner).shutdown()  # untyped in the SDK

    # TODO(lead): use agentportal_otel._providers.build_tracer_provider(settings) once it exists.
    provider = TracerProvider(resource=Resource.create({"service.name": "agentportal-otel-doctor"}))
    provider.add_span_processor(BatchSpanProcessor(_Recording()))
    span = provider.get_tracer("agentportal_otel.doctor").start_span(
        "agentportal-otel doctor probe", attributes={"agentportal.probe.id": probe_id}
    )
    span.end()
    provider.force_flush(int(timeout * 1000))
    provider.shutdown()
    name = "probe span exported"
    if results and results[-1] is SpanExportResult.SUCCESS:
        return Check(name, "PASS", f"probe {probe_id} accepted by {endpoint.url}")
    return Check(name, "FAIL", f"probe {probe_id} not accepted", "see the endpoint check above")


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
