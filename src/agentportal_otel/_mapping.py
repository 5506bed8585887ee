"""LiteLLM logging payload -> one GenAI call record (a pure function, no OpenTelemetry I/O).

:func:`map_call` reads a ``CustomLogger`` hook's ``kwargs`` (above all its
``standard_logging_object``) and returns a :class:`CallRecord`: span name, exact
timestamps, span attributes, low-cardinality metric attributes and the numbers the
metrics need.  Field names come from :mod:`agentportal_otel._litellm_fields`; every
attribute value is a valid OTel type and every string is capped.

Identity comes only from the authenticated key (``user_api_key_*`` fields and the
key/team metadata the proxy attached), never from client-supplied request metadata.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes import user_attributes
from opentelemetry.semconv.attributes import (
    client_attributes,
    error_attributes,
    server_attributes,
    user_agent_attributes,
)
from opentelemetry.util.types import AttributeValue

from agentportal_otel import _attributes as ap
from agentportal_otel import _content
from agentportal_otel import _litellm_fields as f
from agentportal_otel._redact import redact_exact
from agentportal_otel._settings import Settings
from agentportal_otel._values import cap, string_array, to_attribute

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_NAIVE_EPOCH: Final = dt.datetime(1970, 1, 1)
_NS_PER_DAY: Final = 86_400 * 10**9
_ID_LIMIT: Final = 256
_MESSAGE_LIMIT: Final = 1024

OPERATIONS: Final[Mapping[str, str]] = {
    "completion": "chat",
    "acompletion": "chat",
    "responses": "chat",
    "aresponses": "chat",
    "anthropic_messages": "chat",
    "text_completion": "text_completion",
    "atext_completion": "text_completion",
    "embedding": "embeddings",
    "aembedding": "embeddings",
}
"""LiteLLM call types -> ``gen_ai.operation.name``; anything else keeps its raw name."""

PROVIDERS: Final[Mapping[str, str]] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "anthropic_text": "anthropic",
    "bedrock": "aws.bedrock",
    "sagemaker": "aws.sagemaker",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "watsonx": "ibm.watsonx.ai",
    "watsonx_text": "ibm.watsonx.ai",
    "perplexity": "perplexity",
    "xai": "x_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "text-completion-codestral": "mistral_ai",
    "bedrock_converse": "aws.bedrock",
}
"""LiteLLM provider names -> ``gen_ai.provider.name`` well-known values of v1.41.0.

Any other LiteLLM name is kept as a custom value, which the conventions allow ("If one of them
applies, then the respective value MUST be used; otherwise, a custom value MAY be used")."""

LATEST_PROVIDERS: Final[Mapping[str, str]] = {**PROVIDERS, "moonshot": "moonshot_ai"}
"""The same for the latest conventions, which add ``moonshot_ai``."""

PROVIDER_HOSTS: Final[Mapping[str, str]] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "api.mistral.ai": "mistral_ai",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
}
"""Well-known endpoints -> provider, for a call whose LiteLLM provider is unknown: the
conventions name ``server.address`` as what "may help identify the actual system in use"
and tie ``gcp.gemini``/``gcp.vertex_ai`` to their endpoints."""

UNKNOWN_PROVIDER: Final = "unknown"
"""Custom ``gen_ai.provider.name`` value when neither LiteLLM nor the endpoint names a provider
(e.g. a request for a model no deployment serves). ``_OTHER`` is ``error.type``'s fallback,
not a provider value."""

GENERATION_OPERATIONS: Final = frozenset({"chat", "text_completion"})
"""Operations that generate, and so have finish reasons (inference operations)."""

