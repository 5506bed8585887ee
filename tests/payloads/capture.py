"""Capture scrubbed LiteLLM logging payloads for the drift tests (``tests/test_payload_drift.py``).

Run with the LiteLLM version to record, from the repository root::

    LITELLM_LOCAL_MODEL_COST_MAP=True python tests/payloads/capture.py

It writes ``litellm-<version>.json``: for a chat call, a streamed chat call, a rate-limited
call and an embedding, the hook's ``kwargs`` reduced to what the mapping reads
(``standard_logging_object`` and ``litellm_params.metadata``), with secrets, tracebacks and
the model-cost map removed, and proxy-style identity fields filled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

DROP = {"model_map_information", "traceback", "api_key", "hidden_params_raw", "cost_breakdown"}
IDENTITY = {
    "user_api_key_hash": "0" * 64,
    "user_api_key_alias": "fixture-key",
    "user_api_key_team_id": "team-fixture",
    "user_api_key_team_alias": "fixture-team",
    "user_api_key_user_id": "user-fixture",
    "user_api_key_org_id": "org-fixture",
}


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): scrub(v) for k, v in value.items() if k not in DROP}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(type(value).__name__)


class Capture(CustomLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def _keep(self, kind: str, kwargs: dict[str, Any]) -> None:
        slo = dict(kwargs.get("standard_logging_object") or {})
        slo["metadata"] = {**(slo.get("metadata") or {}), **IDENTITY}
        lp_meta = {
            "user_api_key_metadata": {"project": "fixture-project"},
            "user_api_key_team_metadata": {"project": "team-project"},
        }
        self.events.append(
            {"kind": kind, "kwargs": scrub({"standard_logging_object": slo, "litellm_params": {"metadata": lp_meta}})}
        )

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        self._keep("success", kwargs)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        self._keep("failure", kwargs)


async def main() -> None:
    capture = Capture()
    litellm.callbacks = [capture]
    messages = [{"role": "user", "content": "hi"}]
    await litellm.acompletion(model="openai/gpt-4o", messages=messages, mock_response="hello", temperature=0)
    stream = await litellm.acompletion(model="openai/gpt-4o", messages=messages, mock_response="a b c", stream=True)
    async for _ in stream:
        pass
    with contextlib.suppress(litellm.RateLimitError):
        await litellm.acompletion(model="openai/gpt-4o", messages=messages, mock_response="litellm.RateLimitError")
    await litellm.aembedding(model="openai/text-embedding-3-small", input=["a"], mock_response=[0.1, 0.2])
    await asyncio.sleep(2)
    version = litellm.__version__ if hasattr(litellm, "__version__") else "unknown"
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("litellm")
    except Exception:
        pass
    out = Path(__file__).with_name(f"litellm-{version}.json")
    out.write_text(json.dumps(capture.events, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(capture.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
