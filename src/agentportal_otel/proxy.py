"""The ready instance that the LiteLLM proxy's ``config.yaml`` names::

    litellm_settings:
      callbacks: ["agentportal_otel.proxy.handler"]

Importing this module builds the logger from the environment (``OTEL_*`` and
``AGENTPORTAL_OTEL_*`` variables): private providers, export threads and the
shutdown hooks start here, never on ``import agentportal_otel``.

Because the proxy does not configure Python's root logger, this module also gives the
``agentportal_otel`` logger a stderr handler (unless logging is already configured), so
that the startup line saying where spans go, and any configuration error, reach the
proxy's log.  ``AGENTPORTAL_OTEL_LOG_LEVEL`` sets its level (default ``INFO``).
"""

from __future__ import annotations

import logging
import os

from agentportal_otel import _env
from agentportal_otel.logger import AgentPortalLogger


def _configure_logging() -> None:
    logger = logging.getLogger("agentportal_otel")
    level_name = os.environ.get(_env.AGENTPORTAL_OTEL_LOG_LEVEL, "INFO").strip().upper()
    level = logging.getLevelName(level_name)
    if logger.level == logging.NOTSET:
        logger.setLevel(level if isinstance(level, int) else logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


_configure_logging()

handler = AgentPortalLogger()
"""The callback instance LiteLLM resolves from ``agentportal_otel.proxy.handler``."""

__all__ = ["handler"]
