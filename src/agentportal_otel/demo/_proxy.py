"""Run a real LiteLLM proxy process for the demo, the tests and the benchmarks.

``ProxyProcess`` takes the project's ``litellm/config.yaml``, writes an overlay next to a log
file in a temporary directory (no database, the demo ``custom_auth`` of
:mod:`agentportal_otel.demo.auth`, optional overrides), starts ``litellm --config <overlay>
--host 127.0.0.1 --port <free port>`` in its own process group and waits for
``/health/liveliness``::

    with ProxyProcess("litellm/config.yaml", env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}) as proxy:
        auth = {"Authorization": "Bearer sk-demo-alpha-search"}
        httpx.post(f"{proxy.url}/v1/chat/completions", headers=auth, json=...)
        exit_code = proxy.stop()  # SIGTERM, as a container runtime would

The child environment is the caller's (``DATABASE_*``, ``DIRECT_URL`` and ``PYTEST_CURRENT_TEST`` removed) plus
``LITELLM_LOCAL_MODEL_COST_MAP=True`` (no cost-map download), ``LITELLM_MASTER_KEY``, a
``PYTHONPATH`` that makes this package importable, ``PYTHONFAULTHANDLER=1`` unless set (a
crash in native code writes every thread's stack to the log), then ``env`` (a ``None`` value
unsets). :func:`take_exit_reports` lists the proxies that exited on their own, for test reports.
Exiting the context manager, a failed start and interpreter exit kill the whole process group,
so no proxy outlives the run.

Callback and ``custom_auth`` paths in the overlay are resolved by LiteLLM relative to the
overlay's directory first, then as installed modules: use importable module paths.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "DEFAULT_MASTER_KEY",
    "DEMO_CUSTOM_AUTH",
    "ProxyProcess",
    "ProxyStartError",
    "build_overlay_config",
    "free_port",
]

DEFAULT_MASTER_KEY = "sk-agentportal-demo-master"
"""Master key of demo proxies unless one is given (never a real secret)."""

DEMO_CUSTOM_AUTH = "agentportal_otel.demo.auth.user_api_key_auth"
"""The ``general_settings.custom_auth`` the overlay installs."""

_DROPPED_ENV_PREFIXES = ("DATABASE_",)
# PYTEST_CURRENT_TEST would make the plugin's guard re-raise inside the proxy (a test-only mode).
_DROPPED_ENV = frozenset({"DIRECT_URL", "PYTEST_CURRENT_TEST"})
_LOG_NAME = "proxy.log"
_CONFIG_NAME = "config.yaml"


class ProxyStartError(RuntimeError):
    """The proxy exited or did not become live in time; the message ends with its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS may hand it out again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def build_overlay_config(
    base: Mapping[str, Any],
    *,
    callbacks: Sequence[str] | None = None,
    extra_models: Sequence[Mapping[str, Any]] = (),
    litellm_settings: Mapping[str, Any] | None = None,
    general_settings: Mapping[str, Any] | None = None,
    custom_auth: str | None = DEMO_CUSTOM_AUTH,
) -> dict[str, Any]:
    """The overlay config as a new dict; ``base`` is not modified.

    Keeps ``model_list`` (plus ``extra_models``), ``litellm_settings`` and ``general_settings``
    without ``database_url``, and sets ``general_settings.custom_auth`` (``None`` keeps the
    base's). ``callbacks=None`` keeps the base's callbacks, an empty sequence removes them, a
    non-empty one replaces them. ``litellm_settings``/``general_settings`` are merged key by key
    over the result; a ``None`` value removes that key.
    """
    config: dict[str, Any] = copy.deepcopy(dict(base))
    config["model_list"] = [*config.get("model_list", []), *(copy.deepcopy(dict(m)) for m in extra_models)]
    lset: dict[str, Any] = dict(config.get("litellm_settings") or {})
    gset: dict[str, Any] = dict(config.get("general_settings") or {})
    gset.pop("database_url", None)
    if custom_auth is not None:
        gset["custom_auth"] = custom_auth
    if callbacks is not None:
        if callbacks:
            lset["callbacks"] = list(callbacks)
        else:
            lset.pop("callbacks", None)
    for target, overrides in ((lset, litellm_settings), (gset, general_settings)):
        for name, value in (overrides or {}).items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = copy.deepcopy(value)
    config["litellm_settings"] = lset
    config["general_settings"] = gset
    return config


def _package_root() -> str:
    # The directory holding the agentportal_otel package (src/ in a checkout, site-packages
    # when installed), so the child can import the demo auth and the callback either way.
    return str(Path(__file__).resolve().parents[2])


def _litellm_command(python: str) -> list[str]:
    script = Path(python).parent / "litellm"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    # Same entry point as the console script, for interpreters without one next to them.
    return [python, "-c", "import sys; from litellm import run_server; sys.exit(run_server())"]


@dataclass(frozen=True)
class ExitReport:
    """A proxy that exited on its own (a crash, a fatal error), with the end of its log."""

    pid: int
    returncode: int
    log_tail: str


_RUNNING: weakref.WeakSet[ProxyProcess] = weakref.WeakSet()
_EXITED: collections.deque[ExitReport] = collections.deque(maxlen=16)


