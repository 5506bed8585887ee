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

COST_FINALIZED: Final = "agentportal.cost.finalized"
"""LiteLLM 1.110+: ``True`` when ``agentportal.cost.usd`` is the proxy's final cost (after
allowance discounts and free tiers), ``False`` when it is LiteLLM's price estimate before that
finalization, which the proxy's own spend logs may lower. Absent on older releases."""

SILENT_EXPERIMENT: Final = "agentportal.litellm.silent_experiment"
"""LiteLLM 1.110+: ``True`` on a mirrored "silent experiment" call (the router sends a copy of
a request to a second model and discards its answer). Set on spans and, only then, as a metric
dimension, so dashboards can exclude or compare them; usage and cost count them."""

# --- names of the latest GenAI conventions -----------------------------------------------
# The current open-telemetry/semantic-conventions-genai repository (no release yet; opted
# into with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental). These names are not in
# opentelemetry-semantic-conventions, which follows the v1.41.0 release.
LATEST_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
"""Renamed from ``gen_ai.usage.cache_creation.input_tokens``."""
LATEST_TOKEN_MODALITY: Final = "gen_ai.token.modality"
LATEST_METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
LATEST_METRIC_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
LATEST_METRIC_INFERENCE_USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
LATEST_METRIC_INFERENCE_USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
LATEST_METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
LATEST_METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
LATEST_METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
LATEST_METRIC_INFERENCE_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
LATEST_METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
LATEST_METRIC_EMBEDDINGS_DURATION: Final = "gen_ai.client.embeddings.duration"
LATEST_METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.embeddings.operation.input_tokens"

# --- other backends' names (AGENTPORTAL_OTEL_EXTRA_CONVENTIONS) ------------------------------
BACKEND_USAGE_COST: Final = "gen_ai.usage.cost"
"""Cost of the call; read by Langfuse's OTel ingest and OpenLIT's dashboards (not a semconv name)."""
