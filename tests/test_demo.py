"""``agentportal-otel demo``: one command from a fresh directory to per-team usage tables.

The slow test runs ``python -m agentportal_otel.demo`` as a subprocess, exactly as a user would,
then reads the chDB directory it filled through the package's query layer, in a second
subprocess: chDB binds one directory per process, and the test process may already host the
ClickHouse tests' directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentportal_otel.cli import main as cli_main
from agentportal_otel.demo import _run
from agentportal_otel.demo.auth import DEMO_KEYS

REPO = Path(__file__).resolve().parents[1]
REQUESTS = 12

_QUERY = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timedelta, timezone
    from agentportal_otel.clickhouse import connect
    from agentportal_otel.clickhouse import _queries as q

    backend = connect(sys.argv[1])
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    start = end - timedelta(hours=1)
    usage = q.usage(backend, start=start, end=end, group_by=["team", "project"])
    errors = q.error_breakdown(backend, start=start, end=end)
    spans = q.trace(backend, sys.argv[2])
    backend.close()
    print(json.dumps({
        "groups": {"/".join(v for _, v in r.dimensions): r.calls for r in usage},
        "errors": {r.error_type: r.calls for r in errors},
        "trace": [s.span_name for s in spans],
    }))
    """
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def _section(output: str, title: str) -> str:
    match = re.search(rf"^== {re.escape(title)} ==.*?\n(.*?)(?=^== |\n\d+ requests sent)", output, re.M | re.S)
    assert match, f"no {title!r} section in:\n{output}"
    return match.group(1)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo" / "chdb"
    result = subprocess.run(
        [sys.executable, "-m", "agentportal_otel.demo", "--requests", str(REQUESTS), "--data-dir", str(data_dir)],
        cwd=tmp_path,  # no litellm/ here: the checkout's config is found through the package
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    out = result.stdout

    by_team = _section(out, "Usage by team and project")
    rows = [line.split() for line in by_team.splitlines()[1:] if line.strip()]
    pairs = {(row[-2], row[-1]) for row in rows}
    expected = {(k.team_id or "unattributed", k.project or "unattributed") for k in DEMO_KEYS}
    assert pairs == expected  # two teams, three projects, and the key with neither
    assert sum(int(row[0]) for row in rows) == REQUESTS
    assert "mock-chat" in _section(out, "Usage by model") and "mock-embed" in out
    assert "RateLimitError" in _section(out, "Errors")
    assert len(_section(out, "Latest 10 calls").strip().splitlines()) == 1 + 10
    assert f"{REQUESTS} requests sent" in out and f"{REQUESTS} spans in ClickHouse" in out
    trace_id = re.search(r"agentportal-otel trace ([0-9a-f]{32}) ", out)
    assert trace_id, out
    assert "requests" in result.stderr and "SIGTERM" in result.stderr
    # The run ends with the one command that serves the monitoring page on this data.
    assert out.strip().splitlines()[-1].strip() == _run.serve_command(f"chdb://{data_dir}")

    query = subprocess.run(
        [sys.executable, "-c", _QUERY, f"chdb://{data_dir}", trace_id.group(1)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    stored: dict[str, Any] = json.loads(query.stdout.strip().splitlines()[-1])
    assert sum(stored["groups"].values()) == REQUESTS  # one span per request, none lost at shutdown
    assert set(stored["groups"]) == {f"{team}/{project}" for team, project in expected}
    planned = [r.kind for r in _run.plan(REQUESTS, "0" * 32)]
    assert sum(stored["errors"].values()) == planned.count("ratelimit") + planned.count("unreachable")
    assert len(stored["trace"]) == 2  # the agent run: two calls under one caller traceparent


def test_plan_covers_every_key_kind_and_one_agent_run() -> None:
    requests = _run.plan(60, "ab" * 16)
    assert {r.key.key for r in requests[:4]} == {k.key for k in DEMO_KEYS}
    assert {r.kind for r in requests[:4]} == {"chat", "stream", "embed", "ratelimit"}
    for key in DEMO_KEYS:
        assert {r.kind for r in requests if r.key == key} == set(_run._MIX)
    traced = [r for r in requests if r.traceparent]
    assert len(traced) == 2 and {r.key.project for r in traced} == {"agent-portal"}
    assert all(r.traceparent and r.traceparent.split("-")[1] == "ab" * 16 for r in traced)


def test_data_dir_is_wiped_only_when_it_is_the_demos(tmp_path: Path) -> None:
    data_dir = _run.prepare_data_dir(tmp_path / "chdb", keep=False)
    (data_dir / "old-run").write_text("x")
    assert _run.prepare_data_dir(data_dir, keep=True) == data_dir
    assert (data_dir / "old-run").exists()  # --keep keeps
    _run.prepare_data_dir(data_dir, keep=False)
    assert not (data_dir / "old-run").exists() and (data_dir / _run.MARKER).exists()

    foreign = tmp_path / "important"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(_run.DemoError, match="refusing to wipe") as info:
        _run.prepare_data_dir(foreign, keep=False)
    assert info.value.code == 2 and (foreign / "notes.txt").read_text() == "keep me"


def test_config_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(_run.DemoError, match="no such file"):
        _run.find_config(tmp_path / "missing.yaml")
    assert _run.find_config(None, cwd=tmp_path) == REPO / "litellm" / "config.yaml"  # via the package
    bare = tmp_path / "litellm" / "config.yaml"
    bare.parent.mkdir()
    bare.write_text("model_list: []\n")
    assert _run.find_config(None, cwd=tmp_path) == bare  # the working directory's wins
    code = cli_main(["demo", "--config", str(bare), "--data-dir", str(tmp_path / "d")], environ={})
    assert code == 2 and "lacks the demo's mock models" in capsys.readouterr().err
    assert cli_main(["demo", "--requests", "0"], environ={}) == 2
