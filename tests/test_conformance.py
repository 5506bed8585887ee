"""GenAI semantic-convention conformance (v1.41.0 by default, the latest conventions by opt-in)
and the attributes other backends read (``AGENTPORTAL_OTEL_EXTRA_CONVENTIONS``).

The mapping is checked on payload dicts; the metric instruments and whole spans on real
``litellm.acompletion`` calls (``mock_response``) through the logger.
"""

from __future__ import annotations

import logging
from typing import Any

import litellm
import pytest

from agentportal_otel._emit import TIME_TO_FIRST_CHUNK_BUCKETS
from agentportal_otel._mapping import map_call
from agentportal_otel._settings import Settings
from aio import run as run_async
from aio import settle
from payloads import hook_kwargs

DEFAULT = Settings.from_env({})
LATEST = Settings.from_env({"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"})
MESSAGES = [{"role": "user", "content": "hi"}]
SPEC_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


# --- v1.41.0 gaps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slo", "kw", "expected"),
    [({"stream": True}, {}, True), ({"stream": False}, {}, None), ({}, {}, None), ({}, {"stream": True}, True)],
)
def test_request_stream_is_set_if_and_only_if_the_request_streams(
    slo: dict[str, Any], kw: dict[str, Any], expected: bool | None
) -> None:
    for failed in (False, True):
        record = map_call(hook_kwargs(slo, **kw), None, None, None, DEFAULT, failed=failed)
        assert record.attributes.get("gen_ai.request.stream") is expected


def test_time_to_first_chunk_uses_the_spec_buckets() -> None:
    # v1.41.0 gen-ai-metrics.md, metric gen_ai.client.operation.time_to_first_chunk
    assert list(TIME_TO_FIRST_CHUNK_BUCKETS) == SPEC_DURATION_BUCKETS


@pytest.mark.parametrize(
    ("provider", "environ", "expected"),
    [
        ("openai", {}, {"server.address": "api.openai.com", "server.port": 443}),
        (
            "openai",
            {"OPENAI_BASE_URL": "http://gateway.internal:8080/v1"},
            {"server.address": "gateway.internal", "server.port": 8080},
        ),
        ("anthropic", {}, {"server.address": "api.anthropic.com", "server.port": 443}),
        ("hosted_vllm", {}, {}),  # no default endpoint: nothing is guessed
    ],
)
def test_failed_and_streamed_calls_get_the_deployment_endpoint(
    provider: str, environ: dict[str, str], expected: dict[str, Any]
) -> None:
    settings = Settings.from_env(environ)
    for slo in ({"stream": True}, {"status": "failure"}):
        record = map_call(
            hook_kwargs({**slo, "custom_llm_provider": provider, "api_base": ""}), None, None, None, settings
        )
        assert {k: v for k, v in record.attributes.items() if k.startswith("server.")} == expected
        assert {k: v for k, v in record.metric_attributes.items() if k.startswith("server.")} == expected


def test_reported_api_base_wins_over_the_default() -> None:
    record = map_call(
        hook_kwargs({"status": "failure"}), None, None, None, DEFAULT, failed=True
    )  # no api_base anywhere: the default
    assert record.attributes["server.address"] == "api.openai.com"
    record = map_call(
        hook_kwargs({"hidden_params": {"api_base": "https://eu.api.openai.com/v1"}}), None, None, None, DEFAULT
    )
    assert record.attributes["server.address"] == "eu.api.openai.com"


@pytest.mark.parametrize(
    ("call_type", "n", "expected"),
    [("acompletion", None, ("error",)), ("acompletion", 2, ("error", "error")), ("atext_completion", None, ("error",))],
)
def test_failed_generations_report_finish_reason_error(
    call_type: str, n: int | None, expected: tuple[str, ...]
) -> None:
    slo = {"call_type": call_type, "model_parameters": {"n": n} if n else {}}
    record = map_call(hook_kwargs(slo), None, None, None, DEFAULT, failed=True)
    assert record.attributes["gen_ai.response.finish_reasons"] == expected


def test_failed_embeddings_have_no_finish_reasons() -> None:
    record = map_call(hook_kwargs({"call_type": "aembedding"}), None, None, None, DEFAULT, failed=True)
    assert "gen_ai.response.finish_reasons" not in record.attributes


