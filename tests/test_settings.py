"""Configuration: every variable, each malformed value, the LiteLLM-only names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agentportal_otel._settings import Settings

SECRET = "s3cr3t-token-value"


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_defaults(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({})
    assert settings.enabled is True
    assert settings.service_name == "litellm-proxy"
    assert settings.traces_exporters == ("otlp",)
    assert settings.metrics_exporters == ("otlp",)
    assert settings.traces_endpoint == "http://localhost:4318/v1/traces"
    assert settings.metrics_endpoint == "http://localhost:4318/v1/metrics"
    assert settings.traces_endpoint_source == "default"
    assert settings.traces_timeout_s == 10.0
    assert settings.bsp_max_queue_size == 8192
    assert settings.bsp_schedule_delay_ms == 1000
    assert settings.capture_message_content is False
    assert settings.capture_user_email is False
    assert settings.max_tenant_values == 1000
    assert _errors(caplog) == []


def test_base_endpoint_gets_signal_paths() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318/"})
    assert settings.traces_endpoint == "http://otel-collector:4318/v1/traces"
    assert settings.metrics_endpoint == "http://otel-collector:4318/v1/metrics"
    assert settings.traces_endpoint_source == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_signal_endpoint_is_used_as_is() -> None:
    settings = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:443/custom/path",
        }
    )
    assert settings.traces_endpoint == "https://traces.example:443/custom/path"
    assert settings.traces_endpoint_source == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    assert settings.metrics_endpoint == "http://base:4318/v1/metrics"


@pytest.mark.parametrize("value", ["otel-collector:4318", "ftp://x", "not a url", "http://"])
def test_malformed_endpoint_is_one_clear_error(value: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": value})
    errors = _errors(caplog)
    assert len(errors) == 1, errors
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in errors[0] and "http" in errors[0]
    # Tracing stays on, at the standard default.
    assert settings.enabled and settings.traces_endpoint == "http://localhost:4318/v1/traces"


def test_headers_parsed_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env(
        {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{SECRET},x-tenant = acme ,{SECRET}"}
    )
    assert settings.traces_headers == {"authorization": f"Bearer {SECRET}", "x-tenant": "acme"}
    assert settings.metrics_headers == settings.traces_headers
    errors = _errors(caplog)
    assert len(errors) == 1 and "OTEL_EXPORTER_OTLP_HEADERS" in errors[0] and "#3" in errors[0]
    assert SECRET not in caplog.text
    assert SECRET not in repr(settings)


def test_signal_headers_replace_generic_ones() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2"})
    assert settings.traces_headers == {"b": "2"}
    assert settings.metrics_headers == {"a": "1"}


def test_timeout_is_milliseconds_per_spec() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "700"})
    assert settings.traces_timeout_s == 2.5
    assert settings.metrics_timeout_s == 0.7


@pytest.mark.parametrize(
    ("name", "value", "field", "default"),
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "abc", "bsp_max_queue_size", 8192),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-5", "bsp_max_queue_size", 8192),
        ("OTEL_BSP_SCHEDULE_DELAY", "1.5s", "bsp_schedule_delay_ms", 1000),
        ("OTEL_BSP_EXPORT_TIMEOUT", "0", "bsp_export_timeout_ms", 30000),
        ("OTEL_METRIC_EXPORT_INTERVAL", "soon", "metric_export_interval_ms", 60000),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten", "traces_timeout_s", 10.0),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "traces_compression", "none"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "maybe", "capture_message_content", False),
        ("OTEL_SDK_DISABLED", "sure", "enabled", True),
        ("AGENTPORTAL_OTEL_MAX_TENANT_VALUES", "many", "max_tenant_values", 1000),
        ("AGENTPORTAL_OTEL_SHUTDOWN_TIMEOUT_MS", "-1", "shutdown_timeout_ms", 10000),
        ("AGENTPORTAL_OTEL_MAX_QUEUE_BYTES", "64MiB", "max_queue_bytes", 64 * 2**20),
        ("AGENTPORTAL_OTEL_MAX_QUEUE_BYTES", "10", "max_queue_bytes", 64 * 2**20),
        ("AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS", "0", "retry_max_backoff_ms", 30000),
        ("AGENTPORTAL_OTEL_SPOOL_MAX_BYTES", "lots", "spool_max_bytes", 512 * 2**20),
    ],
)
def test_malformed_value_names_the_variable_and_uses_the_default(
    name: str, value: str, field: str, default: object, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({name: value})
    assert getattr(settings, field) == default
    errors = _errors(caplog)
    assert len(errors) == 1, errors
    assert name in errors[0]


def test_bsp_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
            "OTEL_BSP_EXPORT_TIMEOUT": "4000",
        }
    )
    assert (settings.bsp_max_queue_size, settings.bsp_max_export_batch_size) == (100, 10)
    assert (settings.bsp_schedule_delay_ms, settings.bsp_export_timeout_ms) == (250, 4000)


def test_batch_larger_than_queue_is_clamped(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500"})
    assert settings.bsp_max_export_batch_size == 100
    assert "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" in caplog.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("otlp", ("otlp",)),
        ("console", ("console",)),
        ("none", ("none",)),
        ("otlp,console", ("otlp", "console")),
        ("OTLP, none", ("otlp",)),
        ("clickhouse", ("clickhouse",)),
    ],
)
def test_traces_exporter(value: str, expected: tuple[str, ...]) -> None:
    assert Settings.from_env({"OTEL_TRACES_EXPORTER": value}).traces_exporters == expected


def test_unknown_exporter_never_disables_tracing(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert settings.traces_exporters == ("otlp",)
    assert "OTEL_TRACES_EXPORTER" in caplog.text and "zipkin" in caplog.text


def test_sdk_disabled() -> None:
    assert Settings.from_env({"OTEL_SDK_DISABLED": "true"}).enabled is False
    assert Settings.from_env({"OTEL_SDK_DISABLED": "false"}).enabled is True


def test_service_name_precedence() -> None:
    assert Settings.from_env({"OTEL_SERVICE_NAME": "gateway"}).service_name == "gateway"
    assert Settings.from_env({"OTEL_RESOURCE_ATTRIBUTES": "service.name=rsvc,env=prod"}).service_name == "rsvc"
    both = {"OTEL_SERVICE_NAME": "gateway", "OTEL_RESOURCE_ATTRIBUTES": "service.name=rsvc"}
    assert Settings.from_env(both).service_name == "gateway"


@pytest.mark.parametrize(
    ("name", "standard"),
    [
        ("OTEL_EXPORTER", "OTEL_TRACES_EXPORTER"),
        ("OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ("OTEL_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
    ],
)
def test_litellm_only_names_point_to_the_standard_one(
    name: str, standard: str, caplog: pytest.LogCaptureFixture
) -> None:
    Settings.from_env({name: f"value-{SECRET}"})
    warnings = _errors(caplog)
    assert len(warnings) == 1
    assert name in warnings[0] and standard in warnings[0]
    assert SECRET not in caplog.text


def test_grpc_protocol_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    Settings.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in caplog.text and "4318" in caplog.text


def test_our_variables() -> None:
    settings = Settings.from_env(
        {
            "AGENTPORTAL_OTEL_PROJECT_METADATA_FIELD": "product",
            "AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST": "cost_center, env,,env",
            "AGENTPORTAL_OTEL_CAPTURE_USER_EMAIL": "true",
            "AGENTPORTAL_OTEL_CAPTURE_CLIENT_ADDRESS": "1",
            "AGENTPORTAL_OTEL_CAPTURE_USER_AGENT": "yes",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "TRUE",
        }
    )
    assert settings.project_metadata_field == "product"
    assert settings.key_metadata_allowlist == ("cost_center", "env")
    assert settings.capture_user_email and settings.capture_client_address and settings.capture_user_agent
    assert settings.capture_message_content


def test_environment_is_read_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4318")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "bad")
    settings = Settings.from_env()
    assert settings.traces_endpoint == "http://from-env:4318/v1/traces"
    assert settings.bsp_max_queue_size == 8192


def test_explicit_argument_wins_and_bad_explicit_raises() -> None:
    settings = Settings.from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "10"}, bsp_max_queue_size=50)
    assert settings.bsp_max_queue_size == 50
    with pytest.raises(ValueError, match="bsp_max_queue_size"):
        Settings.from_env({}, bsp_max_queue_size=0)
    with pytest.raises(ValueError, match="traces_endpoint"):
        Settings.from_env({}, traces_endpoint="collector:4318")
    with pytest.raises(ValueError, match="no field"):
        Settings.from_env({}, endpoint="http://x")


def test_describe_destination_hides_credentials() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": f"https://user:{SECRET}@collector:4318"})
    line = settings.describe_destination()
    assert SECRET not in line
    assert "collector:4318/v1/traces" in line and "OTEL_EXPORTER_OTLP_ENDPOINT" in line


def test_spool_is_off_by_default_and_created_when_set(tmp_path: Path) -> None:
    assert Settings.from_env({}).spool_dir is None
    target = tmp_path / "spool" / "nested"
    settings = Settings.from_env({"AGENTPORTAL_OTEL_SPOOL_DIR": str(target)})
    assert settings.spool_dir == str(target) and target.is_dir()


def test_unusable_spool_dir_is_one_clear_error_and_no_spool(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = Settings.from_env({"AGENTPORTAL_OTEL_SPOOL_DIR": str(blocker / "spool")})
    assert settings.spool_dir is None
    errors = _errors(caplog)
    assert len(errors) == 1 and "AGENTPORTAL_OTEL_SPOOL_DIR" in errors[0], errors


def test_client_certificate_without_key_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/etc/cert.pem"})
    assert settings.traces_client_cert is None
    assert "OTEL_EXPORTER_OTLP_CLIENT_KEY" in caplog.text
    both = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": "/etc/c.pem",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": "/etc/k.pem",
        }
    )
    assert both.traces_certificate == both.metrics_certificate == "/etc/ca.pem"
    assert both.traces_client_cert == ("/etc/c.pem", "/etc/k.pem") and both.metrics_client_cert is None
