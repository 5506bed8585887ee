"""Start a span with attributes the mapping already validated, without the SDK validating them again.

``Tracer.start_span(attributes=...)`` runs every value through the SDK's
``_clean_attribute_value`` under a lock, one call per attribute: about half of what creating
one of our spans costs. :mod:`agentportal_otel._mapping` only produces valid OTel attribute
values (str, bool, int, float, homogeneous tuples of those, strings capped by
``AGENTPORTAL_OTEL_MAX_ATTRIBUTE_LENGTH``), so :func:`start_span` creates the span without
attributes and puts them straight into its attribute store.

It does so only when the result is identical to the SDK's own path: an SDK span whose
attribute store is a mutable :class:`~opentelemetry.attributes.BoundedAttributes` without a
value-length limit (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` unset) and with room for every
attribute. Otherwise, and for any other tracer, the attributes go through ``set_attributes``.
The sampler is not shown the attributes (the SDK's built-in samplers do not read them).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue


def start_span(
    tracer: Tracer,
    name: str,
    *,
    context: Context | None,
    kind: SpanKind,
    attributes: Mapping[str, AttributeValue],
    start_time: int | None,
) -> Span:
    span = tracer.start_span(
        name,
        context=context,
        kind=kind,
        start_time=start_time,
        record_exception=False,
        set_status_on_exception=False,
    )
    store = getattr(span, "_attributes", None)
    raw = getattr(store, "_dict", None)
    if (
        isinstance(store, BoundedAttributes)
        and isinstance(raw, dict)
        and not getattr(store, "_immutable", True)
        and store.max_value_len is None
        and (store.maxlen is None or len(raw) + len(attributes) <= store.maxlen)
    ):
        raw.update(attributes)
    elif attributes:
        span.set_attributes(attributes)
    return span
