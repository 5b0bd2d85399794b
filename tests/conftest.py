"""Shared fixtures: emulators and the gateway as real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from gateway.app import create_app
from gateway.demo import demo_kinds, demo_provider
from gateway.servers import RedisProcess, ServerThread, emulator_servers
from gateway.settings import Settings

# The properties test logic, not speed: no deadline and no complaint about slow generation, so
# a busy machine cannot fail them. On top of the profile hypothesis chose (its "ci" one, with
# derandomized examples, when CI is set); `HYPOTHESIS_PROFILE=default` brings its own back.
settings.register_profile(
    "suite",
    parent=settings.get_profile(settings.get_current_profile_name()),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL response without its `extensions` (every answer reports its cost there)."""
    return {k: v for k, v in body.items() if k != "extensions"}


def gid(type_name: str, provider: str, remote_id: str) -> str:
    """A global id as anyone can make one: base64 of `Type:provider:remoteId`."""
    return base64.b64encode(f"{type_name}:{provider}:{remote_id}".encode()).decode()


class GraphQLClient:
    """POSTs GraphQL to the gateway over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code < 500, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.post(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture(scope="session")
def emulators() -> Iterator[dict[str, str]]:
    """Every demo emulator, rate limits off so the suite's traffic is not throttled."""
    with ExitStack() as stack:
        yield emulator_servers(stack, demo_kinds())


@pytest.fixture(scope="session")
def gateway(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    # The emulators do not throttle here, so neither does the gateway: the suite stays quick.
    settings = Settings(
        providers=[
            demo_provider(kind, url).model_copy(update={"rate_limit": False})
            for kind, url in emulators.items()
        ],
        cursor_secret="test-cursor-secret",
    )
    with ServerThread(create_app(settings)) as server:
        client = GraphQLClient(server.url)
        yield client
        client.http.close()


@pytest.fixture
def emulator_stats(emulators: dict[str, str]):
    """Reads an emulator's request counter."""

    def read(kind: str) -> int:
        count: int = httpx.get(f"{emulators[kind]}/_emulator/stats").json()["requests"]
        return count

    return read


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A real redis-server of its own (stop and start it to play an outage)."""
    with RedisProcess() as server:
        yield server


# Tests that talk over loopback HTTP, by where they live or the fixtures they use: each must
# carry the `integration` marker, so `pytest -m "not integration"` is the fast unit layer.
INTEGRATION_DIRS = ("integration", "emulators")
INTEGRATION_FIXTURES = frozenset({"emulators", "gateway", "emulator_stats", "redis_server"})


def unmarked_integration(items: list[pytest.Item]) -> list[str]:
    """The ids of tests that are integration tests by place or fixture but lack the marker."""
    return [
        item.nodeid
        for item in items
        if item.get_closest_marker("integration") is None
        and (
            item.path.parent.name in INTEGRATION_DIRS
            or INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = unmarked_integration(items)
    if unmarked:
        raise pytest.UsageError(
            "integration tests without `pytestmark = pytest.mark.integration`: "
            + ", ".join(unmarked[:10])
        )
