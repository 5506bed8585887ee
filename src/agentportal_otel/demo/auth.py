"""Demo ``custom_auth`` for the LiteLLM proxy: static virtual keys, no database.

Only for local runs without a database (the demo, the tests, the benchmarks). In production,
keys come from LiteLLM's own database: create them with ``POST /key/generate`` and put the
project in the key (``"metadata": {"project": "..."}``) or in the team
(``POST /team/new`` with ``"metadata": {"project": "..."}``). This module returns the same
``UserAPIKeyAuth`` object a database-backed key produces, so everything downstream (metadata
merge, the ``standard_logging_object``, our callback) runs the real proxy code path.

Use it from a proxy ``config.yaml``::

    general_settings:
      master_key: os.environ/LITELLM_MASTER_KEY
      custom_auth: agentportal_otel.demo.auth.user_api_key_auth

The keys are listed in :data:`DEMO_KEYS`. The master key (``general_settings.master_key``, else
``LITELLM_MASTER_KEY``) is accepted and reported as LiteLLM reports it: key hash
``litellm_proxy_master_key``, role ``proxy_admin``. Any other key is refused with HTTP 401.

Importing this module does not import LiteLLM.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from litellm.proxy._types import UserAPIKeyAuth
    from starlette.requests import Request

__all__ = [
    "DEMO_KEYS",
    "DEMO_ORG_ID",
    "MASTER_KEY_ALIAS",
    "DemoKey",
    "demo_key",
    "hash_key",
    "user_api_key_auth",
]

MASTER_KEY_ALIAS = "litellm_proxy_master_key"
"""What LiteLLM logs as ``user_api_key_hash`` for the master key (``LITELLM_PROXY_MASTER_KEY_ALIAS``)."""

DEMO_ORG_ID = "org-demo"
"""The organization every demo key belongs to."""

ProjectSource = Literal["key_metadata", "team_metadata", "key_tag"]


def hash_key(key: str) -> str:
    """The sha256 hex digest of a key, as LiteLLM's ``hash_token`` stores it."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class DemoKey:
    """One demo virtual key and the identity a database-backed key with these fields would carry.

    ``project`` is the project the key is attributed to and ``project_source`` says where it
    lives: the key's metadata (``{"project": ...}``), the team's metadata, or a ``project:<name>``
    tag among the key's tags. Tests use these fields to compute expected attributes.
    """

    key: str
    key_alias: str
    user_id: str
    user_email: str
    team_id: str | None
    team_alias: str | None
    project: str | None
    project_source: ProjectSource | None
    tags: tuple[str, ...] = ()
    org_id: str = DEMO_ORG_ID

    @property
    def token(self) -> str:
        """The hashed key: ``UserAPIKeyAuth.token`` and the logged ``user_api_key_hash``."""
        return hash_key(self.key)

    def key_metadata(self) -> dict[str, Any]:
        """A fresh copy of the key's ``metadata`` (``user_api_key_metadata`` in the payload)."""
        metadata: dict[str, Any] = {"environment": "demo"}
        if self.project is not None and self.project_source == "key_metadata":
            metadata["project"] = self.project
        if self.tags:
            metadata["tags"] = list(self.tags)
        return metadata

    def team_metadata(self) -> dict[str, Any]:
        """A fresh copy of the team's ``metadata`` (``user_api_key_team_metadata``); empty without a team."""
        if self.team_id is None:
            return {}
        metadata: dict[str, Any] = {"cost_center": f"cc-{self.team_id}"}
        if self.project is not None and self.project_source == "team_metadata":
            metadata["project"] = self.project
        return metadata