def test_no_response_model_on_a_failure_without_a_response() -> None:
    failed = map_call(hook_kwargs(), None, None, None, DEFAULT, failed=True)
    assert "gen_ai.response.model" not in failed.attributes
    assert "gen_ai.response.model" not in failed.metric_attributes
    answered = map_call(hook_kwargs(), None, None, None, DEFAULT)
    assert answered.attributes["gen_ai.response.model"] == answered.metric_attributes["gen_ai.response.model"]
    assert answered.attributes["gen_ai.response.model"] == "gpt-4o"


@pytest.mark.parametrize(
    ("raw", "api_base", "latest", "expected"),
    [
        ("openai", None, False, "openai"),
        ("bedrock_converse", None, False, "aws.bedrock"),
        ("Hosted_VLLM", None, False, "hosted_vllm"),  # a custom value, as the spec allows
        ("moonshot", None, False, "moonshot"),  # not well-known in v1.41.0
        ("moonshot", None, True, "moonshot_ai"),  # well-known in the latest conventions
        (None, "https://api.anthropic.com/v1", False, "anthropic"),  # named by its endpoint
        (None, "http://10.1.2.3:8000/v1", False, "unknown"),
        (None, None, False, "unknown"),  # never error.type's "_OTHER"
    ],
)
def test_unknown_providers(raw: str | None, api_base: str | None, latest: bool, expected: str) -> None:
    slo: dict[str, Any] = {"custom_llm_provider": raw, "api_base": api_base}
    record = map_call(hook_kwargs(slo), None, None, None, LATEST if latest else DEFAULT)
    assert record.attributes["gen_ai.provider.name"] == expected
    assert record.metric_attributes["gen_ai.provider.name"] == expected


# --- LiteLLM 1.110 payload fields ------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (None, None), ("yes", None)])
def test_cost_finalized(value: object, expected: bool | None) -> None:
    slo: dict[str, Any] = {} if value is None else {"cost_finalized": value}
    record = map_call(hook_kwargs(slo), None, None, None, DEFAULT)
    assert record.attributes.get("agentportal.cost.finalized") is expected
    assert record.cost_usd == 0.001  # a non-final cost is still the cost LiteLLM reports


@pytest.mark.parametrize("silent", [True, False, None])
def test_silent_experiments_are_marked_and_counted(silent: bool | None) -> None:
    metadata = {} if silent is None else {"is_silent_experiment": silent}
    record = map_call(hook_kwargs({"metadata": metadata}), None, None, None, DEFAULT)
    expected = True if silent else None
    assert record.attributes.get("agentportal.litellm.silent_experiment") is expected
    assert record.metric_attributes.get("agentportal.litellm.silent_experiment") is expected
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (7, 3, 0.001)


def _litellm_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("litellm").split(".")[:2])


@pytest.mark.skipif(_litellm_version() < (1, 110), reason="silent_model mirroring arrived in LiteLLM 1.110")
def test_router_silent_experiment_is_marked(span_exporter, metric_reader, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()
    router = litellm.Router(
        model_list=[
            {
                "model_name": "primary",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_key": "mock-key-not-a-secret",
                    "mock_response": "primary answer",
                    "silent_model": "shadow",
                },
            },
            {
                "model_name": "shadow",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_key": "mock-key-not-a-secret",
                    "mock_response": "shadow answer",
                },
            },
        ]
    )

    async def run() -> None:
        await router.acompletion(model="primary", messages=MESSAGES)
        await settle(span_exporter, 2)

    run_async(run())
    spans = {s.attributes["gen_ai.request.model"]: s for s in span_exporter.get_finished_spans()}
    assert set(spans) == {"primary", "shadow"}
    assert spans["shadow"].attributes["agentportal.litellm.silent_experiment"] is True
    assert "agentportal.litellm.silent_experiment" not in spans["primary"].attributes
    # usage counts the mirrored call, marked so a dashboard can leave it out
    duration = _metrics(metric_reader)["gen_ai.client.operation.duration"].data.data_points
    by_model = {p.attributes["gen_ai.request.model"]: p for p in duration}
    assert by_model["shadow"].attributes["agentportal.litellm.silent_experiment"] is True
    assert "agentportal.litellm.silent_experiment" not in by_model["primary"].attributes
    assert by_model["shadow"].count == by_model["primary"].count == 1


# --- the latest conventions, by opt-in ---------------------------------------------------------

