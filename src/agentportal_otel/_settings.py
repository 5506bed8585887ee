"""Configuration: one frozen :class:`Settings` built from the environment.

Precedence, highest first: an explicit argument to :meth:`Settings.from_env`, our
``AGENTPORTAL_OTEL_*`` variable, the standard ``OTEL_*`` variable, then the default.

A malformed environment value is logged once at ERROR, naming the variable and the fix,
and the default is used instead: tracing is never silently turned off by a typo.  A bad
explicit argument raises :class:`ValueError`.  Header values are secrets and never
appear in a message.

We parse the OTLP variables ourselves (rather than letting the exporter read them) so
that validation messages are precise, header values cannot leak through the SDK's own
warnings, and a mapping other than ``os.environ`` can be injected in tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from agentportal_otel import _env

_logger = logging.getLogger("agentportal_otel")

DEFAULT_ENDPOINT: Final = "http://localhost:4318"
DEFAULT_SERVICE_NAME: Final = "litellm-proxy"
TRACES_EXPORTERS: Final = frozenset({"otlp", "console", "none", "clickhouse"})
METRICS_EXPORTERS: Final = frozenset({"otlp", "console", "none"})
COMPRESSIONS: Final = frozenset({"none", "gzip", "deflate"})
EXTRA_CONVENTIONS: Final = frozenset({"langfuse", "openlit"})
GEN_AI_LATEST_EXPERIMENTAL: Final = "gen_ai_latest_experimental"
"""The ``OTEL_SEMCONV_STABILITY_OPT_IN`` value that selects the latest GenAI conventions."""
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off", ""})


_problems: list[tuple[str, str, str]] = []
_problems_lock = threading.Lock()


def _bad(name: str, why: str, fix: str) -> None:
    """Queue one configuration problem; :meth:`Settings.from_env` logs each once."""
    if (name, why, fix) not in _problems:
        _problems.append((name, why, fix))


def _report_problems() -> None:
    for name, why, fix in _problems:
        _logger.error("agentportal-otel: %s %s; %s", name, why, fix)
    _problems.clear()


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False if value else default
    _bad(
        name,
        f"is not a boolean ({raw!r})",
        f"set it to true or false; using the default {str(default).lower()}",
    )
    return default


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = _get(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        _bad(name, f"must be a whole number >= {minimum}, got {raw!r}", f"using the default {default}")
        return default
    return value


def _url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _safe_url(value: str) -> str:
    """The URL without userinfo, fit for a log line."""
    parts = urlsplit(value)
    if parts.username is None and parts.password is None:
        return value
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return parts._replace(netloc=f"***@{netloc}").geturl()


def _endpoint(environ: Mapping[str, str], signal_var: str, path: str) -> tuple[str, str]:
    """The signal's URL and the variable it came from, per the OTLP exporter specification."""
    signal = _get(environ, signal_var)
    if signal is not None:
        if _url(signal):
            return signal, signal_var
        _bad(
            signal_var,
            f"is not an http(s) URL ({_safe_url(signal)!r})",
            "write the full URL including the path, e.g. http://otel-collector:4318" + path,
        )
    base = _get(environ, _env.OTEL_EXPORTER_OTLP_ENDPOINT)
    if base is not None:
        if _url(base):
            return base.rstrip("/") + path, _env.OTEL_EXPORTER_OTLP_ENDPOINT
        _bad(
            _env.OTEL_EXPORTER_OTLP_ENDPOINT,
            f"is not an http(s) URL ({_safe_url(base)!r})",
            f"write a base URL such as http://otel-collector:4318; using {DEFAULT_ENDPOINT}",
        )
    return DEFAULT_ENDPOINT + path, "default"


def parse_headers(raw: str, name: str) -> dict[str, str]:
    """Parse ``k=v,k2=v2`` (values URL-encoded) as the OTLP specification defines it.

    An entry without ``=`` is reported by its position only, never by its content.
    """
    headers: dict[str, str] = {}
    for index, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key = unquote(key).strip().lower()
        if not sep or not key:
            _bad(
                name,
                f"entry #{index} is not of the form key=value and was ignored",
                "write key=value pairs separated by commas, URL-encoding spaces (e.g. authorization=Bearer%20<token>)",
            )
            continue
        headers[key] = unquote(value).strip()
    return headers


