"""Who may read what: bearer tokens, their scope, and page sessions.

* :func:`load_tokens` reads :data:`~._env.AGENTPORTAL_MONITOR_ADMIN_TOKEN`,
  :data:`~._env.AGENTPORTAL_MONITOR_TEAM_TOKENS` and the file named by
  :data:`~._env.AGENTPORTAL_MONITOR_TOKENS_FILE` into a :class:`TokenTable`.
* :meth:`TokenTable.lookup` compares a presented token with every configured one in constant
  time (``hmac.compare_digest`` over SHA-256 digests, no early exit), and returns the
  :class:`Principal` it grants: the admin (``team is None``, every row) or one team.
* :class:`SessionStore` swaps a token for a random session id kept server-side, so the page's
  cookie never holds the token. Sessions live in memory: a restart logs everyone out.

The scope of a principal is passed to every query as ``team_scope``; it is never a filter the
browser chooses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentportal_otel.monitor import _env

MIN_TOKEN_LENGTH = 16
"""Shorter tokens are refused at startup: they could be guessed."""

_MAX_SESSIONS = 10_000


class ConfigError(Exception):
    """The token configuration is unusable; the message names the variable (never a token)."""


@dataclass(frozen=True)
class Principal:
    """The reader behind a request. ``team`` is ``None`` for the admin (all rows)."""

    team: str | None

    @property
    def is_admin(self) -> bool:
        return self.team is None

    def describe(self) -> str:
        return "admin" if self.team is None else f"team {self.team}"


ADMIN = Principal(team=None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenTable:
    """Configured tokens, kept as digests, each with the principal it grants."""

    entries: tuple[tuple[bytes, Principal], ...] = ()
    admins: int = 0
    teams: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def lookup(self, token: str | None) -> Principal | None:
        """The principal ``token`` grants, or ``None``. Every entry is compared, in constant time."""
        if not token:
            return None
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self.entries:
            if hmac.compare_digest(presented, digest) and found is None:
                found = principal
        return found

    def describe(self) -> str:
        parts = []
        if self.admins:
            parts.append("admin token")
        if self.teams:
            parts.append(f"{len(self.teams)} team token{'s' if len(self.teams) != 1 else ''}")
        return "tokens (" + ", ".join(parts) + ")"


def _team_pairs(text: str, source: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        team, sep, token = item.partition("=")
        if not sep or not team.strip() or not token.strip():
            raise ConfigError(f"{source}: expected <team id>=<token>[,...]; an entry has no team id or no token")
        pairs.append((team.strip(), token.strip()))
    return pairs


def _read_file(path: str) -> tuple[list[str], list[tuple[str, str]]]:
    source = f"{_env.AGENTPORTAL_MONITOR_TOKENS_FILE} ({path})"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    admins: list[str] = []
    teams: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        if name.strip() == _env.AGENTPORTAL_MONITOR_ADMIN_TOKEN:
            if value.strip():
                admins.append(value.strip())
        elif name.strip() == _env.AGENTPORTAL_MONITOR_TEAM_TOKENS:
            teams.extend(_team_pairs(value, f"{source} line {number}"))
        else:
            teams.extend(_team_pairs(line, f"{source} line {number}"))
    return admins, teams


def load_tokens(environ: Mapping[str, str]) -> TokenTable:
    """Read the tokens from ``environ`` (and the tokens file); :class:`ConfigError` if unusable."""
    admins = (
        [environ[_env.AGENTPORTAL_MONITOR_ADMIN_TOKEN].strip()]
        if environ.get(_env.AGENTPORTAL_MONITOR_ADMIN_TOKEN, "").strip()
        else []
    )
    teams = _team_pairs(environ.get(_env.AGENTPORTAL_MONITOR_TEAM_TOKENS, ""), _env.AGENTPORTAL_MONITOR_TEAM_TOKENS)
    if environ.get(_env.AGENTPORTAL_MONITOR_TOKENS_FILE):
        file_admins, file_teams = _read_file(environ[_env.AGENTPORTAL_MONITOR_TOKENS_FILE])
        admins += file_admins
        teams += file_teams
    entries: list[tuple[bytes, Principal]] = []
    seen: dict[bytes, Principal] = {}
    for token, principal in [(t, ADMIN) for t in admins] + [(t, Principal(team)) for team, t in teams]:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"a monitor token of {principal.describe()} is shorter than {MIN_TOKEN_LENGTH} characters;"
                " use e.g. `openssl rand -hex 32`"
            )
        digest = _digest(token)
        if digest in seen and seen[digest] != principal:
            raise ConfigError(f"one token is configured for both {seen[digest].describe()} and {principal.describe()}")
        if digest not in seen:
            seen[digest] = principal
            entries.append((digest, principal))
    return TokenTable(
        entries=tuple(entries),
        admins=sum(p.is_admin for _, p in entries),
        teams=frozenset(p.team for _, p in entries if p.team is not None),
    )


@dataclass
class _Session:
    principal: Principal
    expires: float


class SessionStore:
    """Random session ids -> principal, in memory, with a lifetime and a size cap."""

    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = _Session(principal, time.monotonic() + self.lifetime_s)
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session_id

    def get(self, session_id: str | None) -> Principal | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires <= time.monotonic():
                del self._sessions[session_id]
                return None
            return session.principal

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)
