"""ReadableSpan -> ``otel_traces`` row, with the collector exporter's exact column values.

The collector's ``clickhouse`` exporter converts OTLP spans as follows, and so does
:func:`span_to_row` (see ``exporter_traces.go`` and pdata ``pcommon.Value.AsString``, as of
opentelemetry-collector-contrib 0.153.0, the release ``docker/compose.yaml`` pins):

* ``Timestamp`` is the span start; ``Duration`` is end minus start in nanoseconds, as an
  unsigned 64-bit number: a span that ends before it starts wraps around (``2**64 - 1`` for
  -1 ns), like the collector's ``uint64`` conversion.
* ``TraceId``/``SpanId``/``ParentSpanId`` are lowercase hex, ``''`` when absent (root span).
* ``SpanKind`` is ``ptrace.SpanKind.String()`` (``Internal``, ``Server``, ``Client``, ...),
  ``StatusCode`` is ``ptrace.StatusCode.String()`` (``Unset``, ``Ok``, ``Error``).
* Attribute values are stringified like ``AsString()``: strings as is, bools ``true``/``false``,
  ints base 10, doubles as by ES6 number-to-string (``0.00042``, ``123``, ``7.5e-7``,
  ``1e+21``; non-finite ones ``NaN``, ``Infinity``, ``-Infinity``, since 0.151), bytes as
  standard base64, arrays and maps as Go ``encoding/json`` text without HTML escaping (``<``,
  ``>``, ``&`` literal since 0.152; U+2028/U+2029 still escaped; an array or map holding a
  non-finite double cannot be encoded and becomes ``''``).
* Map columns (``ResourceAttributes``, ``SpanAttributes``, event and link attributes) are
  inserted with their keys sorted (byte order), so ``mapKeys()``, ``toString()`` and map
  equality agree with the collector's rows.

Rows are plain dicts keyed by column name, JSON-serialisable, with ``DateTime64(9)`` values
written as ``"<seconds>.<9 digits>"`` strings so no precision is lost on the way in.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.util.types import Attributes

Row = dict[str, Any]
_UINT64: Final = 2**64

_SPAN_KIND: Final[Mapping[SpanKind, str]] = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
_STATUS_CODE: Final[Mapping[StatusCode, str]] = {
    StatusCode.UNSET: "Unset",
    StatusCode.OK: "Ok",
    StatusCode.ERROR: "Error",
}
# encoding/json escapes these even with HTML escaping off (pdata turned it off in 0.152).
_GO_JSON_EXTRA_ESCAPES: Final = {
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class _Unsupported(ValueError):
    """A value Go's encoding/json refuses (NaN, ±Inf inside an array or map)."""


def go_float_string(value: float) -> str:
    """Format a double like pdata's ``float64AsString`` (ES6 number-to-string rules)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return _go_exponent_form(value)
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _go_exponent_form(value: float) -> str:
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    exp10 = exponent + len(mantissa) - 1
    head = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    # strconv writes at least two exponent digits; float64AsString then trims "e-0X" to "e-X".
    exp_text = f"e+{exp10:02d}" if exp10 >= 0 else (f"e-{-exp10}" if exp10 > -10 else f"e{exp10}")
    return ("-" if sign else "") + head + exp_text


def _go_json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _GO_JSON_EXTRA_ESCAPES.items():
        encoded = encoded.replace(raw, escaped)
    return encoded


def _go_json(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _Unsupported(value)
        return go_float_string(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, bytes):
        return _go_json_string(base64.b64encode(value).decode("ascii"))
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(_go_json_string(k) + ":" + _go_json(v) for k, v in items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    if value is None:
        return "null"
    return _go_json_string(str(value))


def attribute_string(value: object) -> str:
    """Stringify one attribute value exactly like pdata ``Value.AsString()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_string(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None:
        return ""
    try:
        return _go_json(value)
    except _Unsupported:
        return ""  # json.Marshal fails and AsString returns string(nil)


def attributes_map(attributes: Attributes) -> dict[str, str]:
    """Stringify an attribute mapping (``None`` -> ``{}``)."""
    if not attributes:
        return {}
    return {key: attribute_string(attributes[key]) for key in sorted(map(str, attributes))}


def datetime64_text(nanos: int) -> str:
    """Render Unix nanoseconds as a ``DateTime64(9)`` input string (``"secs.nnnnnnnnn"``)."""
    seconds, fraction = divmod(int(nanos), 1_000_000_000)
    return f"{seconds}.{fraction:09d}"


def trace_id_hex(trace_id: int) -> str:
    """32 lowercase hex digits, ``''`` for the invalid (zero) id."""
    return "" if trace_id == 0 else format(trace_id, "032x")


def span_id_hex(span_id: int) -> str:
    """16 lowercase hex digits, ``''`` for the invalid (zero) id."""
    return "" if span_id == 0 else format(span_id, "016x")


def _events_columns(events: Sequence[Event]) -> Row:
    return {
        "Events.Timestamp": [datetime64_text(event.timestamp) for event in events],
        "Events.Name": [event.name for event in events],
        "Events.Attributes": [attributes_map(event.attributes) for event in events],
    }


def _links_columns(links: Sequence[Link]) -> Row:
    return {
        "Links.TraceId": [trace_id_hex(link.context.trace_id) for link in links],
        "Links.SpanId": [span_id_hex(link.context.span_id) for link in links],
        "Links.TraceState": [link.context.trace_state.to_header() for link in links],
        "Links.Attributes": [attributes_map(link.attributes) for link in links],
    }


def span_to_row(span: ReadableSpan) -> Row:
    """Map one finished SDK span to the row the collector's exporter would insert for it."""
    context = span.get_span_context()
    start = span.start_time or 0
    end = span.end_time or start
    resource_attrs = attributes_map(span.resource.attributes)
    scope = span.instrumentation_scope
    parent = span.parent
    row: Row = {
        "Timestamp": datetime64_text(start),
        "TraceId": trace_id_hex(context.trace_id) if context else "",
        "SpanId": span_id_hex(context.span_id) if context else "",
        "ParentSpanId": span_id_hex(parent.span_id) if parent is not None else "",
        "TraceState": context.trace_state.to_header() if context else "",
        "SpanName": span.name,
        "SpanKind": _SPAN_KIND.get(span.kind, "Unspecified"),
        "ServiceName": resource_attrs.get("service.name", ""),
        "ResourceAttributes": resource_attrs,
        "ScopeName": (scope.name if scope else "") or "",
        "ScopeVersion": (scope.version if scope else "") or "",
        "SpanAttributes": attributes_map(span.attributes),
        "Duration": (end - start) % _UINT64,
        "StatusCode": _STATUS_CODE.get(span.status.status_code, "Unset"),
        "StatusMessage": span.status.description or "",
    }
    row.update(_events_columns(span.events))
    row.update(_links_columns(span.links))
    return row