def take_exit_reports() -> list[ExitReport]:
    """Proxies that exited on their own since the last call: still open ones, then closed ones.

    For test reports: a module-scoped proxy that dies makes every later test fail with a
    connection error, and only its log says why.
    """
    reports = {r.pid: r for r in _EXITED}
    _EXITED.clear()
    for proxy in list(_RUNNING):
        report = proxy._exit_report()
        if report is not None:
            reports.setdefault(report.pid, report)
    return list(reports.values())


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class ProxyProcess:
    """A LiteLLM proxy subprocess on ``127.0.0.1`` with an overlay of ``config_path``.

    Args:
        config_path: the base ``config.yaml``.
        env: extra environment for the child, applied last; ``None`` values unset a variable.
        master_key: exported as ``LITELLM_MASTER_KEY`` (the base config reads it from there).
        callbacks, extra_models, litellm_settings, general_settings, custom_auth: see
            :func:`build_overlay_config`.
        port: fixed port; by default a free one is picked (and re-picked if it was taken).
        startup_timeout: seconds to wait for ``/health/liveliness``.
        inherit_env: start from ``os.environ`` (minus database variables) rather than empty.
        python: interpreter whose ``litellm`` console script is used (default ``sys.executable``).
        workdir: where the overlay and ``proxy.log`` go; default a temporary directory that is
            removed on exit unless ``keep_files`` is true.
        extra_args: appended to the ``litellm`` command line.
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        *,
        env: Mapping[str, str | None] | None = None,
        master_key: str = DEFAULT_MASTER_KEY,
        callbacks: Sequence[str] | None = None,
        extra_models: Sequence[Mapping[str, Any]] = (),
        litellm_settings: Mapping[str, Any] | None = None,
        general_settings: Mapping[str, Any] | None = None,
        custom_auth: str | None = DEMO_CUSTOM_AUTH,
        port: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 90.0,
        inherit_env: bool = True,
        python: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        keep_files: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        import yaml

        self.base_config_path = Path(config_path)
        with self.base_config_path.open(encoding="utf-8") as fh:
            base = yaml.safe_load(fh) or {}
        self.config: dict[str, Any] = build_overlay_config(
            base,
            callbacks=callbacks,
            extra_models=extra_models,
            litellm_settings=litellm_settings,
            general_settings=general_settings,
            custom_auth=custom_auth,
        )
        self.master_key = master_key
        self.host = host
        self.startup_timeout = startup_timeout
        self._fixed_port = port
        self._env_overrides = dict(env or {})
        self._inherit_env = inherit_env
        self._python = python or sys.executable
        self._extra_args = list(extra_args)
        self._owns_dir = workdir is None
        self._keep_files = keep_files
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="agentportal-proxy-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.overlay_path = self.workdir / _CONFIG_NAME
        self.log_path = self.workdir / _LOG_NAME
        with self.overlay_path.open("w", encoding="utf-8") as fh:
            yaml.safe_dump(self.config, fh, sort_keys=False)
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[int], ProxyProcess] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def environment(self) -> dict[str, str]:
        """The child's environment (computed; nothing is started)."""
        env: dict[str, str] = dict(os.environ) if self._inherit_env else {"PATH": os.environ.get("PATH", "")}
        for name in list(env):
            if name in _DROPPED_ENV or name.startswith(_DROPPED_ENV_PREFIXES):
                del env[name]
        pythonpath = [_package_root(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env.update(
            {
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_MASTER_KEY": self.master_key,
                "PYTHONPATH": os.pathsep.join(dict.fromkeys(pythonpath)),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.setdefault("PYTHONFAULTHANDLER", "1")
        for name, value in self._env_overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(self) -> ProxyProcess:
        """Spawn the proxy and wait until it is live; raise :class:`ProxyStartError` otherwise."""
        if self._proc is not None:
            raise RuntimeError("ProxyProcess already started")
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            self.port = self._fixed_port if self._fixed_port is not None else free_port(self.host)
            self._spawn()
            try:
                self._wait_live()
                return self
            except ProxyStartError:
                self._kill()
                # Another process may have taken the port between free_port() and bind().
                if attempt + 1 < attempts and "address already in use" in self.log_text().lower():
                    self._proc = None
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self) -> None:
        cmd = [
            *_litellm_command(self._python),
            "--config",
            str(self.overlay_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self._extra_args,
        ]
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches every child
            )
        self._finalizer = weakref.finalize(self, _kill_group, self._proc.pid)
        _RUNNING.add(self)

    def _wait_live(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        probe = f"{self.url}/health/liveliness"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ProxyStartError(f"proxy exited with code {code} before it was live\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ProxyStartError(
                    f"proxy not live on {probe} after {self.startup_timeout:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig`` to the proxy, wait up to ``timeout`` s, then SIGKILL the whole group.

        Returns the exit code (negative signal number when killed by a signal, as
        :mod:`subprocess` reports it; uvicorn re-raises SIGTERM after a graceful shutdown, so
        ``-15`` is the normal result), or ``None`` if it was never started.
        """
        proc = self._proc
        if proc is None:
            return None
        if (report := self._exit_report()) is not None and self in _RUNNING:
            _EXITED.append(report)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        self._kill()
        return proc.returncode

    def _kill(self) -> None:
        _RUNNING.discard(self)
        proc = self._proc
        if proc is None:
            return
        _kill_group(proc.pid)  # leftover children too, even when the leader has exited
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if self._finalizer is not None:
            self._finalizer.detach()

    def close(self) -> None:
        """Stop (SIGTERM, short grace) and remove the temporary directory unless kept."""
        self.stop(timeout=15.0)
        if self._owns_dir and not self._keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ProxyProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- logs ------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything the proxy wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _exit_report(self) -> ExitReport | None:
        code = self.returncode
        if code is None or self._proc is None:
            return None
        return ExitReport(self._proc.pid, code, self.log_tail(200))

    def __repr__(self) -> str:
        return f"ProxyProcess(url={self.url!r}, pid={self.pid}, returncode={self.returncode})"
