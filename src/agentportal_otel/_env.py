"""Names of every environment variable agentportal-otel reads, with what each does.

Standard ``OTEL_*`` variables are read first-class; our own ``AGENTPORTAL_OTEL_*``
variables only cover what no standard variable does.  Precedence is documented on
:class:`agentportal_otel._settings.Settings`.
"""

from __future__ import annotations

from typing import Final

# --- standard OpenTelemetry variables -------------------------------------------------

OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
"""``true`` turns the plugin into a no-op (no providers, no threads). Default ``false``."""

OTEL_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
"""Resource ``service.name``. Default ``litellm-proxy`` (not the SDK's ``unknown_service``)."""

OTEL_RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
"""Extra resource attributes, ``k=v,k2=v2``; parsed by the SDK's resource detector."""

OTEL_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
"""Comma-separated: ``otlp`` (default), ``console``, ``none``, or ``clickhouse`` (direct export)."""

OTEL_METRICS_EXPORTER: Final = "OTEL_METRICS_EXPORTER"
"""Comma-separated: ``otlp`` (default), ``console`` or ``none``."""

OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""Base URL of the collector's OTLP/HTTP receiver; ``/v1/traces`` and ``/v1/metrics`` are
appended. Default ``http://localhost:4318``."""

OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
"""Full URL for spans, used as is (no path appended). Wins over the base endpoint."""

OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
"""Full URL for metrics, used as is. Wins over the base endpoint."""

OTEL_EXPORTER_OTLP_HEADERS: Final = "OTEL_EXPORTER_OTLP_HEADERS"
"""``key=value`` pairs separated by commas, values URL-encoded; sent with every export.
Values are secrets: they are never logged."""

OTEL_EXPORTER_OTLP_TRACES_HEADERS: Final = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
"""As ``OTEL_EXPORTER_OTLP_HEADERS``, for spans only (replaces it when set)."""

OTEL_EXPORTER_OTLP_METRICS_HEADERS: Final = "OTEL_EXPORTER_OTLP_METRICS_HEADERS"
"""As ``OTEL_EXPORTER_OTLP_HEADERS``, for metrics only (replaces it when set)."""

OTEL_EXPORTER_OTLP_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TIMEOUT"
"""Export request timeout in milliseconds (per the specification). Default 10000."""

OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
"""As ``OTEL_EXPORTER_OTLP_TIMEOUT``, for spans only."""

OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"
"""As ``OTEL_EXPORTER_OTLP_TIMEOUT``, for metrics only."""

OTEL_EXPORTER_OTLP_COMPRESSION: Final = "OTEL_EXPORTER_OTLP_COMPRESSION"
"""``gzip``, ``deflate`` or ``none`` (default)."""

OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: Final = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
"""As ``OTEL_EXPORTER_OTLP_COMPRESSION``, for spans only."""

OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: Final = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"
"""As ``OTEL_EXPORTER_OTLP_COMPRESSION``, for metrics only."""

OTEL_EXPORTER_OTLP_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_CERTIFICATE"
"""CA bundle (PEM file) that verifies the collector's TLS certificate. Default: the system's."""

OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
"""As ``OTEL_EXPORTER_OTLP_CERTIFICATE``, for spans only."""

OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"
"""As ``OTEL_EXPORTER_OTLP_CERTIFICATE``, for metrics only."""

OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
"""Client certificate (PEM file) for mutual TLS; used together with the client key."""

OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
"""As ``OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE``, for spans only."""

OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE"
"""As ``OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE``, for metrics only."""

OTEL_EXPORTER_OTLP_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
"""Client private key (PEM file) for mutual TLS."""

OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"
"""As ``OTEL_EXPORTER_OTLP_CLIENT_KEY``, for spans only."""

OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"
"""As ``OTEL_EXPORTER_OTLP_CLIENT_KEY``, for metrics only."""

OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""Only ``http/protobuf`` is supported; ``grpc`` is reported at startup."""

OTEL_BSP_SCHEDULE_DELAY: Final = "OTEL_BSP_SCHEDULE_DELAY"
"""Milliseconds between batch exports. Our default 1000 (the SDK's is 5000)."""

OTEL_BSP_MAX_QUEUE_SIZE: Final = "OTEL_BSP_MAX_QUEUE_SIZE"
"""Spans held while the collector is slow or down (plus the one batch being retried); beyond
it new spans are dropped and counted with ``reason=queue_full``. Our default 8192 (the SDK's
is 2048)."""

OTEL_BSP_MAX_EXPORT_BATCH_SIZE: Final = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
"""Spans per export request. Default 512."""

OTEL_BSP_EXPORT_TIMEOUT: Final = "OTEL_BSP_EXPORT_TIMEOUT"
"""Milliseconds allowed for one export. Default 30000."""

OTEL_METRIC_EXPORT_INTERVAL: Final = "OTEL_METRIC_EXPORT_INTERVAL"
"""Milliseconds between metric exports. Default 60000."""

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""``true`` records prompts and completions on spans (redacted, capped). Default ``false``.
LiteLLM's own ``turn_off_message_logging`` always wins."""

OTEL_SEMCONV_STABILITY_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
"""Comma-separated opt-ins of the official instrumentations. ``gen_ai_latest_experimental``
switches spans and metrics to the names of the current ``semantic-conventions-genai``
repository (e.g. ``gen_ai.usage.cache_write.input_tokens``, ``gen_ai.client.inference.*``
metrics). Default: the v1.41.0 release's names. Other values are for other instrumentations
and are ignored."""

# --- LiteLLM-only names that do nothing for us (warned about at startup) ----------------

LITELLM_ONLY_NAMES: Final = {
    "OTEL_EXPORTER": "OTEL_TRACES_EXPORTER (otlp, console, none) and OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_ENDPOINT": "OTEL_EXPORTER_OTLP_ENDPOINT (base URL, e.g. http://otel-collector:4318)",
    "OTEL_HEADERS": "OTEL_EXPORTER_OTLP_HEADERS (key=value pairs separated by commas)",
}
"""Variables read only by LiteLLM's built-in ``otel`` callback, with the standard name to use."""

LITELLM_MASTER_KEY: Final = "LITELLM_MASTER_KEY"
"""The proxy's master key. Only its sha256 is kept, to recognise it; the key is never exported."""

# --- our own variables ------------------------------------------------------------------

PREFIX: Final = "AGENTPORTAL_OTEL_"

AGENTPORTAL_OTEL_PROJECT_METADATA_FIELD: Final = "AGENTPORTAL_OTEL_PROJECT_METADATA_FIELD"
"""Key/team metadata field naming the project. Default ``project``."""

AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST: Final = "AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST"
"""Comma-separated key-metadata fields promoted to ``agentportal.key.metadata.<field>``.
Default empty."""

AGENTPORTAL_OTEL_MAX_TENANT_VALUES: Final = "AGENTPORTAL_OTEL_MAX_TENANT_VALUES"
"""Distinct team and project values per metric dimension before new ones fold into
``other``. Default 1000."""

AGENTPORTAL_OTEL_MAX_ATTRIBUTE_LENGTH: Final = "AGENTPORTAL_OTEL_MAX_ATTRIBUTE_LENGTH"
"""Cap, in characters, on any string attribute we build. Default 4096."""

AGENTPORTAL_OTEL_CAPTURE_USER_EMAIL: Final = "AGENTPORTAL_OTEL_CAPTURE_USER_EMAIL"
"""``true`` records the key owner's e-mail as ``user.email``. Default ``false``."""

AGENTPORTAL_OTEL_CAPTURE_CLIENT_ADDRESS: Final = "AGENTPORTAL_OTEL_CAPTURE_CLIENT_ADDRESS"
"""``true`` records the requester's IP as ``client.address``. Default ``false``."""

AGENTPORTAL_OTEL_CAPTURE_USER_AGENT: Final = "AGENTPORTAL_OTEL_CAPTURE_USER_AGENT"
"""``true`` records the requester's user agent as ``user_agent.original``. Default ``false``."""

AGENTPORTAL_OTEL_SHUTDOWN_TIMEOUT_MS: Final = "AGENTPORTAL_OTEL_SHUTDOWN_TIMEOUT_MS"
"""One budget, in milliseconds, for flushing spans and metrics at shutdown. Default 10000."""

AGENTPORTAL_OTEL_MAX_QUEUE_BYTES: Final = "AGENTPORTAL_OTEL_MAX_QUEUE_BYTES"
"""Bound, in bytes of encoded OTLP, on the spans held for export (queued plus the batch being
retried); beyond it new spans are dropped and counted with ``reason=queue_bytes``. Queued
spans are not encoded yet, so their size is estimated from the batches encoded so far.
Default 67108864 (64 MiB)."""

AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS: Final = "AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS"
"""Cap, in milliseconds, on the wait between two attempts to export a batch the collector did
not accept (connection refused or reset, timeout, 429, 502, 503, 504); the wait doubles from
``min(1000, cap)`` with jitter, and a ``Retry-After`` answer is honoured up to the cap.
Default 30000."""

AGENTPORTAL_OTEL_SPOOL_DIR: Final = "AGENTPORTAL_OTEL_SPOOL_DIR"
"""Directory for the disk spool: what cannot be exported by the shutdown deadline is written
there as encoded OTLP requests and sent, oldest first, by the next process that starts on the
same directory. Several processes may share it. Default unset: no spool."""

AGENTPORTAL_OTEL_SPOOL_MAX_BYTES: Final = "AGENTPORTAL_OTEL_SPOOL_MAX_BYTES"
"""Bound on the spool directory's size in bytes; a request that would exceed it is dropped
and its spans counted with ``reason=spool_full``. Default 536870912 (512 MiB)."""

AGENTPORTAL_OTEL_CLICKHOUSE_URL: Final = "AGENTPORTAL_OTEL_CLICKHOUSE_URL"
"""With ``OTEL_TRACES_EXPORTER=clickhouse``: ``http(s)://host:8123`` or ``chdb:///path``."""

AGENTPORTAL_OTEL_EXTRA_CONVENTIONS: Final = "AGENTPORTAL_OTEL_EXTRA_CONVENTIONS"
"""Comma-separated backends whose own attribute names are added next to ours, so cost and
user show up there: ``langfuse`` (``gen_ai.usage.cost``, ``user.id``),
``openlit`` (``gen_ai.usage.cost``). Default empty."""

AGENTPORTAL_OTEL_LOG_LEVEL: Final = "AGENTPORTAL_OTEL_LOG_LEVEL"
"""Level of the ``agentportal_otel`` log when run by the proxy (``agentportal_otel.proxy``).
Default ``INFO``: one line at startup, warnings and errors after that."""
