# Developer shortcuts. The compose stack (docs/compose.md) runs from the repository root with
# the secrets in .env (copy .env.example first).

COMPOSE ?= docker compose -f docker/compose.yaml --env-file .env
PROXY_URL ?= http://127.0.0.1:4000
CLICKHOUSE_HTTP_URL ?= http://127.0.0.1:8124

.PHONY: up down logs bootstrap smoke

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

# One mock-chat call with the bootstrap key OPEN_WEBUI_API_KEY, then agentportal-otel doctor on
# the stack's ClickHouse (it reads CLICKHOUSE_USER/CLICKHOUSE_PASSWORD from .env); doctor is
# retried while the span travels proxy -> collector -> ClickHouse (batched, a few seconds).
smoke: .env
	@set -a; . ./.env; set +a; \
	curl -fsS $(PROXY_URL)/v1/chat/completions \
	  -H "Authorization: Bearer $$OPEN_WEBUI_API_KEY" -H "Content-Type: application/json" \
	  -d '{"model": "mock-chat", "messages": [{"role": "user", "content": "make smoke"}]}' \
	  && echo && \
	for i in 1 2 3 4 5 6; do \
	  agentportal-otel doctor --clickhouse-url $(CLICKHOUSE_HTTP_URL) && exit 0; \
	  echo "doctor: not yet, retrying in 5 s ($$i/6)"; sleep 5; \
	done; exit 1
