"""CORS (`cors_origins`) and the ways a host app embeds the gateway: included router or
mounted app, both with working providers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import add_cors, create_app, create_router
from gateway.demo import demo_provider, demo_settings
from gateway.servers import ServerThread
from gateway.settings import ConfigError, Settings, load_settings
from tests.support.clients import answer

pytestmark = pytest.mark.integration

ORIGINS = ["http://localhost:*", "https://app.example.com"]
QUERY = {"query": '{ contacts(provider: "basicsos", first: 2) { edges { node { id } } } }'}


def preflight(url: str, origin: str, headers: str = "content-type") -> httpx.Response:
    return httpx.options(
        f"{url}/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


@pytest.fixture(scope="module")
def cors_gateway() -> Iterator[str]:
    with ServerThread(create_app(Settings(cors_origins=ORIGINS))) as server:
        yield server.url


@pytest.fixture(scope="module")
def router_with_cors() -> Iterator[str]:
    host = FastAPI()
    settings = Settings(cors_origins=ORIGINS)
    host.include_router(create_router(settings))
    add_cors(host, settings)
    with ServerThread(host) as server:
        yield server.url


@pytest.fixture(params=["cors_gateway", "router_with_cors"])
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(request.param)
    return value


@pytest.mark.parametrize(
    "origin", ["http://localhost:5173", "http://localhost:80", "https://app.example.com"]
)
def test_a_preflight_from_an_allowed_origin_is_answered(url: str, origin: str) -> None:
    response = preflight(url, origin, "content-type, authorization")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert {"GET", "POST"} <= set(response.headers["access-control-allow-methods"].split(", "))
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed
    assert "authorization" in allowed
    assert "Origin" in response.headers["vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example:3000",
        "https://app.example.com.evil.example",
        "http://app.example.com",  # another scheme is another origin
        "https://localhost:5173",
        "null",
    ],
)
def test_a_preflight_from_another_origin_is_refused(url: str, origin: str) -> None:
    response = preflight(url, origin)
    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers


def test_the_answer_to_an_allowed_origin_carries_its_headers(url: str) -> None:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": "http://localhost:3000"},
    )
    assert answer(response.json()) == {"data": {"__typename": "Query"}}
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "Origin" in response.headers["vary"]


def test_the_answer_to_another_origin_has_no_cors_headers(url: str) -> None:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers
    assert "Origin" in response.headers["vary"]


def test_no_origin_is_allowed_by_default() -> None:
    assert Settings().cors_origins == []
    with ServerThread(create_app(Settings())) as server:
        response = preflight(server.url, "http://localhost:5173")
        assert "access-control-allow-origin" not in response.headers


def test_the_demo_allows_localhost_on_any_port() -> None:
    assert demo_settings().cors_origins == ["http://localhost:*", "http://127.0.0.1:*"]


@pytest.mark.parametrize(
    "origin",
    [
        "localhost:3000",
        "http://localhost:3000/app",
        "ftp://example.com",
        "http://*.example.com",
        "http://a:b",
    ],
)
def test_an_origin_that_is_not_one_is_refused_at_start_up(tmp_path, origin: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f'cors_origins = ["{origin}"]\n')
    with pytest.raises(ConfigError, match="cors_origins"):
        load_settings(path)


def test_a_lone_star_allows_any_origin() -> None:
    with ServerThread(create_app(Settings(cors_origins=["*"]))) as server:
        response = preflight(server.url, "https://anyone.example")
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "headers",
    [
        "apollo-require-preflight, x-apollo-operation-name",
        "apollographql-client-name, apollographql-client-version",
        "sentry-trace, baggage",
        "traceparent, tracestate, x-request-id",
        "content-type, accept, authorization, x-api-key",
    ],
)
def test_the_headers_clients_and_tracers_add_pass_a_preflight(url: str, headers: str) -> None:
    response = preflight(url, "http://localhost:5173", headers)
    assert response.status_code == 200, response.text
    allowed = response.headers["access-control-allow-headers"].lower().split(", ")
    assert set(headers.split(", ")) <= set(allowed)


def test_a_header_nobody_listed_fails_the_preflight(url: str) -> None:
    response = preflight(url, "http://localhost:5173", "content-type, x-something-else")
    assert response.status_code == 400


def test_every_default_header_is_allowed() -> None:
    assert set(Settings().cors_allow_headers) >= {
        "Content-Type",
        "Authorization",
        "X-API-Key",
        "Accept",
        "X-Request-Id",
        "apollo-require-preflight",
        "sentry-trace",
        "baggage",
        "traceparent",
        "tracestate",
    }


def test_cors_allow_headers_replaces_the_list() -> None:
    settings = Settings(cors_origins=ORIGINS, cors_allow_headers=["X-Tenant"])
    with ServerThread(create_app(settings)) as server:
        assert preflight(server.url, "http://localhost:5173", "x-tenant").status_code == 200
        assert preflight(server.url, "http://localhost:5173", "sentry-trace").status_code == 400


def test_answers_expose_server_timing_and_the_request_id(url: str) -> None:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": "https://app.example.com"},
    )
    exposed = response.headers["access-control-expose-headers"].lower().split(", ")
    assert {"server-timing", "x-request-id"} <= set(exposed)
    assert response.headers["x-request-id"]


def test_no_credentials_by_default(url: str) -> None:
    response = preflight(url, "https://app.example.com")
    assert response.status_code == 200
    assert "access-control-allow-credentials" not in response.headers


def test_credentials_are_allowed_when_asked_for() -> None:
    settings = Settings(cors_origins=ORIGINS, cors_allow_credentials=True)
    with ServerThread(create_app(settings)) as server:
        allowed = preflight(server.url, "https://app.example.com")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        answer = httpx.post(
            f"{server.url}/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "http://localhost:3000", "Cookie": "session=1"},
        )
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
        refused = preflight(server.url, "https://evil.example")
        assert "access-control-allow-origin" not in refused.headers


def test_credentials_with_any_origin_are_refused_at_start_up(tmp_path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('cors_origins = ["*"]\ncors_allow_credentials = true\n')
    with pytest.raises(ConfigError, match="cors_allow_credentials needs explicit"):
        load_settings(path)


@pytest.mark.parametrize("name", ["X-A, X-B", "", "X A", "X-Ä"])
def test_a_header_list_item_that_is_not_a_name_is_refused_at_start_up(tmp_path, name: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f'cors_allow_headers = ["{name}"]\n')
    with pytest.raises(ConfigError, match=r"cors_allow_headers: .* not a header name"):
        load_settings(path)


# Embedding: the providers must be there whichever way the host app takes the gateway.


def _settings(emulators: dict[str, str]) -> Settings:
    return Settings(
        providers=[demo_provider("basicsos", emulators["basicsos"])],
        cursor_secret="test-cursor-secret-kQ3vX8wZ",
    )


def _contacts(url: str) -> int:
    body = httpx.post(url, json=QUERY, timeout=30).json()
    assert "errors" not in body, body
    return len(body["data"]["contacts"]["edges"])


def test_an_included_router_serves_the_providers(emulators: dict[str, str]) -> None:
    host = FastAPI()
    host.include_router(create_router(_settings(emulators)), prefix="/crm")
    with ServerThread(host) as server:
        assert _contacts(f"{server.url}/crm/graphql") == 2
        assert httpx.get(f"{server.url}/crm/readyz").status_code == 200


def test_a_mounted_app_serves_the_providers(emulators: dict[str, str]) -> None:
    # A mounted app's lifespan never runs: the clients open on first use.
    host = FastAPI()
    host.mount("/crm", create_app(_settings(emulators)))
    with ServerThread(host) as server:
        assert httpx.get(f"{server.url}/crm/readyz").status_code == 200
        assert _contacts(f"{server.url}/crm/graphql") == 2
        redirect = httpx.get(f"{server.url}/crm/")
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "/crm/graphql"


def test_the_root_redirects_to_graphql() -> None:
    with ServerThread(create_app(Settings())) as server:
        response = httpx.get(f"{server.url}/")
        assert response.status_code == 307
        assert response.headers["location"] == "/graphql"
