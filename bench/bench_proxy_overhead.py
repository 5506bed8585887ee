"""Overhead of telemetry callbacks on a real LiteLLM proxy: throughput, latency, CPU, memory.

Three proxies run side by side on ``127.0.0.1`` (``litellm/config.yaml`` overlay, demo
``custom_auth``, mock model ``mock-chat``, no network), each exporting to its own OTLP/HTTP
receiver running in a separate process (so decoding spans never competes with the load
generator for this process's GIL):

* ``none``   -- no callback at all;
* ``empty``  -- a ``CustomLogger`` whose hooks do nothing: what LiteLLM itself spends to serve
  any success/failure callback (e.g. assembling a streamed response for the logging payload);
* ``otel``   -- LiteLLM's built-in ``otel`` callback (``OTEL_EXPORTER=otlp_http``,
  ``OTEL_ENDPOINT=<receiver>/v1/traces``, its defaults otherwise);
* ``plugin`` -- the plugin (spans and metrics, default settings), loaded as a thin subclass
  that also counts the plugin's own CPU from inside the proxy: the thread CPU time of every
  hook call and of the plugin's threads (the SDK's batch span processor and metric reader,
  ours), read with ``time.thread_time_ns``/``pthread_getcpuclockid``. This gives the plugin's
  share of the proxy's CPU directly, without subtracting two noisy totals: on this shared
  2-core VM the ``none`` proxy's CPU per request swings by ±20% from round to round, ten
  times the 2% being asked about. ``--profile FILE`` adds a cProfile of the success hook.

Each proxy is warmed up, then every round sends ``--requests`` chat completions with
``--concurrency`` clients to each proxy in turn, rotating the order from round to round so
drift on the shared machine hits every variant alike. Per proxy and round: requests/s,
client-side p50/p99 latency, proxy CPU time per request (``utime+stime`` from
``/proc/<pid>/stat`` of every process in the proxy's process group, before and after the
load) and RSS after. Ratios vs ``none`` are taken within each round and the median over
rounds is printed. At the end the plugin's proxy is stopped with SIGTERM (it flushes on the
shutdown path) and the spans its receiver got are matched to the call ids of every request
it answered: delivery should be 100%. ::

    python bench/bench_proxy_overhead.py                       # 5 rounds x 400 requests, 16 clients
    python bench/bench_proxy_overhead.py --stream              # streamed responses
    python bench/bench_proxy_overhead.py --rounds 5 --requests 600 --json results.json

Everything stays on 127.0.0.1 and is bounded by ``--requests`` x ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentportal_otel.demo._proxy import ProxyProcess  # noqa: E402
from agentportal_otel.demo.auth import DEMO_KEYS  # noqa: E402

CONFIG = REPO / "litellm" / "config.yaml"
MASTER_KEY = "sk-agentportal-bench-master-0000"
CALL_ID = "agentportal.litellm.call_id"
VARIANTS = ("none", "empty", "otel", "plugin")
KEYS = (DEMO_KEYS[0].key, DEMO_KEYS[1].key)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Variables of the bench's own environment that must not leak into any proxy.
_CLEAN_ENV: dict[str, str | None] = {
    name: None
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER",
        "OTEL_ENDPOINT",
        "OTEL_HEADERS",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_SDK_DISABLED",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "PYTEST_CURRENT_TEST",
    )
}


# -- receiver in its own process ----------------------------------------------------------------


def _receiver_main(conn: mpc.Connection) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from otlp_receiver import OTLPReceiver

    with OTLPReceiver() as rx:
        conn.send(rx.url)
        while True:
            command = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "summary":
                spans = rx.spans
                ids = [str(s.attributes[CALL_ID]) for s in spans if CALL_ID in s.attributes]
                dropped = [p.value for p in rx.data_points if p.name == "agentportal.spans.dropped"]
                conn.send(
                    {
                        "spans": len(spans),
                        "call_ids": ids,
                        "requests": len(rx.requests),
                        "errors": list(rx.errors),
                        "dropped_metric": max(dropped, default=None),
                    }
                )


class RemoteReceiver:
    """An :class:`otlp_receiver.OTLPReceiver` in a child process."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_receiver_main, args=(child,), daemon=True)
        self._proc.start()
        self.url: str = self._conn.recv()

    def summary(self) -> dict[str, Any]:
        self._conn.send("summary")
        result: dict[str, Any] = self._conn.recv()
        return result

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send("stop")
                self._conn.recv()
            except (EOFError, OSError):
                pass
            self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


