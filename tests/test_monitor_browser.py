"""The monitoring page in a real browser: Debian's headless Chromium driven by Playwright.

A subprocess writes plugin spans (the exporter, ``tests/clickhouse/monitor_data.py``) into a
fresh chDB directory; ``agentportal-otel serve`` then serves it in a second subprocess (chDB binds
one directory per process, and this test process may host the ClickHouse tests' directory).
The test signs in through the login form and checks: no console errors; the figures equal the
API's; filtering to one team; opening a call and its trace waterfall; usable at phone width; the
page's total transfer size. It takes the README's screenshots; with
``AGENTPORTAL_UPDATE_SCREENSHOTS=1`` it writes them to ``docs/monitor.png`` and
``docs/monitor-trace.png`` (otherwise to a temporary directory, so a test run leaves the checkout
clean)::

    AGENTPORTAL_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_monitor_browser.py

Never downloads a browser: it uses ``/usr/bin/chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-admin-" + "7" * 24
TEAM_TOKEN = "browser-assist-" + "8" * 24
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_PAGE_BYTES = 300 * 1024
TRANSFER_JS = (
    "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
    ".reduce((sum, e) => sum + e.transferSize, 0)"
)
"""Bytes the page moved over the network so far: document, scripts, styles and API answers."""
_SERVE = "from agentportal_otel.cli import main; raise SystemExit(main())"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST" and not k.startswith("CLICKHOUSE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("monitor") / "chdb"
    url = f"chdb://{data_dir}"
    subprocess.run(
        [sys.executable, str(REPO / "tests" / "clickhouse" / "monitor_data.py"), url, "otel"],
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port, parent_port = _free_port(), _free_port()
    env = {
        **_env(),
        "AGENTPORTAL_MONITOR_ADMIN_TOKEN": TOKEN,
        "AGENTPORTAL_MONITOR_TEAM_TOKENS": f"team-assist={TEAM_TOKEN}",
        # Like the compose stack: Open-WebUI on another port of the same host may frame the page.
        "AGENTPORTAL_MONITOR_FRAME_ANCESTORS": f"'self' http://127.0.0.1:{parent_port}",
    }
    log = (data_dir.parent / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "serve", "--url", url, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.terminate()
        log.seek(0)
        pytest.fail(f"serve did not become healthy:\n{log.read()}")
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    yield {"base": base, "api": api, "log": log, "parent_port": parent_port}
    api.close()
    process.terminate()
    process.wait(timeout=20)
    log.seek(0)
    output = log.read()
    log.close()
    assert TOKEN not in output and TEAM_TOKEN not in output  # nor in any log line
    # One startup line says which data is read and which auth mode is on.
    assert f"monitor: reading {url} table otel.otel_traces; auth: tokens (admin token, 1 team token)" in output
    assert "GET /api/v1/usage 200" in output  # our access log: method, path, status only


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def _login(page: Any, base: str, token: str) -> None:
    page.goto(base + "/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#token", token)
    if token == TEAM_TOKEN:
        page.press("#token", "Enter")
    else:
        page.click("#login-button")
    page.wait_for_selector("#calls tbody tr[data-call]")
    assert token not in page.url


def _figure(page: Any, metric: str) -> str:
    return str(page.get_attribute(f"#fig-{metric}", "data-value"))


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return REPO / "docs" if os.environ.get("AGENTPORTAL_UPDATE_SCREENSHOTS") == "1" else tmp_path


def test_page_in_chromium(server: dict[str, Any], browser: Any, screenshots: Path) -> None:
    base, api = server["base"], server["api"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = _watch(page)
    _login(page, base, TOKEN)
    page.wait_for_load_state("networkidle")

    # The figures are the API's.
    (total,) = api.get("/api/v1/usage", params={"since": "24h"}).json()["items"]
    for metric in ("calls", "input_tokens", "output_tokens", "cost_usd", "p50_ms", "p95_ms", "p99_ms", "ttfc_p95_ms"):
        assert float(_figure(page, metric)) == pytest.approx(total[metric]), metric
    assert page.text_content("#fig-calls") == f"{total['calls']:,}"
    calls_total = api.get("/api/v1/calls", params={"since": "24h"}).json()["total"]
    assert page.get_attribute("#calls-count", "data-total") == str(calls_total)
    assert page.locator("#chart-calls svg rect").count() > 0
    assert page.locator("#usage tbody tr").count() == len(
        api.get("/api/v1/usage", params={"since": "24h", "by": "team,project"}).json()["items"]
    )
    assert page.locator("#errors tbody tr").count() > 0
    page.screenshot(path=str(screenshots / "monitor.png"), full_page=True)
    transferred = page.evaluate(TRANSFER_JS)
    assert 0 < transferred <= MAX_PAGE_BYTES, transferred

    # Filter to one team: figures, rows and the address follow.
    before = _figure(page, "calls")
    page.fill("#f-team", "team-assist")
    page.dispatch_event("#f-team", "change")
    page.wait_for_function("(before) => document.querySelector('#fig-calls').dataset.value !== before", arg=before)
    page.wait_for_load_state("networkidle")
    (team_total,) = api.get("/api/v1/usage", params={"since": "24h", "team": "team-assist"}).json()["items"]
    assert float(_figure(page, "calls")) == team_total["calls"]
    teams = page.locator("#calls tbody tr td:nth-child(2)").all_text_contents()
    assert teams and set(teams) == {"team-assist"}
    assert "team=team-assist" in page.url

    # Paging: the next page of the filtered calls.
    page.click("#next")
    page.wait_for_function("() => document.querySelector('#calls-count').textContent.startsWith('21')")
    assert "offset=20" in page.url
    page.click("#prev")
    page.wait_for_function("() => document.querySelector('#calls-count').textContent.startsWith('1\u2013')")

    # Open a call: its detail and its trace's waterfall.
    first = page.locator("#calls tbody tr[data-call]").first
    trace_id, span_id = str(first.get_attribute("data-call")).split(":")
    first.click()
    page.wait_for_selector("#waterfall .wf-row[data-span]")
    spans = api.get(f"/api/v1/traces/{trace_id}").json()["spans"]
    assert page.locator("#waterfall .wf-row[data-span]").count() == len(spans)
    assert page.locator("#waterfall .wf-row.current").get_attribute("data-span") == span_id
    assert f"call={trace_id}%3A{span_id}" in page.url

    # An agent run (a caller span with two LLM calls), opened from a link: the view is in the URL.
    agent = _agent_run(api)
    page.goto(f"{base}/?range=24h&call={agent[0]}:{agent[1]}")
    page.wait_for_selector("#waterfall .wf-row[data-span]")
    rows = page.locator("#waterfall .wf-row[data-span]")
    assert rows.count() == 3
    assert page.locator("#waterfall .wf-row[data-llm=true]").count() == 2
    assert page.locator("#waterfall .wf-bar.llm").count() == 2
    widths = [float(w) for w in page.eval_on_selector_all("#waterfall .wf-bar", "bars => bars.map(b => b.offsetWidth)")]
    durations = [s["duration_ms"] for s in api.get(f"/api/v1/traces/{agent[0]}").json()["spans"]]
    for width, duration in zip(widths, durations, strict=True):  # drawn to scale
        assert width / widths[0] == pytest.approx(duration / durations[0], abs=0.02)
    page.screenshot(path=str(screenshots / "monitor-trace.png"))

    # Phone width: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/")
    page.wait_for_selector("#calls tbody tr[data-call]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshots / "monitor-phone.png"), full_page=True)
    assert problems == []
    context.close()


def test_controls_live_in_the_url(server: dict[str, Any], browser: Any) -> None:
    base, api = server["base"], server["api"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page = context.new_page()
    problems = _watch(page)
    _login(page, base, TOKEN)
    page.wait_for_load_state("networkidle")
    # Dark, following the OS.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]) < 150, background

    # The time range picker.
    before = _figure(page, "calls")
    page.select_option("#range", "1h")
    page.wait_for_function("(before) => document.querySelector('#fig-calls').dataset.value !== before", arg=before)
    page.wait_for_load_state("networkidle")
    (hour,) = api.get("/api/v1/usage", params={"since": "1h"}).json()["items"]
    assert float(_figure(page, "calls")) == hour["calls"] and "range=1h" in page.url

    # Split by project, sort the usage table, auto-refresh: all in the address.
    page.select_option("#split", "project")
    page.wait_for_function("() => !document.querySelector('#legend').textContent.includes('team-')")
    assert "split=project" in page.url
    projects = {
        p
        for r in api.get("/api/v1/usage", params={"since": "1h", "by": "project"}).json()["items"]
        for p in [r["project"]]
    }
    assert set(page.locator("#legend span").all_text_contents()) == projects
    page.click("#usage th[data-key=calls]")
    calls = [int(c.replace(",", "")) for c in page.locator("#usage tbody td:nth-child(3)").all_text_contents()]
    assert calls == sorted(calls, reverse=True) and "sort=calls" in page.url
    page.click("#usage th[data-key=calls]")
    calls = [int(c.replace(",", "")) for c in page.locator("#usage tbody td:nth-child(3)").all_text_contents()]
    assert calls == sorted(calls) and "dir=asc" in page.url
    page.check("#refresh")
    assert "refresh=1" in page.url

    # The link reproduces the view.
    link = page.url
    again = context.new_page()
    again.goto(link)
    again.wait_for_selector("#calls tbody tr[data-call]")
    assert again.input_value("#range") == "1h" and again.input_value("#split") == "project"
    assert again.is_checked("#refresh")
    assert problems == []
    context.close()


def test_team_token_sees_its_team_only(server: dict[str, Any], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = _watch(page)
    _login(page, server["base"], TEAM_TOKEN)
    page.wait_for_load_state("networkidle")
    assert page.text_content("#scope") == "team team-assist"
    assert page.is_disabled("#f-team")
    assert set(page.locator("#calls tbody tr td:nth-child(2)").all_text_contents()) == {"team-assist"}
    cookies = context.cookies()
    assert [c["httpOnly"] for c in cookies] == [True] and TEAM_TOKEN not in str(cookies)
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    assert problems == []
    context.close()


def _agent_run(api: Any) -> tuple[str, str]:
    calls = api.get("/api/v1/calls", params={"since": "24h", "limit": 1000}).json()["items"]
    for call in calls:
        spans = api.get(f"/api/v1/traces/{call['trace_id']}").json()["spans"]
        if len(spans) == 3:
            return call["trace_id"], call["span_id"]
    raise AssertionError("no agent run in the data")


# Open-WebUI renders a tool's inline HTMLResponse in an iframe with these sandbox flags when the
# user turned on "iframe Sandbox Allow Same Origin" (FullHeightIframe.svelte); forms stay off.
OPEN_WEBUI_SANDBOX = "allow-scripts allow-same-origin allow-popups allow-downloads"


def _serve_parent(port: int, html: str) -> ThreadingHTTPServer:
    class Parent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Parent)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_framed_like_open_webui(server: dict[str, Any], browser: Any) -> None:
    base, port = server["base"], server["parent_port"]
    parent = f'<!doctype html><title>chat</title><iframe src="{base}/" sandbox="{OPEN_WEBUI_SANDBOX}"></iframe>'
    httpd = _serve_parent(port, parent)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/parent")  # listed in frame-ancestors, same site
    frame = page.frame_locator("iframe")
    frame.locator("#token").fill(TEAM_TOKEN)
    frame.locator("#token").press("Enter")  # no form submission: the sandbox has no allow-forms
    frame.locator("#calls tbody tr[data-call]").first.wait_for()
    assert frame.locator("#scope").text_content() == "team team-assist"

    other = context.new_page()
    other.goto(f"http://localhost:{port}/parent")  # not listed: the browser refuses to frame it
    other.wait_for_timeout(1500)
    child = other.frames[1]
    assert child.query_selector("#login-form") is None
    context.close()
    httpd.shutdown()
