"""A real OTLP/HTTP (protobuf) receiver for tests, the demo and benchmarks.

``OTLPReceiver`` is a threaded HTTP server on ``127.0.0.1`` that accepts ``POST /v1/traces``,
``/v1/metrics`` and ``/v1/logs`` (``Content-Encoding`` gzip, deflate or none), answers with the
protobuf ``Export*ServiceResponse`` as ``application/x-protobuf``, and keeps:

* every request (path, headers, raw body, decompressed body, the status it got) for secret
  scans: :meth:`OTLPReceiver.contains` searches all bodies;
* decoded spans, metric data points and log records flattened to frozen dataclasses, with
  attribute values as plain Python (string, bool, int, float, ``tuple`` for arrays, ``dict`` for
  kvlists, ``bytes``).

Fault modes switch at runtime: :meth:`~OTLPReceiver.fail` (answer 503/500/... to every request or
the next ``n``), :meth:`~OTLPReceiver.set_delay`, :meth:`~OTLPReceiver.down` and
:meth:`~OTLPReceiver.up` (close the listening socket and every open connection, then listen on
the same port again). Requests rejected by a fault are recorded but not decoded. ::

    with OTLPReceiver() as rx:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.url}
        ...
        spans = rx.wait_for_spans(3, timeout=10)
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "DataPoint",
    "LogRecord",
    "OTLPReceiver",
    "ReceivedRequest",
    "Span",
    "SpanEvent",
    "decode_any_value",
    "decode_attributes",
]

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
LOGS_PATH = "/v1/logs"

# -- flattened records ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: Mapping[str, str]  # lower-cased names
    raw_body: bytes  # as received (possibly compressed)
    body: bytes  # after Content-Encoding was undone
    status: int  # what the receiver answered
    received_at: float  # time.time()


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Span:
    name: str
    kind: str  # proto enum name, e.g. "SPAN_KIND_CLIENT"
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: str  # "STATUS_CODE_UNSET" / "STATUS_CODE_OK" / "STATUS_CODE_ERROR"
    status_message: str
    attributes: dict[str, Any]
    events: tuple[SpanEvent, ...]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    trace_state: str = ""
    links: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (trace_id, span_id, attributes)
    dropped_attributes_count: int = 0


@dataclass(frozen=True)
class DataPoint:
    """One metric data point; fields that do not apply to ``type`` are ``None``."""

    name: str
    description: str
    unit: str
    type: str  # "gauge", "sum", "histogram", "exponential_histogram", "summary"
    attributes: dict[str, Any]
    start_time_unix_nano: int
    time_unix_nano: int
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    value: int | float | None = None  # gauge / sum
    is_monotonic: bool | None = None  # sum
    temporality: str | None = None  # "AGGREGATION_TEMPORALITY_CUMULATIVE" / "..._DELTA"
    count: int | None = None  # histogram family, summary
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()


@dataclass(frozen=True)
class LogRecord:
    body: Any
    severity_number: int
    severity_text: str
    event_name: str
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    time_unix_nano: int
    resource: dict[str, Any]
    scope_name: str


# -- decoding -------------------------------------------------------------------------------


def decode_any_value(value: common_pb2.AnyValue) -> Any:
    """An OTLP ``AnyValue`` as plain Python: arrays become tuples, kvlists dicts, unset None."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(decode_any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, which)


def decode_attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: decode_any_value(kv.value) for kv in kvs}


def _hex(raw: bytes) -> str:
    return raw.hex()


def _flatten_traces(req: trace_service_pb2.ExportTraceServiceRequest) -> list[Span]:
    spans: list[Span] = []
    for rs in req.resource_spans:
        resource = decode_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    Span(
                        name=s.name,
                        kind=trace_pb2.Span.SpanKind.Name(s.kind),
                        trace_id=_hex(s.trace_id),
                        span_id=_hex(s.span_id),
                        parent_span_id=_hex(s.parent_span_id),
                        start_time_unix_nano=s.start_time_unix_nano,
                        end_time_unix_nano=s.end_time_unix_nano,
                        status_code=trace_pb2.Status.StatusCode.Name(s.status.code),
                        status_message=s.status.message,
                        attributes=decode_attributes(s.attributes),
                        events=tuple(
                            SpanEvent(e.name, e.time_unix_nano, decode_attributes(e.attributes)) for e in s.events
                        ),
                        resource=resource,
                        scope_name=ss.scope.name,
                        scope_version=ss.scope.version,
                        trace_state=s.trace_state,
                        links=tuple(
                            (_hex(lk.trace_id), _hex(lk.span_id), decode_attributes(lk.attributes)) for lk in s.links
                        ),
                        dropped_attributes_count=s.dropped_attributes_count,
                    )
                )
    return spans


def _number(dp: Any) -> int | float | None:
    which = dp.WhichOneof("value")
    return None if which is None else getattr(dp, which)


