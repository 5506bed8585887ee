"""Turning arbitrary Python values into valid, bounded OpenTelemetry attribute values.

OTel attribute values are ``str``, ``bool``, ``int``, ``float`` or homogeneous sequences
of one of those.  Anything else becomes compact JSON.  Every string is capped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Final, cast

from opentelemetry.util.types import AttributeValue

TRUNCATION_MARK: Final = "...[truncated]"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def cap(value: str, limit: int) -> str:
    """``value`` cut to at most ``limit`` characters, marked when cut."""
    if len(value) <= limit:
        return value
    keep = max(0, limit - len(TRUNCATION_MARK))
    return value[:keep] + TRUNCATION_MARK[: limit - keep]


def _json_default(value: object) -> str:
    return repr(value)


def to_json(value: object) -> str:
    """Compact JSON; non-string keys and unknown objects become strings."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):  # circular structures, keys json cannot sort
        return json.dumps(repr(value), ensure_ascii=False)


def _scalar(value: object, limit: int) -> str | bool | int | float | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else cap(str(value), limit)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return cap(value, limit)
    return None


def to_attribute(value: object, limit: int) -> AttributeValue:
    """A valid OTel attribute value for ``value``, strings capped at ``limit`` characters.

    Scalars stay as they are, a list of scalars of one type becomes an array, anything
    else (mixed lists, mappings, objects) becomes compact JSON, also capped.
    """
    scalar = _scalar(value, limit)
    if scalar is not None:
        return scalar
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        items = [_scalar(item, limit) for item in value]
        kinds = {type(item) for item in items}
        if items and None not in kinds and len(kinds) == 1:
            # Every item went through _scalar, so one kind means a homogeneous OTel array.
            return cast(AttributeValue, tuple(items))
    return cap(to_json(value), limit)


def string_array(values: Sequence[object], limit: int, max_items: int = 64) -> tuple[str, ...]:
    """The string items of ``values``, each capped, at most ``max_items`` of them."""
    return tuple(cap(item, limit) for item in values if isinstance(item, str))[:max_items]
