"""No secret leaves the proxy through the plugin, with message capture off and on.

Each run drives a real proxy with every demo key and the master key through chat, streaming,
embeddings, text completion, a 429, a connection failure and a refused key, then scans every
byte the OTLP receiver got (headers, raw and decompressed bodies of traces and metrics) and the
proxy's own log output. Capture off: no message attributes and no prompt or completion text in
any exported byte. Capture on: the prompt is there, with the fake provider key, AWS key id and
PEM block it contains redacted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from agentportal_otel.demo._proxy import ProxyProcess
from agentportal_otel.demo.auth import DEMO_KEYS
from e2e_support import CONFIG, MASTER_KEY, Call, auth, chat, complete, embed, proxy_env, stream_chat, wait_for_calls
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

MARKER = f"prompt-marker-{uuid.uuid4().hex}"
COMPLETION_TEXT = "Hello from the mock model."  # mock-chat's answer in litellm/config.yaml
FAKE_PROVIDER_KEY = "sk-proj-" + "Zq8xW2vN4kL9mP3rT6yB1cD5fG7hJ0aS"
FAKE_AWS_KEY_ID = "AKIA" + "QX7EXAMPLE2RB4ZT"
PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2mWZ7Hn1b0e9XqVt"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nq5Wd2c8Pn0Lk\n-----END RSA PRIVATE KEY-----"
SECRET_PROMPT = f"{MARKER} debug this: api key {FAKE_PROVIDER_KEY}, aws {FAKE_AWS_KEY_ID}\n{PEM}\nthanks"
PROMPT_SECRETS = (FAKE_PROVIDER_KEY, FAKE_AWS_KEY_ID, PEM_BODY, "BEGIN RSA PRIVATE KEY")
UNKNOWN_KEY = "sk-not-a-demo-key-" + uuid.uuid4().hex
PROVIDER_KEY = "mock-key-not-a-secret"  # the deployments' api_key in litellm/config.yaml

KEYS = [k.key for k in DEMO_KEYS] + [MASTER_KEY]
CREDENTIALS = [*KEYS, UNKNOWN_KEY]
MESSAGE_ATTRIBUTES = ("gen_ai.input.messages", "gen_ai.output.messages")


def _traffic(client: httpx.Client) -> list[Call]:
    calls: list[Call] = []
    for key in KEYS:
        calls += [
            chat(client, key, prompt=SECRET_PROMPT),
            stream_chat(client, key, prompt=SECRET_PROMPT),
            embed(client, key, text=SECRET_PROMPT),
            complete(client, key, prompt=SECRET_PROMPT),
            chat(client, key, model="mock-ratelimit", prompt=SECRET_PROMPT),
            chat(client, key, model="mock-unreachable", prompt=SECRET_PROMPT),
        ]
    assert [c.status for c in calls] == [200, 200, 200, 200, 429, 500] * len(KEYS), [c.body for c in calls]
    return calls


def _needles(*values: str) -> Iterator[str]:
    for value in values:
        yield value
        yield f"Bearer {value}"


@pytest.mark.parametrize("capture", [False, True], ids=["capture-off", "capture-on"])
def test_no_secret_in_exported_bytes_or_proxy_log(capture: bool) -> None:
    with OTLPReceiver() as receiver:
        env = proxy_env(
            receiver,
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=str(capture).lower(),
            # one run compressed, so the scan covers decompressed bodies too
            OTEL_EXPORTER_OTLP_COMPRESSION="gzip" if capture else "none",
        )
        with ProxyProcess(CONFIG, env=env, master_key=MASTER_KEY) as proxy:
            with httpx.Client(base_url=proxy.url, timeout=60) as client:
                calls = _traffic(client)
                refused = client.post(
                    "/v1/chat/completions",
                    headers=auth(UNKNOWN_KEY),
                    json={"model": "mock-chat", "messages": [{"role": "user", "content": SECRET_PROMPT}]},
                )
                assert refused.status_code == 401
            spans = wait_for_calls(receiver, calls)
            receiver.wait_for_metric("gen_ai.client.token.usage", timeout=15)
            assert proxy.stop() in (0, -15)  # flushes metrics too
            log = proxy.log_text()

        requests = receiver.requests
        assert {r.path for r in requests} == {"/v1/traces", "/v1/metrics"}
        encodings = {r.headers.get("content-encoding") for r in requests}
        assert encodings == ({"gzip"} if capture else {None})
        assert "agentportal-otel: internal error" not in log

        # 1. credentials: nowhere in what was exported, nor in the proxy's log
        for needle in _needles(*CREDENTIALS, PROVIDER_KEY):
            assert not receiver.contains(needle), f"exported bytes contain {needle[:12]}..."
            assert needle not in log, f"proxy log contains {needle[:12]}..."
        # ... nor any spelling of the master key a span could carry
        assert all(MASTER_KEY not in repr(s.attributes) for s in receiver.spans)

        # 2. message content
        carrying = [s for s in spans.values() if any(a in s.attributes for a in MESSAGE_ATTRIBUTES)]
        if not capture:
            assert carrying == []
            assert not receiver.contains(MARKER)
            assert not receiver.contains(COMPLETION_TEXT)
        else:
            ok_calls = [c for c in calls if c.status == 200]
            assert {str(c.call_id) for c in ok_calls} <= {
                str(s.attributes["agentportal.litellm.call_id"]) for s in carrying
            }
            assert receiver.contains(MARKER)
            assert receiver.contains(COMPLETION_TEXT)
            chat_span = spans[str(calls[0].call_id)]
            messages = json.loads(str(chat_span.attributes["gen_ai.input.messages"]))
            text = messages[0]["parts"][0]["content"]
            assert text.startswith(MARKER) and text.endswith("thanks")
            assert text.count("[REDACTED]") >= 3
            output = json.loads(str(chat_span.attributes["gen_ai.output.messages"]))
            assert output[0]["role"] == "assistant"
            assert output[0]["parts"][0]["content"] == COMPLETION_TEXT
        for secret in PROMPT_SECRETS:
            assert not receiver.contains(secret), f"exported bytes contain {secret[:12]}..."
