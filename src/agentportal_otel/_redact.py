"""Redaction of secret-looking strings before any text reaches a span.

Applied to captured message content and to error messages.  Patterns cover provider
API keys (``sk-...``, ``sk-ant-...``, ``sk-or-...``), bearer tokens and Authorization
values, AWS access key ids, Google API keys, GitHub and Slack tokens, JWTs and PEM
private-key blocks.  The cost is one compiled regular expression pass per string.
"""

from __future__ import annotations

import re
from typing import Final

REDACTED: Final = "[REDACTED]"

_PATTERNS: Final = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    r"\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC)\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\bsk-[A-Za-z0-9_-]{8,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bAIza[0-9A-Za-z_-]{35}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"(?i:(?:api[_-]?key|authorization|x-api-key|password|secret))[\"']?\s*[:=]\s*[\"']?(?:(?:[Bb]earer|[Bb]asic)\s+)?[^\s\"',}]{6,}",
)
_SECRET: Final = re.compile("|".join(f"(?:{pattern})" for pattern in _PATTERNS))


def redact(text: str) -> str:
    """``text`` with every secret-looking substring replaced by ``[REDACTED]``."""
    return _SECRET.sub(REDACTED, text)


def redact_exact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with known secret values (e.g. the raw virtual key) removed, then patterns."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    return redact(text)
