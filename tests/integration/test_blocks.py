"""Block reads over HTTP: a client's walk costs about one read of the list in blocks, a repeat
costs nothing, a write evicts the blocks, and `blocks = false` keeps exact windows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import Settings
from tests.conftest import GraphQLClient

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
                providers=[
                    demo_provider(k, u).model_copy(update={"rate_limit": False, "cache_ttl": 600})
                    for k, u in urls.items()
                ],
                cursor_secret="test-cursor-secret",
                blocks=blocks,
            )
            server = exits.enter_context(ServerThread(create_app(settings)))
            client = GraphQLClient(server.url)
            exits.callback(client.http.close)
            made[blocks] = (client, urls)
        yield made


def requests(url: str) -> int:
    count: int = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    return count


def page(client: GraphQLClient, kind: str, **window: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.data(QUERY, {"p": kind, **window})["contacts"]
    return result


def walk(client: GraphQLClient, kind: str) -> list[str]:
    """Forward by 37, backward from the end by 23, a dozen windows from random cursors."""
    ids: list[str] = []
    cursors: list[str] = []
    after = None
    while True:
        got = page(client, kind, first=37, after=after)
        ids += [e["node"]["id"] for e in got["edges"]]
        cursors += [e["cursor"] for e in got["edges"]]
        if not got["pageInfo"]["hasNextPage"]:
            break
        after = got["pageInfo"]["endCursor"]
    back: list[str] = []
    before = None
    while True:
        got = page(client, kind, last=23, before=before)
        back = [e["node"]["id"] for e in got["edges"]] + back
        if not got["pageInfo"]["hasPreviousPage"]:
            break
        before = got["pageInfo"]["startCursor"]
    assert back == ids
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
    before = requests(urls[kind])
    ids = walk(client, kind)
    spent = requests(urls[kind]) - before
    floor = -(-len(ids) // 100)
    assert len(ids) == 1000
    assert spent <= 2 * floor, f"{kind}: {spent} requests, floor {floor}"
    before = requests(urls[kind])
    assert walk(client, kind) == ids
    assert requests(urls[kind]) - before == 0


@pytest.mark.parametrize("kind", ["revyops", "haste"])
def test_a_write_evicts_the_blocks(stacks, kind):
    client, urls = stacks[True]
    first = page(client, kind, first=5)
    target = first["edges"][2]["node"]["id"]
    before = requests(urls[kind])
    assert page(client, kind, first=5) == first  # from the cached block
    assert requests(urls[kind]) == before
    client.data(
        """mutation($id: ID!) {
             updateContact(input: {id: $id, firstName: "Blocky"}) { contact { id name } } }""",
        {"id": target},
    )
    again = page(client, kind, first=5)
    assert again["edges"][2]["node"]["name"].startswith("Blocky")
    assert requests(urls[kind]) > before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("blocks", [True, False])
def test_without_blocks_each_window_is_fetched_exactly(stacks, kind, blocks):
    client, urls = stacks[blocks]
    first = page(client, kind, first=3)
    before = requests(urls[kind])
    # Another window inside the same first hundred records: in blocks it is cut from the
    # cached block; exact windows ask the upstream for precisely these records.
    got = page(client, kind, first=4, after=first["edges"][0]["cursor"])
    assert len(got["edges"]) == 4
    assert requests(urls[kind]) - before == (0 if blocks else 1)
