"""Lists across providers over real HTTP, with the emulators enforcing their real limits
(issue 18's "Done when"): merged walks both ways equal the providers' own lists one after
another, in the order named, windows from any cursor are the slices, contacts merged by
CREATED_AT or UPDATED_AT hold each contact once in order, and a walk costs at most 1.5 times the
providers' block floors."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions
from gateway.demo import demo_kinds, demo_provider
from gateway.servers import emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.kinds import ENTITIES
from tests.support.knowledge import remote_ids
from tests.support.servers import serving

pytestmark = pytest.mark.integration

FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
ORDERS = {"contact": "ContactOrder", "company": "CompanyOrder", "deal": "DealOrder"}
ORDERS["note"] = "NoteOrder"
PAGE = """
query($many: [String!], $first: Int, $after: String, $last: Int, $before: String,
      $order: [%s!]) {
  list: %s(providers: $many, first: $first, after: $after, last: $last, before: $before,
           orderBy: $order) {
    edges { cursor node { provider remoteId createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[GraphQLClient, dict[str, str]]]:
    """A gateway over emulators that throttle as the real APIs do (the gateway keeps under
    their limits itself)."""
    with ExitStack() as exits:
        urls = emulator_servers(exits, demo_kinds(), EmulatorOptions())
        settings = Settings(
            providers=[demo_provider(kind, url) for kind, url in urls.items()],
            cursor_secret="test-cursor-secret-kQ3vX8wZ",
            # Lists read whole to be sorted are costed at `merge_whole_max` records each.
            max_operation_cost=500,
        )
        yield exits.enter_context(serving(settings)), urls


def requests(url: str) -> int:
    count: int = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    return count


def walk(
    client: GraphQLClient, entity: str, size: int, *, forward: bool, **variables: Any
) -> tuple[list[tuple[str, str]], list[str], list[dict[str, Any]]]:
    """Every record of a merged list, page by page one way: keys, cursors and nodes."""
    nodes: list[dict[str, Any]] = []
    cursors: list[str] = []
    cursor = None
    while True:
        window = {"first": size, "after": cursor} if forward else {"last": size, "before": cursor}
        query = PAGE % (ORDERS[entity], FIELDS[entity])
        page = client.data(query, {**variables, **window})["list"]
        edges = page["edges"]
        nodes = (
            nodes + [e["node"] for e in edges] if forward else [e["node"] for e in edges] + nodes
        )
        batch = [e["cursor"] for e in edges]
        cursors = cursors + batch if forward else batch + cursors
        info = page["pageInfo"]
        if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
            return [(n["provider"], n["remoteId"]) for n in nodes], cursors, nodes
        cursor = info["endCursor"] if forward else info["startCursor"]


def moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def truth(urls: dict[str, str], entity: str, kinds: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for kind in kinds:
        out += [(kind, remote) for remote in own_ids(urls[kind], kind, entity)]
    return out


@functools.cache
def own_ids(url: str, kind: str, entity: str) -> tuple[str, ...]:
    """A provider's list read straight from its emulator, once: the emulators throttle
    these reads as they do the gateway's (Attio 100 a minute)."""
    return tuple(remote_ids(kind, url, entity))


@pytest.mark.parametrize("entity", sorted(FIELDS))
def test_a_merged_walk_equals_the_lists_concatenated(world, entity):
    client, urls = world
    kinds = [k for k in demo_kinds() if entity in ENTITIES[k]]
    every = truth(urls, entity, kinds)
    spent = sum(requests(url) for url in urls.values())
    forward, cursors, _ = walk(client, entity, 37, forward=True)
    walked = sum(requests(url) for url in urls.values()) - spent
    assert forward == every
    # Each provider's list in blocks of 100 (Attio notes 50; BasicsOS notes are three
    # tables, each ending in a block of its own).
    floor = 0
    for kind in kinds:
        size = len([1 for k, _ in every if k == kind])
        block = 50 if (kind, entity) == ("attio", "note") else 100
        floor += -(-size // block) + (2 if (kind, entity) == ("basicsos", "note") else 0)
    assert walked <= 1.5 * floor, f"{walked} requests, block floor at most {floor}"
    backward, _, _ = walk(client, entity, 23, forward=False)
    assert backward == every
    for index in range(0, len(cursors), 97):
        page = client.data(
            PAGE % (ORDERS[entity], FIELDS[entity]), {"first": 41, "after": cursors[index]}
        )["list"]
        got = [(e["node"]["provider"], e["node"]["remoteId"]) for e in page["edges"]]
        assert got == every[index + 1 :][:41]


def test_providers_named_the_other_way_walk_in_that_order(world):
    client, urls = world
    every = truth(urls, "contact", ["haste", "attio"])
    forward, _, _ = walk(client, "contact", 29, forward=True, many=["haste", "attio"])
    assert forward == every
    backward, _, _ = walk(client, "contact", 31, forward=False, many=["haste", "attio"])
    assert backward == every


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_contacts_merged_by_creation_hold_each_once_in_order(world, direction):
    client, urls = world
    kinds = ["attio", "haste", "redivis"] + (["basicsos"] if direction == "ASC" else [])
    order = [{"field": "CREATED_AT", "direction": direction}]
    keys, _, nodes = walk(client, "contact", 43, forward=True, many=kinds, order=order)
    assert sorted(keys) == sorted(truth(urls, "contact", kinds))
    moments = [moment(n["createdAt"]) for n in nodes]
    assert moments == sorted(moments, reverse=direction == "DESC")
    backward, _, _ = walk(client, "contact", 19, forward=False, many=kinds, order=order)
    assert backward == keys


@pytest.mark.parametrize("key", ["CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_every_providers_contacts_by_a_date_hold_each_once_in_order(world, key, direction):
    client, urls = world
    order = [{"field": key, "direction": direction}]
    keys, _, nodes = walk(client, "contact", 97, forward=True, order=order)
    assert sorted(keys) == sorted(truth(urls, "contact", list(demo_kinds())))
    name = "createdAt" if key == "CREATED_AT" else "updatedAt"
    # Nulls after every date ascending, before them descending.
    moments = [(True, None) if n[name] is None else (False, moment(n[name])) for n in nodes]
    assert moments == sorted(moments, reverse=direction == "DESC")
    backward, _, _ = walk(client, "contact", 89, forward=False, order=order)
    assert backward == keys


@pytest.mark.parametrize("key", ["CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_a_first_page_by_a_date_fits_the_default_budget_on_cold_caches(world, key, direction):
    # A new gateway (its caches cold) with the default `max_operation_cost`: Redivis sorts
    # upstream, so at most one provider is read whole (RevyOps by update time, BasicsOS
    # descending) and the first page of every date order is served, in order.
    _, urls = world
    settings = Settings(
        providers=[demo_provider(kind, url) for kind, url in urls.items()],
        cursor_secret="test-cursor-secret-kQ3vX8wZ",
    )
    assert settings.max_operation_cost == 50
    query = (
        f"{{ contacts(providers: {json.dumps(list(urls))}, first: 10, "
        f"orderBy: [{{field: {key}, direction: {direction}}}]) "
        "{ totalCount edges { node { provider remoteId createdAt updatedAt } } } }"
    )
    with serving(settings) as client:
        body = client.post(query)
    assert "errors" not in body, body["errors"]
    cost = body["extensions"]["cost"]
    assert 0 < cost["actual"] <= cost["estimated"] <= 50
    name = "createdAt" if key == "CREATED_AT" else "updatedAt"
    nodes = [e["node"] for e in body["data"]["contacts"]["edges"]]
    moments = [(True, None) if n[name] is None else (False, moment(n[name])) for n in nodes]
    assert len(moments) == 10
    assert moments == sorted(moments, reverse=direction == "DESC")