# -- /proc accounting ---------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces


def group_usage(pgid: int) -> tuple[float, int]:
    """CPU seconds (utime+stime, plus reaped children's) and RSS bytes of process group ``pgid``."""
    cpu_ticks = 0
    rss_pages = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or int(fields[2]) != pgid:  # field 5: pgrp
            continue
        # fields[i] is stat field i+3: utime 14, stime 15, cutime 16, cstime 17, rss 24
        cpu_ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
        rss_pages += int(fields[21])
    return cpu_ticks / CLK_TCK, rss_pages * PAGE


# -- load -----------------------------------------------------------------------------------------


@dataclass
class Load:
    wall_s: float
    latencies_s: list[float]
    statuses: dict[int, int]
    call_ids: list[str]


class _Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx costs the load generator a few ms of CPU per request, which on 2 cores makes the
    client, not the proxy, the bottleneck and hides the proxy's overhead; this costs ~0.1 ms.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status = int((await reader.readline()).split()[1])
        response_headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if "chunked" in response_headers.get("transfer-encoding", ""):
            chunks = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()  # the empty trailer
            data = b"".join(chunks)
        elif "content-length" in response_headers:
            data = await reader.readexactly(int(response_headers["content-length"]))
        else:
            data = await reader.read()
            response_headers["connection"] = "close"
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
        return status, response_headers, data

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def _load(url: str, requests: int, concurrency: int, stream: bool, tag: str) -> Load:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    call_ids: list[str] = []
    counter = iter(range(requests))

    async def worker() -> None:
        connection = _Connection(host, int(port))
        try:
            for i in counter:
                body = json.dumps(
                    {
                        "model": "mock-chat",
                        "messages": [{"role": "user", "content": f"{tag} request {i}: say hello."}],
                        "stream": stream,
                    }
                ).encode()
                headers = {"Authorization": f"Bearer {KEYS[i % 2]}", "Content-Type": "application/json"}
                t0 = time.perf_counter()
                try:
                    status, response_headers, _ = await connection.post("/v1/chat/completions", headers, body)
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                    # connection closed mid-response: counted as an error, next request reconnects
                    await connection.close()
                    status, response_headers = 599, {}
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
                call_id = response_headers.get("x-litellm-call-id")
                if status == 200 and call_id:
                    call_ids.append(call_id)
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return Load(wall, latencies, statuses, call_ids)


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# -- variants -------------------------------------------------------------------------------------


@dataclass
class Sample:
    variant: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: float
    rss_mb: float
    ok: int
    errors: int
    own_cpu_ms_per_req: float | None = None
    """The plugin's own CPU (its hooks and threads, counted inside the proxy) per request."""
    own_hook_ms_per_req: float | None = None
    hook_calls_per_req: float | None = None


@dataclass
class Variant:
    name: str
    receiver: RemoteReceiver
    proxy: ProxyProcess
    call_ids: list[str] = field(default_factory=list)


_EMPTY_MODULE = "bench_empty_logger"
_EMPTY_LOGGER = """
from litellm.integrations.custom_logger import CustomLogger


class EmptyLogger(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        return None

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        return None


handler = EmptyLogger()
"""


