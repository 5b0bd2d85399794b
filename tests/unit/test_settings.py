"""Configuration: TOML plus environment; bad input fails at start-up naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.cli import main
from gateway.settings import ConfigError, load_settings

GOOD = """
max_page_size = 50

[[providers]]
name = "revyops-prod"
kind = "revyops"
base_url = "https://api.revyops.com"
credentials_env = { client_id = "TEST_REVYOPS_CLIENT_ID" }
"""


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_loads_providers_and_reads_credentials_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_REVYOPS_CLIENT_ID", "s3cret")
    settings = load_settings(write(tmp_path, GOOD))
    [provider] = settings.providers
    assert (provider.name, provider.kind, settings.max_page_size) == ("revyops-prod", "revyops", 50)
    assert provider.resolved_credentials() == {"client_id": "s3cret"}
    assert "s3cret" not in repr(settings)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_GATEWAY_MAX_PAGE_SIZE", "70")
    assert load_settings(write(tmp_path, GOOD)).max_page_size == 70


def test_server_limits_come_from_the_file_and_the_environment(tmp_path, monkeypatch):
    defaults = load_settings(write(tmp_path, GOOD)).server
    assert (defaults.header_timeout, defaults.body_timeout, defaults.max_connections) == (
        10,
        30,
        500,
    )
    monkeypatch.setenv("CRM_GATEWAY_SERVER__BODY_TIMEOUT", "5")
    server = load_settings(write(tmp_path, GOOD + "\n[server]\nmax_connections = 64\n")).server
    assert (server.header_timeout, server.body_timeout, server.max_connections) == (10, 5, 64)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD.replace('kind = "revyops"', 'kind = "salesforce"'), "providers[0].kind"),
        (GOOD.replace("base_url", "base_ulr"), "providers[0].base_ulr"),
        (
            GOOD.replace('base_url = "https://api.revyops.com"', 'base_url = "ftp://x"'),
            "providers[0].base_url",
        ),
        (GOOD + "\nmax_page_size_typo = 3\n", "max_page_size_typo"),
        (GOOD.replace("max_page_size = 50", "max_page_size = 0"), "max_page_size"),
        (GOOD + GOOD.split("\n", 2)[2], "unique"),
        ("providers = [", "gateway.toml"),
        (GOOD + "\n[server]\nheader_timeout = 0\n", "server.header_timeout"),
        (GOOD + "\n[server]\nbody_timeout = -1\n", "server.body_timeout"),
        (GOOD + "\n[server]\nmax_connections = 0\n", "server.max_connections"),
        (GOOD + "\n[server]\nread_timeout = 5\n", "server.read_timeout"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert named in str(caught.value)


def test_missing_credential_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_REVYOPS_CLIENT_ID", raising=False)
    with pytest.raises(ConfigError) as caught:
        create_app(load_settings(write(tmp_path, GOOD)))
    assert "providers.revyops-prod.credentials_env.client_id" in str(caught.value)
    assert "TEST_REVYOPS_CLIENT_ID" in str(caught.value)


def test_missing_credential_is_named(tmp_path):
    text = GOOD.replace('credentials_env = { client_id = "TEST_REVYOPS_CLIENT_ID" }', "")
    with pytest.raises(ConfigError) as caught:
        create_app(load_settings(write(tmp_path, text)))
    assert "providers.revyops-prod.credentials.client_id" in str(caught.value)


def test_cli_reports_config_errors_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace('kind = "revyops"', 'kind = "nope"'))
    assert main(["serve", "--config", str(path)]) == 2
    assert "providers[0].kind" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "absent.toml")]) == 2


@pytest.mark.parametrize("flag", [False, True])
def test_the_demo_limits_exactly_when_its_emulators_do(monkeypatch, flag):
    """`serve --demo`: the gateway's limiter is on exactly with `--emulator-rate-limits`."""
    import gateway.app
    import gateway.cli

    built: list[Any] = []
    options: list[Any] = []

    async def no_servers(servers: Any, quiet: Any = ()) -> None:
        return None

    monkeypatch.setattr(gateway.cli, "_serve_all", no_servers)

    def build(settings: Any, **_: Any) -> FastAPI:
        built.append(settings)
        return FastAPI()

    monkeypatch.setattr(gateway.app, "create_app", build)

    def emulator(kind: str, opts: Any) -> object:
        options.append(opts)
        return object()

    monkeypatch.setattr(gateway.cli, "create_emulator", emulator)
    monkeypatch.setattr(gateway.cli, "_server", lambda app, *where, **options: app)
    argv = ["serve", "--demo"] + (["--emulator-rate-limits"] if flag else [])
    assert main(argv) == 0
    (settings,) = built
    assert settings.providers
    assert all(p.rate_limit is flag for p in settings.providers)
    assert options
    assert all(o.rate_limits is flag for o in options)
    assert settings.blocks is True
    assert main([*argv, "--no-blocks"]) == 0
    assert built[1].blocks is False


def test_blocks_are_on_by_default_and_sized_per_provider():
    from gateway.settings import ProviderSettings, Settings

    assert Settings().blocks is True
    assert ProviderSettings(name="a", kind="attio", base_url="http://x").block_size is None
    with pytest.raises(ValueError, match="block_size"):
        ProviderSettings(name="a", kind="attio", base_url="http://x", block_size=0)
