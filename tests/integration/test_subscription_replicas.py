"""Two gateway replicas on one real Redis: a subscriber on one hears a change made through
the other, once, with the record as it is now (cache_ttl 600 on both)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from gateway.servers import RedisProcess, emulator_servers
from gateway.settings import Settings
from tests.support.servers import demo_providers, serving
from tests.support.subscribing import socket, wait_open

pytestmark = pytest.mark.integration

EVENT = """subscription { recordChanged {
  id kind source record { ... on Contact { lastName } } } }"""


async def test_a_subscriber_on_one_replica_hears_a_write_through_the_other() -> None:
    with ExitStack() as exits:
        redis = exits.enter_context(RedisProcess())
        urls = emulator_servers(exits, ["haste"])
        settings = Settings(
            providers=demo_providers(urls, cache_ttl=600),
            cursor_secret="test-cursor-secret-kQ3vX8wZ",
            redis_url=redis.url,
            redis_timeout=5.0,
            subscriptions=True,
        )
        one, two = (exits.enter_context(serving(settings)) for _ in range(2))
        first = one.data(
            '{ contacts(provider: "haste", first: 1) { edges { node { id lastName } } } }'
        )
        contact = first["contacts"]["edges"][0]["node"]["id"]
        async with socket(two.url) as ws:
            operation = await ws.subscribe(EVENT)
            wait_open(two.url, 1)
            renamed = one.data(
                'mutation($id: ID!) { updateContact(input: {id: $id, lastName: "Replicated"}) '
                "{ contact { id } } }",
                {"id": contact},
            )
            assert renamed["updateContact"]["contact"]["id"] == contact
            event = await ws.event(operation)
            assert (event["id"], event["kind"], event["source"]) == (contact, "UPDATED", "GATEWAY")
            assert event["record"] == {"lastName": "Replicated"}