_ACCOUNTED_MODULE = "bench_accounted_logger"
_ACCOUNTED_LOGGER = """
# The plugin, with the CPU of its own work counted from inside the proxy: thread CPU time of
# every hook call (time.thread_time_ns around it) and of the plugin's threads (the SDK's batch
# span processor and metric reader, ours), written to a JSON file twice a second.
import cProfile, json, os, threading, time

from agentportal_otel.logger import AgentPortalLogger

_STATE = os.environ["AGENTPORTAL_BENCH_ACCOUNTING"]
_PROFILE = os.environ.get("AGENTPORTAL_BENCH_PROFILE")  # --profile: cProfile of the async success hook
_PROFILER = cProfile.Profile() if _PROFILE else None
_PREFIXES = ("OtelBatch", "OtelPeriodicExportingMetricReader", "agentportal-otel")


class AccountedLogger(AgentPortalLogger):
    hook_ns = 0
    calls = 0  # async hook calls (the proxy's path)


def _timed(name, is_async, profiled):
    base = getattr(AgentPortalLogger, name)

    def start():
        if profiled and _PROFILER is not None:
            _PROFILER.enable()
        return time.thread_time_ns()

    def stop(t):
        AccountedLogger.hook_ns += time.thread_time_ns() - t
        AccountedLogger.calls += is_async
        if profiled and _PROFILER is not None:
            _PROFILER.disable()

    if is_async:
        async def hook(self, kwargs, response_obj, start_time, end_time):
            t = start()
            try:
                return await base(self, kwargs, response_obj, start_time, end_time)
            finally:
                stop(t)
    else:
        def hook(self, kwargs, response_obj, start_time, end_time):
            t = start()
            try:
                return base(self, kwargs, response_obj, start_time, end_time)
            finally:
                stop(t)
    setattr(AccountedLogger, name, hook)


_timed("async_log_success_event", True, True)
_timed("async_log_failure_event", True, False)
_timed("log_success_event", False, False)
_timed("log_failure_event", False, False)


def _threads_ns(seen):
    for thread in threading.enumerate():
        if thread.name.startswith(_PREFIXES) and thread.ident is not None:
            try:
                seen[thread.ident] = time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
            except OSError:  # the thread ended: keep its last reading
                pass
    return sum(seen.values())


def _write():
    seen = {}
    while True:
        state = {"hook_ns": AccountedLogger.hook_ns, "calls": AccountedLogger.calls, "threads_ns": _threads_ns(seen)}
        with open(_STATE + ".tmp", "w") as out:
            json.dump(state, out)
        os.replace(_STATE + ".tmp", _STATE)
        if _PROFILER is not None:
            _PROFILER.dump_stats(_PROFILE)
        time.sleep(0.5)


handler = AccountedLogger()
threading.Thread(target=_write, name="bench-accounting", daemon=True).start()
"""


