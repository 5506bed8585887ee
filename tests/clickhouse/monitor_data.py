"""Spans for the monitoring tests, written by the plugin's own ClickHouseSpanExporter.

``write(url, database)`` builds LLM-call spans as the plugin emits them (CLIENT, ``chat <model>``,
``gen_ai.*`` and ``agentportal.*`` attributes) over the last 20 hours: two teams and calls
without a team, three projects, three models, key aliases and users, streamed calls with a time
to first chunk, failures with an ``exception`` event, calls with captured message content, and
agent runs where a caller's SERVER span parents two LLM calls. Deterministic (seeded).

Also runnable as a script, so a separate process (the browser test's server) can own the chDB
directory: ``python tests/clickhouse/monitor_data.py chdb:///tmp/dir [database]``.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

TEAMS = ("team-search", "team-assist")
PROJECTS = {"team-search": ("search-portal", "ranker"), "team-assist": ("assistant",), None: ("sandbox",)}
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")
CALLS = 150


def _ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _text(content: str) -> dict[str, str]:
    return {"type": "text", "content": content}


def build(now: datetime | None = None, calls: int = CALLS) -> list[Any]:
    """The finished SDK spans (callers and LLM calls), oldest first."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    rng = random.Random(9)
    now = now or datetime.now(timezone.utc)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "litellm-proxy"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentportal_otel", "0.1.0")
    agents = TracerProvider(resource=Resource.create({"service.name": "ticket-agent"}))
    agents.add_span_processor(SimpleSpanProcessor(memory))
    agent_tracer = agents.get_tracer("ticket-agent")

    def llm_call(start: datetime, team: str | None, parent: Any = None) -> int:
        model = rng.choice(MODELS)
        project = rng.choice(PROJECTS[team])
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model + "-2024",
            "gen_ai.usage.input_tokens": rng.randrange(20, 3000),
            "gen_ai.usage.output_tokens": rng.randrange(5, 700),
            "agentportal.cost.usd": round(rng.randrange(1, 40000) / 1e7, 7),
            "agentportal.project": project,
            "agentportal.key.alias": f"{project}-key",
            "agentportal.user.id": f"user-{rng.randrange(1, 6)}",
            "agentportal.litellm.call_id": f"call-{rng.getrandbits(48):012x}",
        }
        if team is not None:
            attrs["agentportal.team.id"] = team
            attrs["agentportal.team.alias"] = team.split("-")[1].title()
        streamed = rng.random() < 0.35
        if streamed:
            attrs["gen_ai.response.time_to_first_chunk"] = rng.randrange(80, 1500) / 1000
        if rng.random() < 0.1:
            attrs["gen_ai.input.messages"] = json.dumps([{"role": "user", "parts": [_text("hi")]}])
            attrs["gen_ai.output.messages"] = json.dumps([{"role": "assistant", "parts": [_text("hello")]}])
        context = set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(
            f"chat {model}", context=context, kind=SpanKind.CLIENT, attributes=attrs, start_time=_ns(start)
        )
        failed = rng.random() < 0.12
        if failed:
            error = rng.choice(["RateLimitError", "APIConnectionError"])
            span.set_attribute("error.type", error)
            span.add_event("exception", {"exception.type": error, "exception.message": f"{error}: try again"})
            span.set_status(Status(StatusCode.ERROR, f"{error}: try again"))
        end = _ns(start) + rng.randrange(150, 6000) * 10**6
        span.end(end_time=end)
        return end

    for i in range(calls):
        age = timedelta(minutes=5) + timedelta(seconds=rng.randrange(0, 20 * 3600))
        if timedelta(minutes=55) <= age < timedelta(minutes=65):
            # Nothing near the edge of "the last hour": the 1h window holds the same calls
            # whichever minute (within the next five) a test reads it in.
            age += timedelta(minutes=10)
        start = now - age
        team = TEAMS[i % 2] if i % 10 != 9 else None
        if i % 15 == 0 and team is not None:
            caller = agent_tracer.start_span("triage ticket", kind=SpanKind.SERVER, start_time=_ns(start))
            first = llm_call(start + timedelta(milliseconds=40), team, caller)
            second_start = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=first // 1000 + 30_000)
            last = llm_call(second_start, team, caller)
            caller.end(end_time=last + 25 * 10**6)
        else:
            llm_call(start, team)
    provider.shutdown()
    agents.shutdown()
    return sorted(memory.get_finished_spans(), key=lambda s: s.start_time)


def write(url: str, database: str, now: datetime | None = None, calls: int = CALLS) -> list[Any]:
    """Build the spans and export them to ``url``/``database``; returns the spans."""
    from agentportal_otel.clickhouse import ClickHouseSpanExporter

    spans = build(now, calls)
    exporter = ClickHouseSpanExporter(url, database=database)
    try:
        assert exporter.export(spans).name == "SUCCESS"
    finally:
        exporter.shutdown()
    return spans


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    written = write(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "otel")
    print(f"wrote {len(written)} spans")
