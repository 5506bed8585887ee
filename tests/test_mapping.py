"""The pure mapping: payload dict in, attributes out; edge cases and fuzzing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentportal_otel._mapping import content_attributes, map_call, to_ns
from agentportal_otel._settings import Settings
from payloads import hook_kwargs, local_zone

SETTINGS = Settings.from_env({})


# --- timestamps ------------------------------------------------------------------------


@pytest.fixture
def kolkata() -> Iterator[None]:
    with local_zone("Asia/Kolkata"):
        yield


def test_aware_datetime_to_exact_nanoseconds() -> None:
    value = dt.datetime(2026, 11, 29, 13, 0, 0, 123456, tzinfo=dt.timezone.utc)
    assert to_ns(value) == 1_795_957_200_123_456_000
    assert type(to_ns(value)) is int


def test_naive_datetime_is_local_time(kolkata: None) -> None:
    # LiteLLM's datetime.now() is naive local time: 13:00 in Kolkata is 07:30 UTC.
    naive = dt.datetime(2026, 11, 29, 13, 0, 0, 999999)
    aware_utc = dt.datetime(2026, 11, 29, 7, 30, 0, 999999, tzinfo=dt.timezone.utc)
    assert to_ns(naive) == to_ns(aware_utc) == 1_795_937_400_999_999_000


@pytest.mark.parametrize(
    ("zone", "offset_h"),
    [("UTC", 0), ("Europe/London", 1), ("Asia/Kolkata", 5.5)],
    ids=["utc-fast-path", "zero-standard-offset-with-summer-time", "kolkata"],
)
def test_naive_datetime_in_summer_by_zone(zone: str, offset_h: float) -> None:
    # London's standard offset is 0 like UTC's, but in July its clocks are an hour ahead: only a
    # zone without daylight saving may skip astimezone().
    with local_zone(zone):
        naive = dt.datetime(2026, 7, 1, 12, 0, 0, 250000)
        expected = dt.datetime(2026, 7, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc) - dt.timedelta(hours=offset_h)
        assert to_ns(naive) == to_ns(expected)


def test_float_seconds_would_lose_precision() -> None:
    value = dt.datetime(2026, 11, 29, 13, 0, 0, 123457, tzinfo=dt.timezone.utc)
    exact = to_ns(value)
    assert exact is not None and exact % 1000 == 0
    assert int(value.timestamp() * 1e9) != exact  # why datetimes are converted by integer arithmetic


def test_span_times_come_from_the_hook_datetimes() -> None:
    start = dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(2026, 1, 1, 0, 0, 2, 500001, tzinfo=dt.timezone.utc)
    record = map_call(hook_kwargs(), None, start, end, SETTINGS)
    assert (record.start_ns, record.end_ns) == (to_ns(start), to_ns(end))
    assert record.duration_s == pytest.approx(2.5)


def test_missing_times_fall_back_to_payload_and_never_go_backwards() -> None:
    record = map_call(hook_kwargs(), None, None, None, SETTINGS)
    assert record.start_ns == 1_700_000_000_500_000_000
    assert record.end_ns == 1_700_000_001_250_000_000
    backwards = map_call(hook_kwargs({"endTime": 1.0}), None, None, None, SETTINGS)
    assert backwards.end_ns == backwards.start_ns


# --- tokens and numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (0, 0), (12, 12), (12.0, 12), (-3, None), ("12", None), (True, None), (2**40, 2**40), (1.5, None)],
)
def test_token_counts_are_ints_or_absent(value: object, expected: int | None) -> None:
    record = map_call(hook_kwargs({"prompt_tokens": value}), None, None, None, SETTINGS)
    got = record.attributes.get("gen_ai.usage.input_tokens")
    assert got == expected
    if expected is not None:
        assert type(got) is int
    assert record.input_tokens == expected


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (0.5, 0.5), (-1, None), (float("nan"), None), ("1", None)])
def test_cost(value: object, expected: float | None) -> None:
    record = map_call(hook_kwargs({"response_cost": value}), None, None, None, SETTINGS)
    assert record.attributes.get("agentportal.cost.usd") == expected
    if expected is not None:
        assert type(record.attributes["agentportal.cost.usd"]) is float


def test_cached_and_reasoning_tokens() -> None:
    usage = {
        "prompt_tokens_details": {"cached_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 9},
        "cache_creation_input_tokens": 2,
    }
    record = map_call(hook_kwargs({"metadata": {"usage_object": usage}}), None, None, None, SETTINGS)
    assert record.attributes["gen_ai.usage.cache_read.input_tokens"] == 5
    assert record.attributes["gen_ai.usage.reasoning.output_tokens"] == 9
    assert record.attributes["gen_ai.usage.cache_creation.input_tokens"] == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("openai", "openai"),
        ("azure", "azure.ai.openai"),
        ("bedrock", "aws.bedrock"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("anthropic", "anthropic"),
        ("openrouter", "openrouter"),
    ],
)
def test_provider_names(raw: str, expected: str) -> None:
    record = map_call(hook_kwargs({"custom_llm_provider": raw}), None, None, None, SETTINGS)
    assert record.attributes["gen_ai.provider.name"] == expected
    assert record.metric_attributes["gen_ai.provider.name"] == expected
    if raw != expected:
        assert record.attributes["agentportal.litellm.provider"] == raw
    else:
        assert "agentportal.litellm.provider" not in record.attributes


def test_request_model_is_what_the_client_asked_for() -> None:
    record = map_call(hook_kwargs(), None, None, None, SETTINGS)
    assert record.attributes["gen_ai.request.model"] == "team-gpt"
    assert record.attributes["gen_ai.response.model"] == "gpt-4o"
    assert record.name == "chat team-gpt"


@pytest.mark.parametrize(
    ("api_base", "expected"),
    [
        ("https://openrouter.ai/api/v1", {"server.address": "openrouter.ai", "server.port": 443}),
        ("http://10.0.0.5:8000/v1", {"server.address": "10.0.0.5", "server.port": 8000}),
        ("", {}),
        ("not a url", {}),
    ],
)
def test_server_from_api_base(api_base: str, expected: dict[str, Any]) -> None:
    # openrouter has no default base in LiteLLM's openai-compatible path we rely on
    record = map_call(
        hook_kwargs({"api_base": api_base, "custom_llm_provider": "openrouter"}), None, None, None, SETTINGS
    )
    got = {k: v for k, v in record.attributes.items() if k.startswith("server.")}
    assert got == expected


# --- tenant attribution --------------------------------------------------------------------


def _tenant_kwargs(
    *,
    key_meta: dict[str, Any] | None = None,
    team_meta: dict[str, Any] | None = None,
    slo_meta: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    meta = {
        "user_api_key_hash": "ab" * 32,
        "user_api_key_alias": "search-key",
        "user_api_key_team_id": "team-1",
        "user_api_key_team_alias": "search",
        "user_api_key_user_id": "u-1",
        "user_api_key_org_id": "org-1",
        **(slo_meta or {}),
    }
    lp = {"metadata": {"user_api_key_metadata": key_meta or {}, "user_api_key_team_metadata": team_meta or {}}}
    return hook_kwargs({"metadata": meta, "request_tags": tags or []}, lp)


@pytest.mark.parametrize(
    ("kwargs", "project", "source"),
    [
        (_tenant_kwargs(key_meta={"project": "k"}, team_meta={"project": "t"}), "k", "key"),
        (_tenant_kwargs(team_meta={"project": "t"}), "t", "team"),
        (
            _tenant_kwargs(slo_meta={"user_api_key_project_alias": "lp", "user_api_key_project_id": "id"}),
            "lp",
            "litellm",
        ),
        (_tenant_kwargs(slo_meta={"user_api_key_project_id": "pid"}), "pid", "litellm"),
        (_tenant_kwargs(key_meta={"tags": ["x", "project:agent-portal"]}), "agent-portal", "tag"),
        (_tenant_kwargs(team_meta={"tags": ["project:team-tagged"]}), "team-tagged", "tag"),
        # request tags include the client's body/header tags: never a project source
        (_tenant_kwargs(tags=["x", "project:forged"]), None, None),
        (_tenant_kwargs(tags=["project:"]), None, None),
        (_tenant_kwargs(), None, None),
    ],
)
def test_project_resolution_order(kwargs: dict[str, Any], project: str | None, source: str | None) -> None:
    record = map_call(kwargs, None, None, None, SETTINGS)
    assert record.attributes.get("agentportal.project") == project
    assert record.attributes.get("agentportal.project.source") == source
    assert record.metric_attributes.get("agentportal.project") == project


def test_project_field_name_is_configurable() -> None:
    custom = Settings.from_env({"AGENTPORTAL_OTEL_PROJECT_METADATA_FIELD": "product"})
    kwargs = _tenant_kwargs(key_meta={"project": "ignored", "product": "p1"})
    assert map_call(kwargs, None, None, None, custom).attributes["agentportal.project"] == "p1"


def test_identity_only_from_the_authenticated_key() -> None:
    kwargs = _tenant_kwargs(
        key_meta={"project": "real"},
        slo_meta={
            "team_id": "evil",
            "team_alias": "evil",
            "requester_metadata": {"project": "evil", "team_id": "evil"},
        },
    )
    record = map_call(kwargs, None, None, None, SETTINGS)
    attributes = record.attributes
    assert attributes["agentportal.team.id"] == "team-1"
    assert attributes["agentportal.team.alias"] == "search"
    assert attributes["agentportal.project"] == "real"
    assert attributes["agentportal.key.alias"] == "search-key"
    assert attributes["agentportal.key.hash"] == "ab" * 32
    assert attributes["agentportal.user.id"] == "u-1"
    assert attributes["agentportal.org.id"] == "org-1"
    assert "evil" not in json.dumps({k: str(v) for k, v in attributes.items()})
    assert record.metric_attributes["agentportal.team"] == "search"


def test_tags_and_user_agent_tags() -> None:
    kwargs = _tenant_kwargs(tags=["a", "User-Agent: curl/8", "a", "b"])
    assert map_call(kwargs, None, None, None, SETTINGS).attributes["agentportal.tags"] == ("a", "b")
    on = Settings.from_env({"AGENTPORTAL_OTEL_CAPTURE_USER_AGENT": "true"})
    assert map_call(kwargs, None, None, None, on).attributes["agentportal.tags"] == ("a", "User-Agent: curl/8", "b")


def test_private_fields_are_opt_in() -> None:
    kwargs = _tenant_kwargs(slo_meta={"user_api_key_user_email": "a@b.c"})
    kwargs["standard_logging_object"].update({"requester_ip_address": "10.1.2.3", "user_agent": "curl/8"})
    off = map_call(kwargs, None, None, None, SETTINGS).attributes
    assert not {"user.email", "client.address", "user_agent.original"} & set(off)
    on_settings = Settings.from_env(
        {
            "AGENTPORTAL_OTEL_CAPTURE_USER_EMAIL": "true",
            "AGENTPORTAL_OTEL_CAPTURE_CLIENT_ADDRESS": "true",
            "AGENTPORTAL_OTEL_CAPTURE_USER_AGENT": "true",
        }
    )
    on = map_call(kwargs, None, None, None, on_settings).attributes
    assert (on["user.email"], on["client.address"], on["user_agent.original"]) == ("a@b.c", "10.1.2.3", "curl/8")


def test_openwebui_headers() -> None:
    kwargs = _tenant_kwargs(
        slo_meta={"requester_custom_headers": {"X-OpenWebUI-User-Id": "owui-7", "X-OpenWebUI-Chat-Id": "chat-9"}}
    )
    attributes = map_call(kwargs, None, None, None, SETTINGS).attributes
    assert attributes["agentportal.end_user.id"] == "owui-7"
    assert attributes["gen_ai.conversation.id"] == "chat-9"
    kwargs["standard_logging_object"]["end_user"] = "explicit-user"
    assert map_call(kwargs, None, None, None, SETTINGS).attributes["agentportal.end_user.id"] == "explicit-user"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cc-42", "cc-42"),
        (7, 7),
        (True, True),
        (["a", "b"], ("a", "b")),
        ([1, 2], (1, 2)),
        ([1, "a"], '[1,"a"]'),
        ({"nested": {"x": 1}}, '{"nested":{"x":1}}'),
        ("x" * 10_000, "x" * (4096 - 14) + "...[truncated]"),
    ],
)
def test_key_metadata_allowlist(value: object, expected: object) -> None:
    custom = Settings.from_env({"AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST": "cost_center"})
    kwargs = _tenant_kwargs(key_meta={"cost_center": value, "secret_note": "not promoted"})
    attributes = map_call(kwargs, None, None, None, custom).attributes
    assert attributes["agentportal.key.metadata.cost_center"] == expected
    assert "agentportal.key.metadata.secret_note" not in attributes
    assert "agentportal.key.metadata.cost_center" not in map_call(kwargs, None, None, None, SETTINGS).attributes


# --- failures --------------------------------------------------------------------------------


def test_failure_message_is_redacted() -> None:
    kwargs = hook_kwargs(
        {
            "status": "failure",
            "error_information": {
                "error_class": "AuthenticationError",
                "error_message": "Incorrect API key provided: sk-proj-abcdefghijklmnop1234 (provider-key-xyz123)",
            },
        },
        {"api_key": "provider-key-xyz123"},
    )
    record = map_call(kwargs, None, None, None, SETTINGS)
    assert record.error_type == "AuthenticationError"
    assert record.attributes["error.type"] == "AuthenticationError"
    assert record.metric_attributes["error.type"] == "AuthenticationError"
    assert record.error_message is not None
    assert "sk-proj" not in record.error_message and "provider-key-xyz123" not in record.error_message
    assert "gen_ai.usage.input_tokens" not in record.attributes


def test_trace_headers_are_extracted() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    lp = {"proxy_server_request": {"headers": {"TraceParent": traceparent, "tracestate": "k=v", "authorization": "x"}}}
    record = map_call(hook_kwargs(lp=lp), None, None, None, SETTINGS)
    assert dict(record.trace_headers) == {"traceparent": traceparent, "tracestate": "k=v"}


# --- content capture ----------------------------------------------------------------------------


CONTENT_SLO = {
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "my key is sk-abcdefghijklmnopqrst"}, {"type": "image_url"}],
        },
    ],
    "response": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]},
}


def test_content_is_off_by_default() -> None:
    assert content_attributes(hook_kwargs(CONTENT_SLO), None, SETTINGS) == {}


def test_content_capture_format_and_redaction() -> None:
    on = Settings.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    attributes = content_attributes(hook_kwargs(CONTENT_SLO), None, on)
    inputs = json.loads(str(attributes["gen_ai.input.messages"]))
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "my key is [REDACTED]"}, {"type": "image_url"}]},
    ]
    outputs = json.loads(str(attributes["gen_ai.output.messages"]))
    assert outputs == [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "stop"}]


def test_litellm_turn_off_message_logging_wins() -> None:
    on = Settings.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    assert content_attributes(hook_kwargs(CONTENT_SLO), None, on, global_off=True) == {}
    per_request = hook_kwargs(CONTENT_SLO, standard_callback_dynamic_params={"turn_off_message_logging": True})
    assert content_attributes(per_request, None, on) == {}


@pytest.mark.parametrize("size", [10, 1000, 100_000])
def test_content_is_capped_and_stays_json(size: int) -> None:
    on = Settings.from_env(
        {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true", "AGENTPORTAL_OTEL_MAX_ATTRIBUTE_LENGTH": "256"}
    )
    slo = {"messages": [{"role": "user", "content": "é" * size} for _ in range(5)]}
    attributes = content_attributes(hook_kwargs(slo), None, on)
    encoded = str(attributes["gen_ai.input.messages"])
    assert len(encoded) <= 256
    assert isinstance(json.loads(encoded), list)


# --- fuzzing ----------------------------------------------------------------------------------

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.integers(min_value=4000, max_value=9000).map(lambda n: "é" * n),
)
_json = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), children, max_size=4),
    ),
    max_leaves=12,
)
_SLO_KEYS = [
    "id",
    "litellm_call_id",
    "call_type",
    "status",
    "custom_llm_provider",
    "startTime",
    "endTime",
    "completionStartTime",
    "model",
    "model_group",
    "metadata",
    "prompt_tokens",
    "completion_tokens",
    "response_cost",
    "request_tags",
    "end_user",
    "stream",
    "api_base",
    "model_parameters",
    "response",
    "error_information",
    "hidden_params",
    "messages",
]
_META_KEYS = [
    "user_api_key_hash",
    "user_api_key_alias",
    "user_api_key_team_id",
    "user_api_key_team_alias",
    "user_api_key_project_alias",
    "usage_object",
    "requester_custom_headers",
    "user_api_key_auth_metadata",
]


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    slo = {key: draw(_json) for key in draw(st.lists(st.sampled_from(_SLO_KEYS), unique=True))}
    if draw(st.booleans()):
        slo["metadata"] = {key: draw(_json) for key in draw(st.lists(st.sampled_from(_META_KEYS), unique=True))}
    lp = draw(
        st.one_of(
            _json,
            st.fixed_dictionaries(
                {
                    "metadata": st.fixed_dictionaries(
                        {"user_api_key_metadata": _json, "user_api_key_team_metadata": _json}
                    )
                }
            ),
        )
    )
    return {"standard_logging_object": draw(st.one_of(st.just(slo), _json)), "litellm_params": lp}


def _valid(value: object, limit: int) -> bool:
    if isinstance(value, str):
        return len(value) <= limit
    if isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, tuple):
        kinds = {type(item) for item in value}
        return len(kinds) <= 1 and all(_valid(item, limit) for item in value) and kinds <= {str, bool, int, float}
    return False


FUZZ_SETTINGS = Settings.from_env(
    {
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        "AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST": "project,a,0",
        "AGENTPORTAL_OTEL_MAX_ATTRIBUTE_LENGTH": "512",
    }
)


@settings(max_examples=2000, deadline=None)
@given(payloads(), st.booleans(), _json, _json)
def test_fuzz_mapping_never_raises_and_yields_valid_attributes(
    kwargs: dict[str, Any], failed: bool, response: object, start: object
) -> None:
    record = map_call(kwargs, response, start, None, FUZZ_SETTINGS, failed=failed)
    for name, value in {**record.attributes, **record.metric_attributes}.items():
        assert _valid(value, 512), (name, value)
    for name in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        if name in record.attributes:
            assert type(record.attributes[name]) is int
    assert type(record.start_ns) is int and record.end_ns >= record.start_ns
    content = content_attributes(kwargs, response, FUZZ_SETTINGS)
    for value in content.values():
        assert isinstance(value, str) and len(value) <= 512
        json.loads(value)


def test_master_key_hash_is_shown_as_the_alias() -> None:
    import hashlib

    master = "sk-master-1234567890"
    with_master = Settings.from_env({"LITELLM_MASTER_KEY": master})
    assert master not in repr(with_master)
    kwargs = _tenant_kwargs(slo_meta={"user_api_key_hash": hashlib.sha256(master.encode()).hexdigest()})
    assert map_call(kwargs, None, None, None, with_master).attributes["agentportal.key.hash"] == (
        "litellm_proxy_master_key"
    )
    other = _tenant_kwargs()
    assert map_call(other, None, None, None, with_master).attributes["agentportal.key.hash"] == "ab" * 32


# --- response fields without model_dump ----------------------------------------------------


def _litellm_responses() -> list[object]:
    import litellm

    chat = litellm.completion(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}], mock_response="yo")
    two = litellm.ModelResponse(
        id="chatcmpl-2",
        model="gpt-4o-2024-08-06",
        choices=[
            {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "a"}},
            {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "b"}},
        ],
    )
    streamed = litellm.ModelResponse(stream=True, model="claude-3", choices=[{"index": 0, "finish_reason": "stop"}])
    text = litellm.TextCompletionResponse(model="gpt-3.5-turbo-instruct")
    embedding = litellm.EmbeddingResponse(model="text-embedding-3-small", data=[{"embedding": [0.1], "index": 0}])
    image = litellm.ImageResponse(created=1, data=[])
    return [chat, two, streamed, text, embedding, image]


@pytest.mark.parametrize("index", range(6), ids=["chat", "two-choices", "streamed", "text", "embedding", "image"])
def test_response_summary_reads_what_model_dump_gives(index: int) -> None:
    from agentportal_otel import _litellm_fields as fields
    from agentportal_otel._mapping import _response

    response = _litellm_responses()[index]
    dumped = fields.as_mapping(response)
    summary = fields.response_summary(response)
    assert summary is not dumped and summary  # read by attribute, never empty (no fallback to the SLO)
    assert fields.text(summary, "model") == fields.text(dumped, "model")
    assert _response(summary) == _response(dumped)
    if index == 1:
        assert _response(summary)["gen_ai.response.finish_reasons"] == ("length", "stop")
