# Developer shortcuts. The compose stack (docs/compose.md) runs from the repository root with
# the secrets in .env (copy .env.example first).

COMPOSE ?= docker compose -f docker/compose.yaml --env-file .env
PROXY_URL ?= http://127.0.0.1:4000
CLICKHOUSE_HTTP_URL ?= http://127.0.0.1:8124
COLLECTOR_OTLP_URL ?= http://127.0.0.1:4318

.PHONY: up down logs bootstrap smoke install test lint test-oldest test-newest

PYTHON ?= python3
VENV ?= .venv
OLDEST_VENV ?= .venv-oldest
# The oldest LiteLLM release we support, tested in CI next to the current one.
LITELLM_OLDEST ?= 1.77.7
NEWEST_VENV ?= .venv-newest
# The newest LiteLLM release we support (1.110.2) and its proxy dependencies, pinned in one
# place: litellm[proxy]==1.110.2 cannot resolve on our index (see the file's header).
NEWEST_REQUIREMENTS ?= tests/requirements-newest.txt
export LITELLM_LOCAL_MODEL_COST_MAP := True

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv with the package, LiteLLM's proxy extra, chDB and the dev tools

lint: install ## ruff and mypy --strict
	$(VENV)/bin/ruff check src tests bench docker
	$(VENV)/bin/ruff format --check src
	$(VENV)/bin/mypy

$(OLDEST_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/pip install -q -e . 'litellm[proxy]==$(LITELLM_OLDEST)' pytest pytest-timeout hypothesis pyyaml httpx opentelemetry-proto
	touch $@

test-oldest: $(OLDEST_VENV)/.installed ## SDK tests, drift tests and a real proxy (via shims) on the oldest supported LiteLLM
	$(OLDEST_VENV)/bin/pytest -q tests/test_sdk_spans.py tests/test_mapping.py tests/test_settings.py tests/test_payload_drift.py \
		tests/test_conformance.py tests/test_proxy_shim.py

$(NEWEST_VENV)/.installed: pyproject.toml $(NEWEST_REQUIREMENTS)
	$(PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/pip install -q --upgrade pip
	$(NEWEST_VENV)/bin/pip install -q -e . -r $(NEWEST_REQUIREMENTS)
	$(NEWEST_VENV)/bin/pip check
	touch $@

test-newest: $(NEWEST_VENV)/.installed ## SDK, mapping, drift and real-proxy tests (e2e, attribution, shutdown, built-in otel beside ours) on the newest supported LiteLLM
	$(NEWEST_VENV)/bin/pytest -q tests/test_sdk_spans.py tests/test_mapping.py tests/test_settings.py tests/test_payload_drift.py tests/test_conformance.py \
		tests/test_proxy_e2e.py tests/test_attribution_e2e.py tests/test_shutdown.py tests/test_builtin_otel_comparison.py

test: lint ## everything CI runs: lint, types, the whole suite (slow tests included), oldest and newest LiteLLM
	$(VENV)/bin/pytest
	$(MAKE) test-oldest
	$(MAKE) test-newest

.env:
	@echo "No .env: run 'cp .env.example .env' and fill in the secrets (see its comments)." >&2
	@exit 1

up: .env ## build and start the stack; waits for the proxy and runs bootstrap (PROFILES="--profile webui" adds Open-WebUI)
	$(COMPOSE) $(PROFILES) up -d --build

down: ## stop the stack; data volumes are kept (docker compose ... down -v drops them)
	$(COMPOSE) --profile webui down

logs: ## follow the logs of every service
	$(COMPOSE) --profile webui logs -f --tail=100

bootstrap: .env ## (re)create the demo teams and project keys; prints keys created now
	$(COMPOSE) run --rm bootstrap

# One mock-chat call with the bootstrap key OPEN_WEBUI_API_KEY, then `agentportal-otel doctor`:
# it sends a probe span to the stack's collector and waits for it in ClickHouse (user and
# password from .env), and `calls` lists the latest LLM calls, the mock-chat one included.
smoke: .env
	@set -a; . ./.env; set +a; \
	export OTEL_EXPORTER_OTLP_ENDPOINT=$(COLLECTOR_OTLP_URL); \
	curl -fsS $(PROXY_URL)/v1/chat/completions \
	  -H "Authorization: Bearer $$OPEN_WEBUI_API_KEY" -H "Content-Type: application/json" \
	  -d '{"model": "mock-chat", "messages": [{"role": "user", "content": "make smoke"}]}' \
	  && echo \
	  && agentportal-otel doctor --url $(CLICKHOUSE_HTTP_URL) --database "$$CLICKHOUSE_DB" --timeout 30 \
	  && agentportal-otel calls --url $(CLICKHOUSE_HTTP_URL) --database "$$CLICKHOUSE_DB" --since 15m --limit 5

# No Docker: a real LiteLLM proxy with the demo keys writes spans into embedded ClickHouse
# (chDB, ./.agentportal-demo/chdb, wiped each run), then the usage tables are printed.
# DEMO_ARGS="--requests 200 --keep" passes options through.
.PHONY: demo
demo: install ## local proxy + sample traffic into chDB, then usage by team/project/model, errors, calls
	$(VENV)/bin/agentportal-otel demo $(DEMO_ARGS)