def _headers(environ: Mapping[str, str], signal_var: str) -> dict[str, str]:
    for name in (signal_var, _env.OTEL_EXPORTER_OTLP_HEADERS):
        raw = _get(environ, name)
        if raw is not None:
            return parse_headers(raw, name)
    return {}


def _timeout_s(environ: Mapping[str, str], signal_var: str) -> float:
    for name in (signal_var, _env.OTEL_EXPORTER_OTLP_TIMEOUT):
        if _get(environ, name) is not None:
            return _int(environ, name, 10_000) / 1000.0
    return 10.0


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = _get(environ, name)
        if value is not None:
            return value
    return None


def _tls(environ: Mapping[str, str], signal: str) -> tuple[str | None, tuple[str, str] | None]:
    """CA bundle and (client certificate, client key) for one signal, per-signal variables first."""
    ca = _first(environ, getattr(_env, f"OTEL_EXPORTER_OTLP_{signal}_CERTIFICATE"), _env.OTEL_EXPORTER_OTLP_CERTIFICATE)
    cert = _first(
        environ,
        getattr(_env, f"OTEL_EXPORTER_OTLP_{signal}_CLIENT_CERTIFICATE"),
        _env.OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
    )
    key = _first(environ, getattr(_env, f"OTEL_EXPORTER_OTLP_{signal}_CLIENT_KEY"), _env.OTEL_EXPORTER_OTLP_CLIENT_KEY)
    if (cert is None) != (key is None):
        _bad(
            _env.OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE if cert is None else _env.OTEL_EXPORTER_OTLP_CLIENT_KEY,
            "is unset while its mutual-TLS partner is set",
            "set both the client certificate and the client key; using no client certificate",
        )
        return ca, None
    return ca, (cert, key) if cert is not None and key is not None else None


def _spool_dir(environ: Mapping[str, str]) -> str | None:
    """The spool directory, created if needed; ``None`` (no spool) when unusable."""
    raw = _get(environ, _env.AGENTPORTAL_OTEL_SPOOL_DIR)
    if raw is None:
        return None
    path = os.path.abspath(os.path.expanduser(raw))
    try:
        os.makedirs(path, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)
    except OSError as error:
        writable = False
        why = f"cannot be created ({type(error).__name__}: {error.strerror or error})"
    else:
        why = "is not a writable directory"
    if not writable:
        _bad(
            _env.AGENTPORTAL_OTEL_SPOOL_DIR,
            f"{why}: {path!r}",
            "point it at a directory this process can write (in a container, a volume owned by its user); "
            "the spool is off until then",
        )
        return None
    return path


def _compression(environ: Mapping[str, str], signal_var: str) -> str:
    for name in (signal_var, _env.OTEL_EXPORTER_OTLP_COMPRESSION):
        raw = _get(environ, name)
        if raw is None:
            continue
        if raw.lower() in COMPRESSIONS:
            return raw.lower()
        _bad(name, f"must be gzip, deflate or none, got {raw!r}", "using none")
        return "none"
    return "none"


def _exporters(environ: Mapping[str, str], name: str, allowed: frozenset[str]) -> tuple[str, ...]:
    raw = _get(environ, name)
    if raw is None:
        return ("otlp",)
    chosen: list[str] = []
    for item in (part.strip().lower() for part in raw.split(",")):
        if item in allowed:
            if item not in chosen:
                chosen.append(item)
        elif item:
            _bad(name, f"names an unknown exporter {item!r}", f"use one of {', '.join(sorted(allowed))}")
    if not chosen:
        _bad(name, "names no usable exporter", "using otlp")
        return ("otlp",)
    if "none" in chosen and len(chosen) > 1:
        chosen.remove("none")
    return tuple(chosen)


