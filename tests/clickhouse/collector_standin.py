"""A stand-in for the OpenTelemetry Collector with its ``clickhouse`` exporter.

The real collector cannot run here (no container runtime, no network). This is a tiny
OTLP/HTTP receiver on 127.0.0.1 that decodes ``POST /v1/traces`` protobuf bodies, maps them
with the test suite's independent reference mapping (``reference_mapping.py``, written from the
exporter's Go source) and inserts the rows into ClickHouse (chDB) — the same rows the collector
would write. ``store=False`` answers 200 but drops everything (a collector whose pipeline has
no clickhouse exporter). Any other path answers 404.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from reference_mapping import rows_from_request


class CollectorStandIn:
    def __init__(self, backend: Any, database: str, table: str = "otel_traces", store: bool = True) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                rows = rows_from_request(request)
                outer.received += len(rows)
                if outer.store and rows:
                    outer.backend.insert_rows(outer.database, outer.table, rows)
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.backend, self.database, self.table, self.store = backend, database, table, store
        self.received = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CollectorStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