def _flatten_metrics(req: metrics_service_pb2.ExportMetricsServiceRequest) -> list[DataPoint]:
    points: list[DataPoint] = []
    temporality_name = metrics_pb2.AggregationTemporality.Name
    for rm in req.resource_metrics:
        resource = decode_attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    continue
                common = {
                    "name": m.name,
                    "description": m.description,
                    "unit": m.unit,
                    "type": kind,
                    "resource": resource,
                    "scope_name": sm.scope.name,
                    "scope_version": sm.scope.version,
                }
                data = getattr(m, kind)
                for dp in data.data_points:
                    base = {
                        **common,
                        "attributes": decode_attributes(dp.attributes),
                        "start_time_unix_nano": dp.start_time_unix_nano,
                        "time_unix_nano": dp.time_unix_nano,
                    }
                    if kind == "gauge":
                        points.append(DataPoint(**base, value=_number(dp)))
                    elif kind == "sum":
                        points.append(
                            DataPoint(
                                **base,
                                value=_number(dp),
                                is_monotonic=data.is_monotonic,
                                temporality=temporality_name(data.aggregation_temporality),
                            )
                        )
                    elif kind == "histogram":
                        points.append(
                            DataPoint(
                                **base,
                                temporality=temporality_name(data.aggregation_temporality),
                                count=dp.count,
                                sum=dp.sum if dp.HasField("sum") else None,
                                min=dp.min if dp.HasField("min") else None,
                                max=dp.max if dp.HasField("max") else None,
                                bucket_counts=tuple(dp.bucket_counts),
                                explicit_bounds=tuple(dp.explicit_bounds),
                            )
                        )
                    elif kind == "exponential_histogram":
                        points.append(
                            DataPoint(
                                **base,
                                temporality=temporality_name(data.aggregation_temporality),
                                count=dp.count,
                                sum=dp.sum if dp.HasField("sum") else None,
                                min=dp.min if dp.HasField("min") else None,
                                max=dp.max if dp.HasField("max") else None,
                                bucket_counts=tuple(dp.positive.bucket_counts),
                            )
                        )
                    else:  # summary
                        points.append(DataPoint(**base, count=dp.count, sum=dp.sum))
    return points


def _flatten_logs(req: logs_service_pb2.ExportLogsServiceRequest) -> list[LogRecord]:
    records: list[LogRecord] = []
    for rl in req.resource_logs:
        resource = decode_attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                records.append(
                    LogRecord(
                        body=decode_any_value(lr.body),
                        severity_number=lr.severity_number,
                        severity_text=lr.severity_text,
                        event_name=getattr(lr, "event_name", ""),
                        attributes=decode_attributes(lr.attributes),
                        trace_id=_hex(lr.trace_id),
                        span_id=_hex(lr.span_id),
                        time_unix_nano=lr.time_unix_nano,
                        resource=resource,
                        scope_name=sl.scope.name,
                    )
                )
    return records


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        # zlib-wrapped (RFC 1950, what the OTel SDK sends) or raw deflate (RFC 1951).
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


# -- server ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: OTLPReceiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the SDK's requests.Session
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.receiver._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.receiver._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/x-protobuf",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        rx = self.server.receiver
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        status, extra = rx._next_fault(path)
        delay = rx.delay
        if delay > 0 and rx._stopping.wait(delay):
            self.close_connection = True  # went down while "processing": drop the request
            return
        if status is not None:
            rx._record(ReceivedRequest(path, headers, raw, b"", status, time.time()))
            self._reply(status, b"", "text/plain", extra)
            return
        if path not in (TRACES_PATH, METRICS_PATH, LOGS_PATH):
            rx._record(ReceivedRequest(path, headers, raw, b"", 404, time.time()))
            self._reply(404, b"not found", "text/plain")
            return
        ctype = headers.get("content-type", "").split(";", 1)[0].strip()
        if ctype != "application/x-protobuf":
            rx._record(ReceivedRequest(path, headers, raw, b"", 415, time.time()))
            self._reply(415, b"only application/x-protobuf is supported", "text/plain")
            return
        try:
            body = _decompress(raw, headers.get("content-encoding", ""))
            response = rx._ingest(path, body)
        except Exception as exc:  # malformed payload: 400, as a collector would
            rx._record(ReceivedRequest(path, headers, raw, b"", 400, time.time()))
            rx.errors.append(f"{path}: {exc!r}")
            self._reply(400, repr(exc).encode(), "text/plain")
            return
        rx._record(ReceivedRequest(path, headers, raw, body, 200, time.time()))
        self._reply(200, response)


