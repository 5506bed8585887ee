"""Async helpers shared by tests (a module of its own: ``conftest`` names are ambiguous)."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


async def settle(exporter: InMemorySpanExporter, count: int, timeout: float = 10.0) -> None:
    """LiteLLM runs success hooks shortly after the call returns: wait for ``count`` spans."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(exporter.get_finished_spans()) < count and loop.time() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)


_LOOP: asyncio.AbstractEventLoop | None = None


def run(coro):  # type: ignore[no-untyped-def]
    """Run ``coro`` on one event loop shared by the whole session.

    LiteLLM's global logging worker binds to the loop it first runs on; a fresh loop per
    test (``asyncio.run``) would strand its queue on a closed loop.
    """
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP.run_until_complete(coro)
