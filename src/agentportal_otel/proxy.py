"""The ready instance that the LiteLLM proxy's ``config.yaml`` names::

    litellm_settings:
      callbacks: ["agentportal_otel.proxy.handler"]

Importing this module builds the logger from the environment (``OTEL_*`` and
``AGENTPORTAL_OTEL_*`` variables): private providers, export threads and the
shutdown hooks start here, never on ``import agentportal_otel``.
"""

from __future__ import annotations

from agentportal_otel.logger import AgentPortalLogger

handler = AgentPortalLogger()
"""The callback instance LiteLLM resolves from ``agentportal_otel.proxy.handler``."""

__all__ = ["handler"]