def plugin_cpu(variant: Variant) -> dict[str, float]:
    """The accounted plugin's own CPU so far (ns): hooks, its threads, calls seen."""
    state = variant.proxy.workdir / "accounting.json"
    try:
        return json.loads(state.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {"hook_ns": 0, "calls": 0, "threads_ns": 0}


def start_variant(name: str, profile: Path | None = None) -> Variant:
    receiver = RemoteReceiver()
    env = dict(_CLEAN_ENV)
    callbacks: Sequence[str] | None = None
    if name == "none":
        callbacks = ()
    elif name == "otel":
        callbacks = ["otel"]
        env.update({"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": f"{receiver.url}/v1/traces"})
    elif name == "empty":
        callbacks = [f"{_EMPTY_MODULE}.handler"]
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        callbacks = [f"{_ACCOUNTED_MODULE}.handler"]
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-proxy-{name}-"))
    env["AGENTPORTAL_BENCH_ACCOUNTING"] = str(workdir / "accounting.json")
    if profile is not None and name == "plugin":
        env["AGENTPORTAL_BENCH_PROFILE"] = str(profile)
    proxy = ProxyProcess(
        CONFIG, env=env, master_key=MASTER_KEY, callbacks=callbacks, startup_timeout=180, workdir=workdir
    )
    # LiteLLM resolves a callback path relative to the config's directory first.
    (proxy.workdir / f"{_EMPTY_MODULE}.py").write_text(_EMPTY_LOGGER)
    (proxy.workdir / f"{_ACCOUNTED_MODULE}.py").write_text(_ACCOUNTED_LOGGER)
    try:
        proxy.start()
    except BaseException:
        proxy.close()
        receiver.close()
        raise
    return Variant(name, receiver, proxy)


def measure(variant: Variant, round_no: int, args: argparse.Namespace) -> Sample:
    pgid = variant.proxy.pid
    assert pgid is not None
    accounted = variant.name == "plugin"
    own0 = plugin_cpu(variant) if accounted else None
    cpu0, _ = group_usage(pgid)
    load = asyncio.run(_load(variant.proxy.url, args.requests, args.concurrency, args.stream, f"r{round_no}"))
    cpu1, rss = group_usage(pgid)
    own = own_hook = hook_calls = None
    if own0 is not None:
        time.sleep(0.6)  # the accounting file is rewritten twice a second
        own1 = plugin_cpu(variant)
        spent = own1["hook_ns"] + own1["threads_ns"] - own0["hook_ns"] - own0["threads_ns"]
        own = spent / 1e6 / args.requests
        own_hook = (own1["hook_ns"] - own0["hook_ns"]) / 1e6 / args.requests
        hook_calls = (own1["calls"] - own0["calls"]) / args.requests
    variant.call_ids.extend(load.call_ids)
    ok = load.statuses.get(200, 0)
    return Sample(
        variant=variant.name,
        round=round_no,
        rps=args.requests / load.wall_s,
        p50_ms=quantile(load.latencies_s, 0.50) * 1000,
        p99_ms=quantile(load.latencies_s, 0.99) * 1000,
        cpu_ms_per_req=(cpu1 - cpu0) * 1000 / args.requests,
        rss_mb=rss / 2**20,
        ok=ok,
        errors=args.requests - ok,
        own_cpu_ms_per_req=own,
        own_hook_ms_per_req=own_hook,
        hook_calls_per_req=hook_calls,
    )


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(samples: list[Sample], rounds: int) -> dict[str, Any]:
    by = {(s.variant, s.round): s for s in samples}
    print()
    header = ("variant", "round", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "RSS MB", "errors")
    print(f"{header[0]:8} " + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], (5, 7, 7, 7, 10, 7, 6), strict=True)))
    for s in sorted(samples, key=lambda s: (VARIANTS.index(s.variant), s.round)):
        print(
            f"{s.variant:8} {s.round:5d} {s.rps:7.1f} {s.p50_ms:7.1f} {s.p99_ms:7.1f} "
            f"{s.cpu_ms_per_req:10.2f} {s.rss_mb:7.0f} {s.errors:6d}"
        )
    summary: dict[str, Any] = {}
    print()
    print("median over rounds; ratios and CPU deltas are paired within each round, then the median is taken")
    print(
        f"{'variant':8} {'req/s':>7} {'x none':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req':>10} "
        f"{'+CPU ms':>8} {'RSS MB':>7}"
    )
    for name in VARIANTS:
        mine = [by[(name, r)] for r in range(rounds) if (name, r) in by]
        if not mine:
            continue
        paired = [(by[(name, r)], by[("none", r)]) for r in range(rounds) if (name, r) in by and ("none", r) in by]
        ratio = _median([a.rps / b.rps for a, b in paired])
        delta = _median([a.cpu_ms_per_req - b.cpu_ms_per_req for a, b in paired])
        row = {
            "rps": _median([s.rps for s in mine]),
            "rps_ratio_vs_none": ratio,
            "p50_ms": _median([s.p50_ms for s in mine]),
            "p99_ms": _median([s.p99_ms for s in mine]),
            "cpu_ms_per_req": _median([s.cpu_ms_per_req for s in mine]),
            "cpu_ms_delta_vs_none": delta,
            "rss_mb": _median([s.rss_mb for s in mine]),
        }
        summary[name] = row
        print(
            f"{name:8} {row['rps']:7.1f} {ratio:7.3f} {row['p50_ms']:7.1f} {row['p99_ms']:7.1f} "
            f"{row['cpu_ms_per_req']:10.2f} {delta:+8.2f} {row['rss_mb']:7.0f}"
        )
    own = [s for s in samples if s.own_cpu_ms_per_req is not None]
    baseline = [s.cpu_ms_per_req for s in samples if s.variant == "none"]
    if own and baseline:
        # Summed over the rounds: an export batch that lands in the next round's window still counts once.
        rounds_own = [s.own_cpu_ms_per_req or 0.0 for s in own]
        mean_own = statistics.mean(rounds_own)
        base = _median(baseline)
        summary["plugin_own"] = {
            "cpu_ms_per_req": mean_own,
            "per_round": rounds_own,
            "share_of_none_cpu": mean_own / base,
        }
        print(
            f"\nplugin's own CPU, counted inside its proxy (hooks + its threads): {mean_own:.3f} ms per request "
            f"(rounds {min(rounds_own):.3f}-{max(rounds_own):.3f}) "
            f"= {100 * mean_own / base:.2f}% of the no-callback proxy's {base:.2f} ms; of it on the event loop "
            f"(hooks): {statistics.mean(s.own_hook_ms_per_req or 0.0 for s in own):.3f} ms, "
            f"{statistics.mean(s.hook_calls_per_req or 0.0 for s in own):.2f} async hook calls per request"
        )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per variant and round (400)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--warmup", type=int, default=60, help="warm-up requests per proxy (60)")
    parser.add_argument("--stream", action="store_true", help="streamed chat completions")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="subset, comma-separated")
    parser.add_argument("--json", type=Path, help="also write raw samples and the summary here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile the plugin proxy's success hook (it slows the hook: not for the CPU figures); "
        "stats go to this file and the top 25 by own time are printed",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n]
    if unknown := set(names) - set(VARIANTS):
        parser.error(f"unknown variants: {sorted(unknown)}")

    t_start = time.monotonic()
    print(
        f"# {args.rounds} rounds x {args.requests} requests, concurrency {args.concurrency}, "
        f"stream={args.stream}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}"
    )
    variants: list[Variant] = []
    samples: list[Sample] = []
    delivery: dict[str, Any] = {}
    try:
        for name in names:
            t0 = time.monotonic()
            variants.append(start_variant(name, args.profile))
            print(f"# started {name} in {time.monotonic() - t0:.1f} s", flush=True)
        for variant in variants:  # warm-up: imports, caches, first-request paths, connection pools
            load = asyncio.run(_load(variant.proxy.url, args.warmup, args.concurrency, args.stream, "warmup"))
            variant.call_ids.extend(load.call_ids)
            time.sleep(1.5)  # let the first batch export settle
        for round_no in range(args.rounds):
            order = variants[round_no % len(variants) :] + variants[: round_no % len(variants)]
            for variant in order:
                sample = measure(variant, round_no, args)
                samples.append(sample)
                print(
                    f"# round {round_no} {variant.name:6} {sample.rps:6.1f} req/s  p50 {sample.p50_ms:6.1f} ms  "
                    f"CPU {sample.cpu_ms_per_req:5.2f} ms/req  errors {sample.errors}",
                    flush=True,
                )
                time.sleep(1.0)
        summary = report(samples, args.rounds)

        print()
        for variant in variants:
            if variant.name in ("none", "empty"):
                continue
            # SIGTERM, as a container runtime would: the plugin flushes on the proxy's shutdown path.
            code = variant.proxy.stop(signal.SIGTERM, timeout=60)
            time.sleep(0.5)
            got = variant.receiver.summary()
            sent = variant.call_ids
            received = set(got["call_ids"])
            matched = sum(1 for c in set(sent) if c in received)
            duplicates = len(got["call_ids"]) - len(set(got["call_ids"]))
            row = {
                "requests_ok": len(sent),
                "spans_received": got["spans"],
                "matched_call_ids": matched,
                "duplicate_call_ids": duplicates,
                "export_requests": got["requests"],
                "receiver_errors": len(got["errors"]),
                "exit_code": code,
                "dropped_metric": got["dropped_metric"],
            }
            delivery[variant.name] = row
            if variant.name == "plugin":
                pct = 100.0 * matched / len(sent) if sent else float("nan")
                print(
                    f"delivery plugin: {matched}/{len(sent)} requests have their span ({pct:.2f}%), "
                    f"{duplicates} duplicates, {got['spans']} spans in {got['requests']} export requests, "
                    f"agentportal.spans.dropped={got['dropped_metric']}, exit code {code}"
                )
            else:
                print(
                    f"delivery {variant.name}: {got['spans']} spans for {len(sent)} requests "
                    f"({got['spans'] / max(1, len(sent)):.1f} per request) in {got['requests']} export requests, "
                    f"exit code {code}"
                )
    finally:
        for variant in variants:
            variant.proxy.close()
            variant.receiver.close()
            shutil.rmtree(variant.proxy.workdir, ignore_errors=True)
    print(f"# total {time.monotonic() - t_start:.0f} s")
    if args.profile is not None and args.profile.exists():
        import pstats

        print(f"\n# cProfile of the plugin proxy's success hook ({args.profile})")
        pstats.Stats(str(args.profile)).strip_dirs().sort_stats("tottime").print_stats(25)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "samples": [asdict(s) for s in samples],
                    "summary": summary,
                    "delivery": delivery,
                },
                indent=2,
            )
        )
    plugin = delivery.get("plugin")
    return 0 if plugin is None or plugin["matched_call_ids"] == plugin["requests_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
