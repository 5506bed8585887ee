"""``agentportal-otel demo``: a real proxy, sample traffic, and the usage tables, in one command.

::

    agentportal-otel demo                     # or: python -m agentportal_otel.demo
    agentportal-otel demo --requests 200 --data-dir /tmp/demo-chdb --keep

Steps, all local (no Docker, no database, no network):

1. Prepare the data directory (default ``./.agentportal-demo/chdb``). It is wiped first so the
   tables show this run only; ``--keep`` adds to what is there. Only a directory this command
   created (it holds a ``.agentportal-demo`` marker), an empty one, or a chDB store is wiped.
2. Start ``litellm --config litellm/config.yaml`` through
   :class:`~agentportal_otel.demo._proxy.ProxyProcess` (no database, the demo keys of
   :mod:`agentportal_otel.demo.auth`) with ``OTEL_TRACES_EXPORTER=clickhouse`` and
   ``AGENTPORTAL_OTEL_CLICKHOUSE_URL=chdb:///<data dir>``: the plugin writes its spans straight
   into an embedded ClickHouse store, in the collector exporter's ``otel_traces`` schema.
3. Send ``--requests`` calls (4 at a time) as the four demo keys, round-robin: two teams, three
   projects and one key with neither. Chat, streaming chat and embeddings on the mock models,
   plus planned failures (``mock-ratelimit``: HTTP 429, ``mock-unreachable``: connection error)
   and one two-call "agent run" sharing a W3C ``traceparent``.
4. Stop the proxy with SIGTERM, as a container runtime would; the plugin flushes on shutdown.
5. Print usage by team and project, usage by model, errors, and the latest calls by running the
   ``agentportal-otel`` CLI in this process (the same code users run), then a summary, and last
   the one command that serves the monitoring page on this data (``agentportal-otel serve``).

Exit codes: 0 success; 1 the proxy did not start or stop cleanly, or fewer spans landed than
requests were sent; 2 bad arguments or configuration (config not found, data dir not ours,
missing extras).
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agentportal_otel.demo.auth import DEMO_KEYS, DemoKey

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_DATA_DIR", "DEFAULT_REQUESTS", "DemoError", "add_arguments", "main", "plan", "run", "serve_command"]

DEFAULT_DATA_DIR = Path(".agentportal-demo") / "chdb"
"""Where the spans go unless ``--data-dir`` says otherwise (relative to the working directory)."""

DEFAULT_REQUESTS = 60
CONCURRENCY = 4
"""Requests in flight at once."""

MARKER = ".agentportal-demo"
"""File the demo leaves in its data directory; its presence allows the next run to wipe it."""

CALLBACK = "agentportal_otel.proxy.handler"
MODELS = {"chat": "mock-chat", "stream": "mock-chat", "embed": "mock-embed"}
RATELIMIT_MODEL = "mock-ratelimit"
UNREACHABLE_MODEL = "mock-unreachable"
REQUIRED_MODELS = frozenset({*MODELS.values(), RATELIMIT_MODEL, UNREACHABLE_MODEL})

# Key k's n-th request has kind _MIX[(n + k) % len(_MIX)]: every key walks the whole mix (8 successes,
# 2 failures per 10) and the first requests already cover chat, stream, embeddings and a 429.
_MIX = ("chat", "stream", "embed", "ratelimit", "chat", "unreachable", "chat", "stream", "embed", "chat")
_EXPECTED_STATUS = {"chat": 200, "stream": 200, "embed": 200, "ratelimit": 429}
_PROMPTS = {
    "search-portal": "Rank these three documents for the query 'quarterly revenue'.",
    "assistant": "Draft a polite reply declining the meeting.",
    "agent-portal": "Plan the next tool call for the ticket triage agent.",
}
_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
_CLEAN_EXITS = frozenset({0, -signal.SIGTERM})  # uvicorn re-raises SIGTERM after a graceful shutdown

# The caller's own telemetry settings must not redirect or disable the demo proxy's export.
_PROXY_ENV_UNSET = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "AGENTPORTAL_OTEL_CLICKHOUSE_USER",
    "AGENTPORTAL_OTEL_CLICKHOUSE_PASSWORD",
    "AGENTPORTAL_OTEL_CLICKHOUSE_TRACES_TABLE",
    "PYTEST_CURRENT_TEST",  # would make the plugin's guard re-raise inside the proxy
)


class DemoError(Exception):
    """The demo cannot run; the message says why and what to do. ``code`` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- arguments -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (the CLI's ``demo`` subcommand or ``__main__``)."""
    parser.add_argument(
        "--requests", type=_positive_int, default=DEFAULT_REQUESTS, help=f"calls to send (default {DEFAULT_REQUESTS})"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"chDB directory (default {DEFAULT_DATA_DIR})"
    )
    wipe = parser.add_mutually_exclusive_group()
    wipe.add_argument("--fresh", action="store_true", help="wipe the data directory first (the default)")
    wipe.add_argument("--keep", action="store_true", help="add to the data directory instead of wiping it")
    parser.add_argument("--config", type=Path, help="LiteLLM config (default: litellm/config.yaml of the checkout)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agentportal_otel.demo", description=(__doc__ or "").split("\n\n")[0].strip("`: ")
    )
    add_arguments(parser)
    return parser


# -- preparation -----------------------------------------------------------------------------


def _check_dependencies() -> None:
    missing = [name for name in ("litellm", "yaml", "httpx", "chdb") if importlib.util.find_spec(name) is None]
    if missing:
        raise DemoError(
            f"missing Python packages: {', '.join(missing)}; install the extras: "
            "pip install 'agentportal-otel[proxy,clickhouse]'",
            code=2,
        )


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path:
    """``explicit`` if given, else ``litellm/config.yaml`` in ``cwd``, else in this package's checkout."""
    if explicit is not None:
        if not explicit.is_file():
            raise DemoError(f"--config {explicit}: no such file", code=2)
        return explicit.resolve()
    candidates = [
        (cwd or Path.cwd()) / "litellm" / "config.yaml",
        Path(__file__).resolve().parents[3] / "litellm" / "config.yaml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise DemoError(
        f"no LiteLLM config found (looked at {looked}); "
        "run from the repository root or pass --config path/to/litellm/config.yaml",
        code=2,
    )


def _check_config(path: Path) -> None:
    import yaml

    with path.open(encoding="utf-8") as fh:
        config: Any = yaml.safe_load(fh) or {}
    models = {m.get("model_name") for m in config.get("model_list") or [] if isinstance(m, dict)}
    missing = sorted(REQUIRED_MODELS - models)
    if missing:
        raise DemoError(f"{path} lacks the demo's mock models: {', '.join(missing)}", code=2)
    callbacks = (config.get("litellm_settings") or {}).get("callbacks") or []
    if CALLBACK not in callbacks:
        raise DemoError(f"{path}: litellm_settings.callbacks does not list {CALLBACK!r}", code=2)


def prepare_data_dir(path: Path, *, keep: bool) -> Path:
    """Create (or, unless ``keep``, wipe and re-create) the chDB directory; returns it absolute.

    Refuses to wipe a non-empty directory that is neither the demo's (marker file) nor a chDB
    store, so a mistyped ``--data-dir`` cannot delete unrelated files.
    """
    path = path.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise DemoError(f"--data-dir {path} is not a directory", code=2)
    if path.is_dir() and not keep and any(path.iterdir()):
        ours = (path / MARKER).exists() or (path / "metadata").is_dir()
        if not ours:
            raise DemoError(
                f"--data-dir {path} is not empty and was not created by the demo; refusing to wipe it "
                "(pick another directory, or pass --keep to add to it)",
                code=2,
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("Created by `agentportal-otel demo`; the next run wipes this directory.\n")
    return path


# -- traffic ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One planned call. ``traceparent`` is set for the calls of the demo's agent run."""

    index: int
    kind: str
    key: DemoKey
    traceparent: str | None = None

    @property
    def model(self) -> str:
        if self.kind == "ratelimit":
            return RATELIMIT_MODEL
        if self.kind == "unreachable":
            return UNREACHABLE_MODEL
        return MODELS[self.kind]


def plan(count: int, trace_id: str) -> list[Request]:
    """``count`` requests: keys round-robin over :data:`DEMO_KEYS`, each key walking the mix.

    The first two calls of the key attributed by tag (``agent-portal``) carry a ``traceparent``
    with ``trace_id``, as two LLM calls of one agent run would.
    """
    agent_calls = 0
    requests = []
    for index in range(count):
        slot, nth = index % len(DEMO_KEYS), index // len(DEMO_KEYS)
        key = DEMO_KEYS[slot]
        kind = _MIX[(nth + slot) % len(_MIX)]
        traceparent = None
        if key.project_source == "key_tag" and agent_calls < 2:
            agent_calls += 1
            traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        requests.append(Request(index, kind, key, traceparent))
    return requests


@dataclass(frozen=True)
class Outcome:
    request: Request
    status: int | None  # None: the request itself failed (no HTTP response)
    detail: str = ""

    @property
    def as_planned(self) -> bool:
        expected = _EXPECTED_STATUS.get(self.request.kind)
        if expected is None:  # unreachable upstream: LiteLLM answers with some 5xx
            return self.status is not None and self.status >= 500
        return self.status == expected


def send(client: httpx.Client, request: Request) -> Outcome:
    """Send one request through the proxy; never raises for HTTP or transport errors."""
    import httpx

    headers = {"Authorization": f"Bearer {request.key.key}"}
    if request.traceparent:
        headers["traceparent"] = request.traceparent
    project = request.key.project or "misc"
    prompt = _PROMPTS.get(project, "Say hello.")
    try:
        if request.kind == "embed":
            payload: dict[str, Any] = {"model": request.model, "input": prompt}
            response = client.post("/v1/embeddings", headers=headers, json=payload)
            return Outcome(request, response.status_code)
        payload = {"model": request.model, "messages": [{"role": "user", "content": prompt}]}
        if request.kind == "stream":
            payload["stream"] = True
            with client.stream("POST", "/v1/chat/completions", headers=headers, json=payload) as streamed:
                streamed.read()  # consume every chunk: the call ends when the stream does
                return Outcome(request, streamed.status_code)
        response = client.post("/v1/chat/completions", headers=headers, json=payload)
        return Outcome(request, response.status_code)
    except httpx.HTTPError as exc:
        return Outcome(request, None, f"{type(exc).__name__}: {exc}")


class Progress:
    """A text bar redrawn in place on a terminal; on a pipe, a line every ~20 %."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        self.done = 0
        self.failed = 0
        self._tty = stream.isatty()
        self._every = max(1, total // 5)

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += outcome.status is None or outcome.status >= 400
        if self._tty:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r  [{bar}] {self.done}/{self.total} requests, {self.failed} errors")
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done % self._every == 0 or self.done == self.total:
            self.stream.write(f"  sent {self.done}/{self.total} requests ({self.failed} errors)\n")
        self.stream.flush()


def send_all(base_url: str, requests: Sequence[Request], progress: Callable[[Outcome], None]) -> list[Outcome]:
    """Send ``requests`` with :data:`CONCURRENCY` in flight; ``progress`` is called per completion."""
    import httpx

    outcomes: list[Outcome] = []
    lock = threading.Lock()
    with (
        httpx.Client(base_url=base_url, timeout=_TIMEOUT_S) as client,
        ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="demo-traffic") as pool,
    ):
        futures = [pool.submit(send, client, request) for request in requests]
        for future in as_completed(futures):
            outcome = future.result()
            with lock:
                outcomes.append(outcome)
                progress(outcome)
    return sorted(outcomes, key=lambda o: o.request.index)


# -- run -------------------------------------------------------------------------------------


def proxy_env(url: str) -> dict[str, str | None]:
    """The proxy's environment overrides: spans to ``url`` (chDB), no metrics, fast batches."""
    env: dict[str, str | None] = dict.fromkeys(_PROXY_ENV_UNSET)
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "clickhouse",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "AGENTPORTAL_OTEL_CLICKHOUSE_URL": url,
            "AGENTPORTAL_OTEL_CLICKHOUSE_DATABASE": "otel",
            "AGENTPORTAL_OTEL_CLICKHOUSE_CREATE_SCHEMA": "true",
        }
    )
    return env


