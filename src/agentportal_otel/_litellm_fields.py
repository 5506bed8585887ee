"""Where LiteLLM keeps things: every payload field name we read lives in this module.

LiteLLM's logging payload (``kwargs`` of a ``CustomLogger`` hook, and its
``standard_logging_object``) drifts between releases.  The getters here tolerate
missing keys, ``None`` and wrongly typed values, so the mapping never needs a blanket
``try``.  Nothing here imports LiteLLM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

# kwargs
STANDARD_LOGGING_OBJECT: Final = "standard_logging_object"
LITELLM_PARAMS: Final = "litellm_params"
CALL_TYPE_KW: Final = "call_type"
MODEL_KW: Final = "model"
EXCEPTION_KW: Final = "exception"
LITELLM_CALL_ID_KW: Final = "litellm_call_id"
STREAM_KW: Final = "stream"
STANDARD_CALLBACK_DYNAMIC_PARAMS: Final = "standard_callback_dynamic_params"
TURN_OFF_MESSAGE_LOGGING: Final = "turn_off_message_logging"

# standard_logging_object
SLO_ID: Final = "id"
SLO_CALL_ID: Final = "litellm_call_id"
SLO_CALL_TYPE: Final = "call_type"
SLO_STATUS: Final = "status"
SLO_STREAM: Final = "stream"
SLO_CACHE_HIT: Final = "cache_hit"
SLO_PROVIDER: Final = "custom_llm_provider"
SLO_START: Final = "startTime"
SLO_END: Final = "endTime"
SLO_COMPLETION_START: Final = "completionStartTime"
SLO_MODEL: Final = "model"
SLO_MODEL_GROUP: Final = "model_group"
SLO_MODEL_ID: Final = "model_id"
SLO_API_BASE: Final = "api_base"
SLO_HIDDEN_PARAMS: Final = "hidden_params"
SLO_METADATA: Final = "metadata"
SLO_RESPONSE_COST: Final = "response_cost"
SLO_PROMPT_TOKENS: Final = "prompt_tokens"
SLO_COMPLETION_TOKENS: Final = "completion_tokens"
SLO_REQUEST_TAGS: Final = "request_tags"
SLO_END_USER: Final = "end_user"
SLO_REQUESTER_IP: Final = "requester_ip_address"
SLO_USER_AGENT: Final = "user_agent"
SLO_MESSAGES: Final = "messages"
SLO_RESPONSE: Final = "response"
SLO_MODEL_PARAMETERS: Final = "model_parameters"
SLO_ERROR_INFORMATION: Final = "error_information"
SLO_ERROR_STR: Final = "error_str"
SLO_COST_FINALIZED: Final = "cost_finalized"
"""1.110+: whether ``response_cost`` is final (after the proxy's discounts), absent before."""

# standard_logging_object.metadata
META_KEY_HASH: Final = "user_api_key_hash"
META_KEY_ALIAS: Final = "user_api_key_alias"
META_TEAM_ID: Final = "user_api_key_team_id"
META_TEAM_ALIAS: Final = "user_api_key_team_alias"
META_USER_ID: Final = "user_api_key_user_id"
META_USER_EMAIL: Final = "user_api_key_user_email"
META_ORG_ID: Final = "user_api_key_org_id"
META_PROJECT_ID: Final = "user_api_key_project_id"
META_PROJECT_ALIAS: Final = "user_api_key_project_alias"
META_END_USER_ID: Final = "user_api_key_end_user_id"
META_AUTH_METADATA: Final = "user_api_key_auth_metadata"
META_USAGE_OBJECT: Final = "usage_object"
META_REQUESTER_CUSTOM_HEADERS: Final = "requester_custom_headers"
META_IS_SILENT_EXPERIMENT: Final = "is_silent_experiment"
"""1.110+: ``True`` on the router's mirrored "silent experiment" copy of a call."""

# litellm_params
LP_METADATA: Final = "metadata"
LP_LITELLM_METADATA: Final = "litellm_metadata"
LP_KEY_METADATA: Final = "user_api_key_metadata"
LP_TEAM_METADATA: Final = "user_api_key_team_metadata"
LP_PROXY_SERVER_REQUEST: Final = "proxy_server_request"
LP_HEADERS: Final = "headers"
LP_API_BASE: Final = "api_base"

# key and team metadata
METADATA_TAGS: Final = "tags"
"""The key's (or team's) own tags, set by an admin; ``request_tags`` adds the client's."""

# error_information
ERR_CLASS: Final = "error_class"
ERR_CODE: Final = "error_code"
ERR_MESSAGE: Final = "error_message"

# usage details
USAGE_PROMPT_DETAILS: Final = "prompt_tokens_details"
USAGE_COMPLETION_DETAILS: Final = "completion_tokens_details"
USAGE_CACHED_TOKENS: Final = "cached_tokens"
USAGE_CACHE_CREATION_TOKENS: Final = "cache_creation_input_tokens"
USAGE_CACHE_CREATION_TOKENS_DETAIL: Final = "cache_creation_tokens"
USAGE_REASONING_TOKENS: Final = "reasoning_tokens"

# Open-WebUI's forwarded user headers (ENABLE_FORWARD_USER_INFO_HEADERS=true)
OPENWEBUI_USER_ID: Final = "x-openwebui-user-id"
OPENWEBUI_CHAT_ID: Final = "x-openwebui-chat-id"

DEFAULT_API_BASES: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "openai": ("https://api.openai.com/v1", ("OPENAI_BASE_URL", "OPENAI_API_BASE")),
    "text-completion-openai": ("https://api.openai.com/v1", ("OPENAI_BASE_URL", "OPENAI_API_BASE")),
    "anthropic": ("https://api.anthropic.com", ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL")),
}
"""Where LiteLLM sends a provider's calls when the deployment sets no ``api_base``: its default
URL, after the environment variables that override it (``litellm/llms/openai/common_utils.py``,
``litellm/llms/anthropic/common_utils.py``). LiteLLM reports no ``api_base`` for streamed and
failed calls of such deployments; this is what they used."""

MASTER_KEY_HASH: Final = "litellm_proxy_master_key"
"""What LiteLLM writes as the key hash for calls made with the master key."""

EMPTY: Final[Mapping[str, Any]] = {}


# The payload is plain dicts almost always: ``type(x) is dict`` answers before the ``Mapping`` ABC's
# isinstance check, which costs about ten times more and ran ~80 times per call (issue 11).


def _is_mapping(value: object) -> bool:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def mapping(container: object, key: str) -> Mapping[str, Any]:
    """``container[key]`` when both are mappings, else an empty mapping."""
    if type(container) is dict or isinstance(container, Mapping):
        value = container.get(key)
        if type(value) is dict or (value is not None and isinstance(value, Mapping)):
            return value
    return EMPTY


def text(container: object, key: str) -> str | None:
    """A non-empty string at ``container[key]``; ints are accepted as ids."""
    if type(container) is not dict and not isinstance(container, Mapping):
        return None
    value = container.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def count(container: object, key: str) -> int | None:
    """A non-negative whole number at ``container[key]`` (token counts)."""
    if type(container) is not dict and not isinstance(container, Mapping):
        return None
    value = container.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def number(container: object, key: str) -> float | None:
    """A finite float at ``container[key]``."""
    if type(container) is not dict and not isinstance(container, Mapping):
        return None
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def sequence(container: object, key: str) -> Sequence[Any]:
    """A list or tuple at ``container[key]``, else empty."""
    if type(container) is dict or isinstance(container, Mapping):
        value = container.get(key)
        if isinstance(value, (list, tuple)):
            return value
    return ()


def as_mapping(value: object) -> Mapping[str, Any]:
    """``value`` as a mapping: dicts as they are, pydantic models through ``model_dump``."""
    if _is_mapping(value):
        return value  # type: ignore[return-value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            dumped = dump()
        except Exception:  # a broken provider object must not break logging
            return EMPTY
        if _is_mapping(dumped):
            return dumped  # type: ignore[no-any-return]
    return EMPTY


def response_summary(value: object) -> Mapping[str, Any]:
    """What the mapping reads of a response: ``id``, ``model`` and each choice's ``finish_reason``.

    Mappings are returned as they are. LiteLLM's pydantic responses are read by attribute:
    ``model_dump()`` would copy the whole response (and each choice again) for three fields, about
    30 µs per call in the proxy. Anything else goes through :func:`as_mapping`.
    """
    if _is_mapping(value):
        return value  # type: ignore[return-value]
    if not isinstance(getattr(type(value), "model_fields", None), dict):
        return as_mapping(value)
    summary: dict[str, Any] = {"id": getattr(value, "id", None), "model": getattr(value, "model", None)}
    choices = getattr(value, "choices", None)
    if isinstance(choices, (list, tuple)):
        summary["choices"] = [
            choice if _is_mapping(choice) else {"finish_reason": getattr(choice, "finish_reason", None)}
            for choice in choices
        ]
    return summary


def request_metadata(litellm_params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The proxy's request metadata; some routes keep it under ``litellm_metadata``."""
    metadata = mapping(litellm_params, LP_METADATA)
    if LP_KEY_METADATA in metadata or LP_TEAM_METADATA in metadata:
        return metadata
    other = mapping(litellm_params, LP_LITELLM_METADATA)
    return other or metadata


def request_headers(litellm_params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The incoming HTTP request's headers, as the proxy recorded them."""
    headers = mapping(mapping(litellm_params, LP_PROXY_SERVER_REQUEST), LP_HEADERS)
    return headers or mapping(request_metadata(litellm_params), LP_HEADERS)
