"""Export without loss while the queue has room: OTLP/HTTP retried until the collector takes it.

The SDK's OTLP exporters give a batch up after a few retries within their timeout, so a
collector restart longer than that loses spans although the batch processor's queue had room.
The collector's own exporters keep a queue instead; this module does the same inside the proxy:

* :class:`RetryingSpanExporter` and :class:`RetryingMetricExporter` encode a batch **once** to
  OTLP protobuf bytes (spans with :mod:`agentportal_otel._otlp_encode`) and hand it to a
  :class:`Delivery`, which POSTs it through an :class:`OTLPSender` until a 2xx. A retryable
  failure (connection refused or reset, a timeout, 429, 502, 503, 504) waits with exponential
  backoff and jitter, capped by ``AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS``, or as long as
  ``Retry-After`` says; the batch
  stays with the exporter meanwhile, so the batch processor's queue keeps filling (bounded,
  see :class:`~agentportal_otel._providers.DroppingBatchSpanProcessor`) and requests never wait.
* A non-retryable answer (400, 401, 403, 404, 413, 500, ...) drops the batch: its spans are
  counted in ``agentportal.spans.dropped`` with ``reason=rejected`` and the status is logged
  once, with a hint at the fix.  Header values and response bodies are never logged.
* :class:`ExportControl` is shared by the exporters of one process.  At shutdown
  :meth:`ExportControl.begin_final` sets a deadline: retries go on until then, and what is
  still unsent afterwards goes to the disk spool (:mod:`agentportal_otel._spool`) when one is
  configured, or is counted with ``reason=shutdown``.

Bytes are sent with our own ``requests`` session rather than through ``OTLPSpanExporter``: its
internal retry would compound with ours, and encoding once lets the spool keep the exact bytes.
"""

from __future__ import annotations

import enum
import gzip
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final

import requests
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import OTLPMetricExporterMixin
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentportal_otel._otlp_encode import encode_spans_bytes
from agentportal_otel._settings import _safe_url
from agentportal_otel._version import __version__

if TYPE_CHECKING:
    from agentportal_otel._spool import Spool

_logger = logging.getLogger("agentportal_otel")

RETRYABLE_STATUS: Final = frozenset({429, 502, 503, 504})
"""Answers after which the same request is sent again (the OTLP/HTTP specification's list)."""
INITIAL_BACKOFF_S: Final = 1.0
MAX_RETRY_AFTER_S: Final = 300.0
"""A ``Retry-After`` longer than this is shortened to it: a collector must not park us for hours."""
WARNING_INTERVAL_S: Final = 60.0
FINAL_RETRY_INTERVAL_S: Final = 0.5
"""Longest wait between two attempts once shutdown has begun (its deadline is seconds away)."""

# Drop reasons (the ``reason`` dimension of ``agentportal.spans.dropped``).
QUEUE_FULL: Final = "queue_full"
QUEUE_BYTES: Final = "queue_bytes"
REJECTED: Final = "rejected"
SPOOL_FULL: Final = "spool_full"
SHUTDOWN: Final = "shutdown"

_HINTS: Final = {
    400: "the receiver could not decode the request: is the endpoint an OTLP/HTTP protobuf receiver?",
    401: "the collector wants credentials: check OTEL_EXPORTER_OTLP_HEADERS (values are never logged)",
    403: "the credentials were refused: check OTEL_EXPORTER_OTLP_HEADERS (values are never logged)",
    404: "wrong path: OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (/v1/traces is appended); a per-signal "
    "endpoint must end in /v1/traces or /v1/metrics",
    405: "wrong path or port: point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port (4318)",
    413: "the request is too large: lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE or raise the receiver's max_request_body_size",
    415: "wrong port: 4317 is OTLP/gRPC; use the OTLP/HTTP port 4318",
}