def count_spans(url: str, since: datetime) -> int:
    """LLM-call spans stored at ``url`` from ``since`` on (one per call), through the query layer."""
    from agentportal_otel.clickhouse import _queries as q
    from agentportal_otel.clickhouse import connect

    backend = connect(url, variable="--data-dir")
    try:
        rows = q.usage(backend, start=since, end=datetime.now(timezone.utc) + timedelta(minutes=1))
        return sum(row.calls for row in rows)
    finally:
        backend.close()  # releases the process's chDB engine for the CLI queries


def _say(message: str, err: TextIO) -> None:
    err.write(f"demo: {message}\n")
    err.flush()


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the demo with parsed ``args`` (see :func:`add_arguments`); returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _run(args, out, err)
    except DemoError as exc:
        err.write(f"agentportal-otel demo: error: {exc}\n")
        return exc.code


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from agentportal_otel import cli
    from agentportal_otel.demo._proxy import ProxyProcess, ProxyStartError

    began = time.monotonic()
    _check_dependencies()
    config = find_config(args.config)
    _check_config(config)
    data_dir = prepare_data_dir(args.data_dir, keep=args.keep)
    url = f"chdb://{data_dir}"
    trace_id = secrets.token_hex(16)
    requests = plan(args.requests, trace_id)
    _say(f"spans go to {url}" + (" (kept; adding to it)" if args.keep else " (wiped first)"), err)

    _say(f"starting the LiteLLM proxy with {config} ...", err)
    proxy = ProxyProcess(config, env=proxy_env(url), startup_timeout=120.0)
    try:
        try:
            proxy.start()
        except ProxyStartError as exc:
            raise DemoError(f"the proxy did not start: {exc}") from None
        _say(f"proxy live at {proxy.url} after {time.monotonic() - began:.1f} s; sending {len(requests)} requests", err)
        traffic_start = datetime.now(timezone.utc)
        outcomes = send_all(proxy.url, requests, Progress(len(requests), err).update)
        _say("stopping the proxy (SIGTERM; the plugin flushes its spans on shutdown) ...", err)
        exit_code = proxy.stop(signal.SIGTERM, timeout=_STOP_TIMEOUT_S)
        stop_problem = None
        _say(f"proxy exited with code {exit_code} ({'clean' if exit_code in _CLEAN_EXITS else 'NOT clean'})", err)
        if exit_code not in _CLEAN_EXITS:
            stop_problem = f"the proxy exited with code {exit_code} (expected 0 or -15)\n{proxy.log_tail(40)}"
    finally:
        proxy.close()

    _report_unplanned(outcomes, err)
    spans = count_spans(url, traffic_start)
    cli_env: dict[str, str] = {}  # only --url: the caller's CLICKHOUSE_* must not point elsewhere
    for title, argv in (
        ("Usage by team and project", ["usage", "--url", url, "--by", "team,project"]),
        ("Usage by model", ["usage", "--url", url, "--by", "model"]),
        ("Errors", ["errors", "--url", url]),
        ("Latest 10 calls", ["calls", "--url", url, "--limit", "10"]),
    ):
        out.write(f"\n== {title} ==  $ agentportal-otel {' '.join(argv)}\n")
        out.flush()
        code = cli.main(argv, environ=cli_env)
        sys.stdout.flush()
        if code != 0:
            raise DemoError(f"`agentportal-otel {' '.join(argv)}` exited with {code}")

    failed = sum(not (o.status is not None and o.status < 400) for o in outcomes)
    out.write(
        f"\n{len(outcomes)} requests sent ({len(outcomes) - failed} ok, {failed} errors), "
        f"{spans} spans in ClickHouse ({url}), in {time.monotonic() - began:.0f} s\n"
    )
    out.write(
        "\nNext, query the same data (add --format json|csv, --since 7d after a day):\n"
        f"  agentportal-otel usage --url {url} --by team,model\n"
        f"  agentportal-otel calls --url {url} --status error\n"
    )
    if any(r.traceparent for r in requests):
        out.write(f"  agentportal-otel trace {trace_id} --url {url}   # the demo agent run's calls\n")
    out.write("Run the demo again with `agentportal-otel demo` (wipes the directory; --keep adds to it).\n")
    out.write(
        "\nServe the monitoring page on this data (http://127.0.0.1:8000/, loopback only, no login;"
        " needs the monitor extra):\n"
        f"  {serve_command(url)}\n"
    )
    out.flush()
    if stop_problem is not None:
        raise DemoError(stop_problem)
    if spans < len(outcomes):
        raise DemoError(f"only {spans} spans landed in ClickHouse for {len(outcomes)} requests sent")
    return 0


def serve_command(url: str) -> str:
    """The one command that serves the monitoring page on the demo's data (the demo's last line)."""
    return f"agentportal-otel serve --url {url} --no-auth"


def _report_unplanned(outcomes: Sequence[Outcome], err: TextIO) -> None:
    unplanned = [o for o in outcomes if not o.as_planned]
    if not unplanned:
        return
    counts = Counter(f"{o.request.kind} -> {o.status or o.detail}" for o in unplanned)
    listing = ", ".join(f"{what} x{n}" for what, n in counts.most_common())
    _say(f"{len(unplanned)} requests did not get the planned answer: {listing}", err)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agentportal_otel.demo [options]``; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run(args)