def _csv(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _get(environ, name)
    if raw is None:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def _semconv_latest(environ: Mapping[str, str]) -> bool:
    # A list shared with every other instrumentation in the process ("http", "database", ...):
    # values that are not ours are theirs, not mistakes.
    raw = _get(environ, _env.OTEL_SEMCONV_STABILITY_OPT_IN) or ""
    return GEN_AI_LATEST_EXPERIMENTAL in {part.strip().lower() for part in raw.split(",")}


def _extra_conventions(environ: Mapping[str, str]) -> tuple[str, ...]:
    chosen: list[str] = []
    for item in _csv(environ, _env.AGENTPORTAL_OTEL_EXTRA_CONVENTIONS):
        name = item.lower()
        if name in EXTRA_CONVENTIONS:
            if name not in chosen:
                chosen.append(name)
        else:
            _bad(
                _env.AGENTPORTAL_OTEL_EXTRA_CONVENTIONS,
                f"names an unknown backend {item!r}",
                f"use a comma list of {', '.join(sorted(EXTRA_CONVENTIONS))}; ignoring {item!r}",
            )
    return tuple(chosen)


def _warn_litellm_only_names(environ: Mapping[str, str]) -> None:
    for name, standard in _env.LITELLM_ONLY_NAMES.items():
        if _get(environ, name) is not None:
            _logger.warning(
                "agentportal-otel: %s is read only by LiteLLM's built-in otel callback and is ignored "
                "by agentportal-otel; set %s instead",
                name,
                standard,
            )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the plugin reads from its environment, validated.

    Build it with :meth:`from_env`; any field may be given explicitly there and then wins
    over the environment.  Precedence per field: explicit argument, ``AGENTPORTAL_OTEL_*``,
    standard ``OTEL_*``, default.
    """

    enabled: bool = True
    service_name: str = DEFAULT_SERVICE_NAME
    traces_exporters: tuple[str, ...] = ("otlp",)
    metrics_exporters: tuple[str, ...] = ("otlp",)
    traces_endpoint: str = DEFAULT_ENDPOINT + "/v1/traces"
    traces_endpoint_source: str = "default"
    metrics_endpoint: str = DEFAULT_ENDPOINT + "/v1/metrics"
    metrics_endpoint_source: str = "default"
    traces_headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    metrics_headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    traces_timeout_s: float = 10.0
    metrics_timeout_s: float = 10.0
    traces_compression: str = "none"
    metrics_compression: str = "none"
    bsp_schedule_delay_ms: int = 1000
    bsp_max_queue_size: int = 8192
    bsp_max_export_batch_size: int = 512
    bsp_export_timeout_ms: int = 30_000
    metric_export_interval_ms: int = 60_000
    capture_message_content: bool = False
    project_metadata_field: str = "project"
    key_metadata_allowlist: tuple[str, ...] = ()
    max_tenant_values: int = 1000
    max_attribute_length: int = 4096
    capture_user_email: bool = False
    capture_client_address: bool = False
    capture_user_agent: bool = False
    shutdown_timeout_ms: int = 10_000
    semconv_latest: bool = False
    """``OTEL_SEMCONV_STABILITY_OPT_IN`` holds ``gen_ai_latest_experimental``: emit the names of
    the current semantic-conventions-genai repository instead of the v1.41.0 release's."""
    extra_conventions: tuple[str, ...] = ()
    """Backends (``langfuse``, ``openlit``) whose own cost/user attributes are added to spans."""
    traces_certificate: str | None = None
    traces_client_cert: tuple[str, str] | None = None
    metrics_certificate: str | None = None
    metrics_client_cert: tuple[str, str] | None = None
    max_queue_bytes: int = 64 * 2**20
    retry_max_backoff_ms: int = 30_000
    spool_dir: str | None = None
    """Disk spool directory (``AGENTPORTAL_OTEL_SPOOL_DIR``); ``None`` turns the spool off."""
    spool_max_bytes: int = 512 * 2**20
    master_key_hash: str | None = dataclasses.field(default=None, repr=False)
    """sha256 of ``LITELLM_MASTER_KEY``: spans of rejected master-key requests show the alias
    ``litellm_proxy_master_key`` instead of a stable fingerprint of the master key."""
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Read and validate the environment (``os.environ`` by default).

        Keyword arguments name :class:`Settings` fields and win over the environment;
        an unknown name or an invalid value raises :class:`ValueError`.
        """
        env: Mapping[str, str] = dict(os.environ if environ is None else environ)
        with _problems_lock:
            try:
                values = cls._values_from_env(env)
            finally:
                _report_problems()
        fields = {f.name for f in dataclasses.fields(cls)}
        for name, value in explicit.items():
            if name not in fields:
                raise ValueError(f"Settings has no field {name!r}")
            values[name] = value
        settings = cls(**values)
        settings.validate()
        return settings

    @staticmethod
    def _values_from_env(env: Mapping[str, str]) -> dict[str, Any]:
        _warn_litellm_only_names(env)
        if _get(env, _env.OTEL_EXPORTER_OTLP_PROTOCOL) not in (None, "http/protobuf"):
            _bad(
                _env.OTEL_EXPORTER_OTLP_PROTOCOL,
                f"is {env[_env.OTEL_EXPORTER_OTLP_PROTOCOL]!r} but agentportal-otel exports OTLP/HTTP protobuf",
                "point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318) and unset it",
            )
        traces_endpoint, traces_source = _endpoint(env, _env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "/v1/traces")
        metrics_endpoint, metrics_source = _endpoint(env, _env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, "/v1/metrics")
        max_batch = _int(env, _env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512)
        max_queue = _int(env, _env.OTEL_BSP_MAX_QUEUE_SIZE, 8192)
        if max_batch > max_queue:
            _bad(
                _env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
                f"({max_batch}) exceeds OTEL_BSP_MAX_QUEUE_SIZE ({max_queue})",
                "using the queue size as the batch size",
            )
            max_batch = max_queue
        traces_tls = _tls(env, "TRACES")
        metrics_tls = _tls(env, "METRICS")
        return {
            "enabled": not _bool(env, _env.OTEL_SDK_DISABLED, False),
            "service_name": _get(env, _env.OTEL_SERVICE_NAME) or _resource_service_name(env) or DEFAULT_SERVICE_NAME,
            "traces_exporters": _exporters(env, _env.OTEL_TRACES_EXPORTER, TRACES_EXPORTERS),
            "metrics_exporters": _exporters(env, _env.OTEL_METRICS_EXPORTER, METRICS_EXPORTERS),
            "traces_endpoint": traces_endpoint,
            "traces_endpoint_source": traces_source,
            "metrics_endpoint": metrics_endpoint,
            "metrics_endpoint_source": metrics_source,
            "traces_headers": _headers(env, _env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
            "metrics_headers": _headers(env, _env.OTEL_EXPORTER_OTLP_METRICS_HEADERS),
            "traces_timeout_s": _timeout_s(env, _env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT),
            "metrics_timeout_s": _timeout_s(env, _env.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT),
            "traces_compression": _compression(env, _env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION),
            "metrics_compression": _compression(env, _env.OTEL_EXPORTER_OTLP_METRICS_COMPRESSION),
            "bsp_schedule_delay_ms": _int(env, _env.OTEL_BSP_SCHEDULE_DELAY, 1000),
            "bsp_max_queue_size": max_queue,
            "bsp_max_export_batch_size": max_batch,
            "bsp_export_timeout_ms": _int(env, _env.OTEL_BSP_EXPORT_TIMEOUT, 30_000),
            "metric_export_interval_ms": _int(env, _env.OTEL_METRIC_EXPORT_INTERVAL, 60_000),
            "capture_message_content": _bool(env, _env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, False),
            "project_metadata_field": _get(env, _env.AGENTPORTAL_OTEL_PROJECT_METADATA_FIELD) or "project",
            "key_metadata_allowlist": _csv(env, _env.AGENTPORTAL_OTEL_KEY_METADATA_ALLOWLIST),
            "max_tenant_values": _int(env, _env.AGENTPORTAL_OTEL_MAX_TENANT_VALUES, 1000),
            "max_attribute_length": _int(env, _env.AGENTPORTAL_OTEL_MAX_ATTRIBUTE_LENGTH, 4096, minimum=64),
            "capture_user_email": _bool(env, _env.AGENTPORTAL_OTEL_CAPTURE_USER_EMAIL, False),
            "capture_client_address": _bool(env, _env.AGENTPORTAL_OTEL_CAPTURE_CLIENT_ADDRESS, False),
            "capture_user_agent": _bool(env, _env.AGENTPORTAL_OTEL_CAPTURE_USER_AGENT, False),
            "shutdown_timeout_ms": _int(env, _env.AGENTPORTAL_OTEL_SHUTDOWN_TIMEOUT_MS, 10_000),
            "semconv_latest": _semconv_latest(env),
            "extra_conventions": _extra_conventions(env),
            "traces_certificate": traces_tls[0],
            "traces_client_cert": traces_tls[1],
            "metrics_certificate": metrics_tls[0],
            "metrics_client_cert": metrics_tls[1],
            "max_queue_bytes": _int(env, _env.AGENTPORTAL_OTEL_MAX_QUEUE_BYTES, 64 * 2**20, minimum=1024),
            "retry_max_backoff_ms": _int(env, _env.AGENTPORTAL_OTEL_RETRY_MAX_BACKOFF_MS, 30_000),
            "spool_dir": _spool_dir(env),
            "spool_max_bytes": _int(env, _env.AGENTPORTAL_OTEL_SPOOL_MAX_BYTES, 512 * 2**20, minimum=1024),
            "master_key_hash": _sha256(_get(env, _env.LITELLM_MASTER_KEY)),
            "environ": env,
        }

    def validate(self) -> None:
        """Raise :class:`ValueError` for a value no environment parse can produce."""
        if not set(self.traces_exporters) <= TRACES_EXPORTERS or not self.traces_exporters:
            raise ValueError(f"traces_exporters must be drawn from {sorted(TRACES_EXPORTERS)}")
        if not set(self.metrics_exporters) <= METRICS_EXPORTERS or not self.metrics_exporters:
            raise ValueError(f"metrics_exporters must be drawn from {sorted(METRICS_EXPORTERS)}")
        for name in ("traces_endpoint", "metrics_endpoint"):
            if not _url(getattr(self, name)):
                raise ValueError(f"{name} must be an http(s) URL")
        for name in ("traces_compression", "metrics_compression"):
            if getattr(self, name) not in COMPRESSIONS:
                raise ValueError(f"{name} must be one of {sorted(COMPRESSIONS)}")
        for name in (
            "bsp_schedule_delay_ms",
            "bsp_max_queue_size",
            "bsp_max_export_batch_size",
            "bsp_export_timeout_ms",
            "metric_export_interval_ms",
            "max_tenant_values",
            "max_attribute_length",
            "shutdown_timeout_ms",
            "max_queue_bytes",
            "retry_max_backoff_ms",
            "spool_max_bytes",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.bsp_max_export_batch_size > self.bsp_max_queue_size:
            raise ValueError("bsp_max_export_batch_size must not exceed bsp_max_queue_size")
        if not set(self.extra_conventions) <= EXTRA_CONVENTIONS:
            raise ValueError(f"extra_conventions must be drawn from {sorted(EXTRA_CONVENTIONS)}")

    def describe_destination(self) -> str:
        """One human line saying where spans and metrics go, without secrets."""
        parts = []
        for exporter in self.traces_exporters:
            if exporter == "otlp":
                parts.append(
                    f"spans -> OTLP/HTTP {_safe_url(self.traces_endpoint)} (from {self.traces_endpoint_source})"
                )
            elif exporter == "clickhouse":
                target = self.environ.get(_env.AGENTPORTAL_OTEL_CLICKHOUSE_URL, "<unset>")
                parts.append(f"spans -> ClickHouse {_safe_url(target) if _url(target) else target}")
            else:
                parts.append(f"spans -> {exporter}")
        for exporter in self.metrics_exporters:
            if exporter == "otlp":
                parts.append(
                    f"metrics -> OTLP/HTTP {_safe_url(self.metrics_endpoint)} (from {self.metrics_endpoint_source})"
                )
            else:
                parts.append(f"metrics -> {exporter}")
        return "; ".join(parts)


def _sha256(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def _resource_service_name(environ: Mapping[str, str]) -> str | None:
    raw = _get(environ, _env.OTEL_RESOURCE_ATTRIBUTES)
    if raw is None:
        return None
    for entry in raw.split(","):
        key, sep, value = entry.partition("=")
        if sep and unquote(key).strip() == "service.name" and value.strip():
            return unquote(value).strip()
    return None
