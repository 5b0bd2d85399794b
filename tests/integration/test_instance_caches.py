"""Two provider instances on one API with the same credentials never read each other's cached
rows, whether each process caches alone or the replicas share Redis.

Two Redivis instances differ only in `options.dataset`: the emulator holds `acme.crm`, so
the second one's reads must reach it (and are refused, that dataset not being there) rather
than be served the first one's rows from a cache keyed by base URL and credentials alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import RedisProcess, ServerThread, emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient, emulator_requests
from tests.support.servers import serving

pytestmark = pytest.mark.integration

LIST = """query($p: String!) {
  contacts(provider: $p, first: 5) { edges { node { id remoteId lastName } } }
}"""


@pytest.fixture(scope="module")
def redivis() -> Iterator[str]:
    with ExitStack() as exits:
        yield emulator_servers(exits, ["redivis"])["redivis"]


def _settings(url: str, redis_url: str | None) -> Settings:
    base = demo_provider("redivis", url, rate_limit=False)
    return Settings(
        providers=[
            base.model_copy(update={"name": "crm", "options": {"dataset": "acme.crm"}}),
            base.model_copy(update={"name": "archive", "options": {"dataset": "acme.archive"}}),
        ],
        cursor_secret="test-cursor-secret-kQ3vX8wZ",
        redis_url=redis_url,
        redis_timeout=5.0,
    )


def _assert_apart(url: str, first: GraphQLClient, second: GraphQLClient) -> None:
    rows: dict[str, Any] = first.data(LIST, {"p": "crm"})
    assert rows["contacts"]["edges"]  # cached now, on `first` (and in Redis when shared)
    before = emulator_requests(url)
    body = second.post(LIST, {"p": "archive"})
    assert emulator_requests(url) > before  # its own read went upstream
    # Not the other instance's rows, ids and all: this dataset is not on the emulator.
    assert body["data"] is None or body["data"]["contacts"] is None, body["data"]
    assert body["errors"][0]["extensions"]["provider"] == "archive"


def test_instances_differing_in_options_do_not_share_a_process_cache(redivis: str) -> None:
    with serving(_settings(redivis, None)) as client:
        _assert_apart(redivis, client, client)


def test_instances_differing_in_options_do_not_share_redis(
    redivis: str, redis_server: RedisProcess
) -> None:
    settings = _settings(redivis, redis_server.url)
    with ExitStack() as exits:
        one, two = (
            GraphQLClient(exits.enter_context(ServerThread(create_app(settings))).url)
            for _ in range(2)
        )
        # Each replica, and each instance on one replica.
        _assert_apart(redivis, one, two)
        _assert_apart(redivis, one, one)
        # The same instance still shares its entries across replicas.
        before = emulator_requests(redivis)
        assert two.data(LIST, {"p": "crm"}) == one.data(LIST, {"p": "crm"})
        assert emulator_requests(redivis) == before
        one.http.close()
        two.http.close()