_USAGE = {"cache_creation_input_tokens": 4, "prompt_tokens_details": {"cached_tokens": 2}}


@pytest.mark.parametrize(
    ("settings", "present", "absent", "top_k_type"),
    [
        (DEFAULT, "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens", float),
        (LATEST, "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens", int),
    ],
    ids=["v1.41.0", "latest"],
)
def test_renamed_attributes(settings: Settings, present: str, absent: str, top_k_type: type) -> None:
    slo = {"metadata": {"usage_object": _USAGE}, "model_parameters": {"top_k": 40}}
    attributes = map_call(hook_kwargs(slo), None, None, None, settings).attributes
    assert attributes[present] == 4 and type(attributes[present]) is int
    assert absent not in attributes
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attributes["gen_ai.request.top_k"] == 40 and type(attributes["gen_ai.request.top_k"]) is top_k_type


@pytest.mark.parametrize(
    ("value", "latest"),
    [
        ("gen_ai_latest_experimental", True),
        ("http, GEN_AI_LATEST_EXPERIMENTAL ,database", True),
        ("http,database/dup", False),
        ("", False),
    ],
)
def test_stability_opt_in_is_read_without_complaining_about_others(
    value: str, latest: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentportal_otel"):
        assert Settings.from_env({"OTEL_SEMCONV_STABILITY_OPT_IN": value}).semconv_latest is latest
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def _metrics(reader: Any) -> dict[str, Any]:
    return {
        m.name: m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


def _traffic(span_exporter: Any) -> None:
    async def run() -> None:
        await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="hello there")
        stream = await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="a b c", stream=True)
        async for _ in stream:
            pass
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="litellm.RateLimitError")
        await litellm.aembedding(model="openai/text-embedding-3-small", input=["a"], mock_response=[0.1, 0.2])
        await settle(span_exporter, 4)

    run_async(run())


