"""Walk every connection of every provider through the gateway over real HTTP."""

from __future__ import annotations

import base64

import pytest

from gateway.demo import demo_kinds
from tests.conftest import answer
from tests.integration.truth import ENTITIES, remote_ids

pytestmark = pytest.mark.integration

FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
CASES = [(kind, entity) for kind in demo_kinds() for entity in ENTITIES[kind]]

PAGE = """
query Page($provider: String!, $first: Int, $after: String, $last: Int, $before: String) {
  list: %s(provider: $provider, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id provider remoteId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def walk(gateway, field, provider, *, forward):
    ids: list[str] = []
    cursor, pages = None, 0
    while True:
        variables = {"provider": provider}
        variables.update(
            {"first": 37, "after": cursor} if forward else {"last": 23, "before": cursor}
        )
        page = gateway.data(PAGE % field, variables)["list"]
        edges = page["edges"]
        info = page["pageInfo"]
        assert len(edges) == (37 if forward else 23) or not (
            info["hasNextPage"] if forward else info["hasPreviousPage"]
        )
        if edges:
            assert info["startCursor"] == edges[0]["cursor"]
            assert info["endCursor"] == edges[-1]["cursor"]
        batch = [e["node"]["remoteId"] for e in edges]
        ids = ids + batch if forward else batch + ids
        pages += 1
        if forward and not info["hasNextPage"]:
            return ids, page["totalCount"], pages
        if not forward and not info["hasPreviousPage"]:
            return ids, page["totalCount"], pages
        cursor = info["endCursor"] if forward else info["startCursor"]


@pytest.mark.parametrize(("kind", "entity"), CASES)
def test_walk_forward_and_backward_equals_the_emulator_data(gateway, emulators, kind, entity):
    truth = remote_ids(kind, emulators[kind], entity)
    assert len(truth) >= 100
    providers = gateway.data("{ providers { name capabilities { canCount } } }")["providers"]
    counts = next(p["capabilities"]["canCount"] for p in providers if p["name"] == kind)
    forward, total, pages = walk(gateway, FIELDS[entity], kind, forward=True)
    assert forward == truth
    # Where the API gives no count, totalCount is null, never a guess.
    assert total == (len(truth) if counts else None)
    assert pages == -(-len(truth) // 37)
    backward, total, _ = walk(gateway, FIELDS[entity], kind, forward=False)
    assert backward == truth
    assert total == (len(truth) if counts else None)


@pytest.mark.parametrize(("kind", "entity"), CASES)
def test_node_and_nodes_round_trip(gateway, kind, entity):
    page = gateway.data(PAGE % FIELDS[entity], {"provider": kind, "first": 5})["list"]
    nodes = [e["node"] for e in page["edges"]]
    for node in nodes:
        got = gateway.data(
            "query($id: ID!) { node(id: $id) { id ... on Record { provider remoteId } } }",
            {"id": node["id"]},
        )["node"]
        assert got == node
    got = gateway.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Record { remoteId } } }",
        {"ids": [n["id"] for n in reversed(nodes)]},
    )["nodes"]
    assert [n["id"] for n in got] == [n["id"] for n in reversed(nodes)]


def global_id(type_name: str, key: str) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def test_unknown_remote_id_is_null_not_an_error(gateway):
    body = gateway.post(
        "query($id: ID!) { node(id: $id) { id } }", {"id": global_id("Contact", "revyops:999999")}
    )
    assert answer(body) == {"data": {"node": None}}


@pytest.mark.parametrize(
    "bad", ["not-an-id", global_id("Spaceship", "revyops:1"), global_id("Contact", "nocolon")]
)
def test_malformed_node_id_is_bad_user_input(gateway, bad):
    body = gateway.post("query($id: ID!) { node(id: $id) { id } }", {"id": bad})
    assert body["data"] == {"node": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == "id"
    assert error["path"] == ["node"]
