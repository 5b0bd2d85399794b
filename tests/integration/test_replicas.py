"""Two gateway replicas over HTTP behind one real Redis: a read through one is free on the
other, a write through either is seen by both, cursors cross, and Redis away costs no answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from gateway.servers import RedisProcess, emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient, emulator_requests
from tests.support.servers import demo_providers, serving
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KINDS = ("revyops", "haste")  # page numbers, cursors
LIST = """query($p: String!, $first: Int, $after: String) {
  contacts(provider: $p, first: $first, after: $after) {
    edges { node { id lastName } }
    pageInfo { hasNextPage endCursor }
  }
}"""
UPDATE = """mutation($input: UpdateContactInput!) {
  updateContact(input: $input) { contact { id lastName } userErrors { message } }
}"""
NODE = "query($id: ID!) { node(id: $id) { ... on Contact { lastName } } }"


@pytest.fixture(scope="module")
def replicas() -> Iterator[dict[str, Any]]:
    with ExitStack() as exits:
        redis = exits.enter_context(RedisProcess())
        urls = emulator_servers(exits, KINDS)
        settings = Settings(
            providers=demo_providers(urls, cache_ttl=600),
            cursor_secret="test-cursor-secret-kQ3vX8wZ",
            redis_url=redis.url,
            # A busy test machine can hold a Redis answer past the 0.5 s default: that would
            # be Redis "away" and each replica caching alone, which is not what these test.
            redis_timeout=5.0,
        )
        clients = []
        for _ in range(2):  # the same settings, as two processes behind a load balancer have
            clients.append(exits.enter_context(serving(settings)))
        yield {"redis": redis, "urls": urls, "one": clients[0], "two": clients[1]}


def contacts(client: GraphQLClient, kind: str, **window: Any) -> dict[str, Any]:
    page: dict[str, Any] = client.data(LIST, {"p": kind, **window})["contacts"]
    return page


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_through_one_replica_costs_the_other_nothing(replicas, kind):
    url = replicas["urls"][kind]
    before = emulator_requests(url)
    first = contacts(replicas["one"], kind, first=30)
    assert emulator_requests(url) > before  # cold on replica 1
    before = emulator_requests(url)
    assert contacts(replicas["two"], kind, first=30) == first
    assert emulator_requests(url) == before  # replica 2 read it from Redis


@pytest.mark.parametrize("kind", KINDS)
def test_a_cursor_from_one_replica_works_on_the_other(replicas, kind):
    one, two = replicas["one"], replicas["two"]
    page = contacts(one, kind, first=10)
    following = contacts(two, kind, first=10, after=page["pageInfo"]["endCursor"])
    assert following == contacts(one, kind, first=10, after=page["pageInfo"]["endCursor"])
    both = contacts(one, kind, first=20)["edges"]
    assert page["edges"] + following["edges"] == both


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_through_one_replica_is_seen_by_the_other(replicas, kind):
    one, two = replicas["one"], replicas["two"]
    node = contacts(one, kind, first=5)["edges"][2]["node"]
    assert one.data(NODE, {"id": node["id"]})["node"] == {"lastName": node["lastName"]}
    contacts(two, kind, first=5)  # both replicas hold the list and the record
    two.data(NODE, {"id": node["id"]})
    name = f"Written-{kind}"
    updated = two.data(UPDATE, {"input": {"id": node["id"], "lastName": name}})
    assert updated["updateContact"]["userErrors"] == []
    assert one.data(NODE, {"id": node["id"]})["node"] == {"lastName": name}
    assert contacts(one, kind, first=5)["edges"][2]["node"]["lastName"] == name


def metric(client: GraphQLClient, name: str) -> float:
    for line in client.http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def ready(client: GraphQLClient) -> dict[str, Any]:
    response = client.http.get("/readyz")
    assert response.status_code == 200  # degraded is still ready
    body: dict[str, Any] = response.json()
    return body


def test_redis_away_costs_no_answer_and_both_return_to_it(replicas):
    one, two, redis = replicas["one"], replicas["two"], replicas["redis"]
    assert ready(one)["redis"] == "ok"
    assert metric(one, "crm_gateway_redis_up") == 1.0
    redis.stop()
    try:
        for client in (one, two):
            first = contacts(client, "revyops", first=7)
            assert len(first["edges"]) == 7
            node = first["edges"][0]["node"]
            assert client.data(NODE, {"id": node["id"]})["node"] == {"lastName": node["lastName"]}
            # Cached locally meanwhile: a repeat costs no request.
            before = emulator_requests(replicas["urls"]["revyops"])
            assert contacts(client, "revyops", first=7) == first
            assert emulator_requests(replicas["urls"]["revyops"]) == before
            assert ready(client)["redis"] == "degraded"
            assert metric(client, "crm_gateway_redis_up") == 0.0
    finally:
        redis.start()
    # Each replica tries Redis again a few seconds after it failed; /readyz asks it.
    wait_until(
        lambda: {ready(one)["redis"], ready(two)["redis"]} == {"ok"},
        what="both replicas to return to Redis",
        timeout=60,
        every=0.2,
    )
    assert metric(two, "crm_gateway_redis_up") == 1.0
    url = replicas["urls"]["haste"]
    contacts(one, "haste", first=3, after=None)
    before = emulator_requests(url)
    contacts(two, "haste", first=3)
    assert emulator_requests(url) == before  # shared again
