"""An independent reference of what the collector's ``clickhouse`` exporter writes for a span.

Written from the Go sources, not from ``agentportal_otel.clickhouse._rows``: it starts from the
OTLP protobuf (what the collector receives), stringifies ``AnyValue`` like pdata
``Value.AsString()`` (``strconv.FormatBool``, ``FormatInt(v, 10)``, ``float64AsString``,
``encoding/json`` for arrays and kvlists, base64 for bytes), and names kinds and status codes
like ``ptrace.SpanKind.String()`` / ``ptrace.StatusCode.String()``.

Pinned to opentelemetry-collector-contrib 0.153.0 (``docker/compose.yaml``) and the pdata it
builds with: non-finite doubles are ``NaN``/``Infinity``/``-Infinity`` (0.151), array and map JSON
is written without HTML escaping (0.152; U+2028/U+2029 stay escaped), map columns get their keys
sorted, and ``Duration`` is ``uint64(end - start)``, wrapping around when a span ends before it
starts.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

GO_SPAN_KIND = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}
GO_STATUS = {0: "Unset", 1: "Ok", 2: "Error"}


def go_float(f: float) -> str:
    """float64AsString: strconv 'f' or 'e' with shortest digits, ES6 cutoffs, e-0X -> e-X."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    text = repr(f)  # shortest round-trip digits, like strconv precision -1
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("-")
    mant, _, exp = text.partition("e")
    intpart, _, frac = mant.partition(".")
    digits = (intpart + frac).lstrip("0")
    point = len(intpart) + (int(exp) if exp else 0)  # decimal point position in intpart+frac
    lead_zeros = len(intpart + frac) - len((intpart + frac).lstrip("0"))
    point -= lead_zeros
    digits = digits.rstrip("0") or "0"
    if digits == "0":
        return sign + "0"
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        e = point - 1
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        es = ("+" if e >= 0 else "-") + (f"{abs(e):02d}")
        if es.startswith("-0"):
            es = "-" + es[2:]
        return sign + m + "e" + es
    if point <= 0:
        return sign + "0." + "0" * (-point) + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]


def _go_json_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif o < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _raw(v: common_pb2.AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_raw(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def _go_json(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            raise ValueError
        return go_float(x)
    if isinstance(x, str):
        return _go_json_str(x)
    if isinstance(x, bytes):
        return _go_json_str(base64.b64encode(x).decode())
    if isinstance(x, dict):
        return "{" + ",".join(_go_json_str(k) + ":" + _go_json(x[k]) for k in sorted(x)) + "}"
    if isinstance(x, list):
        return "[" + ",".join(_go_json(i) for i in x) + "]"
    return "null"


def as_string(v: common_pb2.AnyValue) -> str:
    kind = v.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        return go_float(v.double_value)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    try:
        return _go_json(_raw(v))
    except ValueError:
        return ""


def attrs(kvs: Any) -> dict[str, str]:
    pairs = {kv.key: as_string(kv.value) for kv in kvs}
    return {key: pairs[key] for key in sorted(pairs, key=lambda k: k.encode())}


def ts(nanos: int) -> str:
    return f"{nanos // 10**9}.{nanos % 10**9:09d}"


def rows_from_request(req: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """One row per span, as ``pushTraceData`` appends it."""
    rows = []
    for rs in req.resource_spans:
        res = attrs(rs.resource.attributes)
        service = res.get("service.name", "")
        for ss in rs.scope_spans:
            for sp in ss.spans:
                rows.append(
                    {
                        "Timestamp": ts(sp.start_time_unix_nano),
                        "TraceId": sp.trace_id.hex() if any(sp.trace_id) else "",
                        "SpanId": sp.span_id.hex() if any(sp.span_id) else "",
                        "ParentSpanId": sp.parent_span_id.hex() if any(sp.parent_span_id) else "",
                        "TraceState": sp.trace_state,
                        "SpanName": sp.name,
                        "SpanKind": GO_SPAN_KIND[sp.kind],
                        "ServiceName": service,
                        "ResourceAttributes": res,
                        "ScopeName": ss.scope.name,
                        "ScopeVersion": ss.scope.version,
                        "SpanAttributes": attrs(sp.attributes),
                        "Duration": (sp.end_time_unix_nano - sp.start_time_unix_nano) % 2**64,
                        "StatusCode": GO_STATUS[sp.status.code],
                        "StatusMessage": sp.status.message,
                        "Events.Timestamp": [ts(e.time_unix_nano) for e in sp.events],
                        "Events.Name": [e.name for e in sp.events],
                        "Events.Attributes": [attrs(e.attributes) for e in sp.events],
                        "Links.TraceId": [lk.trace_id.hex() for lk in sp.links],
                        "Links.SpanId": [lk.span_id.hex() for lk in sp.links],
                        "Links.TraceState": [lk.trace_state for lk in sp.links],
                        "Links.Attributes": [attrs(lk.attributes) for lk in sp.links],
                    }
                )
    return rows