class DropCounter:
    """Spans dropped, by reason; thread-safe, read by the ``agentportal.spans.dropped`` counter."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, reason: str, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + count

    def by_reason(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: ``status`` is the HTTP status, or ``None`` with ``error`` set."""

    outcome: Outcome
    status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else (self.error or "error")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _compress(body: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(body, compresslevel=6)
    if compression == "deflate":
        return zlib.compress(body)
    return body


class OTLPSender:
    """POSTs pre-encoded OTLP protobuf requests to one endpoint, one attempt at a time."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        compression: str = "none",
        certificate: str | None = None,
        client_cert: tuple[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._compression = compression
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"agentportal-otel/{__version__}",
            **dict(headers),
        }
        if compression != "none":
            self._headers["Content-Encoding"] = compression
        self._verify: bool | str = certificate if certificate is not None else True
        self._cert = client_cert
        self._session = requests.Session()

    def send(self, body: bytes, timeout_s: float | None = None) -> Attempt:
        timeout = max(0.05, self.timeout_s if timeout_s is None else timeout_s)
        data = _compress(body, self._compression)
        for first in (True, False):
            try:
                response = self._session.post(
                    self.endpoint,
                    data=data,
                    headers=self._headers,
                    timeout=timeout,
                    verify=self._verify,
                    cert=self._cert,
                )
            except requests.Timeout as error:
                return Attempt(Outcome.RETRY, error=type(error).__name__)
            except requests.ConnectionError as error:
                if first:
                    continue  # a pooled connection the collector closed: once more, at once
                return Attempt(Outcome.RETRY, error=type(error).__name__)
            except requests.RequestException as error:
                # TLS or proxy trouble: keep the batch (it may heal), the warning names the class.
                return Attempt(Outcome.RETRY, error=type(error).__name__)
            status = response.status_code
            response.close()
            if 200 <= status < 300:
                return Attempt(Outcome.SENT, status)
            if status in RETRYABLE_STATUS:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                return Attempt(Outcome.RETRY, status, retry_after_s=retry_after)
            return Attempt(Outcome.REJECTED, status)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._session.close()


class ExportControl:
    """State shared by one process's exporters: drop counts, the spool, the shutdown deadline.

    ``replay_done`` is set once the spool's first replay pass is over (at once without a
    spool): live exports wait for it, so spooled requests are sent first.
    """

    def __init__(self, spool: Spool | None = None) -> None:
        self.drops = DropCounter()
        self.spool = spool
        self.replay_done = threading.Event()
        if spool is None:
            self.replay_done.set()
        self.spooled_spans = 0
        self._deadline: float | None = None
        self._final = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()

    @property
    def final(self) -> bool:
        return self._final.is_set()

    def begin_final(self, deadline: float) -> None:
        """Shutdown: keep retrying until ``deadline`` (``time.monotonic()``), then spool or drop."""
        with self._lock:
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
        self._final.set()

    def abort(self) -> None:
        """Stop every wait now (the exporters are shutting down)."""
        self.begin_final(time.monotonic())
        self._abort.set()

    def past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def cap_timeout(self, timeout_s: float) -> float:
        deadline = self._deadline
        if deadline is None:
            return timeout_s
        return min(timeout_s, max(0.05, deadline - time.monotonic()))

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; the start of shutdown ends the wait at once (retry now: the collector
        may be back), and during shutdown no wait goes past the deadline."""
        deadline = self._deadline
        if deadline is None:
            self._final.wait(seconds)
            return
        self._abort.wait(max(0.0, min(seconds, deadline - time.monotonic())))

    def wait_for_replay(self) -> None:
        while not self.replay_done.wait(0.2):
            if self.final:
                return