DEMO_KEYS: tuple[DemoKey, ...] = (
    # Team A, project in the key's own metadata (the documented production setup).
    DemoKey(
        key="sk-demo-alpha-search",
        key_alias="alpha-search",
        user_id="user-alice",
        user_email="alice@example.com",
        team_id="team-search",
        team_alias="Search",
        project="search-portal",
        project_source="key_metadata",
    ),
    # Team B, project only in the team's metadata.
    DemoKey(
        key="sk-demo-beta-assist",
        key_alias="beta-assist",
        user_id="user-bob",
        user_email="bob@example.com",
        team_id="team-assist",
        team_alias="Assist",
        project="assistant",
        project_source="team_metadata",
    ),
    # Team B, project only as a ``project:<name>`` key tag.
    DemoKey(
        key="sk-demo-gamma-agent",
        key_alias="gamma-agent",
        user_id="user-carol",
        user_email="carol@example.com",
        team_id="team-assist",
        team_alias="Assist",
        project="agent-portal",
        project_source="key_tag",
        tags=("project:agent-portal", "env:demo"),
    ),
    # No team and no project: the "absent" case.
    DemoKey(
        key="sk-demo-delta-solo",
        key_alias="delta-solo",
        user_id="user-dave",
        user_email="dave@example.com",
        team_id=None,
        team_alias=None,
        project=None,
        project_source=None,
    ),
)
"""The demo keys, in a stable order."""

_BY_KEY: dict[str, DemoKey] = {k.key: k for k in DEMO_KEYS}


def demo_key(key: str) -> DemoKey | None:
    """The demo key entry for a raw key (a leading ``Bearer `` is ignored), or ``None``."""
    return _BY_KEY.get(_strip_bearer(key))


def _strip_bearer(api_key: str) -> str:
    return api_key[7:] if api_key[:7].lower() == "bearer " else api_key


def _configured_master_key() -> str | None:
    # The proxy resolves general_settings.master_key (os.environ/...) at startup; fall back to
    # the variable outside a running proxy (unit tests). Looked up, never imported: importing
    # proxy_server builds the whole proxy application.
    resolved = getattr(sys.modules.get("litellm.proxy.proxy_server"), "master_key", None)
    if isinstance(resolved, str) and resolved:
        return resolved
    return os.environ.get("LITELLM_MASTER_KEY") or None


def _master_key_auth() -> UserAPIKeyAuth:
    from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

    # Looked up, not imported: inside the proxy the module is loaded, and importing it elsewhere
    # would start the whole proxy application.
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    admin_name = str(getattr(proxy_server, "litellm_proxy_admin_name", "default_user_id"))
    # LiteLLM substitutes this alias for the raw master key so neither the key nor its hash
    # reaches logs; UserAPIKeyAuth hashes only values starting with "sk-", so it stays as is.
    return UserAPIKeyAuth(api_key=MASTER_KEY_ALIAS, user_role=LitellmUserRoles.PROXY_ADMIN, user_id=admin_name)


def _virtual_key_auth(entry: DemoKey) -> UserAPIKeyAuth:
    from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

    # UserAPIKeyAuth's validator replaces an "sk-..." api_key with its sha256 and sets token to
    # the same value, exactly as for a key read from the database.
    return UserAPIKeyAuth(
        api_key=entry.key,
        key_alias=entry.key_alias,
        user_id=entry.user_id,
        user_email=entry.user_email,
        user_role=LitellmUserRoles.INTERNAL_USER,
        team_id=entry.team_id,
        team_alias=entry.team_alias,
        org_id=entry.org_id,
        metadata=entry.key_metadata(),
        team_metadata=entry.team_metadata() if entry.team_id is not None else None,
    )


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """LiteLLM ``custom_auth`` hook: map a demo key to its identity, accept the master key, refuse the rest.

    Raises ``litellm.proxy._types.ProxyException`` with code 401 for an unknown or missing key.
    """
    raw = _strip_bearer(api_key or "")
    entry = _BY_KEY.get(raw)
    if entry is not None:
        return _virtual_key_auth(entry)
    master_key = _configured_master_key()
    if raw and master_key is not None and secrets.compare_digest(raw.encode(), master_key.encode()):
        return _master_key_auth()

    from litellm.proxy._types import ProxyErrorTypes, ProxyException

    raise ProxyException(
        message="Authentication Error: unknown API key (the demo custom_auth accepts only the demo keys)",
        type=ProxyErrorTypes.auth_error,
        param="api_key",
        code=401,
    )
