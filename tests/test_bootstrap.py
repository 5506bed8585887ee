"""docker/bootstrap/bootstrap.py against a fake LiteLLM management API.

The real endpoints need the database-backed proxy (Postgres + Prisma engines), which cannot run
here, so this is a test double: a tiny HTTP server that implements ``/health/liveliness``,
``/team/list``, ``/team/new``, ``/key/list`` and ``/key/generate`` with the request and response
shapes of litellm 1.108 (``litellm/proxy/management_endpoints/{team,key_management}_endpoints.py``:
``/team/list`` returns a JSON list of teams, ``/key/list`` ``{"keys": [...], "total_count": ...}``
filtered by exact ``key_alias``, ``/key/generate`` refuses a duplicate alias with 400 and a custom
``key`` not starting with ``sk-``). It proves the script is idempotent and sends what LiteLLM
expects; the compose stack's ``make smoke`` exercises the real thing.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MASTER_KEY = "sk-test-master-0123456789"


def _load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_bootstrap", ROOT / "docker/bootstrap/bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building classes
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()


class FakeLiteLLM:
    """In-memory state of the fake proxy, plus a log of every request."""

    def __init__(self) -> None:
        self.teams: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, dict[str, Any]] = {}  # token -> key row
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/team/list" and method == "GET":
            return 200, sorted(self.teams.values(), key=lambda t: t["team_alias"] or "")
        if path == "/team/new" and method == "POST":
            team_id = body.get("team_id") or f"team-{secrets.token_hex(4)}"
            if team_id in self.teams:
                return 400, {"error": {"message": f"Team id = {team_id} already exists."}}
            row = {"team_id": team_id, "team_alias": body.get("team_alias"), "metadata": body.get("metadata") or {}}
            self.teams[team_id] = row
            return 200, row
        if path == "/key/list" and method == "GET":
            alias = query.get("key_alias")
            rows = [k for k in self.keys.values() if alias is None or k["key_alias"] == alias]
            if query.get("return_full_object") != "true":
                rows = [k["token"] for k in rows]  # type: ignore[misc]
            return 200, {"keys": rows, "total_count": len(rows), "current_page": 1, "total_pages": 1}
        if path == "/key/generate" and method == "POST":
            alias = body.get("key_alias")
            if any(k["key_alias"] == alias for k in self.keys.values()):
                return 400, {"error": {"message": f"Key with alias '{alias}' already exists."}}
            key = body.get("key") or "sk-" + secrets.token_urlsafe(16)
            if not key.startswith("sk-"):
                return 400, {"error": "Invalid key format. LiteLLM Virtual Key must start with 'sk-'."}
            if body.get("team_id") is not None and body["team_id"] not in self.teams:
                return 400, {"error": "team not found"}
            token = "hash-" + key
            self.keys[token] = {
                "token": token,
                "key_alias": alias,
                "team_id": body.get("team_id"),
                "metadata": body.get("metadata") or {},
            }
            return 200, {"key": key, "token": token, "key_alias": alias, "team_id": body.get("team_id")}
        return 404, {"detail": "Not Found"}


@pytest.fixture
def fake() -> Iterator[tuple[FakeLiteLLM, str]]:
    state = FakeLiteLLM()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _dispatch(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with state.lock:
                state.requests.append((method, parsed.path))
                if parsed.path == "/health/liveliness":
                    status, payload = 200, "I'm alive!"
                elif self.headers.get("Authorization") != f"Bearer {MASTER_KEY}":
                    status, payload = 401, {"error": {"message": "Authentication Error"}}
                else:
                    status, payload = state.handle(method, parsed.path, query, body)
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"LITELLM_URL": url, "LITELLM_MASTER_KEY": MASTER_KEY, "BOOTSTRAP_WAIT_SECONDS": "5", **extra}


def _posts(state: FakeLiteLLM) -> list[str]:
    return [path for method, path in state.requests if method == "POST"]


def test_first_run_creates_two_teams_and_one_key_per_project(fake, capsys) -> None:
    state, url = fake
    assert bootstrap.main(_env(url, OPEN_WEBUI_API_KEY="sk-webui-preset")) == 0

    assert {t["team_id"]: (t["team_alias"], t["metadata"]) for t in state.teams.values()} == {
        "team-search": ("Search", {"cost_center": "cc-team-search"}),
        "team-assist": ("Assist", {"cost_center": "cc-team-assist"}),
    }
    keys = {k["key_alias"]: (k["team_id"], k["metadata"]) for k in state.keys.values()}
    assert keys == {
        "search-portal-key": ("team-search", {"project": "search-portal"}),
        "assistant-key": ("team-assist", {"project": "assistant"}),
        "open-webui-key": ("team-assist", {"project": "open-webui"}),
    }
    # The preset Open-WebUI key is registered with exactly that value.
    assert "hash-sk-webui-preset" in state.keys
    assert _posts(state) == ["/team/new", "/team/new", "/key/generate", "/key/generate", "/key/generate"]
    out = capsys.readouterr().out
    assert "open-webui-key: sk-webui-preset" in out
    assert out.count(": sk-") == 3  # every created secret is printed once


def test_second_run_creates_nothing(fake, capsys) -> None:
    state, url = fake
    env = _env(url, OPEN_WEBUI_API_KEY="sk-webui-preset")
    assert bootstrap.main(env) == 0
    teams, keys = dict(state.teams), dict(state.keys)
    state.requests.clear()
    capsys.readouterr()

    assert bootstrap.main(env) == 0

    assert _posts(state) == []
    assert state.teams == teams and state.keys == keys
    out = capsys.readouterr().out
    assert ": created (" not in out
    assert "search-portal-key: (exists; the secret is only shown when created)" in out
    assert "open-webui-key: sk-webui-preset" in out  # known from the environment


def test_partial_state_only_creates_what_is_missing(fake) -> None:
    state, url = fake
    # A team created by hand (different id, same alias) and one key already there.
    state.teams["manual-id"] = {"team_id": "manual-id", "team_alias": "Search", "metadata": {}}
    state.keys["hash-sk-old"] = {
        "token": "hash-sk-old",
        "key_alias": "assistant-key",
        "team_id": None,
        "metadata": {},
    }
    assert bootstrap.main(_env(url)) == 0

    assert _posts(state) == ["/team/new", "/key/generate", "/key/generate"]
    assert set(state.teams) == {"manual-id", "team-assist"}
    by_alias = {k["key_alias"]: k for k in state.keys.values()}
    assert by_alias["search-portal-key"]["team_id"] == "manual-id"  # reuses the existing team
    assert by_alias["assistant-key"]["token"] == "hash-sk-old"  # left alone
    assert by_alias["open-webui-key"]["metadata"] == {"project": "open-webui"}


def test_wrong_master_key_fails_without_creating(fake, capsys) -> None:
    state, url = fake
    env = _env(url)
    env["LITELLM_MASTER_KEY"] = "sk-wrong"
    assert bootstrap.main(env) == 1
    assert state.teams == {} and state.keys == {}
    assert "HTTP 401" in capsys.readouterr().err


def test_preset_key_must_look_like_a_virtual_key(fake, capsys) -> None:
    state, url = fake
    assert bootstrap.main(_env(url, OPEN_WEBUI_API_KEY="not-a-key")) == 1
    assert "OPEN_WEBUI_API_KEY must start with 'sk-'" in capsys.readouterr().err
    assert not any(k["key_alias"] == "open-webui-key" for k in state.keys.values())


def test_missing_master_key_is_a_usage_error(capsys) -> None:
    assert bootstrap.main({"LITELLM_URL": "http://127.0.0.1:9"}) == 2
    assert "LITELLM_MASTER_KEY" in capsys.readouterr().err


def test_unreachable_proxy_times_out(capsys) -> None:
    env = {"LITELLM_URL": "http://127.0.0.1:9", "LITELLM_MASTER_KEY": MASTER_KEY, "BOOTSTRAP_WAIT_SECONDS": "0"}
    assert bootstrap.main(env) == 1
    assert "not ready" in capsys.readouterr().err


def test_script_is_stdlib_only() -> None:
    source = (ROOT / "docker/bootstrap/bootstrap.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imports <= set(sys.stdlib_module_names), imports - set(sys.stdlib_module_names)
