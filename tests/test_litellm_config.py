"""litellm/config.yaml as LiteLLM itself reads it.

The proxy reads the file with ``ProxyConfig.get_config`` (``litellm/proxy/proxy_server.py``:
``_get_config_from_file`` -> ``_load_yaml_file`` -> ``os.environ/`` resolution) and turns each
``litellm_settings.callbacks`` entry into an object with
``litellm.proxy.types_utils.utils.get_instance_fn(value, config_file_path=...)``. Both run here,
in a child interpreter (``get_config`` changes LiteLLM's module state), against the committed
file: the callback must resolve to our installed handler, not to a file next to the config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "litellm" / "config.yaml"
CALLBACK = "agentportal_otel.proxy.handler"
MOCK_MODELS = {"mock-chat", "mock-embed", "mock-ratelimit", "mock-unreachable"}

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from litellm.integrations.custom_logger import CustomLogger
    from litellm.proxy._types import ConfigYAML
    from litellm.proxy.proxy_server import ProxyConfig
    from litellm.proxy.types_utils.utils import get_instance_fn

    path = sys.argv[1]
    proxy_config = ProxyConfig()
    raw = proxy_config._load_yaml_file(path)
    ConfigYAML.model_validate(raw)  # the documented schema of config.yaml (extra="forbid" parts)
    config = asyncio.run(proxy_config.get_config(config_file_path=path))
    callbacks = config["litellm_settings"]["callbacks"]
    resolved = [get_instance_fn(value=cb, config_file_path=path) for cb in callbacks]
    import agentportal_otel.proxy as proxy_module
    print(json.dumps({
        "models": [m["model_name"] for m in config["model_list"]],
        "callbacks": callbacks,
        "resolved_types": [type(r).__module__ + "." + type(r).__qualname__ for r in resolved],
        "is_custom_logger": [isinstance(r, CustomLogger) for r in resolved],
        "is_handler": [r is proxy_module.handler for r in resolved],
        "handler_file": proxy_module.__file__,
        "master_key_resolved": config["general_settings"]["master_key"] == "sk-config-test",
        "database_url_resolved": config["general_settings"].get("database_url"),
        "user_header_mappings": config["general_settings"].get("user_header_mappings"),
        "api_key_resolved": [
            m["litellm_params"].get("api_key") == "or-test" for m in config["model_list"]
            if m["model_name"] in ("qwen-235b", "gpt-4", "gpt-3.5-turbo")
        ],
    }))
    """
)


def _raw() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_config_keeps_mock_models_callback_and_env_secrets() -> None:
    raw = _raw()
    names = {m["model_name"] for m in raw["model_list"]}
    assert names >= MOCK_MODELS
    assert raw["litellm_settings"]["callbacks"] == [CALLBACK]
    gs = raw["general_settings"]
    assert gs["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert gs["database_url"] == "os.environ/DATABASE_URL"
    for model in raw["model_list"]:
        key = model["litellm_params"].get("api_key")
        assert key is None or key.startswith("os.environ/") or key == "mock-key-not-a-secret", model


def test_no_python_file_next_to_the_config_can_shadow_the_package() -> None:
    # get_instance_fn loads <config dir>/agentportal_otel/proxy.py by path if it exists.
    litellm_dir = CONFIG.parent
    assert not (litellm_dir / "agentportal_otel").exists()
    assert sorted(p.name for p in litellm_dir.iterdir() if p.suffix == ".py") == []


@pytest.mark.slow
def test_litellm_loads_the_config_and_resolves_our_handler(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MASTER_KEY": "sk-config-test",
        "DATABASE_URL": "postgresql://u:p@127.0.0.1:9/db",
        "OPENROUTER_API_KEY": "or-test",
        # Build the handler without exporting anything (no collector here).
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    env.pop("LITELLM_CONFIG_BUCKET_NAME", None)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(CONFIG)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert set(result["models"]) >= MOCK_MODELS
    assert result["callbacks"] == [CALLBACK]
    assert result["is_custom_logger"] == [True]
    assert result["is_handler"] == [True]
    assert result["resolved_types"] == ["agentportal_otel.logger.AgentPortalLogger"]
    assert Path(result["handler_file"]).resolve().parent != CONFIG.parent.resolve()
    assert result["master_key_resolved"] is True
    assert result["database_url_resolved"] == "postgresql://u:p@127.0.0.1:9/db"
    assert result["api_key_resolved"] == [True, True, True]
    assert result["user_header_mappings"] == [{"header_name": "X-OpenWebUI-User-Id", "litellm_user_role": "customer"}]
