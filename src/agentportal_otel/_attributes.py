"""Names of the attributes and metrics agentportal-otel adds beyond the semantic conventions.

Everything of ours lives under one namespace, ``agentportal.``.  Standard names (GenAI,
``error.type``, ``server.*``, ``user.email``, ...) are imported from ``opentelemetry.semconv``
where they are used.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "agentportal"

# --- per call -------------------------------------------------------------------------
COST_USD: Final = "agentportal.cost.usd"
"""Cost of the call in US dollars as LiteLLM computed it (float)."""

LITELLM_CALL_ID: Final = "agentportal.litellm.call_id"
"""LiteLLM's id for this call (``litellm_call_id``); identifies the attempt."""

LITELLM_CALL_TYPE: Final = "agentportal.litellm.call_type"
"""LiteLLM's call type (``acompletion``, ``aembedding``, ...)."""

LITELLM_PROVIDER: Final = "agentportal.litellm.provider"
"""LiteLLM's raw provider name when it differs from ``gen_ai.provider.name``."""

LITELLM_MODEL_ID: Final = "agentportal.litellm.model_id"
"""The router deployment id that served the call."""

CACHE_HIT: Final = "agentportal.cache_hit"
"""True when LiteLLM answered from its cache."""

# --- tenant attribution (from the authenticated virtual key only) ------------------------
PROJECT: Final = "agentportal.project"
TEAM_ID: Final = "agentportal.team.id"
TEAM_ALIAS: Final = "agentportal.team.alias"
KEY_ALIAS: Final = "agentportal.key.alias"
KEY_HASH: Final = "agentportal.key.hash"
"""LiteLLM's sha256 hash of the virtual key, or ``litellm_proxy_master_key``; never the key."""
USER_ID: Final = "agentportal.user.id"
ORG_ID: Final = "agentportal.org.id"
END_USER_ID: Final = "agentportal.end_user.id"
TAGS: Final = "agentportal.tags"
KEY_METADATA_PREFIX: Final = "agentportal.key.metadata."
PROJECT_SOURCE: Final = "agentportal.project.source"
"""Where the project came from: ``key``, ``team``, ``litellm``, ``tag``."""

# --- metrics ----------------------------------------------------------------------------
METRIC_COST: Final = "agentportal.client.cost"
"""Counter of US dollars spent, by the low-cardinality metric dimensions."""

OTHER: Final = "other"
"""Value a tenant dimension folds into beyond the cardinality cap."""

TEAM: Final = "agentportal.team"
"""Metric dimension: the team alias, else the team id."""
