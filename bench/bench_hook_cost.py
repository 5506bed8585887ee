"""CPU cost of the plugin's success hook per LLM call, in microseconds, with a profile.

A real ``litellm.acompletion(mock_response=...)`` runs once with a capturing logger to get the
hook's genuine ``kwargs``/``response_obj``/times. The call carries what a proxy call carries:
``user_api_key_*`` identity, key and team metadata (with a project), tags, a W3C
``traceparent`` header and an end user. ``--calls`` copies are made, each with its own
call id (the logger emits exactly one span per call id, so one payload replayed would be
deduplicated after the first call), and each variant runs over them timed with
``time.process_time()`` (CPU of the whole process, so the batch processor's thread counts
too):

* ``empty hook``         -- a ``CustomLogger`` whose ``async_log_success_event`` does nothing;
* ``map_call only``      -- the pure mapping (payload -> ``CallRecord``);
* ``hook, no-op export`` -- ``AgentPortalLogger.async_log_success_event``: mapping, span through
  the plugin's ``DroppingBatchSpanProcessor`` to an exporter that discards, metrics into the
  plugin's own aggregation (``_aggregate``) behind a periodic reader (interval beyond the run) on
  a discarding exporter, as the plugin's own providers record them; the processor is flushed
  inside the timed region;
* ``as above, SDK metrics`` -- the same with the metrics recorded through the SDK's instruments
  (injected providers, and the plugin before issue 11's aggregation);
* ``hook, OTLP encode``  -- as above, but the exporter encodes each batch to OTLP protobuf
  bytes as the plugin's exporter does before sending (``_otlp_encode``), so the export
  thread's share shows;
* ``hook, SDK encoder``  -- the same with the SDK's ``encode_spans`` (what ``OTLPSpanExporter``
  does), for comparison.

The variant names are printed at a width of 22; ``as above, SDK metrics`` refers to the row above it.

Then ``cProfile`` of the no-op-export hook prints the 15 biggest costs (cumulative and own time).
Everything is in-process: no network. ::

    python bench/bench_hook_cost.py                 # 5 repeats x 5000 calls
    python bench/bench_hook_cost.py --calls 20000 --repeats 7 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib.metadata
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for _name in ("OTEL_SDK_DISABLED", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "OTEL_TRACES_EXPORTER"):
    os.environ.pop(_name, None)

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import (  # noqa: E402
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: E402

from agentportal_otel import _litellm_fields as f  # noqa: E402
from agentportal_otel._aggregate import Aggregator, ProducingMetricReader  # noqa: E402
from agentportal_otel._emit import Emitter  # noqa: E402
from agentportal_otel._mapping import map_call  # noqa: E402
from agentportal_otel._otlp_encode import encode_spans_bytes  # noqa: E402
from agentportal_otel._providers import SCOPE_NAME, build_tracer_provider  # noqa: E402
from agentportal_otel._settings import Settings  # noqa: E402
from agentportal_otel._version import __version__  # noqa: E402
from agentportal_otel.logger import AgentPortalLogger  # noqa: E402

Payload = tuple[dict[str, Any], Any, Any, Any]


class _Capture(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Payload] = []

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.events.append((kwargs, response_obj, start_time, end_time))


class _Empty(CustomLogger):
    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        return None


class DiscardSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class EncodeSpans(DiscardSpans):
    """Encodes every batch to OTLP protobuf bytes, as the plugin's exporter does, then discards.

    ``sdk=True`` uses the SDK's encoder (what ``OTLPSpanExporter`` does) for comparison.
    """

    def __init__(self, sdk: bool = False) -> None:
        self.bytes = 0
        self._sdk = sdk

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._sdk:
            self.bytes += len(encode_spans(spans).SerializeToString())
        else:
            self.bytes += len(encode_spans_bytes(spans))
        return SpanExportResult.SUCCESS


class DiscardMetrics(MetricExporter):
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


# -- payload ------------------------------------------------------------------------------------------

PROXY_METADATA: dict[str, Any] = {
    # What the proxy's auth step puts into litellm_params.metadata (values from the demo keys).
    "user_api_key_hash": "5f0c7c3e8d1b2a4f6e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f",
    "user_api_key_alias": "alpha-search",
    "user_api_key_team_id": "team-search",
    "user_api_key_team_alias": "Search",
    "user_api_key_user_id": "user-alice",
    "user_api_key_org_id": "org-acme",
    "user_api_key_end_user_id": "enduser-42",
    "user_api_key_metadata": {"project": "alpha", "cost_center": "cc-17"},
    "user_api_key_team_metadata": {"department": "search"},
    "user_api_key_auth_metadata": {"project": "alpha", "cost_center": "cc-17", "department": "search"},
    "headers": {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "user-agent": "bench/1.0",
        "content-type": "application/json",
    },
    "requester_custom_headers": {"x-openwebui-user-id": "owui-7"},
    "tags": ["team:search", "env:bench"],
}


def capture_payload(stream: bool) -> Payload:
    capture = _Capture()
    litellm.logging_callback_manager._reset_all_callbacks()
    litellm.callbacks = [capture]

    async def run() -> None:
        response = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=[
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "Summarise the quarterly report in three bullet points."},
            ],
            mock_response="- Revenue up 12%\n- Costs flat\n- Hiring paused",
            temperature=0.2,
            max_tokens=256,
            user="enduser-42",
            metadata=dict(PROXY_METADATA),
            stream=stream,
        )
        if stream:
            async for _chunk in response:  # type: ignore[union-attr]
                pass
        for _ in range(200):
            if capture.events:
                return
            await asyncio.sleep(0.01)

    asyncio.run(run())
    litellm.logging_callback_manager._reset_all_callbacks()
    if not capture.events:
        raise SystemExit("the capture logger saw no success event")
    return capture.events[-1]


def copies(payload: Payload, n: int, prefix: str) -> list[Payload]:
    """``n`` shallow copies of the payload, each with its own call id ``<prefix>-<i>`` (the rest shared)."""
    kwargs, response_obj, start, end = payload
    slo = kwargs.get(f.STANDARD_LOGGING_OBJECT)
    result: list[Payload] = []
    for i in range(n):
        call_id = f"{prefix}-{i:08d}"
        new_kwargs = dict(kwargs)
        new_kwargs[f.LITELLM_CALL_ID_KW] = call_id
        if isinstance(slo, dict):
            new_slo = dict(slo)
            new_slo[f.SLO_CALL_ID] = call_id
            new_kwargs[f.STANDARD_LOGGING_OBJECT] = new_slo
        result.append((new_kwargs, response_obj, start, end))
    return result


# -- timing ---------------------------------------------------------------------------------------------


def settings() -> Settings:
    return Settings.from_env({"OTEL_BSP_SCHEDULE_DELAY": "1000", "OTEL_BSP_MAX_QUEUE_SIZE": "65536"})


def build_logger(exporter: SpanExporter, own_metrics: bool = True) -> AgentPortalLogger:
    """The plugin on ``exporter``; metrics as the plugin's own providers record them (our
    ``Aggregator`` behind a ``ProducingMetricReader``) or, with ``own_metrics=False``, through the
    SDK's instruments (what injected providers get, and the plugin before issue 11)."""
    s = settings()
    providers = build_tracer_provider(s, [exporter])
    resource = providers.tracer_provider.resource
    aggregator = Aggregator(InstrumentationScope(SCOPE_NAME, __version__)) if own_metrics else None
    reader = (
        ProducingMetricReader(DiscardMetrics(), aggregator, resource, 3_600_000)
        if aggregator is not None
        else PeriodicExportingMetricReader(DiscardMetrics(), export_interval_millis=3_600_000)
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger = AgentPortalLogger(
        s, tracer_provider=providers.tracer_provider, meter_provider=meter_provider, install_shutdown_hooks=False
    )
    if aggregator is not None:  # what the logger does with providers it builds itself
        logger._emitter = Emitter(
            providers.tracer_provider.get_tracer(SCOPE_NAME, __version__),
            meter_provider.get_meter(SCOPE_NAME, __version__),
            s.max_tenant_values,
            dropped_spans=lambda: {"queue_full": 0},
            latest=s.semconv_latest,
            instruments=aggregator,
        )
    return logger


def time_hook(hook: Callable[..., Any], payloads: list[Payload], after: Callable[[], object] | None = None) -> float:
    """CPU µs per call of awaiting ``hook`` over ``payloads`` (plus ``after()``, e.g. a flush)."""

    async def drive() -> float:
        gc.collect()
        t0 = time.process_time()
        for kwargs, response_obj, start, end in payloads:
            await hook(kwargs, response_obj, start, end)
        if after is not None:
            after()
        return time.process_time() - t0

    return asyncio.run(drive()) * 1e6 / len(payloads)


def time_sync(func: Callable[..., Any], payloads: list[Payload]) -> float:
    s = settings()
    gc.collect()
    t0 = time.process_time()
    for kwargs, response_obj, start, end in payloads:
        func(kwargs, response_obj, start, end, s)
    return (time.process_time() - t0) * 1e6 / len(payloads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--calls", type=int, default=5000, help="hook calls per repeat (5000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats; the median is reported (5)")
    parser.add_argument("--stream", action="store_true", help="capture a streamed call's payload")
    parser.add_argument("--top", type=int, default=15, help="profile rows (15)")
    args = parser.parse_args(argv)

    payload = capture_payload(args.stream)
    kwargs = payload[0]
    slo = kwargs.get(f.STANDARD_LOGGING_OBJECT) or {}
    print(
        f"# payload: call_type={slo.get('call_type')} model_group={slo.get('model_group')!r} "
        f"stream={args.stream} kwargs keys={len(kwargs)} litellm {importlib.metadata.version('litellm')}"
    )

    empty = _Empty()
    discard_logger = build_logger(DiscardSpans())
    sdk_metrics_logger = build_logger(DiscardSpans(), own_metrics=False)
    encoder = EncodeSpans()
    encode_logger = build_logger(encoder)
    sdk_encode_logger = build_logger(EncodeSpans(sdk=True))

    def flusher(logger: AgentPortalLogger) -> Callable[[], object]:
        assert logger.tracer_provider is not None
        return lambda: logger.tracer_provider.force_flush(30_000)  # type: ignore[union-attr]

    variants: dict[str, Callable[[list[Payload]], float]] = {
        "empty hook": lambda p: time_hook(empty.async_log_success_event, p),
        "map_call only": lambda p: time_sync(map_call, p),
        "hook, no-op export": lambda p: time_hook(discard_logger.async_log_success_event, p, flusher(discard_logger)),
        "as above, SDK metrics": lambda p: time_hook(
            sdk_metrics_logger.async_log_success_event, p, flusher(sdk_metrics_logger)
        ),
        "hook, OTLP encode": lambda p: time_hook(encode_logger.async_log_success_event, p, flusher(encode_logger)),
        "hook, SDK encoder": lambda p: time_hook(
            sdk_encode_logger.async_log_success_event, p, flusher(sdk_encode_logger)
        ),
    }
    # Warm-up (first-call caches, lazy imports) on payloads that are not reused.
    for name, run in variants.items():
        run(copies(payload, 200, f"warmup-{name}"))

    results: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        names = list(variants)
        names = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in names:
            batch = copies(payload, args.calls, f"r{repeat}-{name}")  # fresh ids: nothing is deduplicated
            results[name].append(variants[name](batch))

    base = statistics.median(results["empty hook"])
    print(f"\n{'variant':22} {'µs/call':>9} {'min':>9} {'max':>9} {'vs empty':>9}")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:22} {med:9.1f} {min(values):9.1f} {max(values):9.1f} {med - base:+9.1f}")
    print(f"# {args.repeats} repeats x {args.calls} calls; OTLP bytes encoded: {encoder.bytes}")

    profile_batch = copies(payload, args.calls, "profile")
    profiler = cProfile.Profile()

    async def profiled() -> None:
        profiler.enable()
        for k, r, s, e in profile_batch:
            await discard_logger.async_log_success_event(k, r, s, e)
        profiler.disable()

    asyncio.run(profiled())
    for sort in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort)
        stats.print_stats(args.top)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"\n# cProfile of the hook (no-op export), {args.calls} calls, top {args.top} by {sort}")
        print(text[start:].rstrip())
    for logger in (discard_logger, sdk_metrics_logger, encode_logger, sdk_encode_logger):
        logger.shutdown(5_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
