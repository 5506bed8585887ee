"""agentportal-otel: per-tenant OpenTelemetry GenAI telemetry for the LiteLLM proxy.

Turn it on with one line in the proxy's ``config.yaml``::

    litellm_settings:
      callbacks: ["agentportal_otel.proxy.handler"]

and configure it with the standard ``OTEL_*`` environment variables (see ``README.md``).

Importing this package has no side effects: no provider, thread, signal handler or
``atexit`` hook is created until :mod:`agentportal_otel.proxy` is imported or an
:class:`~agentportal_otel.logger.AgentPortalLogger` is built.  ``AgentPortalLogger`` is
importable from here lazily, so ``import agentportal_otel`` does not import LiteLLM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentportal_otel._version import __version__

if TYPE_CHECKING:
    from agentportal_otel._settings import Settings
    from agentportal_otel.logger import AgentPortalLogger

__all__ = ["AgentPortalLogger", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "AgentPortalLogger":
        from agentportal_otel.logger import AgentPortalLogger

        return AgentPortalLogger
    if name == "Settings":
        from agentportal_otel._settings import Settings

        return Settings
    raise AttributeError(f"module 'agentportal_otel' has no attribute {name!r}")
