"""Hook payloads and process settings shared by the mapping and conformance tests."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any


def hook_kwargs(slo: dict[str, Any] | None = None, lp: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The ``kwargs`` of a LiteLLM success hook for a chat completion: a standard logging
    object (``slo`` overrides its fields), ``litellm_params`` (``lp``) and any other keyword."""
    base: dict[str, Any] = {
        "id": "chatcmpl-1",
        "litellm_call_id": "call-1",
        "call_type": "acompletion",
        "status": "success",
        "custom_llm_provider": "openai",
        "startTime": 1_700_000_000.5,
        "endTime": 1_700_000_001.25,
        "model": "gpt-4o",
        "model_group": "team-gpt",
        "metadata": {},
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "response_cost": 0.001,
    }
    base.update(slo or {})
    return {"standard_logging_object": base, "litellm_params": lp or {}, **extra}


@contextlib.contextmanager
def local_zone(zone: str) -> Iterator[None]:
    """Run with the process's local time zone set to ``zone`` (``TZ`` and ``tzset``)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