class Delivery:
    """The retry loop of one signal: send until 2xx, drop on a rejection, spool at the deadline."""

    def __init__(self, sender: OTLPSender, signal: str, control: ExportControl, max_backoff_s: float) -> None:
        self.sender = sender
        self.signal = signal
        self._control = control
        self._max_backoff_s = max_backoff_s
        self._initial_s = min(INITIAL_BACKOFF_S, max_backoff_s)
        self._rejected_logged: set[int | None] = set()
        self._last_warning = -float("inf")
        self._failing_since: float | None = None
        self.pending_bytes = 0
        """Size of the request being retried (0 when none): part of the queue's byte bound."""

    def deliver(self, body: bytes, items: int, unit: str) -> bool:
        """Send ``body`` (``items`` spans or metric points); ``True`` once the collector took it."""
        control = self._control
        control.wait_for_replay()
        self.pending_bytes = len(body)
        try:
            backoff = self._initial_s
            while True:
                if control.past_deadline():
                    self._hand_over(body, items, unit)
                    return False
                attempt = self.sender.send(body, control.cap_timeout(self.sender.timeout_s))
                if attempt.outcome is Outcome.SENT:
                    self._recovered()
                    return True
                if attempt.outcome is Outcome.REJECTED:
                    self._reject(attempt, items, unit)
                    return False
                wait = backoff * random.uniform(0.5, 1.0)
                if attempt.retry_after_s is not None:
                    wait = attempt.retry_after_s
                if control.final:
                    wait = min(wait, FINAL_RETRY_INTERVAL_S)  # the budget is short: retry briskly
                self._warn_retrying(attempt, wait, items, unit)
                control.sleep(wait)
                backoff = min(backoff * 2, self._max_backoff_s)
        finally:
            self.pending_bytes = 0

    def _hand_over(self, body: bytes, items: int, unit: str) -> None:
        control = self._control
        spool = control.spool
        if spool is not None:
            if spool.write(self.signal, body):
                if unit == "span":
                    with control._lock:
                        control.spooled_spans += items
                return
            if unit == "span":
                control.drops.add(SPOOL_FULL, items)
            return
        if unit == "span":
            control.drops.add(SHUTDOWN, items)

    def _reject(self, attempt: Attempt, items: int, unit: str) -> None:
        if unit == "span":
            self._control.drops.add(REJECTED, items)
        if attempt.status in self._rejected_logged:
            return
        self._rejected_logged.add(attempt.status)
        hint = _HINTS.get(attempt.status or 0, "see the collector's log for why it refused the request")
        _logger.error(
            "agentportal-otel: %s export to %s was rejected with %s; %d %ss dropped (counted in "
            "agentportal.spans.dropped with reason=rejected) and further rejections with this status are not "
            "logged. Hint: %s",
            self.signal,
            _safe_url(self.sender.endpoint),
            attempt.describe(),
            items,
            unit,
            hint,
        )

    def _warn_retrying(self, attempt: Attempt, wait: float, items: int, unit: str) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_warning < WARNING_INTERVAL_S:
            return
        self._last_warning = now
        _logger.warning(
            "agentportal-otel: %s export to %s failed (%s); the batch of %d %ss stays queued and is retried in "
            "%.1f s (further failures are reported once a minute)",
            self.signal,
            _safe_url(self.sender.endpoint),
            attempt.describe(),
            items,
            unit,
            wait,
        )

    def _recovered(self) -> None:
        since, self._failing_since = self._failing_since, None
        if since is not None:
            self._last_warning = -float("inf")
            _logger.info(
                "agentportal-otel: %s export to %s works again after %.0f s of failures",
                self.signal,
                _safe_url(self.sender.endpoint),
                time.monotonic() - since,
            )


class RetryingSpanExporter(SpanExporter):
    """Encodes each batch once and delivers it through a :class:`Delivery` (see the module docstring).

    Inherited by a forked child (a proxy worker), an instance exports nothing there: the
    child builds its own.
    """

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self._pid = os.getpid()
        self._bytes_per_span = 0.0

    @property
    def bytes_per_span(self) -> float:
        """Running average size of one encoded span, to estimate the queue's size in bytes."""
        return self._bytes_per_span

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans or os.getpid() != self._pid:
            return SpanExportResult.SUCCESS
        try:
            body = encode_spans_bytes(spans)
        except Exception:  # a value our encoder does not know: the SDK's encoder decides
            body = encode_spans(spans).SerializeToString()
        per_span = len(body) / len(spans)
        previous = self._bytes_per_span
        self._bytes_per_span = per_span if previous == 0 else 0.8 * previous + 0.2 * per_span
        ok = self.delivery.deliver(body, len(spans), "span")
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.delivery.sender.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class RetryingMetricExporter(MetricExporter, OTLPMetricExporterMixin):
    """The metric counterpart of :class:`RetryingSpanExporter`.

    Temporality and aggregation preferences follow ``OTEL_EXPORTER_OTLP_METRICS_*`` as the
    SDK's OTLP exporter does (cumulative by default).
    """

    def __init__(self, delivery: Delivery) -> None:
        self._common_configuration()
        self.delivery = delivery
        self._pid = os.getpid()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if os.getpid() != self._pid:
            return MetricExportResult.SUCCESS
        body = encode_metrics(metrics_data).SerializeToString()
        points = sum(
            len(metric.data.data_points)
            for resource in metrics_data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
        ok = self.delivery.deliver(body, points, "metric point")
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.delivery.sender.close()
