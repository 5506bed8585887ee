"""The image's install step, reproduced without Docker (slow; needs PyPI).

``litellm/Dockerfile`` copies ``pyproject.toml README.md src/`` into an empty directory, runs
``pip install`` on it in an environment that already has LiteLLM, and starts
``litellm --config /app/config.yaml``. Here: the same three paths are copied to a temporary
directory, a wheel is built from that copy (so a file missing from the COPY list fails the
build here as it would in the image), installed into a fresh venv together with
``litellm[proxy]`` at the version of the dev environment (the image's tag), and
``litellm --config litellm/config.yaml`` is started from that venv through
``agentportal_otel.demo.ProxyProcess`` (overlay: no database, the demo ``custom_auth``), with an
empty environment and no ``PYTHONPATH``, so the checkout cannot leak in. A mock-chat call must
reach a local OTLP receiver as a span.

The venv is built once per test session (about a minute with a warm pip cache).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import venv
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "litellm" / "config.yaml"
DOCKERFILE_COPIES = ("pyproject.toml", "README.md", "src")

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding what the image holds: litellm[proxy] and our wheel, nothing else."""
    base = tmp_path_factory.mktemp("image-install")
    context = base / "context"
    context.mkdir()
    for name in DOCKERFILE_COPIES:
        source = ROOT / name
        assert source.exists(), f"{name} is COPYed by litellm/Dockerfile but missing from the checkout"
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, context / name)

    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(context)], timeout=600)
    (wheel,) = wheels.glob("agentportal_otel-*.whl")

    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    litellm_version = version("litellm")  # the dev environment's, which the image tag follows
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
            f"litellm[proxy]=={litellm_version}",
        ],
        timeout=1200,
    )
    return env_dir


def test_wheel_installs_next_to_litellm_and_is_the_one_imported(image_venv: Path, tmp_path: Path) -> None:
    python = image_venv / "bin" / "python"
    code = (
        "import json, importlib.util, agentportal_otel, litellm;"
        "print(json.dumps({'pkg': agentportal_otel.__file__,"
        " 'proxy': importlib.util.find_spec('agentportal_otel.proxy') is not None}))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    info = json.loads(
        _run([str(python), "-c", code], cwd=tmp_path, env=env, timeout=300).stdout.strip().splitlines()[-1]
    )
    assert Path(info["pkg"]).is_relative_to(image_venv), info  # the wheel, not the checkout
    assert info["proxy"] is True
    assert (image_venv / "bin" / "litellm").is_file()


def test_proxy_from_the_image_venv_exports_a_span(image_venv: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from agentportal_otel.demo._proxy import ProxyProcess
    from otlp_receiver import OTLPReceiver

    with OTLPReceiver() as rx:
        env = {
            "HOME": str(tmp_path),
            "PYTHONPATH": None,  # ProxyProcess adds the checkout's src/ by default: not here
            "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
            "OTEL_SERVICE_NAME": "image-install-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }
        proxy = ProxyProcess(
            CONFIG, python=str(image_venv / "bin" / "python"), env=env, inherit_env=False, startup_timeout=180
        )
        assert "PYTHONPATH" not in proxy.environment()
        with proxy:
            request = urllib.request.Request(
                f"{proxy.url}/v1/chat/completions",
                data=json.dumps({"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                headers={"Authorization": "Bearer sk-demo-alpha-search", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as resp:
                body = json.loads(resp.read())
            assert body["choices"][0]["message"]["content"] == "Hello from the mock model."

            spans = rx.wait_for_spans(
                1, timeout=30, predicate=lambda s: "mock-chat" in {str(v) for v in s.attributes.values()}
            )
        span = spans[0]
        assert span.resource["service.name"] == "image-install-test"
        assert span.resource["deployment.environment.name"] == "test"
        assert span.scope_name.startswith("agentportal_otel") or span.scope_name.startswith("agentportal-otel")
        assert "agentportal.project" in span.attributes
        assert span.attributes["agentportal.project"] == "search-portal"
