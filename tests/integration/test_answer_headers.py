"""The headers every answer carries (nosniff, no-store, Vary, frame policy, request id), the
GraphiQL page's Content-Security-Policy, and the request id in the operation's log line."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app, create_router
from gateway.servers import ServerThread
from gateway.settings import Settings

pytestmark = pytest.mark.integration

KEY = "answer-headers-key-0123456789"
QUERY = {"query": "query Named { providers { name } }"}
HEX_ID = re.compile(r"[0-9a-f]{32}")


def settings(**extra: object) -> Settings:
    return Settings.model_validate({"graphiql": True, "cors_origins": ["https://app.test"]} | extra)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with ServerThread(create_app(settings())) as server:
        yield server.url


@pytest.fixture(scope="module")
def secured_url() -> Iterator[str]:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    config = settings(clients=[{"name": "c", "api_key_sha256": digest}])
    with ServerThread(create_app(config)) as server:
        yield server.url


@pytest.fixture(scope="module")
def router_url() -> Iterator[str]:
    host = FastAPI()
    host.include_router(create_router(settings()))
    with ServerThread(host) as server:
        yield server.url


def assert_secured(response: httpx.Response, *, store: bool = False) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert HEX_ID.fullmatch(headers["x-request-id"])
    if not store:
        assert headers["cache-control"] == "no-store"
    varied = [v.strip() for v in headers["vary"].split(",")]
    assert len(varied) == len(set(varied))
    assert {"Origin", "Authorization", "X-API-Key"} <= set(varied)


@pytest.mark.parametrize("where", ["app_url", "router_url"])
def test_graphql_answers_carry_the_headers(request: pytest.FixtureRequest, where: str) -> None:
    url: str = request.getfixturevalue(where)
    first = httpx.post(f"{url}/graphql", json=QUERY)
    second = httpx.post(f"{url}/graphql", json=QUERY, headers={"Origin": "https://app.test"})
    for response in (first, second):
        assert response.status_code == 200
        assert_secured(response)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert_secured(httpx.get(f"{url}{path}"))


def test_refusals_and_answers_outside_the_routes_carry_them(app_url: str, secured_url: str) -> None:
    refused = httpx.post(f"{secured_url}/graphql", json=QUERY)
    assert refused.status_code == 401
    assert_secured(refused)
    served = httpx.post(f"{secured_url}/graphql", json=QUERY, headers={"X-API-Key": KEY})
    assert served.status_code == 200
    assert_secured(served)
    assert_secured(httpx.get(f"{app_url}/no-such-page"))
    preflight = httpx.options(
        f"{app_url}/graphql",
        headers={"Origin": "https://app.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert_secured(preflight)


def test_graphiql_assets_keep_their_long_cache(app_url: str) -> None:
    page = httpx.get(f"{app_url}/graphql", headers={"Accept": "text/html"})
    asset = re.search(r'src="(graphql/static/[^"]+\.js)"', page.text)
    assert asset is not None
    response = httpx.get(f"{app_url}/{asset[1]}")
    assert response.status_code == 200
    assert_secured(response, store=True)
    assert response.headers["cache-control"].startswith("public, max-age=")


def test_graphiql_has_a_content_security_policy(app_url: str) -> None:
    page = httpx.get(f"{app_url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert_secured(page)
    policy = {
        name: value
        for name, _, value in (
            part.strip().partition(" ")
            for part in page.headers["content-security-policy"].split(";")
        )
    }
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"]
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy["script-src"].split()
    # Only GraphiQL's page has one; JSON answers need none.
    assert "content-security-policy" not in httpx.post(f"{app_url}/graphql", json=QUERY).headers


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("req-2024.01:abc/DEF+=@~_", True),
        ("two words", False),
        ("x" * 129, False),
        ("", False),
    ],
)
def test_a_well_formed_request_id_is_echoed_and_logged(
    app_url: str, caplog: pytest.LogCaptureFixture, sent: str, echoed: bool
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.operation")
    response = httpx.post(f"{app_url}/graphql", json=QUERY, headers={"X-Request-Id": sent})
    answered = response.headers["x-request-id"]
    if echoed:
        assert answered == sent
    else:
        assert HEX_ID.fullmatch(answered)
    [line] = [r for r in caplog.records if r.name == "gateway.operation"]
    assert line.getMessage().rpartition(" request_id=")[2].strip('"') == answered
    assert line.request_id == answered  # type: ignore[attr-defined]
