"""Environment variables of ``agentportal-otel serve`` (the monitoring API and page).

The connection itself is read exactly as the CLI reads it (``--url``/``CLICKHOUSE_*``, see
:mod:`agentportal_otel.clickhouse._env`); these variables configure access and embedding.
"""

from __future__ import annotations

from typing import Final

AGENTPORTAL_MONITOR_ADMIN_TOKEN: Final = "AGENTPORTAL_MONITOR_ADMIN_TOKEN"
"""Bearer token that reads every team's rows. Default: none."""

AGENTPORTAL_MONITOR_TEAM_TOKENS: Final = "AGENTPORTAL_MONITOR_TEAM_TOKENS"
"""``<team id>=<token>,...``: each token reads the rows of its team (``agentportal.team.id``)
only. Default: none."""

AGENTPORTAL_MONITOR_TOKENS_FILE: Final = "AGENTPORTAL_MONITOR_TOKENS_FILE"
"""A file with the same entries, one per line: ``<team id>=<token>`` lines, or the lines
``AGENTPORTAL_MONITOR_ADMIN_TOKEN=<token>`` / ``AGENTPORTAL_MONITOR_TEAM_TOKENS=<list>``; blank
lines and ``#`` comments are ignored. Adds to the variables above (a mounted secret file keeps
tokens out of the process environment). Default: none."""

AGENTPORTAL_MONITOR_FRAME_ANCESTORS: Final = "AGENTPORTAL_MONITOR_FRAME_ANCESTORS"
"""CSP ``frame-ancestors`` sources, space-separated (e.g. ``'self' https://chat.example.com``),
so Open-WebUI's origin may frame the page. Default ``'self'``."""

AGENTPORTAL_MONITOR_COOKIE_SAMESITE: Final = "AGENTPORTAL_MONITOR_COOKIE_SAMESITE"
"""``Strict`` (default), ``Lax`` or ``None`` for the session cookie. Browsers send a ``Strict``
or ``Lax`` cookie only when the page is top-level or framed by a same-site page: framing the
page in Open-WebUI on another site needs ``None``, which forces ``Secure`` (https only)."""

AGENTPORTAL_MONITOR_SESSION_HOURS: Final = "AGENTPORTAL_MONITOR_SESSION_HOURS"
"""Lifetime of a page session after login, in hours. Default ``12``."""

DEFAULT_FRAME_ANCESTORS: Final = "'self'"
DEFAULT_SESSION_HOURS: Final = 12.0
