#!/usr/bin/env python3
"""Create the demo teams and per-project virtual keys on a database-backed LiteLLM proxy.

Run by the ``bootstrap`` service of ``docker/compose.yaml`` after the proxy is healthy, or by
hand::

    LITELLM_URL=http://127.0.0.1:4000 LITELLM_MASTER_KEY=sk-... python docker/bootstrap/bootstrap.py

It is idempotent: teams are looked up by ``team_id``/``team_alias`` (``GET /team/list``) and keys
by ``key_alias`` (``GET /key/list?key_alias=...``) before anything is created, so a second run
creates nothing. LiteLLM stores only a hash of each key, so a key's secret is printed once, when
it is created; the one exception is a key whose value is preset from the environment (the
Open-WebUI key, ``OPEN_WEBUI_API_KEY``), which is registered with that exact value and can be
printed on every run.

Every key carries ``metadata: {"project": ...}`` and belongs to a team, which is what
agentportal-otel reports as ``agentportal.project`` and the team attributes on each span.

Variables:
    LITELLM_URL               proxy base URL (default ``http://litellm:4000``)
    LITELLM_MASTER_KEY        the proxy's master key (required)
    OPEN_WEBUI_API_KEY        value for the ``open-webui`` project's key (optional, must start
                              with ``sk-``); without it LiteLLM generates one
    BOOTSTRAP_WAIT_SECONDS    how long to wait for ``/health/liveliness`` (default 120)

Standard library only: it runs in a plain ``python`` image.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URL = "http://litellm:4000"
HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Team:
    team_id: str
    team_alias: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    name: str
    team_id: str
    key_env: str | None = None  # variable holding a preset key value, if any

    @property
    def key_alias(self) -> str:
        return f"{self.name}-key"


# Same team ids and aliases as the offline demo (agentportal_otel.demo.auth.DEMO_KEYS), so spans
# from the compose stack and from the demo group the same way.
TEAMS: tuple[Team, ...] = (
    Team("team-search", "Search", {"cost_center": "cc-team-search"}),
    Team("team-assist", "Assist", {"cost_center": "cc-team-assist"}),
)

PROJECTS: tuple[Project, ...] = (
    Project("search-portal", "team-search"),
    Project("assistant", "team-assist"),
    Project("open-webui", "team-assist", key_env="OPEN_WEBUI_API_KEY"),
)


class BootstrapError(Exception):
    """A request failed in a way a re-run will not fix by itself."""


class Client:
    """Minimal JSON client for the proxy's management API (urllib, master key auth)."""

    def __init__(self, base_url: str, master_key: str, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.master_key = master_key
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.master_key}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise BootstrapError(f"{method} {path} -> HTTP {exc.code}: {detail}") from None
        return json.loads(raw) if raw else None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = ""
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/health/liveliness", timeout=5) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                raise BootstrapError(f"proxy at {self.base_url} not ready after {timeout_s:.0f}s: {last_error}")
            time.sleep(2)


def _existing_teams(client: Client) -> list[dict[str, Any]]:
    teams = client.request("GET", "/team/list")
    if not isinstance(teams, list):
        raise BootstrapError(f"unexpected /team/list response: {teams!r:.200}")
    return [t for t in teams if isinstance(t, dict)]


def ensure_teams(client: Client, teams: tuple[Team, ...] = TEAMS) -> dict[str, str]:
    """Create missing teams; return ``{wanted team_id: actual team_id}``."""
    existing = _existing_teams(client)
    resolved: dict[str, str] = {}
    for team in teams:
        match = next((t for t in existing if t.get("team_id") == team.team_id), None)
        if match is None:
            match = next((t for t in existing if t.get("team_alias") == team.team_alias), None)
        if match is not None:
            resolved[team.team_id] = str(match["team_id"])
            print(f"team {team.team_alias!r}: exists (team_id={match['team_id']})")
            continue
        created = client.request(
            "POST",
            "/team/new",
            {"team_id": team.team_id, "team_alias": team.team_alias, "metadata": dict(team.metadata)},
        )
        resolved[team.team_id] = str(created["team_id"])
        print(f"team {team.team_alias!r}: created (team_id={created['team_id']})")
    return resolved


def _find_key(client: Client, alias: str) -> dict[str, Any] | None:
    listed = client.request("GET", "/key/list", query={"key_alias": alias, "return_full_object": "true"})
    keys = listed.get("keys", []) if isinstance(listed, dict) else []
    for key in keys:
        if isinstance(key, dict) and key.get("key_alias") == alias:
            return key
    return None


def ensure_keys(
    client: Client,
    team_ids: dict[str, str],
    projects: tuple[Project, ...] = PROJECTS,
    environ: dict[str, str] | None = None,
) -> dict[str, str | None]:
    """Create missing project keys; return ``{key_alias: secret or None if not known}``."""
    env = os.environ if environ is None else environ
    out: dict[str, str | None] = {}
    for project in projects:
        preset = (env.get(project.key_env) or None) if project.key_env else None
        if preset is not None and not preset.startswith("sk-"):
            raise BootstrapError(f"{project.key_env} must start with 'sk-' (LiteLLM virtual key format)")
        existing = _find_key(client, project.key_alias)
        if existing is not None:
            out[project.key_alias] = preset
            print(f"key {project.key_alias!r}: exists (team_id={existing.get('team_id')})")
            continue
        body: dict[str, Any] = {
            "key_alias": project.key_alias,
            "team_id": team_ids[project.team_id],
            "metadata": {"project": project.name},
        }
        if preset is not None:
            body["key"] = preset
        created = client.request("POST", "/key/generate", body)
        out[project.key_alias] = str(created["key"])
        print(f"key {project.key_alias!r}: created (team_id={body['team_id']}, project={project.name})")
    return out


def main(environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    master_key = env.get("LITELLM_MASTER_KEY", "")
    if not master_key:
        print("bootstrap: LITELLM_MASTER_KEY is not set", file=sys.stderr)
        return 2
    client = Client(env.get("LITELLM_URL") or DEFAULT_URL, master_key)
    try:
        client.wait_ready(float(env.get("BOOTSTRAP_WAIT_SECONDS") or 120))
        team_ids = ensure_teams(client)
        secrets = ensure_keys(client, team_ids, environ=env)
    except BootstrapError as exc:
        print(f"bootstrap: {exc}", file=sys.stderr)
        return 1
    print()
    for alias, secret in secrets.items():
        shown = secret if secret is not None else "(exists; the secret is only shown when created)"
        print(f"{alias}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
