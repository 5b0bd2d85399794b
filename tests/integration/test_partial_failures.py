"""One bad item fails only itself, over real HTTP: an id of `nodes`, or the child request of
one parent among many (issue 9, item 5)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.servers import emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.ids import gid, raw_id
from tests.support.kinds import ALL_KINDS
from tests.support.servers import demo_providers, serving

pytestmark = pytest.mark.integration

KINDS = ALL_KINDS
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
# Child lists read with one request per parent, and what names the parent in that request.
PER_PARENT = {
    "haste": ("notes", lambda company: f"company={company['remoteId']}"),
    "attio": ("notes", lambda company: f"parent_record_id={company['remoteId']}&"),
    "revyops": ("contacts", lambda company: f"domain={company['domain']}&"),
}


class World:
    def __init__(self, urls: dict[str, str], client: GraphQLClient) -> None:
        self.urls = urls
        self.client = client

    def faults(self, kind: str, **faults: Any) -> None:
        httpx.post(f"{self.urls[kind]}/_emulator/faults", json=faults).raise_for_status()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with ExitStack() as stack:
        urls = emulator_servers(stack, KINDS)
        # One attempt per request, no cache: a fault injected for one request is that
        # request's fate, whatever ran before.
        settings = Settings(providers=demo_providers(urls, max_retries=0), cache=False)
        yield World(urls, stack.enter_context(serving(settings)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "bad",
    ["x\r\ny", "", "bm90IGEgZ2xvYmFsIGlk", raw_id("Planet:haste:p_1")],
)
def test_a_malformed_id_fails_only_its_item(world: World, kind: str, bad: str) -> None:
    # Before: `nodes(ids: [good, good, "x\r\ny"])` failed all three.
    edges = world.client.data(
        f'{{ contacts(provider: "{kind}", first: 2) {{ edges {{ node {{ id }} }} }} }}'
    )["contacts"]["edges"]
    good = [e["node"]["id"] for e in edges]
    body = world.client.post(NODES, {"ids": [good[0], bad, good[1]]})
    assert body["data"] == {"nodes": [{"id": good[0]}, None, {"id": good[1]}]}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["nodes", 1], "BAD_USER_INPUT")
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_ids_that_cannot_exist_are_null_and_unknown_providers_fail_alone(
    world: World, kind: str
) -> None:
    edges = world.client.data(
        f'{{ contacts(provider: "{kind}", first: 1) {{ edges {{ node {{ id }} }} }} }}'
    )["contacts"]["edges"]
    good = edges[0]["node"]["id"]
    ids = [gid("Contact", kind, "../x"), good, gid("Contact", "nowhere", "1")]
    body = world.client.post(NODES, {"ids": ids})
    assert body["data"] == {"nodes": [None, {"id": good}, None]}
    # An id the provider cannot have is simply not found; a provider this gateway does
    # not have is the client's mistake, said at its own index only.
    [error] = body["errors"]
    assert error["path"] == ["nodes", 2]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("kind", sorted(PER_PARENT))
def test_one_failing_child_request_fails_only_its_parent(world: World, kind: str) -> None:
    # Before: one failing child request failed the children of every parent in the batch.
    field, target = PER_PARENT[kind]
    query = (
        f'{{ companies(provider: "{kind}", first: 8) {{ edges {{ node {{ remoteId domain '
        f"{field}(first: 3) {{ edges {{ node {{ id }} }} }} }} }} }} }}"
    )
    companies = [e["node"] for e in world.client.data(query)["companies"]["edges"]]
    victim = next(i for i, c in enumerate(companies) if c[field]["edges"])
    world.faults(kind, error_rate=1.0, only_matching=target(companies[victim]))
    try:
        body = world.client.post(query)
    finally:
        world.faults(kind)
    after = [e["node"] for e in body["data"]["companies"]["edges"]]
    assert after[victim][field] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["companies", "edges", victim, "node", field], "UPSTREAM_UNAVAILABLE")
    ]
    others = [c for i, c in enumerate(after) if i != victim]
    assert others == [c for i, c in enumerate(companies) if i != victim]
