"""What a deployment shows a stranger: off by default, on when configured or in the demo.

GraphiQL, introspection, field suggestions, the OpenAPI pages and `remoteData`; and no
credential in the logs, even at DEBUG.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.demo import demo_provider, demo_settings
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.servers import serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET = "exposure-test-cursor-secret-kQ3vX8wZ"
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_QUERY = '{ __type(name: "Contact") { fields { name } } }'
MISSPELT_FIELD = '{ contacts(provider: "revyops", first: 1) { edges { node { nme } } } }'
MISSPELT_ARGUMENT = '{ contacts(provider: "revyops", frist: 1) { edges { node { name } } } }'
MISSPELT_TYPE = (
    'query ($f: ContactFiltr) { contacts(provider: "revyops", filter: $f) { totalCount } }'
)
REMOTE_DATA = '{ contacts(provider: "revyops", first: 1) { edges { node { remoteData } } } }'


def _settings(emulators: dict[str, str], **overrides: Any) -> Settings:
    """Settings as a deployment writes them: providers, a secret, nothing else switched on."""
    providers = [
        demo_provider(kind, url).model_copy(update={"rate_limit": False, "remote_data": False})
        for kind, url in emulators.items()
    ]
    return Settings(providers=providers, cursor_secret=SECRET, cache=False, **overrides)


@pytest.fixture(scope="module")
def hardened(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    with serving(_settings(emulators)) as client:
        yield client


@pytest.fixture(scope="module")
def exploring(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    settings = _settings(
        emulators, graphiql=True, introspection=True, field_suggestions=True, openapi=True
    )
    revyops = settings.providers[0].model_copy(update={"remote_data": True})
    settings = settings.model_copy(update={"providers": [revyops, *settings.providers[1:]]})
    assert revyops.name == "revyops"
    with serving(settings) as client:
        yield client


def _messages(body: dict[str, Any]) -> list[str]:
    return [e["message"] for e in body["errors"]]


def test_graphiql_is_off_by_default(hardened: GraphQLClient) -> None:
    page = hardened.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()
    assert page.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_QUERY])
def test_introspection_is_off_by_default(hardened: GraphQLClient, query: str) -> None:
    body = hardened.post(query)
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in body["errors"][0]["message"]


def test_typename_still_answers_without_introspection(hardened: GraphQLClient) -> None:
    assert hardened.data("{ __typename }") == {"__typename": "Query"}


@pytest.mark.parametrize("query", [MISSPELT_FIELD, MISSPELT_ARGUMENT, MISSPELT_TYPE])
def test_validation_errors_make_no_suggestions_by_default(
    hardened: GraphQLClient, query: str
) -> None:
    body = hardened.post(query)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    for message in _messages(body):
        assert "Did you mean" not in message
        assert "'name'" not in message
        assert "'first'" not in message
        assert "'ContactFilter'" not in message


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_openapi_pages_are_off_by_default(hardened: GraphQLClient, path: str) -> None:
    assert hardened.http.get(path).status_code == 404


def test_remote_data_is_null_unless_the_provider_opts_in(hardened: GraphQLClient) -> None:
    edges = hardened.data(REMOTE_DATA)["contacts"]["edges"]
    assert edges
    assert all(e["node"]["remoteData"] is None for e in edges)


def test_settings_turn_each_one_on(exploring: GraphQLClient) -> None:
    page = exploring.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert exploring.data(INTROSPECTION) == {"__schema": {"queryType": {"name": "Query"}}}
    assert any("Did you mean 'name'" in m for m in _messages(exploring.post(MISSPELT_FIELD)))
    assert any("Did you mean 'first'" in m for m in _messages(exploring.post(MISSPELT_ARGUMENT)))
    assert any("'ContactFilter'" in m for m in _messages(exploring.post(MISSPELT_TYPE)))
    assert exploring.http.get("/openapi.json").json()["info"]["title"] == "CRM GraphQL gateway"
    assert exploring.http.get("/docs").status_code == 200
    edges = exploring.data(REMOTE_DATA)["contacts"]["edges"]
    assert edges
    assert all(isinstance(e["node"]["remoteData"], dict) for e in edges)


def test_remote_data_is_per_provider(exploring: GraphQLClient) -> None:
    query = '{ contacts(provider: "attio", first: 1) { edges { node { remoteData } } } }'
    edges = exploring.data(query)["contacts"]["edges"]
    assert edges
    assert edges[0]["node"]["remoteData"] is None


def test_the_demo_turns_everything_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # A placeholder left in the environment does not stop the demo: it signs with a
    # random secret of its own.
    monkeypatch.setenv("CRM_GATEWAY_CURSOR_SECRET", "change-me-in-production")
    settings = demo_settings()
    assert settings.cursor_secret is None
    assert settings.graphiql
    assert settings.introspection
    assert settings.field_suggestions
    assert settings.openapi
    assert all(p.remote_data for p in settings.providers)


def test_debug_logs_hold_no_revyops_client_id(
    hardened: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    client_id = demo_provider("revyops", "http://x").resolved_credentials()["client_id"]
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "gateway"):
        caplog.set_level(logging.DEBUG, logger=name)
    hardened.data('{ contacts(provider: "revyops", first: 3) { edges { node { name } } } }')
    logged = [r.getMessage() for r in caplog.records]
    # httpx did log the request URL, with the credential's value replaced.
    assert any("client_id=[REDACTED]" in m for m in logged), logged
    assert not [m for m in logged if client_id in m]
    assert client_id not in caplog.text


def _serve_config(tmp_path: Path, secret: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[[providers]]\nname = "attio"\nkind = "attio"\nbase_url = "http://127.0.0.1:9"\n'
        'credentials = { api_key = "k" }\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRM_GATEWAY_CURSOR_SECRET": secret}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", "9"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("secret", ["change-me-in-production", "", "change-me", "short-secret"])
def test_serve_refuses_a_placeholder_cursor_secret(tmp_path: Path, secret: str) -> None:
    result = _serve_config(tmp_path, secret)
    assert result.returncode == 2, result.stderr
    assert "cursor_secret" in result.stderr
    assert "CRM_GATEWAY_CURSOR_SECRET" in result.stderr
    if secret:
        assert secret not in result.stderr  # the refusal does not echo the secret


def test_settings_refuse_a_placeholder_cursor_secret_in_code_too() -> None:
    with pytest.raises(ValueError, match="cursor_secret"):
        Settings(cursor_secret="change-me-in-production")
