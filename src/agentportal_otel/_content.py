"""Opt-in capture of prompts and completions in the GenAI semantic-convention format.

Off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``; LiteLLM's own
``turn_off_message_logging`` (global or per request) always wins.  Messages become
``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON (``role`` plus ``parts``),
every text part is passed through :func:`agentportal_otel._redact.redact`, and each
attribute is capped to the configured length while staying valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agentportal_otel import _litellm_fields as f
from agentportal_otel._redact import redact
from agentportal_otel._values import TRUNCATION_MARK

_MAX_MESSAGES = 256


def _text_parts(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": redact(content)}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Sequence):
        for item in content:
            if not isinstance(item, Mapping):
                continue
            kind = item.get("type")
            if kind == "text" and isinstance(item.get("text"), str):
                parts.append({"type": "text", "content": redact(item["text"])})
            elif isinstance(kind, str):
                # Images, audio and files are named, never copied (size and privacy).
                parts.append({"type": kind})
    return parts


def _tool_call_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for call in f.sequence(message, "tool_calls"):
        call = f.as_mapping(call)
        function = f.mapping(call, "function")
        part: dict[str, Any] = {
            "type": "tool_call",
            "id": f.text(call, "id"),
            "name": f.text(function, "name"),
        }
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            part["arguments"] = redact(arguments)
        parts.append(part)
    return parts


def _message(message: object) -> dict[str, Any] | None:
    message = f.as_mapping(message)
    if not message:
        return None
    role = f.text(message, "role") or "user"
    parts = _text_parts(message.get("content")) + _tool_call_parts(message)
    if role == "tool":
        parts = [
            {
                "type": "tool_call_response",
                "id": f.text(message, "tool_call_id"),
                "response": redact(message["content"]) if isinstance(message.get("content"), str) else None,
            }
        ]
    return {"role": role, "parts": parts}


def input_messages(messages: object) -> list[dict[str, Any]]:
    """LiteLLM's request messages (or an embedding/completion input) as semconv messages."""
    if isinstance(messages, str):
        return [{"role": "user", "parts": [{"type": "text", "content": redact(messages)}]}]
    result: list[dict[str, Any]] = []
    if isinstance(messages, Sequence):
        for item in list(messages)[:_MAX_MESSAGES]:
            if isinstance(item, str):
                result.append({"role": "user", "parts": [{"type": "text", "content": redact(item)}]})
                continue
            converted = _message(item)
            if converted is not None:
                result.append(converted)
    return result


def output_messages(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The response's choices as semconv output messages."""
    result: list[dict[str, Any]] = []
    for choice in f.sequence(response, "choices")[:_MAX_MESSAGES]:
        choice = f.as_mapping(choice)
        converted = _message(f.mapping(choice, "message"))
        if converted is None:
            continue
        converted["role"] = converted.get("role") or "assistant"
        converted["finish_reason"] = f.text(choice, "finish_reason") or "stop"
        result.append(converted)
    return result


def _shrink(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > budget:
            return value[:budget] + TRUNCATION_MARK
        if isinstance(value, dict):
            return {key: cut(item) for key, item in value.items()}
        if isinstance(value, list):
            return [cut(item) for item in value]
        return value

    return [cut(message) for message in messages]


def encode_capped(messages: list[dict[str, Any]], limit: int) -> str:
    """JSON for ``messages`` of at most ``limit`` characters that still parses.

    Long strings are cut (and marked) with a shrinking budget; if even that cannot fit,
    trailing messages are dropped.
    """
    encoded = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    budget = limit
    while len(encoded) > limit and budget > 8:
        budget //= 2
        encoded = json.dumps(_shrink(messages, budget), ensure_ascii=False, separators=(",", ":"))
    kept = _shrink(messages, budget)
    while len(encoded) > limit and kept:
        kept = kept[:-1]
        encoded = json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
    return encoded if len(encoded) <= limit else "[]"
