"""``python -m agentportal_otel.demo``: the same as ``agentportal-otel demo`` (see :mod:`._run`)."""

from __future__ import annotations

from agentportal_otel.demo._run import main

raise SystemExit(main())
