"""Drift: recorded, scrubbed LiteLLM payloads of each supported release map the same way.

``tests/payloads/litellm-<version>.json`` are made by ``tests/payloads/capture.py`` (see its
docstring); add a file when a new LiteLLM release is supported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentportal_otel._mapping import map_call
from agentportal_otel._settings import Settings

PAYLOADS = sorted((Path(__file__).parent / "payloads").glob("litellm-*.json"))
SETTINGS = Settings.from_env({})


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.stem.removeprefix("litellm-").split("."))


def _events(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text()))


def test_both_ends_of_the_supported_range_are_recorded() -> None:
    versions = {p.stem.removeprefix("litellm-") for p in PAYLOADS}
    assert {"1.77.7", "1.108.7", "1.110.2"} <= versions


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
def test_recorded_payloads_map_to_the_same_attributes(path: Path) -> None:
    events = _events(path)
    kinds = [(e["kind"], e["kwargs"]["standard_logging_object"]["call_type"]) for e in events]
    assert sorted(kinds) == sorted(
        [("success", "acompletion"), ("success", "acompletion"), ("failure", "acompletion"), ("success", "aembedding")]
    )
    for event in events:
        record = map_call(event["kwargs"], None, None, None, SETTINGS, failed=event["kind"] == "failure")
        attributes = record.attributes
        assert record.start_ns > 1_600_000_000 * 10**9 and record.end_ns >= record.start_ns
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["agentportal.team.id"] == "team-fixture"
        assert attributes["agentportal.key.alias"] == "fixture-key"
        assert attributes["agentportal.project"] == "fixture-project"
        assert attributes["agentportal.project.source"] == "key"
        assert attributes["server.address"] == "api.openai.com" and attributes["server.port"] == 443
        slo = event["kwargs"]["standard_logging_object"]
        # 1.110 added cost_finalized: read where present, absent before
        assert attributes.get("agentportal.cost.finalized") == slo.get("cost_finalized")
        if _version(path) >= (1, 110):
            assert type(attributes["agentportal.cost.finalized"]) is bool
        if event["kind"] == "failure":
            assert attributes["error.type"] == "RateLimitError"
            assert attributes["gen_ai.response.finish_reasons"] == ("error",)
            assert "gen_ai.usage.input_tokens" not in attributes
            assert "gen_ai.response.model" not in attributes
            continue
        assert type(attributes["gen_ai.usage.input_tokens"]) is int
        assert type(attributes["agentportal.cost.usd"]) is float
        if attributes["gen_ai.operation.name"] == "embeddings":
            assert record.name == "embeddings text-embedding-3-small"
            continue
        assert record.name == "chat gpt-4o"
        assert type(attributes["gen_ai.usage.output_tokens"]) is int
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert str(attributes["gen_ai.response.id"]).startswith("chatcmpl-")
        if slo.get("stream"):
            assert attributes["gen_ai.request.stream"] is True
            assert attributes["gen_ai.response.time_to_first_chunk"] >= 0
        else:
            assert "gen_ai.request.stream" not in attributes
            assert attributes["gen_ai.request.temperature"] == 0.0
