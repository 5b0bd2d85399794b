"""docker-compose cannot run here (no Docker engine), so check what it would run."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.cli import _parser
from gateway.emulators import DEMO_PORTS, KINDS
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_command_is_a_real_cli_command(compose):
    for name, service in compose["services"].items():
        command = service["command"]
        assert command[0] == "crm-gateway", name
        _parser().parse_args(command[1:])  # exits (SystemExit) on an unknown command or flag


def test_gateway_config_names_every_emulator_service(compose):
    services = compose["services"]
    emulators = {name: s for name, s in services.items() if s["command"][1] == "emulate"}
    assert set(emulators) <= set(KINDS)
    gateway = services["gateway"]
    config = gateway["command"][gateway["command"].index("--config") + 1]
    local_config = ROOT / config.removeprefix("/app/")
    environment = {k: str(v) for k, v in gateway["environment"].items()}
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
        assert f"{port}:{port}" in service["ports"]
    assert set(gateway["depends_on"]) == set(emulators)


def test_dockerfile_installs_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile
    for folder in ("gateway", "schema", "resolvers", "deploy"):
        assert f"COPY {folder}" in dockerfile
