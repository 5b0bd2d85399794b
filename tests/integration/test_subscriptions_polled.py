"""A change made in the CRM itself (through the BasicsOS emulator's own API, not the
gateway) reaches a WebSocket subscriber as the poll finds it, within `poll_interval` + 2 s:
updated, deleted and created, with the record as it is now. A write through the gateway
is heard once: its poll echo is not delivered again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from prometheus_client.parser import text_string_to_metric_families

from emulators import EmulatorOptions
from gateway.demo import demo_provider
from gateway.servers import emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.direct import contact_ids, edit
from tests.support.servers import serving
from tests.support.subscribing import Socket, socket, wait_open
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

INTERVAL = 1.0
SMALL = EmulatorOptions(rate_limits=False, companies=10, contacts=30, deals=10, notes=10)
EVENT = """subscription { recordChanged(types: [CONTACT]) {
  kind id source record { ... on Contact { remoteId firstName } } } }"""


@pytest.fixture(scope="module")
def polled() -> Iterator[tuple[GraphQLClient, str]]:
    with ExitStack() as exits:
        url = emulator_servers(exits, ["basicsos"], SMALL)["basicsos"]
        provider = demo_provider("basicsos", url).model_copy(
            update={"rate_limit": False, "poll_interval": INTERVAL, "cache_ttl": 300}
        )
        gateway = exits.enter_context(serving(Settings(providers=[provider], subscriptions=True)))
        yield gateway, url


def polls(gateway: GraphQLClient) -> float:
    """Lists polled so far (each round polls the provider's four)."""
    text = gateway.http.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "crm_gateway_polls_total"
    )


def rounds(gateway: GraphQLClient, count: int) -> None:
    """Until `count` more rounds of polls have ended."""
    target = polls(gateway) + 4 * count
    wait_until(lambda: polls(gateway) >= target, what=f"{count} more rounds of polls")


async def timed_event(ws: Socket, operation: str) -> tuple[dict[str, object], float]:
    start = time.monotonic()
    event = await ws.event(operation)
    return event, time.monotonic() - start


async def test_a_change_in_the_crm_reaches_the_subscriber(polled) -> None:
    gateway, url = polled
    async with socket(gateway.url) as ws:
        operation = await ws.subscribe(EVENT)
        wait_open(gateway.url, 1)
        updated, deleted = contact_ids("basicsos", url, 2)
        rounds(gateway, 1)  # a first round records the lists as they are
        created = edit("basicsos", url, updated=updated, renamed="Zelda", deleted=deleted)
        seen = {}
        for _ in range(3):
            event, waited = await timed_event(ws, operation)
            assert waited < INTERVAL + 2
            assert event["source"] == "POLL"
            seen[event["kind"]] = event
    assert seen["UPDATED"]["record"] == {"remoteId": updated, "firstName": "Zelda"}
    assert seen["DELETED"]["record"] is None
    assert seen["CREATED"]["record"]["remoteId"] == created  # type: ignore[index]


async def test_a_gateway_write_is_heard_once_though_the_poll_sees_it(polled) -> None:
    gateway, url = polled
    nodes = gateway.data('{ contacts(provider: "basicsos", first: 4) { edges { node { id } } } }')
    written, *_ = [edge["node"]["id"] for edge in nodes["contacts"]["edges"]]
    async with socket(gateway.url) as ws:
        operation = await ws.subscribe(EVENT)
        wait_open(gateway.url, 1)
        rounds(gateway, 1)
        gateway.data(
            'mutation($id: ID!) { updateContact(input: {id: $id, firstName: "Echo"}) { contact { id } } }',
            {"id": written},
        )
        event = await ws.event(operation)
        assert (event["id"], event["source"]) == (written, "GATEWAY")
        rounds(gateway, 2)  # a poll has seen the write meanwhile: its echo
        updated, deleted = contact_ids("basicsos", url, 4)[2:]
        edit("basicsos", url, updated=updated, renamed="After", deleted=deleted)
        heard = [await ws.event(operation) for _ in range(3)]
    assert {event["kind"] for event in heard} == {"UPDATED", "DELETED", "CREATED"}
    assert written not in {event["id"] for event in heard}  # no echo came before these
