"""docker-compose cannot run here (no Docker engine), so check what it would run."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.cli import _parser
from gateway.demo import DEMO_PORTS
from gateway.providers import KINDS
from gateway.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
# ${NAME:?message}: compose refuses to start unless NAME is set in the environment.
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z_]+):\?[^}]+\}$")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


GATEWAYS = ("gateway", "gateway2")


def ours(compose):
    """The services running this project's image (all but Redis)."""
    return {n: s for n, s in compose["services"].items() if s["image"] == "crm-gateway:local"}


def test_every_service_command_is_a_real_cli_command(compose):
    for name, service in ours(compose).items():
        command = service["command"]
        assert command[0] == "crm-gateway", name
        _parser().parse_args(command[1:])  # exits (SystemExit) on an unknown command or flag


def test_gateway_config_names_every_emulator_service(compose):
    services = compose["services"]
    emulators = {name: s for name, s in ours(compose).items() if s["command"][1] == "emulate"}
    assert set(emulators) <= set(KINDS)
    gateway = services["gateway"]
    config = gateway["command"][gateway["command"].index("--config") + 1]
    local_config = ROOT / config.removeprefix("/app/")
    environment = {k: str(v) for k, v in gateway["environment"].items()}
    # What the operator exports for the values compose requires.
    environment |= {
        k: secrets.token_urlsafe(32) for k, v in environment.items() if REQUIRED.match(v)
    }
    with mock.patch.dict(os.environ, environment):
        settings = load_settings(local_config)
        for provider in settings.providers:
            provider.resolved_credentials()  # every credential is set in the environment
    targets = {urlsplit(p.base_url).hostname: p for p in settings.providers}
    assert set(targets) == set(emulators)
    for name, service in emulators.items():
        provider = targets[name]
        command = service["command"]
        assert command[2] == provider.kind
        port = int(command[command.index("--port") + 1])
        assert urlsplit(provider.base_url).port == port == DEMO_PORTS[name]
    assert set(gateway["depends_on"]) == set(emulators) | {"redis"}
    assert settings.redis_url is not None
    assert urlsplit(settings.redis_url.get_secret_value()).hostname == "redis"
    assert compose["services"]["redis"]["image"] == "redis:7"


def test_only_the_gateways_are_published(compose):
    # The emulators' /_emulator/* endpoints take no credentials, and Redis holds the
    # shared caches: compose network only.
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == set(GATEWAYS)
    assert compose["services"]["gateway"]["ports"] == ["8000:8000"]
    assert compose["services"]["gateway2"]["ports"] == ["8001:8000"]


def test_two_replicas_run_the_same_gateway(compose):
    one, two = (compose["services"][name] for name in GATEWAYS)
    for key in ("command", "environment", "healthcheck", "depends_on", "image"):
        assert one[key] == two[key], key
    assert one["command"][1] == "serve"


def test_the_image_is_built_once(compose):
    # Several services building one tag race on a first `docker compose up`.
    building = [name for name, s in compose["services"].items() if "build" in s]
    assert building == ["gateway"]
    for name, service in ours(compose).items():
        if name != "gateway":
            assert service["pull_policy"] == "never", name  # the tag exists only locally


def _checked_url(service: dict[str, Any]) -> str:
    """The URL a service's healthcheck fetches, with Python: the image has no curl."""
    check = service["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    code = check[3]
    compile(code, "healthcheck", "exec")
    [url] = re.findall(r"urlopen\('([^']+)'", code)
    return str(url)


def _port(service: dict[str, Any]) -> int:
    command = service["command"]
    return int(command[command.index("--port") + 1])


def test_the_gateway_healthchecks_ask_for_readiness(compose):
    for name in GATEWAYS:
        service = compose["services"][name]
        # /healthz answers while the process lives, even when no provider can be reached.
        assert _checked_url(service) == f"http://127.0.0.1:{_port(service)}/readyz", name
    assert "redis-cli" in compose["services"]["redis"]["healthcheck"]["test"]


def test_every_emulator_has_a_healthcheck(compose):
    emulators = {n: s for n, s in ours(compose).items() if s["command"][1] == "emulate"}
    assert set(emulators) == set(KINDS)
    for name, service in emulators.items():
        # Control endpoints are neither counted nor faulted: the checks change no statistics.
        assert _checked_url(service) == f"http://127.0.0.1:{_port(service)}/_emulator/stats"
        assert service["healthcheck"]["interval"], name


def test_the_gateways_wait_for_healthy_dependencies(compose):
    for name in GATEWAYS:
        depends = compose["services"][name]["depends_on"]
        assert depends == {
            dependency: {"condition": "service_healthy"} for dependency in ("redis", *KINDS)
        }


def test_the_build_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv/", ".git/", "bench/results/", ".mypy_cache/", "**/__pycache__/"):
        assert entry in ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert copied.rstrip("/") + "/" not in ignored, copied


def test_the_cursor_secret_is_required_from_the_environment(compose):
    value = str(compose["services"]["gateway"]["environment"]["CRM_GATEWAY_CURSOR_SECRET"])
    match = REQUIRED.match(value)
    assert match, value
    assert match["name"] == "CRM_GATEWAY_CURSOR_SECRET"


def test_the_old_compose_secret_is_refused(compose):
    config = ROOT / "deploy" / "compose.toml"
    gateway = compose["services"]["gateway"]
    environment = {k: str(v) for k, v in gateway["environment"].items()}
    environment["CRM_GATEWAY_CURSOR_SECRET"] = "change-me-in-production"
    with mock.patch.dict(os.environ, environment), pytest.raises(ConfigError) as error:
        load_settings(config)
    assert "cursor_secret" in str(error.value)
    assert "change-me-in-production" not in str(error.value)


def test_the_compose_deployment_hides_what_the_demo_shows(compose):
    gateway = compose["services"]["gateway"]
    environment = {k: str(v) for k, v in gateway["environment"].items()}
    environment["CRM_GATEWAY_CURSOR_SECRET"] = secrets.token_urlsafe(32)
    with mock.patch.dict(os.environ, environment):
        settings = load_settings(ROOT / "deploy" / "compose.toml")
    assert not settings.graphiql
    assert not settings.introspection
    assert not settings.field_suggestions
    assert not settings.openapi
    assert not any(p.remote_data for p in settings.providers)


def test_dockerfile_installs_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements/runtime.txt" in dockerfile
    assert "--no-deps --no-build-isolation ." in dockerfile  # nothing resolved past the lock
    for folder in ("gateway", "schema", "resolvers", "emulators", "deploy"):
        assert f"COPY {folder}" in dockerfile


def test_redis_memory_is_bounded_and_keeps_what_has_no_expiry(compose):
    # Cache entries expire and may be evicted; the generation counters (no TTL) must stay.
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert re.fullmatch(r"\d+(mb|gb)", flags["--maxmemory"])
    assert flags["--maxmemory-policy"] == "volatile-lru"
