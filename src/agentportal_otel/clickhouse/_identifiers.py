"""Validated ClickHouse identifiers: the only names ever formatted into SQL text."""

from __future__ import annotations

import re
from typing import Final

IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
"""Database, table and cluster names accepted by this package (no quoting tricks possible)."""


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain ClickHouse identifier, else raise ``ValueError``."""
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"invalid ClickHouse {what} {name!r}: expected {IDENTIFIER_RE.pattern}")
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    """Validate ``name`` and return it backquoted for use in SQL."""
    return f"`{validate_identifier(name, what)}`"
