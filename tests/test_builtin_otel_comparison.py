"""LiteLLM's built-in ``otel`` callback beside ours, on one real proxy: the facts of the README's
comparison table.

One config (``callbacks: ["otel", "agentportal_otel.proxy.handler"]``), each callback exporting
to its own receiver: LiteLLM's default (v1) engine reads only ``OTEL_EXPORTER_OTLP_ENDPOINT``, its
opt-in v2 engine (``LITELLM_OTEL_V2=true``) prefers its own ``OTEL_TRACES_ENDPOINT``, and ours
takes the standard per-signal ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``/``_METRICS_ENDPOINT``.
Each engine runs twice: with quick exports (what the spans carry), then with exports far beyond
the test's duration and SIGTERM right after the requests (what a shutdown flush delivers).
"""

from __future__ import annotations

import time

import httpx
import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS
from e2e_support import CALL_ID, CONFIG, MASTER_KEY, chat, proxy_env
from otlp_receiver import OTLPReceiver, Span

pytestmark = pytest.mark.slow

KEY = DEMO_KEYS[0]  # team "Search" (team-search), project from the key's metadata
assert KEY.project is not None and KEY.team_id is not None
REQUESTS = 5
QUICK = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
SLOW = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "600000"}


def _run(engine: str, export: dict[str, str], *, sigterm: bool) -> tuple[list[Span], list[Span], str]:
    """Send ``REQUESTS`` chats; return (LiteLLM's spans, our spans, the proxy log)."""
    with OTLPReceiver() as theirs, OTLPReceiver() as ours:
        env = proxy_env(
            ours,
            OTEL_EXPORTER_OTLP_ENDPOINT=theirs.url,
            OTEL_TRACES_ENDPOINT=theirs.traces_url,
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=ours.traces_url,
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=ours.metrics_url,
            LITELLM_OTEL_V2="true" if engine == "v2" else None,
            **export,
        )
        proxy = ProxyProcess(
            CONFIG, env=env, master_key=MASTER_KEY, callbacks=["otel", "agentportal_otel.proxy.handler"]
        )
        with proxy:
            with httpx.Client(base_url=proxy.url, timeout=60) as client:
                calls = [chat(client, KEY.key) for _ in range(REQUESTS)]
            assert [c.status for c in calls] == [200] * REQUESTS
            if sigterm:
                assert theirs.spans == [] and ours.spans == [], "exported before shutdown: the test proves nothing"
                assert proxy.stop() in (0, -15)
            else:
                ours.wait_for_spans(REQUESTS, timeout=30)
                # LiteLLM's batch processor reads the same OTEL_BSP_SCHEDULE_DELAY: wait for its
                # proxy-request spans (FastAPI's SERVER span per call) and its own spans
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not (
                    len(_chat_servers(theirs.spans)) >= REQUESTS and len(_llm_spans(theirs.spans)) >= REQUESTS
                ):
                    time.sleep(0.2)
                time.sleep(1.0)
            log = proxy.log_text()
        if sigterm:
            time.sleep(0.5)
        assert {str(s.attributes.get(CALL_ID)) for s in ours.spans} == {str(c.call_id) for c in calls}
        return theirs.spans, ours.spans, log


def _chat_servers(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.kind == "SPAN_KIND_SERVER" and s.name == "POST /v1/chat/completions"]


def _llm_spans(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.scope_name == "litellm"]


def _mentions_project(span: Span) -> bool:
    project = str(KEY.project)
    return any("project" in k or project in str(v) for k, v in span.attributes.items())


@pytest.mark.parametrize("engine", ["v1", "v2"])
def test_what_the_spans_carry(engine: str) -> None:
    theirs, ours, log = _run(engine, QUICK, sigterm=False)

    # ours: one CLIENT span per call, team and project first-class
    assert {(s.scope_name, s.kind) for s in ours} == {("agentportal_otel", "SPAN_KIND_CLIENT")}
    for span in ours:
        assert span.attributes["gen_ai.provider.name"] == "openai"
        assert span.attributes["agentportal.team.id"] == KEY.team_id
        assert span.attributes["agentportal.project"] == KEY.project

    # LiteLLM's callback sets a global provider: FastAPI's own SERVER spans ride along
    servers = _chat_servers(theirs)
    assert len(servers) == REQUESTS
    llm = _llm_spans(theirs)
    assert llm, "LiteLLM exported no span of its own"
    assert not any(_mentions_project(s) for s in theirs), "no project attribute in either engine"
    if engine == "v1":
        # v1: no CLIENT span; it writes its GenAI attributes onto the proxy's SERVER span. In
        # our runs that span had already ended, so the SDK dropped them and said so in the log;
        # either way they are on no span but the SERVER one.
        assert {s.kind for s in llm} == {"SPAN_KIND_INTERNAL"}
        assert not any(k.startswith("gen_ai.") for s in llm for k in s.attributes)
        on_server = [s for s in servers if any(k.startswith("gen_ai.") for k in s.attributes)]
        assert len(on_server) == REQUESTS or "Setting attribute on ended span" in log
        # identity only as metadata.* strings
        teams = {s.attributes.get("metadata.user_api_key_team_id") for s in llm}
        assert KEY.team_id in teams
        assert not any(k.startswith("litellm.team.") for s in llm for k in s.attributes)
    else:
        # v2: a CLIENT "chat {model}" span per call with the mapped provider and first-class team
        clients = [s for s in llm if s.kind == "SPAN_KIND_CLIENT"]
        assert [s.name for s in clients] == ["chat mock-chat"] * REQUESTS
        for span in clients:
            assert span.attributes["gen_ai.provider.name"] == "openai"
            assert span.attributes["litellm.team.id"] == KEY.team_id
            assert span.attributes["litellm.team.alias"] == KEY.team_alias
            assert span.attributes["litellm.api_key.hash"] == KEY.token


@pytest.mark.parametrize("engine", ["v1", "v2"])
def test_what_arrives_after_sigterm(engine: str) -> None:
    theirs, ours, _ = _run(engine, SLOW, sigterm=True)
    assert len(ours) == REQUESTS  # flushed on the proxy's shutdown path
    # nothing of LiteLLM's (neither its own spans nor FastAPI's) was flushed at shutdown
    assert theirs == [], f"LiteLLM's {engine} delivered {len(theirs)} spans after SIGTERM"


def test_v1_prints_to_the_console_without_an_endpoint() -> None:
    """No ``OTEL_EXPORTER_OTLP_ENDPOINT``: v1 falls back to its console exporter (spans as JSON on
    stdout); ours still exports to its per-signal endpoints."""
    with OTLPReceiver() as ours:
        env = proxy_env(
            ours,
            OTEL_EXPORTER_OTLP_ENDPOINT=None,
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=ours.traces_url,
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=ours.metrics_url,
            LITELLM_OTEL_V2=None,
            **QUICK,
        )
        proxy = ProxyProcess(
            CONFIG, env=env, master_key=MASTER_KEY, callbacks=["otel", "agentportal_otel.proxy.handler"]
        )
        with proxy:
            with httpx.Client(base_url=proxy.url, timeout=60) as client:
                call = chat(client, KEY.key, prompt="console check")
            assert call.status == 200
            ours.wait_for_spans(1, timeout=30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and '"name": "raw_gen_ai_request"' not in proxy.log_text():
                time.sleep(0.2)
            log = proxy.log_text()
        assert '"name": "raw_gen_ai_request"' in log
        assert '"kind": "SpanKind.INTERNAL"' in log
        assert {s.scope_name for s in ours.spans} == {"agentportal_otel"}
