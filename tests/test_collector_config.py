"""docker/otel-collector/config.yaml: structure, and only keys the pinned exporter accepts.

The collector binary is not available here (no Docker, and release binaries cannot be
downloaded), so ``otelcol-contrib validate`` cannot run; these checks cover what it would catch
for this file: dangling pipeline references, component keys the pinned clickhouse exporter does
not know (the collector refuses to start on an unknown key), and the deployment rules of
docs/compose.md (memory_limiter first, receivers and health_check on 0.0.0.0).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "docker" / "otel-collector" / "config.yaml"
COMPOSE = ROOT / "docker" / "compose.yaml"

# Keys of the clickhouse exporter in otel/opentelemetry-collector-contrib 0.153.0, from
# exporter/clickhouseexporter/config.schema.yaml (the generated schema of its Config struct) and
# config.go (mapstructure tags: `exporterhelper.TimeoutConfig` squashed -> `timeout`,
# `configretry.BackOffConfig` -> `retry_on_failure`, `exporterhelper.QueueBatchConfig` ->
# `sending_queue`), cross-checked with the "Configuration options" section of its README.
# `ttl_days` (removed, replaced by `ttl`) is deliberately absent.
CLICKHOUSE_EXPORTER_KEYS = frozenset(
    {
        "endpoint",
        "username",
        "password",
        "database",
        "connection_params",
        "logs_table_name",
        "traces_table_name",
        "profiles_table_name",
        "metrics_table_name",  # deprecated in favour of metrics_tables
        "metrics_tables",
        "ttl",
        "table_engine",
        "cluster_name",
        "create_schema",
        "compress",
        "async_insert",
        "json",
        "tls",
        "timeout",
        "retry_on_failure",
        "sending_queue",
    }
)
# exporterhelper's queue and batch settings (collector v0.152/0.153 exporterhelper README,
# "Sending queue" and "Sending queue batch settings") and configretry.BackOffConfig.
SENDING_QUEUE_KEYS = frozenset(
    {"enabled", "num_consumers", "wait_for_result", "block_on_overflow", "sizer", "queue_size", "storage", "batch"}
)
QUEUE_BATCH_KEYS = frozenset({"flush_timeout", "min_size", "max_size", "sizer"})
# extension/storage/filestorage/config.go (Config and CompactionConfig mapstructure tags) of
# collector-contrib at the pinned release.
FILE_STORAGE_KEYS = frozenset(
    {"directory", "timeout", "compaction", "fsync", "create_directory", "directory_permissions"}
)
COMPACTION_KEYS = frozenset(
    {
        "on_start",
        "on_rebound",
        "directory",
        "rebound_needed_threshold_mib",
        "rebound_trigger_threshold_mib",
        "max_transaction_size",
        "check_interval",
        "cleanup_on_start",
    }
)
QUEUE_DIRECTORY = "/var/lib/otelcol/file_storage"
RETRY_KEYS = frozenset(
    {"enabled", "initial_interval", "randomization_factor", "multiplier", "max_interval", "max_elapsed_time"}
)


def _config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def _base(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def test_pipelines_reference_defined_components() -> None:
    cfg = _config()
    service = cfg["service"]
    for ext in service.get("extensions", []):
        assert ext in cfg["extensions"], ext
    assert set(service["pipelines"]) == {"traces", "metrics"}
    for name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in cfg[kind], (name, kind, component)
    used = {
        c
        for p in service["pipelines"].values()
        for kind in ("receivers", "processors", "exporters")
        for c in p.get(kind, [])
    }
    defined = {c for kind in ("receivers", "processors", "exporters") for c in cfg[kind]}
    assert defined == used, defined - used  # nothing defined and unused


def test_memory_limiter_is_first_in_every_pipeline() -> None:
    for name, pipeline in _config()["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
    limiter = _config()["processors"]["memory_limiter"]
    assert limiter["check_interval"] and limiter["limit_mib"] > limiter["spike_limit_mib"] > 0


def test_no_batch_processor_batching_is_in_the_sending_queue() -> None:
    cfg = _config()
    assert not any(_base(p) == "batch" for p in cfg["processors"])
    for name, exporter in cfg["exporters"].items():
        if _base(name) == "clickhouse":
            assert exporter["sending_queue"]["enabled"] is True
            assert {"flush_timeout", "min_size"} <= set(exporter["sending_queue"]["batch"])


def test_receivers_and_health_check_listen_on_all_interfaces() -> None:
    cfg = _config()
    protocols = cfg["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert cfg["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    assert cfg["service"]["extensions"] == ["health_check", "file_storage"]


def test_sending_queues_are_on_disk_and_retry_until_clickhouse_is_back() -> None:
    cfg = _config()
    storage = cfg["extensions"]["file_storage"]
    assert set(storage) <= FILE_STORAGE_KEYS, set(storage) - FILE_STORAGE_KEYS
    assert set(storage["compaction"]) <= COMPACTION_KEYS, set(storage["compaction"]) - COMPACTION_KEYS
    # The directory must exist (create_directory is off): it is the compose volume's mount point.
    assert storage["directory"] == storage["compaction"]["directory"] == QUEUE_DIRECTORY
    assert "create_directory" not in storage
    if storage["compaction"].get("on_rebound"):
        assert storage["compaction"]["check_interval"]  # required by the extension's validation
    for name, exporter in cfg["exporters"].items():
        if _base(name) == "clickhouse":
            assert exporter["sending_queue"]["storage"] == "file_storage", name
            assert exporter["retry_on_failure"]["max_elapsed_time"] in ("0s", 0), name
    service = yaml.safe_load(COMPOSE.read_text())["services"]["otel-collector"]
    assert f"otel-collector-queue:{QUEUE_DIRECTORY}" in service["volumes"]


def test_clickhouse_exporter_keys_are_known_to_the_pinned_version() -> None:
    exporters = {n: c for n, c in _config()["exporters"].items() if _base(n) == "clickhouse"}
    assert set(exporters) == {"clickhouse", "clickhouse/metrics"}
    for name, exporter in exporters.items():
        assert set(exporter) <= CLICKHOUSE_EXPORTER_KEYS, (name, set(exporter) - CLICKHOUSE_EXPORTER_KEYS)
        assert set(exporter["sending_queue"]) <= SENDING_QUEUE_KEYS, name
        assert set(exporter["sending_queue"]["batch"]) <= QUEUE_BATCH_KEYS, name
        assert set(exporter["retry_on_failure"]) <= RETRY_KEYS, name
        assert re.fullmatch(r"\d+[smh]", exporter["ttl"]) and re.fullmatch(r"\d+[smh]", exporter["timeout"])


def test_traces_use_the_init_schema_and_metrics_the_exporters_own() -> None:
    cfg = _config()
    traces, metrics = cfg["exporters"]["clickhouse"], cfg["exporters"]["clickhouse/metrics"]
    assert traces["create_schema"] is False  # tables come from docker/clickhouse/init
    assert traces["traces_table_name"] == "otel_traces"
    assert metrics["create_schema"] is True  # used only by the metrics pipeline
    pipelines = cfg["service"]["pipelines"]
    assert "clickhouse" in pipelines["traces"]["exporters"]
    assert "clickhouse" not in pipelines["metrics"]["exporters"]
    assert pipelines["metrics"]["exporters"][0] == "clickhouse/metrics"
    assert "clickhouse/metrics" not in pipelines["traces"]["exporters"]
    for exporter in (traces, metrics):
        assert exporter["endpoint"].startswith("tcp://clickhouse:9000")
        assert exporter["database"] == "${env:CLICKHOUSE_DB}"
        assert exporter["ttl"] == traces["ttl"]
    assert cfg["exporters"]["debug"] == {"verbosity": "basic"}


def test_collector_image_and_mount_match_this_file() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["otel-collector"]
    assert service["image"] == "otel/opentelemetry-collector-contrib:0.153.0"
    assert "./otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro" in service["volumes"]
    assert "0.153.0" in CONFIG.read_text().splitlines()[0]  # the header names the version