class OTLPReceiver:
    """OTLP/HTTP protobuf receiver on ``host`` (port 0 picks a free one); see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.delay: float = 0.0
        self.errors: list[str] = []  # decoding failures, for assertions
        self._lock = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._spans: list[Span] = []
        self._points: list[DataPoint] = []
        self._logs: list[LogRecord] = []
        self._fault_status: int | None = None
        self._fault_remaining: int | None = None  # None = until cleared
        self._fault_headers: dict[str, str] = {}
        self._fault_path: str | None = None  # None = every path
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        """Base endpoint for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (signal paths are appended by the SDK)."""
        return f"http://{self.host}:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.url + TRACES_PATH

    @property
    def metrics_url(self) -> str:
        return self.url + METRICS_PATH

    @property
    def logs_url(self) -> str:
        return self.url + LOGS_PATH

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def start(self) -> OTLPReceiver:
        return self.up()

    def up(self) -> OTLPReceiver:
        """Listen (again, on the same port after :meth:`down`)."""
        if self._server is not None:
            return self
        self._stopping.clear()
        deadline = time.monotonic() + 5
        while True:
            try:
                server = _Server((self.host, self.port), _Handler)
                break
            except OSError:
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening and cut every open connection: the SDK sees connection errors."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        self._stopping.set()  # releases handlers sleeping in a delay
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault modes

    def fail(
        self,
        status: int | None = 503,
        *,
        times: int | None = None,
        headers: Mapping[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        """Answer ``status`` (e.g. 503 retryable, 500 or 400 not) to the next ``times`` requests
        (all of them when ``None``); ``status=None`` clears the fault. ``headers`` such as
        ``{"Retry-After": "1"}`` are sent with the failure. ``path`` (e.g. ``/v1/traces``) limits
        the fault to that signal, so the others (the drop counter's metrics) still arrive."""
        with self._lock:
            self._fault_path = path if status is not None else None
            self._fault_status = status
            self._fault_remaining = times if status is not None else None
            self._fault_headers = dict(headers or {})

    def heal(self) -> None:
        """Clear :meth:`fail` and :meth:`set_delay`."""
        self.fail(None)
        self.delay = 0.0

    def set_delay(self, seconds: float) -> None:
        """Hold each request ``seconds`` before answering (0 disables)."""
        self.delay = float(seconds)

    def _next_fault(self, path: str) -> tuple[int | None, dict[str, str]]:
        with self._lock:
            status = self._fault_status
            if status is None or (self._fault_path is not None and path != self._fault_path):
                return None, {}
            if self._fault_remaining is not None:
                self._fault_remaining -= 1
                if self._fault_remaining <= 0:
                    self._fault_status = None
                    self._fault_remaining = None
            return status, dict(self._fault_headers)

    # -- storage

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _ingest(self, path: str, body: bytes) -> bytes:
        if path == TRACES_PATH:
            treq = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            spans = _flatten_traces(treq)
            with self._lock:
                self._spans.extend(spans)
            return trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        if path == METRICS_PATH:
            mreq = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
            points = _flatten_metrics(mreq)
            with self._lock:
                self._points.extend(points)
            return metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        lreq = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
        records = _flatten_logs(lreq)
        with self._lock:
            self._logs.extend(records)
        return logs_service_pb2.ExportLogsServiceResponse().SerializeToString()

    def clear(self) -> None:
        """Forget everything received (fault settings are kept)."""
        with self._lock:
            self._requests.clear()
            self._spans.clear()
            self._points.clear()
            self._logs.clear()
            self.errors.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    @property
    def data_points(self) -> list[DataPoint]:
        with self._lock:
            return list(self._points)

    @property
    def logs(self) -> list[LogRecord]:
        with self._lock:
            return list(self._logs)

    def metric_points(self, name: str) -> list[DataPoint]:
        return [p for p in self.data_points if p.name == name]

    def metric_names(self) -> set[str]:
        return {p.name for p in self.data_points}

    def contains(self, needle: str | bytes) -> bool:
        """Whether ``needle`` occurs in any request body (raw or decompressed) or header value."""
        data = needle.encode() if isinstance(needle, str) else needle
        text = data.decode(errors="replace")
        for r in self.requests:
            if data in r.body or data in r.raw_body or any(text in v for v in r.headers.values()):
                return True
        return False

    # -- waiting

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{what} within {timeout} s (have {len(self._spans)} spans, "
                        f"{len(self._points)} points, {len(self._requests)} requests)"
                    )
                self._lock.wait(remaining)

    def wait_for_spans(
        self, n: int, timeout: float = 10.0, predicate: Callable[[Span], bool] | None = None
    ) -> list[Span]:
        """Block until at least ``n`` spans (matching ``predicate``) arrived; return those spans."""

        def matching() -> list[Span]:
            return [s for s in self._spans if predicate is None or predicate(s)]

        self._wait(lambda: len(matching()) >= n, timeout, f"expected {n} spans")
        with self._lock:
            return matching()

    def wait_for_metric(
        self, name: str, timeout: float = 10.0, predicate: Callable[[DataPoint], bool] | None = None
    ) -> list[DataPoint]:
        """Block until a data point of metric ``name`` (matching ``predicate``) arrived; return all such."""

        def matching() -> list[DataPoint]:
            return [p for p in self._points if p.name == name and (predicate is None or predicate(p))]

        self._wait(lambda: bool(matching()), timeout, f"expected metric {name!r}")
        with self._lock:
            return matching()

    def wait_for_requests(self, n: int, timeout: float = 10.0, path: str | None = None) -> list[ReceivedRequest]:
        """Block until ``n`` requests (to ``path``), whatever their outcome, were received."""

        def matching() -> list[ReceivedRequest]:
            return [r for r in self._requests if path is None or r.path == path]

        self._wait(lambda: len(matching()) >= n, timeout, f"expected {n} requests")
        with self._lock:
            return matching()
