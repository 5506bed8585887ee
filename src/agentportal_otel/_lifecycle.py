"""Flush on shutdown, bounded by one time budget.

Three paths end in a flush of every live logger:

* the LiteLLM proxy's shutdown: uvicorn handles SIGTERM/SIGINT by draining requests and
  running the app's lifespan shutdown, which awaits ``proxy_shutdown_event``.  Uvicorn
  then re-raises the signal with the default handler, so the process dies by the signal
  and ``atexit`` never runs; we therefore wrap ``proxy_shutdown_event`` (looked up by
  name at call time) to drain LiteLLM's logging worker and flush after it;
* interpreter exit (``atexit``), for SDK use and for hosts that exit normally;
* an explicit :meth:`AgentPortalLogger.shutdown`.

The first two are *final*: the exporters retry for most of the budget, then what is still
unsent goes to the disk spool when ``AGENTPORTAL_OTEL_SPOOL_DIR`` is set (counted as lost
otherwise). With ``--num_workers N`` every worker runs its own lifespan shutdown, so each
flushes on its own SIGTERM.

A flush runs in a helper thread joined with a timeout: the SDK's ``force_flush`` does not
honour its timeout, and a dead collector must not hold the process hostage.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol

_logger = logging.getLogger("agentportal_otel")
_PROXY_MODULE: Final = "litellm.proxy.proxy_server"
_WRAPPED_FLAG: Final = "_agentportal_otel_wrapped"


class Flushable(Protocol):
    shutdown_timeout_ms: int

    def flush(self, timeout_millis: int | None = None, *, final: bool = False) -> bool: ...

    def shutdown(self, timeout_millis: int | None = None) -> bool: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_atexit_registered = False


def run_bounded(func: Callable[[], object], timeout_s: float, what: str) -> bool:
    """Run ``func`` in a daemon thread; ``False`` if it did not finish in ``timeout_s``."""
    done = threading.Event()
    outcome: list[bool] = [False]

    def target() -> None:
        try:
            outcome[0] = func() is not False
        except Exception as error:
            _logger.warning("agentportal-otel: %s failed: %s", what, type(error).__name__)
        finally:
            done.set()

    threading.Thread(target=target, name=f"agentportal-otel-{what}", daemon=True).start()
    if not done.wait(max(0.0, timeout_s)):
        _logger.warning("agentportal-otel: %s did not finish within %.1f s; unsent telemetry is lost", what, timeout_s)
        return False
    return outcome[0]


def flush_all(timeout_millis: int | None = None, final: bool = False) -> None:
    """Flush every live logger, each within its own (or the given) budget.

    ``final``: the process is about to end, so what cannot be sent in time goes to the spool.
    """
    for item in list(_live):
        item.flush(timeout_millis, final=final)


def shutdown_all() -> None:
    for item in list(_live):
        item.shutdown()


async def _drain_litellm_logging_worker(timeout_s: float) -> None:
    """Let LiteLLM run its queued logging coroutines (our hooks among them)."""
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except ImportError:
        return
    flush = getattr(GLOBAL_LOGGING_WORKER, "flush", None)
    if flush is None:
        return
    try:
        await asyncio.wait_for(flush(), timeout=timeout_s)
    except asyncio.TimeoutError:
        _logger.warning("agentportal-otel: LiteLLM's logging queue did not drain within %.1f s", timeout_s)
    except Exception as error:
        _logger.warning("agentportal-otel: draining LiteLLM's logging queue failed: %s", type(error).__name__)


def _wrap_proxy_shutdown(module: Any) -> bool:
    original = getattr(module, "proxy_shutdown_event", None)
    if original is None or not asyncio.iscoroutinefunction(original):
        return False
    if getattr(original, _WRAPPED_FLAG, False):
        return True

    async def proxy_shutdown_event(*args: Any, **kwargs: Any) -> Any:
        budget_s = max((item.shutdown_timeout_ms for item in list(_live)), default=10_000) / 1000
        deadline = time.monotonic() + budget_s
        try:
            await _drain_litellm_logging_worker(budget_s / 2)
            return await original(*args, **kwargs)
        finally:
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            # The process dies by the signal right after this: a final flush, spooling what is left.
            await asyncio.to_thread(flush_all, remaining_ms, True)
            _logger.info("agentportal-otel: flushed telemetry at proxy shutdown")

    setattr(proxy_shutdown_event, _WRAPPED_FLAG, True)
    proxy_shutdown_event.__wrapped__ = original  # type: ignore[attr-defined]
    module.proxy_shutdown_event = proxy_shutdown_event
    return True


def register(item: Flushable) -> None:
    """Flush ``item`` at proxy shutdown and shut it down at interpreter exit."""
    global _atexit_registered
    with _lock:
        _live.add(item)
        if not _atexit_registered:
            atexit.register(shutdown_all)
            _atexit_registered = True
        module = sys.modules.get(_PROXY_MODULE)
        if module is not None and not _wrap_proxy_shutdown(module):
            _logger.warning(
                "agentportal-otel: could not hook LiteLLM's proxy shutdown; spans still queued when the proxy "
                "stops may be lost"
            )


def unregister(item: Flushable) -> None:
    with _lock:
        _live.discard(item)