_FLOAT_PARAMS: Final = (
    ("temperature", gen_ai.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", gen_ai.GEN_AI_REQUEST_TOP_P),
    ("frequency_penalty", gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY),
)
_INT_PARAMS: Final = (
    ("max_tokens", gen_ai.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_completion_tokens", gen_ai.GEN_AI_REQUEST_MAX_TOKENS),
    ("seed", gen_ai.GEN_AI_REQUEST_SEED),
    ("top_k", gen_ai.GEN_AI_REQUEST_TOP_K),
    ("n", gen_ai.GEN_AI_REQUEST_CHOICE_COUNT),
)


@dataclasses.dataclass(slots=True)
class CallRecord:
    """Everything emitted for one LLM call attempt."""

    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    metric_attributes: dict[str, AttributeValue]
    """Low-cardinality dimensions; tenant values are folded by the emitter's cap."""
    operation: str
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    time_to_first_chunk_s: float | None
    error_type: str | None
    error_message: str | None
    dedupe_key: tuple[str, str] | None
    trace_headers: Mapping[str, str]
    """``traceparent``/``tracestate`` of the incoming proxy request, if any."""

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9


def to_ns(value: object) -> int | None:
    """Exact integer nanoseconds since the epoch.

    Naive datetimes are local time, which is what LiteLLM's ``datetime.now()`` gives;
    floats (epoch seconds) are only a fallback because they cannot carry nanoseconds.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            delta = value - _EPOCH
        elif time.timezone == 0 and not time.daylight:
            # Local time is UTC (containers, by default): no astimezone(), which asks the C
            # library for the zone of every datetime and cost ≈ 10 µs per call in the proxy.
            delta = value - _NAIVE_EPOCH
        else:
            delta = value.astimezone() - _EPOCH
        return delta.days * _NS_PER_DAY + delta.seconds * 10**9 + delta.microseconds * 1000
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value * 10**9
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        whole = int(value)
        return whole * 10**9 + round((value - whole) * 1e9)
    return None


def operation_name(call_type: str | None) -> str:
    if not call_type:
        return "chat"
    return OPERATIONS.get(call_type) or cap(call_type, _ID_LIMIT)


def provider_name(raw: str | None, server_address: str | None = None, *, latest: bool = False) -> str:
    """The well-known value for LiteLLM's provider, else LiteLLM's name as a custom value."""
    known = LATEST_PROVIDERS if latest else PROVIDERS
    if raw:
        lowered = raw.strip().lower()
        return known.get(lowered) or cap(lowered, _ID_LIMIT)
    if server_address:
        return PROVIDER_HOSTS.get(server_address.lower(), UNKNOWN_PROVIDER)
    return UNKNOWN_PROVIDER


def _api_base(
    slo: Mapping[str, Any], litellm_params: Mapping[str, Any], raw_provider: str | None, environ: Mapping[str, str]
) -> str | None:
    """The deployment's URL: what LiteLLM reports, else its default for the provider."""
    reported = (
        f.text(slo, f.SLO_API_BASE)
        or f.text(f.mapping(slo, f.SLO_HIDDEN_PARAMS), "api_base")
        or f.text(litellm_params, f.LP_API_BASE)
    )
    if reported or not raw_provider:
        return reported
    default = f.DEFAULT_API_BASES.get(raw_provider)
    if default is None:
        return None
    url, overrides = default
    for name in overrides:
        value = environ.get(name)
        if value:
            return value
    return url


@functools.lru_cache(maxsize=256)
def _server(api_base: str | None) -> Mapping[str, AttributeValue]:
    """``server.address`` and ``server.port`` of a deployment URL (cached: a proxy has few; read-only)."""
    if not api_base:
        return {}
    try:
        parts = urlsplit(api_base)
        port = parts.port
    except ValueError:
        return {}
    if not parts.hostname:
        return {}
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    result: dict[str, AttributeValue] = {server_attributes.SERVER_ADDRESS: parts.hostname}
    if port is not None:
        result[server_attributes.SERVER_PORT] = port
    return result


def _request_parameters(params: Mapping[str, Any], latest: bool) -> dict[str, AttributeValue]:
    result: dict[str, AttributeValue] = {}
    if not params:
        return result
    for key, name in _FLOAT_PARAMS:
        if params.get(key) is not None:  # most are absent: skip the getter's checks
            value = f.number(params, key)
            if value is not None:
                result[name] = value
    for key, name in _INT_PARAMS:
        if params.get(key) is not None:
            count = f.count(params, key)
            if count is not None:
                result.setdefault(name, count)
    top_k = result.get(gen_ai.GEN_AI_REQUEST_TOP_K)
    if isinstance(top_k, int) and not latest:
        result[gen_ai.GEN_AI_REQUEST_TOP_K] = float(top_k)  # a double in v1.41.0, an int in the latest
    stop = params.get("stop")
    if isinstance(stop, str):
        result[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = (cap(stop, _ID_LIMIT),)
    elif isinstance(stop, (list, tuple)) and stop:
        result[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = string_array(stop, _ID_LIMIT)
    return result


@dataclasses.dataclass(slots=True)
class _Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None


def _usage(slo: Mapping[str, Any], operation: str, latest: bool) -> tuple[_Usage, dict[str, AttributeValue]]:
    usage = f.mapping(f.mapping(slo, f.SLO_METADATA), f.META_USAGE_OBJECT)
    input_tokens = f.count(slo, f.SLO_PROMPT_TOKENS)
    output_tokens = f.count(slo, f.SLO_COMPLETION_TOKENS) if operation != "embeddings" else None
    result: dict[str, AttributeValue] = {}
    if input_tokens is not None:
        result[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if output_tokens is not None:
        result[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    prompt_details = f.mapping(usage, f.USAGE_PROMPT_DETAILS)
    cached = f.count(prompt_details, f.USAGE_CACHED_TOKENS)
    if cached is not None:
        result[gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
    created = f.count(usage, f.USAGE_CACHE_CREATION_TOKENS)
    if created is None:
        created = f.count(prompt_details, f.USAGE_CACHE_CREATION_TOKENS_DETAIL)
    if created is not None:
        name = ap.LATEST_USAGE_CACHE_WRITE_INPUT_TOKENS if latest else gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
        result[name] = created
    reasoning = f.count(f.mapping(usage, f.USAGE_COMPLETION_DETAILS), f.USAGE_REASONING_TOKENS)
    if reasoning is not None:
        result[gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    return _Usage(input_tokens, output_tokens, cached, created, reasoning), result


def _response(response: Mapping[str, Any]) -> dict[str, AttributeValue]:
    result: dict[str, AttributeValue] = {}
    response_id = f.text(response, "id")
    if response_id:
        result[gen_ai.GEN_AI_RESPONSE_ID] = cap(response_id, _ID_LIMIT)
    reasons = [
        reason
        for choice in f.sequence(response, "choices")
        if (reason := f.text(choice if type(choice) is dict else f.as_mapping(choice), "finish_reason")) is not None
    ]
    if reasons:
        result[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = string_array(reasons, _ID_LIMIT)
    return result


def _project(
    key_meta: Mapping[str, Any],
    team_meta: Mapping[str, Any],
    merged_meta: Mapping[str, Any],
    slo_meta: Mapping[str, Any],
    field: str,
) -> tuple[str, str] | None:
    """The project and where it came from; first hit wins.

    Key metadata is read before team metadata on purpose: LiteLLM's merged view lets the
    team override the key.  The merged view is only a fallback for payloads that lack
    the separate dicts.  A ``project:<name>`` tag counts only among the key's (or team's)
    own tags: the request's tags also hold whatever the client sent in the body or the
    ``x-litellm-tags`` header, so any caller could pick a project with them.
    """
    for source, container in (("key", key_meta), ("team", team_meta), ("metadata", merged_meta)):
        value = f.text(container, field)
        if value:
            return value, source
    for key in (f.META_PROJECT_ALIAS, f.META_PROJECT_ID):
        value = f.text(slo_meta, key)
        if value:
            return value, "litellm"
    for container in (key_meta, team_meta, merged_meta):
        for tag in f.sequence(container, f.METADATA_TAGS):
            if isinstance(tag, str) and tag.startswith("project:") and len(tag) > len("project:"):
                return tag[len("project:") :], "tag"
    return None


def _tenant(slo: Mapping[str, Any], litellm_params: Mapping[str, Any], settings: Settings) -> dict[str, AttributeValue]:
    limit = settings.max_attribute_length
    meta = f.mapping(slo, f.SLO_METADATA)
    request_meta = f.request_metadata(litellm_params)
    key_meta = f.mapping(request_meta, f.LP_KEY_METADATA)
    team_meta = f.mapping(request_meta, f.LP_TEAM_METADATA)
    merged_meta = f.mapping(meta, f.META_AUTH_METADATA)
    result: dict[str, AttributeValue] = {}
    for name, key in (
        (ap.KEY_HASH, f.META_KEY_HASH),
        (ap.KEY_ALIAS, f.META_KEY_ALIAS),
        (ap.TEAM_ID, f.META_TEAM_ID),
        (ap.TEAM_ALIAS, f.META_TEAM_ALIAS),
        (ap.USER_ID, f.META_USER_ID),
        (ap.ORG_ID, f.META_ORG_ID),
    ):
        value = f.text(meta, key)
        if value:
            result[name] = cap(value, _ID_LIMIT)
    if settings.master_key_hash is not None and result.get(ap.KEY_HASH) == settings.master_key_hash:
        result[ap.KEY_HASH] = f.MASTER_KEY_HASH

    headers = {str(k).lower(): v for k, v in f.mapping(meta, f.META_REQUESTER_CUSTOM_HEADERS).items()}
    end_user = f.text(slo, f.SLO_END_USER) or f.text(meta, f.META_END_USER_ID) or f.text(headers, f.OPENWEBUI_USER_ID)
    if end_user:
        result[ap.END_USER_ID] = cap(end_user, _ID_LIMIT)
    conversation = f.text(headers, f.OPENWEBUI_CHAT_ID)
    if conversation:
        result[gen_ai.GEN_AI_CONVERSATION_ID] = cap(conversation, _ID_LIMIT)

    raw_tags = [tag for tag in f.sequence(slo, f.SLO_REQUEST_TAGS) if isinstance(tag, str) and tag]
    if not settings.capture_user_agent:
        # LiteLLM adds "User-Agent: <ua>" tags on its own; the user agent is opt-in.
        raw_tags = [tag for tag in raw_tags if not tag.lower().startswith("user-agent:")]
    tags = string_array(list(dict.fromkeys(raw_tags)), _ID_LIMIT)
    if tags:
        result[ap.TAGS] = tags

    project = _project(key_meta, team_meta, merged_meta, meta, settings.project_metadata_field)
    if project is not None:
        result[ap.PROJECT] = cap(project[0], _ID_LIMIT)
        result[ap.PROJECT_SOURCE] = project[1]

    for field in settings.key_metadata_allowlist:
        if field in key_meta and key_meta[field] is not None:
            result[ap.KEY_METADATA_PREFIX + field] = to_attribute(key_meta[field], limit)

    if settings.capture_user_email:
        email = f.text(meta, f.META_USER_EMAIL)
        if email:
            result[user_attributes.USER_EMAIL] = cap(email, _ID_LIMIT)
    if settings.capture_client_address:
        address = f.text(slo, f.SLO_REQUESTER_IP) or f.text(meta, f.SLO_REQUESTER_IP)
        if address:
            result[client_attributes.CLIENT_ADDRESS] = cap(address, _ID_LIMIT)
    if settings.capture_user_agent:
        agent = f.text(slo, f.SLO_USER_AGENT) or f.text(meta, f.SLO_USER_AGENT)
        if agent:
            result[user_agent_attributes.USER_AGENT_ORIGINAL] = cap(agent, limit)
    return result


def _error(kwargs: Mapping[str, Any], slo: Mapping[str, Any], litellm_params: Mapping[str, Any]) -> tuple[str, str]:
    info = f.mapping(slo, f.SLO_ERROR_INFORMATION)
    exception = kwargs.get(f.EXCEPTION_KW)
    error_type = f.text(info, f.ERR_CLASS) or (
        type(exception).__name__ if isinstance(exception, BaseException) else "_OTHER"
    )
    message = f.text(info, f.ERR_MESSAGE) or f.text(slo, f.SLO_ERROR_STR)
    if message is None and isinstance(exception, BaseException):
        message = str(exception)
    secrets = tuple(
        value for value in (f.text(litellm_params, "api_key"), f.text(kwargs, "api_key")) if value is not None
    )
    return error_type, cap(redact_exact(message or error_type, secrets), _MESSAGE_LIMIT)


def _trace_headers(litellm_params: Mapping[str, Any]) -> Mapping[str, str]:
    headers = f.request_headers(litellm_params)
    result: dict[str, str] = {}
    for key, value in headers.items():
        lowered = str(key).lower()
        if lowered in ("traceparent", "tracestate") and isinstance(value, str):
            result[lowered] = value
    return result


def map_call(
    kwargs: Mapping[str, Any],
    response_obj: object,
    start_time: object,
    end_time: object,
    settings: Settings,
    *,
    failed: bool = False,
) -> CallRecord:
    """Map one LiteLLM hook invocation to a :class:`CallRecord`."""
    slo = f.mapping(kwargs, f.STANDARD_LOGGING_OBJECT)
    litellm_params = f.mapping(kwargs, f.LITELLM_PARAMS)
    latest = settings.semconv_latest

    call_type = f.text(slo, f.SLO_CALL_TYPE) or f.text(kwargs, f.CALL_TYPE_KW)
    operation = operation_name(call_type)
    raw_provider = f.text(slo, f.SLO_PROVIDER) or f.text(litellm_params, "custom_llm_provider")
    server = _server(_api_base(slo, litellm_params, raw_provider, settings.environ))
    address = server.get(server_attributes.SERVER_ADDRESS)
    provider = provider_name(raw_provider, address if isinstance(address, str) else None, latest=latest)
    request_model = (
        f.text(slo, f.SLO_MODEL_GROUP) or f.text(kwargs, f.MODEL_KW) or f.text(slo, f.SLO_MODEL) or "unknown"
    )
    failed = failed or f.text(slo, f.SLO_STATUS) == "failure"
    response = f.response_summary(response_obj) if response_obj is not None else f.EMPTY
    if not response:
        response = f.mapping(slo, f.SLO_RESPONSE)
    # The model that answered: on a failure only a response that came back can say.
    response_model = f.text(response, "model") or (None if failed else f.text(slo, f.SLO_MODEL))

    start_ns = to_ns(start_time) or to_ns(slo.get(f.SLO_START)) or 0
    end_ns = to_ns(end_time) or to_ns(slo.get(f.SLO_END)) or start_ns
    end_ns = max(end_ns, start_ns)

    attributes: dict[str, AttributeValue] = {
        gen_ai.GEN_AI_OPERATION_NAME: operation,
        gen_ai.GEN_AI_PROVIDER_NAME: provider,
        gen_ai.GEN_AI_REQUEST_MODEL: cap(request_model, _ID_LIMIT),
    }
    if raw_provider and raw_provider != provider:
        attributes[ap.LITELLM_PROVIDER] = cap(raw_provider, _ID_LIMIT)
    if response_model:
        attributes[gen_ai.GEN_AI_RESPONSE_MODEL] = cap(response_model, _ID_LIMIT)
    model_parameters = f.mapping(slo, f.SLO_MODEL_PARAMETERS)
    attributes.update(_request_parameters(model_parameters, latest))
    streamed = slo.get(f.SLO_STREAM) is True or kwargs.get(f.STREAM_KW) is True
    if streamed:
        # Conditionally Required "if and only if the request is streaming".
        attributes[gen_ai.GEN_AI_REQUEST_STREAM] = True
    attributes.update(server)

    call_id = f.text(slo, f.SLO_CALL_ID) or f.text(kwargs, f.LITELLM_CALL_ID_KW)
    if call_id:
        attributes[ap.LITELLM_CALL_ID] = cap(call_id, _ID_LIMIT)
    if call_type:
        attributes[ap.LITELLM_CALL_TYPE] = cap(call_type, _ID_LIMIT)
    model_id = f.text(slo, f.SLO_MODEL_ID)
    if model_id:
        attributes[ap.LITELLM_MODEL_ID] = cap(model_id, _ID_LIMIT)
    if slo.get(f.SLO_CACHE_HIT) is True:
        attributes[ap.CACHE_HIT] = True
    silent = f.mapping(slo, f.SLO_METADATA).get(f.META_IS_SILENT_EXPERIMENT) is True
    if silent:
        attributes[ap.SILENT_EXPERIMENT] = True

    usage = _Usage()
    if not failed:
        usage, usage_attributes = _usage(slo, operation, latest)
        attributes.update(usage_attributes)
        attributes.update(_response(response))
    elif operation in GENERATION_OPERATIONS:
        # The latest conventions: "If a finish reason was expected but not received, for
        # example because generation failed, [...] instrumentations SHOULD report `error`".
        choices = f.count(model_parameters, "n") or 1
        attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = ("error",) * min(choices, 128)
    cost = f.number(slo, f.SLO_RESPONSE_COST)
    if cost is not None and cost >= 0:
        attributes[ap.COST_USD] = cost
        finalized = slo.get(f.SLO_COST_FINALIZED)
        if isinstance(finalized, bool):
            attributes[ap.COST_FINALIZED] = finalized
    else:
        cost = None

    ttfc: float | None = None
    if streamed and not failed:
        first = f.number(slo, f.SLO_COMPLETION_START)
        started = f.number(slo, f.SLO_START)
        if first is not None and started is not None and first >= started:
            ttfc = first - started
            attributes[gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc

    error_type: str | None = None
    error_message: str | None = None
    if failed:
        error_type, error_message = _error(kwargs, slo, litellm_params)
        attributes[error_attributes.ERROR_TYPE] = cap(error_type, _ID_LIMIT)

    tenant = _tenant(slo, litellm_params, settings)
    attributes.update(tenant)
    attributes.update(_extra_conventions(attributes, cost, settings.extra_conventions))

    metric_attributes: dict[str, AttributeValue] = {
        gen_ai.GEN_AI_OPERATION_NAME: operation,
        gen_ai.GEN_AI_PROVIDER_NAME: provider,
        gen_ai.GEN_AI_REQUEST_MODEL: attributes[gen_ai.GEN_AI_REQUEST_MODEL],
    }
    # Recommended on every GenAI metric point "where known"; all three are low-cardinality.
    for name in (gen_ai.GEN_AI_RESPONSE_MODEL, server_attributes.SERVER_ADDRESS, server_attributes.SERVER_PORT):
        if name in attributes:
            metric_attributes[name] = attributes[name]
    team = tenant.get(ap.TEAM_ALIAS) or tenant.get(ap.TEAM_ID)
    if team is not None:
        metric_attributes[ap.TEAM] = team
    if ap.PROJECT in tenant:
        metric_attributes[ap.PROJECT] = tenant[ap.PROJECT]
    if silent:
        metric_attributes[ap.SILENT_EXPERIMENT] = True
    if error_type is not None:
        metric_attributes[error_attributes.ERROR_TYPE] = attributes[error_attributes.ERROR_TYPE]

    start_marker = slo.get(f.SLO_START)
    dedupe_key = (call_id, repr(start_marker if start_marker is not None else start_ns)) if call_id else None
    return CallRecord(
        name=f"{operation} {cap(request_model, _ID_LIMIT)}",
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=attributes,
        metric_attributes=metric_attributes,
        operation=operation,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_write,
        reasoning_tokens=usage.reasoning,
        cost_usd=cost,
        time_to_first_chunk_s=ttfc,
        error_type=error_type,
        error_message=error_message,
        dedupe_key=dedupe_key,
        trace_headers=_trace_headers(litellm_params),
    )


def _extra_conventions(
    attributes: Mapping[str, AttributeValue], cost: float | None, backends: tuple[str, ...]
) -> dict[str, AttributeValue]:
    """The attributes other backends read for cost and user (``AGENTPORTAL_OTEL_EXTRA_CONVENTIONS``).

    Langfuse's OTel ingest takes the cost from ``gen_ai.usage.cost`` (else ``llm.cost.total``)
    and the user from ``langfuse.user.id`` or ``user.id`` (the session it already reads from
    ``gen_ai.conversation.id``); OpenLIT's dashboards sum ``gen_ai.usage.cost``. The user is the
    end user when LiteLLM knows one (the person behind a shared key), else the key's user.
    """
    result: dict[str, AttributeValue] = {}
    if not backends:
        return result
    if cost is not None:
        result[ap.BACKEND_USAGE_COST] = cost
    if "langfuse" in backends:
        user = attributes.get(ap.END_USER_ID) or attributes.get(ap.USER_ID)
        if user is not None:
            result[user_attributes.USER_ID] = user
    return result


def content_attributes(
    kwargs: Mapping[str, Any], response_obj: object, settings: Settings, *, global_off: bool = False
) -> dict[str, AttributeValue]:
    """Prompt/completion attributes when capture is on and LiteLLM does not forbid it."""
    if not settings.capture_message_content or global_off:
        return {}
    dynamic = f.mapping(kwargs, f.STANDARD_CALLBACK_DYNAMIC_PARAMS)
    if dynamic.get(f.TURN_OFF_MESSAGE_LOGGING) is True:
        return {}
    slo = f.mapping(kwargs, f.STANDARD_LOGGING_OBJECT)
    limit = settings.max_attribute_length
    result: dict[str, AttributeValue] = {}
    messages = slo.get(f.SLO_MESSAGES)
    if messages is None:
        messages = kwargs.get("messages") or kwargs.get("input")
    inputs = _content.input_messages(messages)
    if inputs:
        result[gen_ai.GEN_AI_INPUT_MESSAGES] = _content.encode_capped(inputs, limit)
    response = f.as_mapping(response_obj) if response_obj is not None else f.EMPTY
    outputs = _content.output_messages(response or f.mapping(slo, f.SLO_RESPONSE))
    if outputs:
        result[gen_ai.GEN_AI_OUTPUT_MESSAGES] = _content.encode_capped(outputs, limit)
    return result
