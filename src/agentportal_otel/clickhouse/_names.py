"""Attribute names the ClickHouse layer reads from ``SpanAttributes``.

These mirror the constants of ``agentportal_otel._attributes`` (owned by the core). They are
repeated here so the ClickHouse layer and the CLI import without the core; once
``_attributes`` is stable these should become re-exports of it.
"""

from __future__ import annotations

from typing import Final

OPERATION_NAME: Final = "gen_ai.operation.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
ERROR_TYPE: Final = "error.type"
COST_USD: Final = "agentportal.cost.usd"
PROJECT: Final = "agentportal.project"
TEAM_ID: Final = "agentportal.team.id"
TEAM_ALIAS: Final = "agentportal.team.alias"
KEY_ALIAS: Final = "agentportal.key.alias"
USER_ID: Final = "agentportal.user.id"
ORG_ID: Final = "agentportal.org.id"
END_USER_ID: Final = "agentportal.end_user.id"
TAGS: Final = "agentportal.tags"
PROBE_ID: Final = "agentportal.probe.id"
"""Set by ``agentportal-otel doctor`` on its probe span, so the probe can be found again."""

UNATTRIBUTED: Final = "unattributed"
"""Label shown for a group whose attribute is missing on the span (never an empty string)."""
