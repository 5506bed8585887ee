"""LiteLLM proxies older than 1.94 load config.yaml callbacks only from files beside the config.

On those releases (our oldest supported is 1.77.7) the one-line `agentportal_otel.proxy.handler`
cannot be resolved from the installed package; a two-line shim next to config.yaml can (see the
README). This test runs the real proxy through such shims, with any LiteLLM version, and
checks spans, attribution and the flush at SIGTERM. `make test-oldest` runs it on 1.77.7.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parent.parent


def test_callback_and_auth_through_shims_flush_at_sigterm(tmp_path: Path) -> None:
    (tmp_path / "agentportal_otel_handler.py").write_text("from agentportal_otel.proxy import handler  # noqa: F401\n")
    (tmp_path / "agentportal_demo_auth.py").write_text(
        "from agentportal_otel.demo.auth import user_api_key_auth  # noqa: F401\n"
    )
    key = next(k for k in DEMO_KEYS if k.team_id and k.project)
    with OTLPReceiver() as receiver:
        proxy = ProxyProcess(
            REPO_ROOT / "litellm" / "config.yaml",
            callbacks=["agentportal_otel_handler.handler"],
            custom_auth="agentportal_demo_auth.user_api_key_auth",
            workdir=tmp_path,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_BSP_SCHEDULE_DELAY": "60000",
                "OTEL_METRIC_EXPORT_INTERVAL": "600000",
                "PYTEST_CURRENT_TEST": None,
            },
        )
        with proxy:

            async def burst() -> list[int]:
                async with httpx.AsyncClient(base_url=proxy.url, timeout=60) as client:
                    headers = {"Authorization": f"Bearer {key.key}"}

                    async def one(model: str) -> int:
                        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
                        return (await client.post("/v1/chat/completions", headers=headers, json=body)).status_code

                    return await asyncio.gather(*(one("mock-chat") for _ in range(40)), one("mock-ratelimit"))

            statuses = asyncio.run(burst())
            assert statuses.count(200) == 40 and statuses[-1] == 429
            assert receiver.spans == [], "only the shutdown flush may deliver"
            assert proxy.stop() in (0, -15)
        spans = receiver.wait_for_spans(41, timeout=10)
    assert len(spans) == 41
    assert {s.attributes.get("agentportal.team.id") for s in spans} == {key.team_id}
    assert {s.attributes.get("agentportal.project") for s in spans} == {key.project}
    assert sum(1 for s in spans if s.attributes.get("error.type") == "RateLimitError") == 1
