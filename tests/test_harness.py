"""Tests of the harness itself: the OTLP receiver, the demo custom_auth and the proxy runner."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentportal_otel.demo import auth
from agentportal_otel.demo._proxy import DEMO_CUSTOM_AUTH, ProxyProcess, build_overlay_config
from otlp_receiver import OTLPReceiver

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "litellm" / "config.yaml"


@pytest.fixture
def receiver() -> Any:
    with OTLPReceiver() as rx:
        yield rx


def _post(url: str, body: bytes = b"", timeout: float = 5.0) -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


# -- receiver: decoding real SDK exports -----------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "encoding"),
    [(Compression.NoCompression, None), (Compression.Gzip, "gzip"), (Compression.Deflate, "deflate")],
)
def test_receiver_decodes_sdk_spans(receiver: OTLPReceiver, compression: Compression, encoding: str | None) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "harness-test", "deployment.id": 7}))
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, compression=compression)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("harness.scope", "1.2.3")
    with (
        tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent,
        tracer.start_as_current_span("chat mock-chat", kind=SpanKind.CLIENT) as child,
    ):
        child.set_attributes(
            {
                "s": "x",
                "b": True,
                "i": 42,
                "f": 0.5,
                "strs": ["a", "b"],
                "ints": [1, 2],
                "secret": "sk-leak",
            }
        )
        child.add_event("gen_ai.choice", {"index": 0})
        child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()

    spans = receiver.wait_for_spans(2, timeout=5)
    assert receiver.errors == []
    by_name = {s.name: s for s in spans}
    child_span, parent_span = by_name["chat mock-chat"], by_name["parent"]
    assert child_span.kind == "SPAN_KIND_CLIENT"
    assert parent_span.kind == "SPAN_KIND_SERVER"
    assert child_span.parent_span_id == parent_span.span_id
    assert parent_span.parent_span_id == ""
    assert child_span.trace_id == parent_span.trace_id == format(parent.get_span_context().trace_id, "032x")
    assert child_span.span_id == format(child.get_span_context().span_id, "016x")
    assert child_span.status_code == "STATUS_CODE_ERROR"
    assert child_span.status_message == "boom"
    attrs = dict(child_span.attributes)
    assert attrs == {
        "s": "x",
        "b": True,
        "i": 42,
        "f": 0.5,
        "strs": ("a", "b"),
        "ints": (1, 2),
        "secret": "sk-leak",
    }
    assert type(attrs["i"]) is int
    assert [(e.name, e.attributes) for e in child_span.events] == [("gen_ai.choice", {"index": 0})]
    assert child_span.resource["service.name"] == "harness-test"
    assert child_span.resource["deployment.id"] == 7
    assert (child_span.scope_name, child_span.scope_version) == ("harness.scope", "1.2.3")
    assert 0 < child_span.start_time_unix_nano <= child_span.end_time_unix_nano

    requests = receiver.requests
    assert {r.status for r in requests} == {200}
    assert {r.headers.get("content-encoding") for r in requests} == {encoding}
    assert all(r.headers["content-type"] == "application/x-protobuf" for r in requests)
    if encoding is not None:
        assert all(r.raw_body != r.body for r in requests)
    assert receiver.contains("sk-leak")
    assert not receiver.contains("sk-not-there")


def test_receiver_decodes_sdk_metrics(receiver: OTLPReceiver) -> None:
    exporter = OTLPMetricExporter(endpoint=receiver.metrics_url, compression=Compression.Gzip)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "m"}))
    meter = provider.get_meter("harness.meter", "0.1")
    meter.create_counter("req", unit="{request}").add(3, {"team": "a"})
    meter.create_histogram("dur", unit="s").record(0.25, {"team": "a"})
    meter.create_up_down_counter("inflight").add(-2)
    meter.create_gauge("temp").set(1.5)
    provider.force_flush()
    provider.shutdown()

    points = {p.name: p for p in receiver.wait_for_metric("dur", timeout=5) + receiver.data_points}
    assert points["req"].type == "sum"
    assert points["req"].value == 3 and type(points["req"].value) is int
    assert points["req"].is_monotonic is True
    assert points["req"].temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE"
    assert points["req"].attributes == {"team": "a"}
    assert points["req"].unit == "{request}"
    assert points["req"].scope_name == "harness.meter"
    assert points["req"].resource["service.name"] == "m"
    assert points["dur"].type == "histogram"
    assert (points["dur"].count, points["dur"].sum) == (1, 0.25)
    assert sum(points["dur"].bucket_counts) == 1
    assert len(points["dur"].bucket_counts) == len(points["dur"].explicit_bounds) + 1
    assert points["inflight"].value == -2 and points["inflight"].is_monotonic is False
    assert points["temp"].type == "gauge" and points["temp"].value == 1.5


def test_receiver_decodes_sdk_logs(receiver: OTLPReceiver) -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=receiver.logs_url)))
    logger = provider.get_logger("harness.logs")
    logger.emit(body={"k": [1, 2]}, attributes={"a": "b"}, severity_text="INFO", event_name="harness.event")
    provider.shutdown()
    (record,) = receiver.logs
    assert record.body == {"k": (1, 2)}
    assert record.attributes == {"a": "b"}
    assert record.scope_name == "harness.logs"
    assert (record.severity_text, record.event_name) == ("INFO", "harness.event")


def test_receiver_rejects_garbage_and_unknown_paths(receiver: OTLPReceiver) -> None:
    assert _post(receiver.traces_url, b"\xff\xff\xff") == 400
    assert _post(receiver.url + "/v1/other") == 404
    assert len(receiver.errors) == 1
    assert receiver.spans == []


def test_receiver_answers_protobuf_response(receiver: OTLPReceiver) -> None:
    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    req = urllib.request.Request(receiver.traces_url, data=body, headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-protobuf"
        trace_service_pb2.ExportTraceServiceResponse.FromString(resp.read())


# -- receiver: fault modes ------------------------------------------------------------------


def test_fault_status_all_and_counted(receiver: OTLPReceiver) -> None:
    receiver.fail(500)
    assert [_post(receiver.traces_url) for _ in range(3)] == [500, 500, 500]
    receiver.fail(503, times=2)
    assert [_post(receiver.traces_url) for _ in range(3)] == [503, 503, 200]
    receiver.fail(503)
    receiver.heal()
    assert _post(receiver.traces_url) == 200
    assert [r.status for r in receiver.requests] == [500, 500, 500, 503, 503, 200, 200]


def test_fault_503_is_retried_by_the_sdk(receiver: OTLPReceiver) -> None:
    receiver.fail(503, times=1)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url, timeout=10)))
    provider.get_tracer("t").start_span("retried").end()
    provider.shutdown()
    assert [s.name for s in receiver.wait_for_spans(1, timeout=10)] == ["retried"]
    assert [r.status for r in receiver.requests] == [503, 200]


def test_fault_delay(receiver: OTLPReceiver) -> None:
    receiver.set_delay(0.5)
    started = time.monotonic()
    assert _post(receiver.traces_url) == 200
    assert time.monotonic() - started >= 0.5
    receiver.set_delay(0)
    started = time.monotonic()
    assert _post(receiver.traces_url) == 200
    assert time.monotonic() - started < 0.5


def test_fault_down_and_up_on_same_port(receiver: OTLPReceiver) -> None:
    port = receiver.port
    keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    keep_alive.request("POST", "/v1/traces", body=b"", headers={"Content-Type": "application/x-protobuf"})
    assert keep_alive.getresponse().read() == b""
    receiver.down()
    assert not receiver.is_up
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(receiver.traces_url, data=b"", timeout=2)
    # An open keep-alive connection is cut too, not served by a lingering handler thread.
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        keep_alive.request("POST", "/v1/traces", body=b"", headers={"Content-Type": "application/x-protobuf"})
        keep_alive.getresponse()
    receiver.up()
    assert receiver.port == port
    assert _post(receiver.traces_url) == 200


def test_down_releases_delayed_requests(receiver: OTLPReceiver) -> None:
    receiver.set_delay(30)
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    conn.request("POST", "/v1/traces", body=b"", headers={"Content-Type": "application/x-protobuf"})
    time.sleep(0.2)
    started = time.monotonic()
    receiver.down()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.getresponse()
    assert time.monotonic() - started < 5


def test_wait_for_spans_times_out(receiver: OTLPReceiver) -> None:
    with pytest.raises(TimeoutError):
        receiver.wait_for_spans(1, timeout=0.2)


# -- demo custom_auth -----------------------------------------------------------------------


def test_demo_keys_cover_the_attribution_cases() -> None:
    assert len({k.key for k in auth.DEMO_KEYS}) == len(auth.DEMO_KEYS)
    assert {k.team_id for k in auth.DEMO_KEYS} == {"team-search", "team-assist", None}
    sources = {k.project_source: k for k in auth.DEMO_KEYS}
    assert sources["key_metadata"].key_metadata()["project"] == sources["key_metadata"].project
    assert "project" not in sources["team_metadata"].key_metadata()
    assert sources["team_metadata"].team_metadata()["project"] == sources["team_metadata"].project
    tagged = sources["key_tag"]
    assert f"project:{tagged.project}" in tagged.key_metadata()["tags"]
    assert "project" not in tagged.key_metadata() and "project" not in tagged.team_metadata()
    assert len({k.project for k in auth.DEMO_KEYS if k.project}) == 3


@pytest.mark.parametrize("entry", auth.DEMO_KEYS, ids=lambda k: k.key_alias)
@pytest.mark.parametrize("prefix", ["", "Bearer "])
def test_demo_auth_returns_virtual_key_identity(entry: auth.DemoKey, prefix: str) -> None:
    result = asyncio.run(auth.user_api_key_auth(None, prefix + entry.key))  # type: ignore[arg-type]
    assert result.api_key == entry.token == auth.hash_key(entry.key)
    assert result.token == entry.token
    assert len(entry.token) == 64 and entry.key not in entry.token
    assert result.key_alias == entry.key_alias
    assert result.user_id == entry.user_id
    assert result.team_id == entry.team_id
    assert result.team_alias == entry.team_alias
    assert result.org_id == entry.org_id == auth.DEMO_ORG_ID
    assert result.metadata == entry.key_metadata()
    assert (result.team_metadata or {}) == entry.team_metadata()
    assert auth.demo_key(prefix + entry.key) is entry


def test_demo_auth_accepts_master_key_like_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-test-master")
    result = asyncio.run(auth.user_api_key_auth(None, "Bearer sk-test-master"))  # type: ignore[arg-type]
    assert result.api_key == auth.MASTER_KEY_ALIAS == "litellm_proxy_master_key"
    assert result.user_role == "proxy_admin"
    from litellm.constants import LITELLM_PROXY_MASTER_KEY_ALIAS

    assert LITELLM_PROXY_MASTER_KEY_ALIAS == auth.MASTER_KEY_ALIAS


@pytest.mark.parametrize("key", ["sk-unknown", "", "Bearer ", "sk-demo-alpha-search-x", "SK-DEMO-ALPHA-SEARCH"])
def test_demo_auth_rejects_unknown_keys(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    from litellm.proxy._types import ProxyException

    with pytest.raises(ProxyException) as info:
        asyncio.run(auth.user_api_key_auth(None, key))  # type: ignore[arg-type]
    assert info.value.code == "401"


def test_importing_demo_modules_does_not_import_litellm() -> None:
    code = (
        "import sys, agentportal_otel.demo.auth, agentportal_otel.demo._proxy; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('litellm', 'yaml')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "[]"


# -- proxy overlay --------------------------------------------------------------------------


def test_overlay_config() -> None:
    base = {
        "model_list": [{"model_name": "m"}],
        "litellm_settings": {"callbacks": ["x.y"], "num_retries": 0},
        "general_settings": {"master_key": "os.environ/K", "database_url": "os.environ/DATABASE_URL"},
    }
    kept = build_overlay_config(base)
    assert kept["litellm_settings"]["callbacks"] == ["x.y"]
    assert kept["general_settings"] == {"master_key": "os.environ/K", "custom_auth": DEMO_CUSTOM_AUTH}
    removed = build_overlay_config(
        base,
        callbacks=(),
        extra_models=[{"model_name": "extra"}],
        litellm_settings={"num_retries": None, "request_timeout": 5},
    )
    assert "callbacks" not in removed["litellm_settings"]
    assert removed["litellm_settings"] == {"request_timeout": 5}
    assert [m["model_name"] for m in removed["model_list"]] == ["m", "extra"]
    assert build_overlay_config(base, callbacks=["a.b"])["litellm_settings"]["callbacks"] == ["a.b"]
    assert base["litellm_settings"]["callbacks"] == ["x.y"]  # not mutated


def test_proxy_environment_drops_database_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://nope")
    monkeypatch.setenv("DATABASE_HOST", "db")
    monkeypatch.setenv("DIRECT_URL", "postgres://nope")
    proxy = ProxyProcess(CONFIG, workdir=tmp_path, env={"OTEL_SERVICE_NAME": "x", "HOME": None})
    env = proxy.environment()
    assert not {"DATABASE_URL", "DATABASE_HOST", "DIRECT_URL", "HOME"} & set(env)
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_MASTER_KEY"] == proxy.master_key
    assert env["OTEL_SERVICE_NAME"] == "x"
    assert "database_url" not in (tmp_path / "config.yaml").read_text()


# -- the real proxy (slow) ------------------------------------------------------------------

_CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}


def _chat(proxy: ProxyProcess, key: str) -> Any:
    import httpx

    return httpx.post(
        f"{proxy.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=_CHAT, timeout=60
    )


@pytest.mark.slow
def test_real_proxy_with_demo_auth(tmp_path: Path) -> None:
    with ProxyProcess(CONFIG, callbacks=(), workdir=tmp_path) as proxy:
        ok = _chat(proxy, "sk-demo-alpha-search")
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"] == "Hello from the mock model."
        assert _chat(proxy, proxy.master_key).status_code == 200
        denied = _chat(proxy, "sk-unknown")
        assert denied.status_code == 401, denied.text
        assert denied.json()["error"]["type"] == "auth_error"
        assert proxy.stop() in (0, -15)
        assert "Application startup complete" in proxy.log_text()
    assert proxy.returncode is not None


_CAPTURE_CALLBACK = textwrap.dedent(
    """
    import json, os
    from litellm.integrations.custom_logger import CustomLogger

    FIELDS = ("user_api_key_hash", "user_api_key_alias", "user_api_key_team_id", "user_api_key_team_alias",
              "user_api_key_user_id", "user_api_key_org_id", "user_api_key_auth_metadata")

    class Capture(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            slo = kwargs["standard_logging_object"]
            lp_meta = kwargs["litellm_params"]["metadata"]
            row = {f: slo["metadata"].get(f) for f in FIELDS}
            row["request_tags"] = slo.get("request_tags")
            row["user_api_key_metadata"] = lp_meta.get("user_api_key_metadata")
            row["user_api_key_team_metadata"] = lp_meta.get("user_api_key_team_metadata")
            with open(os.path.join(os.path.dirname(__file__), "captured.jsonl"), "a") as fh:
                fh.write(json.dumps(row, default=str) + "\\n")

    handler = Capture()
    """
)


@pytest.mark.slow
def test_real_proxy_logs_demo_identity_like_a_virtual_key(tmp_path: Path) -> None:
    (tmp_path / "capture_cb.py").write_text(_CAPTURE_CALLBACK)
    captured = tmp_path / "captured.jsonl"
    keys = [*auth.DEMO_KEYS]
    with ProxyProcess(CONFIG, callbacks=["capture_cb.handler"], workdir=tmp_path) as proxy:
        for entry in keys:
            assert _chat(proxy, entry.key).status_code == 200
        assert _chat(proxy, proxy.master_key).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if captured.exists() and len(captured.read_text().splitlines()) >= len(keys) + 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"callback did not log every request\n{proxy.log_tail()}")
    rows = [json.loads(line) for line in captured.read_text().splitlines()]
    by_hash = {row["user_api_key_hash"]: row for row in rows}
    for entry in keys:
        row = by_hash[entry.token]
        assert row["user_api_key_alias"] == entry.key_alias
        assert row["user_api_key_team_id"] == entry.team_id
        assert row["user_api_key_team_alias"] == entry.team_alias
        assert row["user_api_key_user_id"] == entry.user_id
        assert row["user_api_key_org_id"] == entry.org_id
        assert row["user_api_key_metadata"] == entry.key_metadata()
        assert (row["user_api_key_team_metadata"] or {}) == entry.team_metadata()
        assert row["user_api_key_auth_metadata"] == {**entry.key_metadata(), **entry.team_metadata()}
        for tag in entry.tags:
            assert tag in row["request_tags"]
    assert by_hash[auth.MASTER_KEY_ALIAS]["user_api_key_alias"] is None
    assert not any(entry.key in captured.read_text() for entry in keys)


@pytest.mark.slow
def test_failed_start_raises_with_log_tail_and_leaves_no_process(tmp_path: Path) -> None:
    from agentportal_otel.demo._proxy import ProxyStartError

    proxy = ProxyProcess(CONFIG, callbacks=(), workdir=tmp_path, startup_timeout=0.5)
    with pytest.raises(ProxyStartError, match="not live") as info, proxy:
        pass
    assert "$ " in str(info.value)  # the log tail starts with the command line
    assert proxy.pid is not None and proxy.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proxy.pid, 0)

    broken = ProxyProcess(CONFIG, callbacks=(), custom_auth="no_such_module.auth", workdir=tmp_path / "b")
    with pytest.raises(ProxyStartError, match="exited with code") as info, broken:
        pass
    assert "no_such_module" in str(info.value)


@pytest.mark.slow
def test_a_crashed_proxy_is_reported_with_every_threads_stack(tmp_path: Path) -> None:
    import signal

    from agentportal_otel.demo._proxy import take_exit_reports

    with ProxyProcess(CONFIG, callbacks=(), workdir=tmp_path) as proxy:
        assert proxy.environment()["PYTHONFAULTHANDLER"] == "1"
        assert take_exit_reports() == []
        assert proxy.pid is not None
        os.kill(proxy.pid, signal.SIGSEGV)  # what a fault in a C extension raises
        deadline = time.monotonic() + 20
        while proxy.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.returncode == -signal.SIGSEGV
        log = proxy.log_text()
        assert "Fatal Python error: Segmentation fault" in log, proxy.log_tail()
        assert "most recent call first" in log  # faulthandler's stack dump
    # Reported once the proxy is closed too (its directory, with the log, is gone by then).
    [report] = take_exit_reports()
    assert (report.pid, report.returncode) == (proxy.pid, -signal.SIGSEGV)
    assert "Fatal Python error: Segmentation fault" in report.log_tail
    assert take_exit_reports() == []

    with ProxyProcess(CONFIG, callbacks=(), workdir=tmp_path / "c") as stopped:
        assert stopped.stop() in (0, -signal.SIGTERM)
    assert take_exit_reports() == []  # a proxy we stopped did not exit on its own
    quiet = ProxyProcess(CONFIG, workdir=tmp_path / "b", env={"PYTHONFAULTHANDLER": None})
    assert "PYTHONFAULTHANDLER" not in quiet.environment()