def test_default_metrics_are_v1_41(span_exporter, metric_reader, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger()
    _traffic(span_exporter)
    metrics = _metrics(metric_reader)
    assert set(metrics) == {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
        "agentportal.client.cost",
    }
    (ttfc,) = metrics["gen_ai.client.operation.time_to_first_chunk"].data.data_points
    assert list(ttfc.explicit_bounds) == SPEC_DURATION_BUCKETS
    assert sum(p.count for p in metrics["gen_ai.client.operation.duration"].data.data_points) == 4


def test_latest_metrics_by_opt_in(span_exporter, metric_reader, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger({"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"})
    _traffic(span_exporter)
    spans = span_exporter.get_finished_spans()
    metrics = _metrics(metric_reader)
    assert {name: m.unit for name, m in metrics.items()} == {
        "gen_ai.client.inference.duration": "s",
        "gen_ai.client.inference.time_to_first_chunk": "s",
        "gen_ai.client.inference.usage.input_tokens": "{token}",
        "gen_ai.client.inference.usage.output_tokens": "{token}",
        "gen_ai.client.inference.usage.cache_read.input_tokens": "{token}",
        "gen_ai.client.inference.usage.cache_write.input_tokens": "{token}",
        "gen_ai.client.inference.usage.reasoning.output_tokens": "{token}",
        "gen_ai.client.inference.operation.input_tokens": "{token}",
        "gen_ai.client.inference.operation.output_tokens": "{token}",
        "gen_ai.client.embeddings.duration": "s",
        "gen_ai.client.embeddings.operation.input_tokens": "{token}",
        "agentportal.client.cost": "{USD}",
    }
    inference = [s for s in spans if s.attributes["gen_ai.operation.name"] == "chat"]
    assert len(inference) == 3
    # the three chat calls, the failed one included, each recorded once
    assert sum(p.count for p in metrics["gen_ai.client.inference.duration"].data.data_points) == 3
    assert sum(p.count for p in metrics["gen_ai.client.embeddings.duration"].data.data_points) == 1
    usage_in = metrics["gen_ai.client.inference.usage.input_tokens"].data.data_points
    assert {p.attributes["gen_ai.token.modality"] for p in usage_in} == {"unknown"}
    assert sum(p.value for p in usage_in) == sum(
        int(s.attributes.get("gen_ai.usage.input_tokens", 0)) for s in inference
    )
    assert not any("error.type" in p.attributes for p in usage_in)  # not a usage-counter attribute
    failed = [p for p in usage_in if "gen_ai.response.model" not in p.attributes]
    assert [p.value for p in failed] == [0]  # the failed call (no response): a 0, not a missing point
    per_op_in = metrics["gen_ai.client.inference.operation.input_tokens"].data.data_points
    assert [p.sum for p in per_op_in if p.attributes.get("error.type") == "RateLimitError"] == [0]
    per_op = metrics["gen_ai.client.inference.operation.output_tokens"].data.data_points
    assert sum(p.count for p in per_op) == 3
    embed_tokens = metrics["gen_ai.client.embeddings.operation.input_tokens"].data.data_points
    embedding = next(s for s in spans if s.attributes["gen_ai.operation.name"] == "embeddings")
    assert sum(p.sum for p in embed_tokens) == embedding.attributes["gen_ai.usage.input_tokens"]


# --- other backends ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backends", "expected"),
    [
        ("", {}),
        ("openlit", {"gen_ai.usage.cost": 0.001}),
        ("langfuse", {"gen_ai.usage.cost": 0.001, "user.id": "end-user-7"}),
        ("langfuse,openlit", {"gen_ai.usage.cost": 0.001, "user.id": "end-user-7"}),
    ],
)
def test_extra_conventions(backends: str, expected: dict[str, Any]) -> None:
    settings = Settings.from_env({"AGENTPORTAL_OTEL_EXTRA_CONVENTIONS": backends})
    slo = {
        "end_user": "end-user-7",
        "metadata": {
            "user_api_key_user_id": "key-owner",
            "requester_custom_headers": {"x-openwebui-chat-id": "chat-9"},
        },
    }
    attributes = map_call(hook_kwargs(slo), None, None, None, settings).attributes
    got = {k: attributes[k] for k in ("gen_ai.usage.cost", "user.id", "session.id") if k in attributes}
    assert got == expected
    assert not {"gen_ai.usage.cost", "user.id"} & set(
        map_call(hook_kwargs(slo), None, None, None, settings).metric_attributes
    )


def test_langfuse_user_falls_back_to_the_keys_user() -> None:
    settings = Settings.from_env({"AGENTPORTAL_OTEL_EXTRA_CONVENTIONS": "langfuse"})
    attributes = map_call(hook_kwargs({"metadata": {"user_api_key_user_id": "key-owner"}}), None, None, None, settings)
    assert attributes.attributes["user.id"] == "key-owner"


def test_unknown_backend_is_one_error_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentportal_otel"):
        settings = Settings.from_env({"AGENTPORTAL_OTEL_EXTRA_CONVENTIONS": "langfuse, Phoenix"})
    assert settings.extra_conventions == ("langfuse",)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "AGENTPORTAL_OTEL_EXTRA_CONVENTIONS" in errors[0].getMessage()
    assert "'Phoenix'" in errors[0].getMessage()
    with pytest.raises(ValueError, match="extra_conventions"):
        Settings.from_env({}, extra_conventions=("phoenix",))


def test_whole_span_with_both_backends(span_exporter, make_logger) -> None:  # type: ignore[no-untyped-def]
    make_logger({"AGENTPORTAL_OTEL_EXTRA_CONVENTIONS": "langfuse,openlit"})

    async def run() -> None:
        await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, mock_response="hello")
        await settle(span_exporter, 1)

    run_async(run())
    (span,) = span_exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    cost = attributes.pop("agentportal.cost.usd")
    assert type(cost) is float and cost > 0
    assert attributes.pop("gen_ai.usage.cost") == cost
    if _litellm_version() >= (1, 110):  # an SDK call's cost is LiteLLM's price, not finalized by a proxy
        assert attributes.pop("agentportal.cost.finalized") is False
    assert "user.id" not in attributes  # an SDK call has no proxy identity: no user to report
    for name, kind in (
        ("gen_ai.operation.name", str),
        ("gen_ai.provider.name", str),
        ("gen_ai.request.model", str),
        ("gen_ai.response.model", str),
        ("gen_ai.response.id", str),
        ("gen_ai.response.finish_reasons", tuple),
        ("gen_ai.usage.input_tokens", int),
        ("gen_ai.usage.output_tokens", int),
        ("server.address", str),
        ("server.port", int),
        ("agentportal.litellm.call_id", str),
        ("agentportal.litellm.call_type", str),
    ):
        assert type(attributes.pop(name)) is kind, name
    assert attributes == {}
