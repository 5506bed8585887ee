"""Attribute names the ClickHouse layer reads from ``SpanAttributes``.

Re-exported from ``agentportal_otel._attributes`` (ours) and ``opentelemetry.semconv``
(standard), so the ClickHouse layer and the plugin can never disagree on a name.  Neither
import pulls in LiteLLM.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai
from opentelemetry.semconv.attributes import error_attributes as _error

from agentportal_otel import _attributes as _ap

OPERATION_NAME: Final = _gen_ai.GEN_AI_OPERATION_NAME
REQUEST_MODEL: Final = _gen_ai.GEN_AI_REQUEST_MODEL
INPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS: Final = _gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_READ_TOKENS: Final = _gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
REASONING_TOKENS: Final = _gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
PROVIDER: Final = _gen_ai.GEN_AI_PROVIDER_NAME
TIME_TO_FIRST_CHUNK: Final = _gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
"""Seconds from request to the first streamed chunk (double); only on streamed calls."""
ERROR_TYPE: Final = _error.ERROR_TYPE
COST_USD: Final = _ap.COST_USD
PROJECT: Final = _ap.PROJECT
TEAM_ID: Final = _ap.TEAM_ID
TEAM_ALIAS: Final = _ap.TEAM_ALIAS
KEY_ALIAS: Final = _ap.KEY_ALIAS
USER_ID: Final = _ap.USER_ID
ORG_ID: Final = _ap.ORG_ID
END_USER_ID: Final = _ap.END_USER_ID
TAGS: Final = _ap.TAGS
PROBE_ID: Final = "agentportal.probe.id"
"""Set by ``agentportal-otel doctor`` on its probe span, so the probe can be found again."""

UNATTRIBUTED: Final = "unattributed"
"""Label shown for a group whose attribute is missing on the span (never an empty string)."""
