"""Block reads over HTTP: a client's walk costs about one read of the list in blocks, a repeat
costs nothing, a write evicts the blocks, and `blocks = false` keeps exact windows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from gateway.servers import emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient, emulator_requests
from tests.support.servers import demo_providers, serving
from tests.support.walk import walk_field

pytestmark = pytest.mark.integration

KINDS = ("revyops", "haste", "redivis")  # page numbers, cursors, page tokens
QUERY = """query($p: String!, $first: Int, $after: String, $last: Int, $before: String) {
  contacts(provider: $p, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[bool, tuple[GraphQLClient, dict[str, str]]]]:
    """Per mode (blocks on/off): a gateway over its own emulators."""
    with ExitStack() as exits:
        made = {}
        for blocks in (True, False):
            urls = emulator_servers(exits, KINDS)
            settings = Settings(
                providers=demo_providers(urls, cache_ttl=600),
                cursor_secret="test-cursor-secret-kQ3vX8wZ",
                blocks=blocks,
            )
            made[blocks] = (exits.enter_context(serving(settings)), urls)
        yield made


def page(client: GraphQLClient, kind: str, **window: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.data(QUERY, {"p": kind, **window})["contacts"]
    return result


def browse(client: GraphQLClient, kind: str) -> list[str]:
    """Forward by 37, backward from the end by 23, a dozen windows from random cursors."""
    forward = walk_field(client, QUERY, "contacts", {"p": kind}, 37)
    ids, cursors = forward.ids("id"), forward.cursors
    back = walk_field(client, QUERY, "contacts", {"p": kind}, 23, forward=False)
    assert back.ids("id") == ids
    rng = random.Random(7)
    for _ in range(12):
        index, size = rng.randrange(len(cursors)), rng.randint(1, 50)
        if rng.random() < 0.5:
            got = page(client, kind, first=size, after=cursors[index])
            assert [e["node"]["id"] for e in got["edges"]] == ids[index + 1 :][:size]
        else:
            got = page(client, kind, last=size, before=cursors[index])
            assert [e["node"]["id"] for e in got["edges"]] == ids[:index][-size:]
    return ids


@pytest.mark.parametrize("kind", KINDS)
def test_a_walk_costs_at_most_twice_the_floor_and_nothing_again(stacks, kind):
    client, urls = stacks[True]
    before = emulator_requests(urls[kind])
    ids = browse(client, kind)
    spent = emulator_requests(urls[kind]) - before
    floor = -(-len(ids) // 100)
    assert len(ids) == 1000
    assert spent <= 2 * floor, f"{kind}: {spent} requests, floor {floor}"
    before = emulator_requests(urls[kind])
    assert browse(client, kind) == ids
    assert emulator_requests(urls[kind]) - before == 0


@pytest.mark.parametrize("kind", ["revyops", "haste"])
def test_a_write_evicts_the_blocks(stacks, kind):
    client, urls = stacks[True]
    first = page(client, kind, first=5)
    target = first["edges"][2]["node"]["id"]
    before = emulator_requests(urls[kind])
    assert page(client, kind, first=5) == first  # from the cached block
    assert emulator_requests(urls[kind]) == before
    client.data(
        """mutation($id: ID!) {
             updateContact(input: {id: $id, firstName: "Blocky"}) { contact { id name } } }""",
        {"id": target},
    )
    again = page(client, kind, first=5)
    assert again["edges"][2]["node"]["name"].startswith("Blocky")
    assert emulator_requests(urls[kind]) > before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("blocks", [True, False])
def test_without_blocks_each_window_is_fetched_exactly(stacks, kind, blocks):
    client, urls = stacks[blocks]
    first = page(client, kind, first=3)
    before = emulator_requests(urls[kind])
    # Another window inside the same first hundred records: in blocks it is cut from the
    # cached block; exact windows ask the upstream for precisely these records.
    got = page(client, kind, first=4, after=first["edges"][0]["cursor"])
    assert len(got["edges"]) == 4
    assert emulator_requests(urls[kind]) - before == (0 if blocks else 1)
