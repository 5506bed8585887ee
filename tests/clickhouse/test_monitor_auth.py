"""Access control of the monitoring server: no anonymous data, admin against team scope, escape
attempts (query parameters, other teams' trace and span ids, CSV), the login cookie, security
headers, and that a token never shows up in a log line or a response. Also the ``serve``
command's refusals and startup line, and concurrent requests on one chDB connection.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import monitor_data
import pytest
import uvicorn
from fastapi.testclient import TestClient

from agentportal_otel import cli
from agentportal_otel.clickhouse import _queries as q
from agentportal_otel.clickhouse import connect
from agentportal_otel.monitor import _serve
from agentportal_otel.monitor._app import COOKIE_NAME, MonitorConfig, create_app
from agentportal_otel.monitor._auth import ConfigError, load_tokens

pytestmark = pytest.mark.slow

DB = "monitor_auth_db"
ADMIN = "admin-secret-" + "1" * 24
SEARCH = "search-secret-" + "2" * 24
ASSIST = "assist-secret-" + "3" * 24
ENV = {
    "AGENTPORTAL_MONITOR_ADMIN_TOKEN": ADMIN,
    "AGENTPORTAL_MONITOR_TEAM_TOKENS": f"team-search={SEARCH},team-assist={ASSIST}",
}
NOW = datetime.now(timezone.utc).replace(microsecond=0)
WINDOW = {"start": (NOW - timedelta(days=1)).isoformat(), "end": (NOW + timedelta(minutes=1)).isoformat()}
DATA_PATHS = ["/api/v1/usage", "/api/v1/calls", "/api/v1/errors"]


@pytest.fixture(scope="module")
def world(chdb_url: str) -> Iterator[dict[str, Any]]:
    spans = monitor_data.write(chdb_url, DB, now=NOW)
    backend = connect(chdb_url)
    app = create_app(
        backend,
        MonitorConfig(target=q.Target(DB), tokens=load_tokens(ENV), frame_ancestors="'self' https://chat.example.com"),
    )
    yield {"app": app, "spans": spans, "backend": backend}
    backend.close()


def _client(world: dict[str, Any], token: str | None = None) -> TestClient:
    client = TestClient(world["app"])
    if token is not None:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


def _ids(span: Any) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


def _of_team(world: dict[str, Any], team: str) -> list[Any]:
    return [s for s in world["spans"] if (s.attributes or {}).get("agentportal.team.id") == team]


# -- no anonymous access -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*DATA_PATHS, f"/api/v1/calls/{'a' * 32}/{'b' * 16}", f"/api/v1/traces/{'a' * 32}"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-0000000000000000", "Basic " + ADMIN, "Bearer ", ADMIN])
def test_401_without_a_valid_token(world: dict[str, Any], path: str, auth: str | None) -> None:
    client = _client(world)
    headers = {} if auth is None else {"Authorization": auth}
    response = client.get(path, headers=headers, params={"format": "csv"} if path in DATA_PATHS else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    # A forged cookie is no better.
    assert client.get(path, cookies={COOKIE_NAME: ADMIN}).status_code == 401


def test_authentication_comes_before_validation(world: dict[str, Any]) -> None:
    # Without a token nothing is said about the parameters either.
    client = _client(world)
    assert client.get("/api/v1/calls", params={"limit": "abc", "x": "1"}).status_code == 401
    assert client.get("/api/v1/calls/not-hex/x").status_code == 401


def test_health_and_page_need_no_token_and_carry_no_data(world: dict[str, Any]) -> None:
    client = _client(world)
    assert client.get("/api/v1/health").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "team-search" not in page.text
    assert client.get("/api/v1/session").json() == {"authenticated": False, "auth": "token"}


# -- scope ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("team", "token"), [("team-search", SEARCH), ("team-assist", ASSIST)])
def test_team_totals_equal_admin_filtered(world: dict[str, Any], team: str, token: str) -> None:
    admin, scoped = _client(world, ADMIN), _client(world, token)
    for by in ("", "project,model", "key_alias,user"):
        mine = scoped.get("/api/v1/usage", params={**WINDOW, "by": by, "bucket": "hour"}).json()["items"]
        filtered = admin.get("/api/v1/usage", params={**WINDOW, "by": by, "bucket": "hour", "team": team}).json()
        assert mine == filtered["items"] and mine
    calls = scoped.get("/api/v1/calls", params={**WINDOW, "limit": 1000}).json()
    assert calls["total"] == len([s for s in _of_team(world, team) if s.kind.name == "CLIENT"])
    assert {c["team"] for c in calls["items"]} == {team}
    # by=team shows one team only; the team's own id as a filter is allowed.
    by_team = scoped.get("/api/v1/usage", params={**WINDOW, "by": "team"}).json()["items"]
    assert [r["team"] for r in by_team] == [team]
    own = scoped.get("/api/v1/usage", params={**WINDOW, "team": team}).json()["items"]
    assert [r["calls"] for r in own] == [by_team[0]["calls"]]
    assert scoped.get("/api/v1/errors", params={**WINDOW, "team": team}).status_code == 200
    errors = scoped.get("/api/v1/errors", params=WINDOW).json()["items"]
    admin_errors = admin.get("/api/v1/errors", params={**WINDOW, "team": team}).json()["items"]
    assert errors == admin_errors


@pytest.mark.parametrize("path", DATA_PATHS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_asking_for_another_team_is_403(world: dict[str, Any], path: str, fmt: str) -> None:
    scoped = _client(world, SEARCH)
    for other in ("team-assist", "unattributed", "Assist"):
        response = scoped.get(path, params={"team": other, "format": fmt})
        assert response.status_code == 403, (other, response.text)
        assert "team-assist" not in response.text.replace(other, "")
        assert response.json()["error"] == "forbidden"


def test_query_parameter_escapes_do_not_widen_the_scope(world: dict[str, Any]) -> None:
    scoped = _client(world, SEARCH)
    attempts = [
        {"team_scope": "team-assist"},
        {"scope": "admin"},
        {"team": "team-search' OR '1'='1"},
        {"project": "assistant"},  # another team's project: filtered inside the scope -> nothing
        {"key_alias": "assistant-key"},
    ]
    for params in attempts:
        response = scoped.get("/api/v1/calls", params={**WINDOW, **params})
        assert response.status_code in (400, 403) or response.json()["total"] == 0, params
        if response.status_code == 200:
            assert response.json()["items"] == []
    csv = scoped.get("/api/v1/calls", params={**WINDOW, "project": "assistant", "format": "csv"})
    assert csv.status_code == 200 and "team-assist" not in csv.text


def test_other_teams_calls_and_traces_are_404(world: dict[str, Any]) -> None:
    scoped, admin = _client(world, SEARCH), _client(world, ADMIN)
    theirs = [s for s in _of_team(world, "team-assist") if s.kind.name == "CLIENT"]
    mine = [s for s in _of_team(world, "team-search") if s.kind.name == "CLIENT"]
    for span in theirs[:10]:
        tid, sid = _ids(span)
        for path in (f"/api/v1/calls/{tid}/{sid}", f"/api/v1/traces/{tid}"):
            assert admin.get(path).status_code == 200
            response = scoped.get(path)
            assert response.status_code == 404 and response.json() == {
                "error": "not_found",
                "message": response.json()["message"],
            }
    # Mixing my trace id with their span id, or the reverse, finds nothing either.
    (my_tid, my_sid), (their_tid, their_sid) = _ids(mine[0]), _ids(theirs[0])
    assert scoped.get(f"/api/v1/calls/{my_tid}/{their_sid}").status_code == 404
    assert scoped.get(f"/api/v1/calls/{their_tid}/{my_sid}").status_code == 404
    assert scoped.get(f"/api/v1/calls/{my_tid}/{my_sid}").status_code == 200
    # The caller span of another team's agent run.
    callers = [s for s in world["spans"] if s.name == "triage ticket"]
    for caller in callers:
        tid, _ = _ids(caller)
        child_team = next(
            s.attributes["agentportal.team.id"]
            for s in world["spans"]
            if s.parent and s.parent.span_id == caller.context.span_id
        )
        expected = 200 if child_team == "team-search" else 404
        assert scoped.get(f"/api/v1/traces/{tid}").status_code == expected


# -- sessions --------------------------------------------------------------------------------------------


def test_login_swaps_the_token_for_an_httponly_cookie(world: dict[str, Any]) -> None:
    client = _client(world)
    response = client.post("/api/v1/session", json={"token": SEARCH})
    assert response.status_code == 200
    assert response.json() == {
        "authenticated": True,
        "scope": "team",
        "team": "team-search",
        "auth": "token",
        "table": f"{DB}.otel_traces",
    }
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert SEARCH not in cookie and SEARCH not in response.text
    value = client.cookies[COOKIE_NAME]
    assert len(value) >= 40 and value != SEARCH
    assert client.get("/api/v1/session").json()["team"] == "team-search"
    assert client.get("/api/v1/usage", params={"team": "team-assist"}).status_code == 403
    assert client.get("/api/v1/calls").status_code == 200
    assert client.delete("/api/v1/session").status_code == 200
    client.cookies.set(COOKIE_NAME, value)  # replaying the old cookie after logout
    assert client.get("/api/v1/calls").status_code == 401


def test_login_refusals(world: dict[str, Any]) -> None:
    client = _client(world)
    assert client.post("/api/v1/session", json={"token": "wrong-" * 5}).status_code == 401
    assert client.post("/api/v1/session", json={}).status_code == 400
    assert client.post("/api/v1/session", json=["x"]).status_code == 400
    # An HTML form from anywhere cannot log a victim in: JSON only, and same origin only.
    form = client.post("/api/v1/session", data={"token": SEARCH})
    assert form.status_code == 400 and COOKIE_NAME not in form.headers.get("set-cookie", "")
    cross = client.post("/api/v1/session", json={"token": SEARCH}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    site = client.post("/api/v1/session", json={"token": SEARCH}, headers={"Sec-Fetch-Site": "cross-site"})
    assert site.status_code == 403
    same = client.post("/api/v1/session", json={"token": SEARCH}, headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_samesite_none_forces_secure(chdb_url: str) -> None:
    backend = connect(chdb_url)
    try:
        app = create_app(backend, MonitorConfig(target=q.Target(DB), tokens=load_tokens(ENV), cookie_samesite="None"))
        response = TestClient(app).post("/api/v1/session", json={"token": ADMIN})
        assert "SameSite=none" in response.headers["set-cookie"] and "Secure" in response.headers["set-cookie"]
    finally:
        backend.close()


# -- headers, logs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/v1/health", "/api/v1/usage", "/nope"])
def test_security_headers(world: dict[str, Any], path: str) -> None:
    response = _client(world, ADMIN).get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'self' https://chat.example.com" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


def test_page_has_no_inline_script_or_style(world: dict[str, Any]) -> None:
    html = _client(world).get("/").text
    assert "<script>" not in html and "<script src=" in html and " style=" not in html and "<style" not in html
    assert "http://" not in html and "https://" not in html  # no CDN


def test_tokens_never_logged_nor_returned(world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    for token in (ADMIN, SEARCH, "wrong-token-9999999999999999"):
        client = _client(world, token)
        for path in [*DATA_PATHS, "/api/v1/session", f"/api/v1/traces/{'a' * 32}", "/api/v1/usage?format=csv"]:
            response = client.get(path)
            bodies.append(response.text + str(dict(response.headers)))
        login = _client(world).post("/api/v1/session", json={"token": token})
        bodies.append(login.text + str(dict(login.headers)))
    text = caplog.text + "".join(bodies)
    assert "GET /api/v1/usage" in caplog.text  # the access log ran
    for token in (ADMIN, SEARCH, "wrong-token-9999999999999999"):
        assert token not in text


# -- serve: refusals, startup line, concurrency ----------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(["serve", *argv])


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "no access token configured"),
        (["--no-auth", "--host", "0.0.0.0"], {}, "loopback"),
        (["--no-auth"], ENV, "tokens are configured"),
        ([], {"AGENTPORTAL_MONITOR_ADMIN_TOKEN": "short"}, "shorter than 16"),
        ([], {"AGENTPORTAL_MONITOR_TEAM_TOKENS": "team-a"}, "<team id>=<token>"),
        ([], {"AGENTPORTAL_MONITOR_TEAM_TOKENS": f"a={SEARCH},b={SEARCH}"}, "both"),
        ([], {**ENV, "AGENTPORTAL_MONITOR_FRAME_ANCESTORS": "'self'; script-src *"}, "not a CSP source"),
        ([], {**ENV, "AGENTPORTAL_MONITOR_COOKIE_SAMESITE": "sometimes"}, "Strict, Lax or None"),
        ([], {**ENV, "AGENTPORTAL_MONITOR_TOKENS_FILE": "/nonexistent/tokens"}, "cannot read"),
    ],
)
def test_serve_refuses_to_start(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["serve", "--url", "chdb:///nonexistent-never-opened", *argv], environ=env)
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    for value in env.values():
        if len(value) >= 16 and "secret" in value:
            assert value not in err


def test_serve_without_clickhouse_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["serve", "--url", "http://reader:sekret-password@127.0.0.1:1", "--no-auth"], environ={})
    err = capsys.readouterr().err
    assert code == 1 and "cannot open ClickHouse" in err
    assert "sekret-password" not in err and "Traceback" not in err


def test_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(
        f"# monitor tokens\nAGENTPORTAL_MONITOR_ADMIN_TOKEN={ADMIN}\nteam-search={SEARCH}\n\n"
        f"AGENTPORTAL_MONITOR_TEAM_TOKENS=team-assist={ASSIST}\n"
    )
    tokens = load_tokens({"AGENTPORTAL_MONITOR_TOKENS_FILE": str(path)})
    assert tokens.lookup(ADMIN) is not None and tokens.lookup(ADMIN).is_admin  # type: ignore[union-attr]
    assert tokens.lookup(SEARCH).team == "team-search"  # type: ignore[union-attr]
    assert tokens.lookup(ASSIST).team == "team-assist"  # type: ignore[union-attr]
    assert tokens.lookup(ADMIN[:-1]) is None and tokens.lookup("") is None
    path.write_text("not a pair\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_tokens({"AGENTPORTAL_MONITOR_TOKENS_FILE": str(path)})


def test_startup_line(chdb_url: str) -> None:
    args = _args("--url", chdb_url, "--database", DB, "--port", "8765")
    _, backend, line = _serve.build(args, ENV)
    backend.close()
    assert f"reading {chdb_url} table {DB}.otel_traces" in line
    assert "auth: tokens (admin token, 2 team tokens)" in line and "http://127.0.0.1:8765/" in line
    assert ADMIN not in line and SEARCH not in line
    args = _args("--url", chdb_url, "--database", DB, "--no-auth")
    _, backend, line = _serve.build(args, {})
    backend.close()
    assert "auth: OFF (--no-auth" in line


def test_concurrent_requests_queue_on_one_connection(world: dict[str, Any]) -> None:
    config = uvicorn.Config(world["app"], host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    paths = [
        "/api/v1/usage?by=team,project",
        "/api/v1/usage?by=model&bucket=hour",
        "/api/v1/calls?limit=100",
        "/api/v1/errors?bucket=hour",
        "/api/v1/health",
    ] * 6

    def fetch(path: str) -> int:
        return httpx.get(base + path, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60).status_code

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(fetch, paths))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert codes == [200] * len(paths)
