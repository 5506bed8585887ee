"""A logger built before a fork (gunicorn's preload) gives the child providers of its own.

Real providers exporting to the real OTLP receiver; the child is a real ``os.fork()``. A span
queued in the parent before the fork must be exported once, by the parent; the child's span
once, by the child, under a resource of its own (its own ``service.instance.id``).
"""

from __future__ import annotations

import os
import sys

import pytest

from agentportal_otel._settings import Settings
from agentportal_otel.logger import AgentPortalLogger
from otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_forked_child_builds_its_own_providers_and_exports_nothing_twice() -> None:
    with OTLPReceiver() as receiver:
        settings = Settings.from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
        )
        logger = AgentPortalLogger(settings, install_shutdown_hooks=False)
        parent_tracer_provider = logger.tracer_provider
        assert parent_tracer_provider is not None
        parent_tracer_provider.get_tracer("t").start_span("queued-before-fork").end()

        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                fresh = logger.tracer_provider is not parent_tracer_provider and logger.tracer_provider is not None
                if fresh:
                    logger.tracer_provider.get_tracer("t").start_span("from-child").end()  # type: ignore[union-attr]
                    code = 0 if logger.flush(5000) else 2
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert logger.flush(5000)
        spans = receiver.wait_for_spans(2, timeout=10)
        logger.shutdown(2000)

    names = sorted(s.name for s in spans)
    assert names == ["from-child", "queued-before-fork"], names
    instances = {s.name: s.resource["service.instance.id"] for s in spans}
    assert instances["from-child"] != instances["queued-before-fork"]
