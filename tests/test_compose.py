"""Static checks of the compose stack: docker/compose.yaml, litellm/Dockerfile, .env.example,
.dockerignore and the Makefile targets.

There is no Docker engine here (nor in CI), so the stack itself is never started by the tests;
``make up && make smoke`` is the end-to-end check. What can be proven without it is proven
here: pinned images, healthchecks, start order, that every variable the stack reads is
documented in .env.example, that no secret is written in a committed file, and the ports the
docs promise. ``tests/test_dockerfile_install.py`` reproduces the image's install step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
COLLECTOR_FILE = ROOT / "docker" / "otel-collector" / "config.yaml"
DOCKERFILE = ROOT / "litellm" / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCS = ROOT / "docs" / "compose.md"

SERVICES = {
    "litellm-postgres",
    "litellm",
    "otel-collector-queue-init",
    "otel-collector",
    "clickhouse",
    "bootstrap",
    "open-webui",
    "monitor",
}
# Services that cannot or need not have a healthcheck, and why.
NO_HEALTHCHECK = {
    "otel-collector": "image built FROM scratch: no shell, curl or wget to run a probe",
    "bootstrap": "one-shot job: it exits when done (restart: no)",
    "otel-collector-queue-init": "one-shot job: chowns the queue volume and exits (restart: no)",
}
# Published ports, as docs/compose.md lists them: service -> {host port: container port}.
PORTS = {
    "litellm-postgres": {5433: 5432},
    "litellm": {4000: 4000},
    "otel-collector": {4317: 4317, 4318: 4318, 13133: 13133},
    "clickhouse": {8124: 8123, 9002: 9000},
    "open-webui": {3001: 8080},
    "monitor": {8000: 8000},
    "bootstrap": {},
    "otel-collector-queue-init": {},
}
DEPENDS_ON = {
    "litellm": {"litellm-postgres": "service_healthy", "otel-collector": "service_started"},
    "otel-collector": {"clickhouse": "service_healthy", "otel-collector-queue-init": "service_completed_successfully"},
    "bootstrap": {"litellm": "service_healthy"},
    "open-webui": {"litellm": "service_healthy", "bootstrap": "service_completed_successfully"},
    "monitor": {"clickhouse": "service_healthy"},
}
SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.IGNORECASE)
# ${VAR}, ${VAR:-default}, ${VAR:?message}; "$${VAR}" is an escape for the container's shell.
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+])[^}]*)?\}")
PURE_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}$")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _image_is_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all ("host:port/name" has its ':' before a '/')
        return False
    return (
        bool(re.search(r"\d+\.\d+", tag))
        and "latest" not in tag
        and not tag.startswith(("main-", "main", "nightly", "stable"))
    )


def _dockerfile_base_image() -> str:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", text, re.M))
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.M)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args[m.group(1)], base)


# -- services, images ---------------------------------------------------------------------------


def test_services() -> None:
    assert set(_services()) == SERVICES


@pytest.mark.parametrize("image", ["postgres:16", "x/y:latest", "x/y", "ghcr.io/a/b:main-stable", "a:main-v1.2.3"])
def test_unpinned_images_are_recognised(image: str) -> None:
    assert not _image_is_pinned(image)


def test_every_image_is_pinned_to_a_release() -> None:
    for name, service in _services().items():
        if "build" in service:
            assert "image" not in service, name  # built locally, never pulled under that name
            continue
        assert _image_is_pinned(service["image"]), (name, service["image"])
    assert _services()["litellm-postgres"]["image"].startswith("postgres:16.")


def test_dockerfile_base_is_a_pinned_litellm_database_release() -> None:
    base = _dockerfile_base_image()
    assert re.fullmatch(r"ghcr\.io/berriai/litellm-database:v1\.\d+\.\d+", base), base
    assert _image_is_pinned(base)


def test_litellm_base_matches_the_tested_litellm_minor() -> None:
    from importlib.metadata import version

    major, minor = version("litellm").split(".")[:2]
    assert f":v{major}.{minor}." in _dockerfile_base_image(), (version("litellm"), _dockerfile_base_image())


# -- healthchecks and start order ----------------------------------------------------------------


def test_every_service_that_can_have_a_healthcheck_has_one() -> None:
    for name, service in _services().items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service, name
            continue
        test = service["healthcheck"]["test"]
        assert test and test[0] in ("CMD", "CMD-SHELL"), (name, test)


def test_healthcheck_commands() -> None:
    services = _services()
    assert "pg_isready" in " ".join(services["litellm-postgres"]["healthcheck"]["test"])
    litellm_probe = " ".join(services["litellm"]["healthcheck"]["test"])
    assert "python3" in litellm_probe and "http://127.0.0.1:4000/health/liveliness" in litellm_probe
    assert services["clickhouse"]["healthcheck"]["test"] == [
        "CMD-SHELL",
        "wget --spider -q http://127.0.0.1:8123/ping",
    ]


def test_depends_on_conditions() -> None:
    for name, service in _services().items():
        deps = service.get("depends_on") or {}
        assert {dep: spec["condition"] for dep, spec in deps.items()} == DEPENDS_ON.get(name, {}), name


def test_bootstrap_is_one_shot_and_webui_is_optional() -> None:
    services = _services()
    assert services["bootstrap"]["restart"] == "no"
    assert services["bootstrap"]["command"] == ["python", "/bootstrap/bootstrap.py"]
    assert "./bootstrap:/bootstrap:ro" in services["bootstrap"]["volumes"]
    assert services["open-webui"]["profiles"] == ["webui"]
    assert not any("profiles" in s for n, s in services.items() if n != "open-webui")


# -- environment and secrets ---------------------------------------------------------------------


def test_every_variable_the_stack_reads_is_in_env_example() -> None:
    used = set(COMPOSE_VAR.findall(COMPOSE_FILE.read_text()))
    documented = set(_env_example())
    assert used, "no ${VAR} found: the pattern is broken"
    assert used <= documented, sorted(used - documented)
    # And nothing in .env.example is dead.
    assert documented <= used, sorted(documented - used)


def test_env_example_values_and_guidance() -> None:
    env = _env_example()
    text = ENV_EXAMPLE.read_text()
    assert env["LITELLM_MASTER_KEY"].startswith("sk-")
    assert env["OPEN_WEBUI_API_KEY"].startswith("sk-")
    assert "openssl rand -hex 32" in text
    assert "NEVER change" in text and "LITELLM_SALT_KEY" in text
    assert env["CLICKHOUSE_DB"] == "otel"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    # Placeholders only: nothing that looks like a real credential.
    for name, value in env.items():
        if SECRET_NAME.search(name) and value:
            assert "change-me" in value, name


def test_no_secret_literal_in_compose() -> None:
    for name, service in _services().items():
        for var, value in _environment(service).items():
            if SECRET_NAME.search(var):
                assert PURE_REF.match(value), (name, var, value)
            if "://" in value and "@" in value:  # credentials inside a URL
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                assert all(PURE_REF.match(part) for part in userinfo.split(":")), (name, var)


def test_no_secret_literal_in_collector_config() -> None:
    exporters = yaml.safe_load(COLLECTOR_FILE.read_text())["exporters"]
    for name, cfg in exporters.items():
        for key in ("username", "password"):
            if key in (cfg or {}):
                assert re.fullmatch(r"\$\{env:[A-Z_]+\}", cfg[key]), (name, key)
        assert "@" not in str((cfg or {}).get("endpoint", "")), name


def test_collector_env_references_are_passed_to_its_container() -> None:
    used = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", COLLECTOR_FILE.read_text()))
    assert used == {"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DB"}
    assert used <= set(_environment(_services()["otel-collector"]))


def test_litellm_service_environment() -> None:
    env = _environment(_services()["litellm"])
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://otel-collector:4318}"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert {"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "LITELLM_SALT_KEY", "OPENROUTER_API_KEY"} <= set(env)
    assert env["DATABASE_URL"].startswith("postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@litellm-postgres:5432/")


def test_open_webui_points_at_the_proxy_with_a_virtual_key() -> None:
    env = _environment(_services()["open-webui"])
    assert env["OPENAI_API_BASE_URL"] == "http://litellm:4000/v1"
    assert env["OPENAI_API_KEY"].startswith("${OPEN_WEBUI_API_KEY")
    assert env["ENABLE_FORWARD_USER_INFO_HEADERS"] == "true"
    bootstrap_env = _environment(_services()["bootstrap"])
    assert bootstrap_env["OPEN_WEBUI_API_KEY"] == env["OPENAI_API_KEY"]  # the key bootstrap registers


# -- ports, volumes, build -----------------------------------------------------------------------


def _published(service: dict[str, Any]) -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in service.get("ports") or []:
        parts = str(entry).split(":")
        assert len(parts) == 3 and parts[0] == "127.0.0.1", entry  # loopback only by default
        out[int(parts[1])] = int(parts[2])
    return out


def test_ports_as_documented() -> None:
    services = _services()
    assert {name: _published(s) for name, s in services.items()} == PORTS
    host_ports = [p for ports in PORTS.values() for p in ports]
    assert len(host_ports) == len(set(host_ports))


def test_docs_list_every_host_port() -> None:
    if not DOCS.exists():
        pytest.fail("docs/compose.md is missing")
    text = DOCS.read_text()
    for ports in PORTS.values():
        for host, container in ports.items():
            assert re.search(rf"\|\s*{host}\s*\|\s*{container}\s*\|", text), (host, container)


def test_clickhouse_service() -> None:
    ch = _services()["clickhouse"]
    assert ch["ulimits"]["nofile"] == {"soft": 262144, "hard": 262144}
    assert "./clickhouse/init:/docker-entrypoint-initdb.d:ro" in ch["volumes"]
    assert {"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DB"} <= set(_environment(ch))


def test_named_volumes_and_bind_mounts_exist() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    assert {"litellm-postgres-data", "clickhouse-data"} <= declared


def test_collector_queue_volume_is_owned_by_the_collector_user() -> None:
    # The image runs as UID 10001 and a fresh named volume is root's: the init job hands it over
    # before the collector starts, on the same volume and path the file_storage extension uses.
    services = _services()
    init, collector = services["otel-collector-queue-init"], services["otel-collector"]
    mount = "otel-collector-queue:/var/lib/otelcol/file_storage"
    assert mount in init["volumes"] and mount in collector["volumes"]
    assert init["restart"] == "no"
    assert init["command"] == ["chown", "-R", "10001:10001", "/var/lib/otelcol/file_storage"]
    assert "otel-collector-queue" in _compose()["volumes"]


def test_litellm_is_built_from_the_repository_root() -> None:
    build = _services()["litellm"]["build"]
    assert build == {"context": "..", "dockerfile": "litellm/Dockerfile"}
    context = (COMPOSE_FILE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()


# -- Dockerfile and .dockerignore ----------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_respects_the_upstream_entrypoint() -> None:
    instructions = _instructions()
    keywords = [k for k, _ in instructions]
    assert "ENTRYPOINT" not in keywords  # upstream docker/prod_entrypoint.sh runs `litellm "$@"`
    assert ("CMD", '["--config", "/app/config.yaml", "--port", "4000"]') in instructions
    workdirs = [v for k, v in instructions if k == "WORKDIR"]
    assert workdirs[-1] == "/app"  # the upstream ENTRYPOINT path is relative to /app


def test_dockerfile_installs_the_package_from_source_and_ships_only_the_config() -> None:
    instructions = _instructions()
    copies = [v for k, v in instructions if k == "COPY"]
    assert "pyproject.toml README.md /tmp/agentportal-otel/" in copies
    assert "src/ /tmp/agentportal-otel/src/" in copies
    assert "litellm/config.yaml /app/config.yaml" in copies
    run = " ".join(v for k, v in instructions if k == "RUN")
    assert "pip install" in run and "/tmp/agentportal-otel" in run
    assert "[proxy]" not in run  # litellm comes from the base image


def test_dockerignore_sends_what_the_dockerfile_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    for _, value in (i for i in _instructions() if i[0] == "COPY"):
        for source in value.split()[:-1]:
            assert source.rstrip("/") in allowed, source


# -- Makefile ------------------------------------------------------------------------------------


def test_makefile_targets() -> None:
    text = (ROOT / "Makefile").read_text()
    for target in ("up", "down", "smoke", "logs", "bootstrap"):
        assert re.search(rf"^{target}:", text, re.M), target
    assert "docker compose -f docker/compose.yaml --env-file .env" in text
    smoke = text.split("\nsmoke:", 1)[1]
    assert '"model": "mock-chat"' in smoke
    assert "agentportal-otel doctor --url $(CLICKHOUSE_HTTP_URL)" in smoke
    assert "export OTEL_EXPORTER_OTLP_ENDPOINT=$(COLLECTOR_OTLP_URL)" in smoke  # the host's view
    assert "CLICKHOUSE_HTTP_URL ?= http://127.0.0.1:8124" in text
    assert "COLLECTOR_OTLP_URL ?= http://127.0.0.1:4318" in text


def test_makefile_smoke_uses_cli_flags_that_exist() -> None:
    from agentportal_otel import cli

    # The recipe runs up to the first blank line after the target.
    smoke = (ROOT / "Makefile").read_text().split("\nsmoke:", 1)[1].split("\n\n", 1)[0]
    commands = [line.split("agentportal-otel ", 1)[1] for line in smoke.splitlines() if "agentportal-otel " in line]
    assert [c.split()[0] for c in commands] == ["doctor", "calls"]
    for command in commands:
        argv = command.replace("\\", "").replace("$(CLICKHOUSE_HTTP_URL)", "http://127.0.0.1:8124")
        args = cli._parser().parse_args(argv.replace('"$$CLICKHOUSE_DB"', "otel").split())  # exit 2 if unknown
        assert args.url == "http://127.0.0.1:8124" and args.database == "otel"


# -- monitor -------------------------------------------------------------------------------------

MONITOR_DOCKERFILE = ROOT / "docker" / "monitor" / "Dockerfile"


def test_monitor_service() -> None:
    monitor = _services()["monitor"]
    assert monitor["build"] == {"context": "..", "dockerfile": "docker/monitor/Dockerfile"}
    probe = " ".join(monitor["healthcheck"]["test"])
    assert "python3" in probe and "http://127.0.0.1:8000/api/v1/health" in probe
    env = _environment(monitor)
    assert env["CLICKHOUSE_URL"] == "http://clickhouse:8123"
    # It reads as the read-only user, never as the collector's account.
    assert env["CLICKHOUSE_USER"].startswith("${CLICKHOUSE_MONITOR_USER:?")
    assert env["CLICKHOUSE_PASSWORD"].startswith("${CLICKHOUSE_MONITOR_PASSWORD:?")
    assert env["AGENTPORTAL_MONITOR_ADMIN_TOKEN"].startswith("${AGENTPORTAL_MONITOR_ADMIN_TOKEN:?")
    assert "http://127.0.0.1:3001" in env["AGENTPORTAL_MONITOR_FRAME_ANCESTORS"]  # Open-WebUI may frame it
    clickhouse = _environment(_services()["clickhouse"])
    assert clickhouse["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] == "1"
    assert {"CLICKHOUSE_MONITOR_USER", "CLICKHOUSE_MONITOR_PASSWORD"} <= set(clickhouse)


def test_monitor_image_is_pinned_and_installs_no_litellm() -> None:
    text = MONITOR_DOCKERFILE.read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert _image_is_pinned(base), base
    assert "[monitor]" in text and "litellm" not in text.split("FROM", 1)[1].lower().replace("no litellm", "")
    assert re.search(r"^USER\s+monitor$", text, re.M)  # not root
    assert 'ENTRYPOINT ["agentportal-otel", "serve"]' in text


def test_monitor_command_parses() -> None:
    from agentportal_otel import cli

    cmd = re.search(r"^CMD\s+(\[.*\])$", MONITOR_DOCKERFILE.read_text(), re.M)
    assert cmd is not None
    import json

    args = cli._parser().parse_args(["serve", *json.loads(cmd.group(1))])
    assert args.host == "0.0.0.0" and args.port == 8000 and not args.no_auth
