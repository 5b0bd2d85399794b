"""Walk every connection of every provider through the gateway over real HTTP."""

from __future__ import annotations

import pytest

from tests.support.clients import GraphQLClient, answer
from tests.support.ids import raw_id
from tests.support.kinds import ENTITY_CASES
from tests.support.knowledge import remote_ids
from tests.support.walk import Walk, walk_field

pytestmark = pytest.mark.integration

FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
CASES = ENTITY_CASES

PAGE = """
query Page($provider: String!, $first: Int, $after: String, $last: Int, $before: String) {
  list: %s(provider: $provider, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id provider remoteId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def paged(gateway: GraphQLClient, field: str, provider: str, *, forward: bool) -> Walk:
    size = 37 if forward else 23
    return walk_field(gateway, PAGE % field, "list", {"provider": provider}, size, forward=forward)


@pytest.mark.parametrize(("kind", "entity"), CASES)
def test_walk_forward_and_backward_equals_the_emulator_data(gateway, emulators, kind, entity):
    truth = remote_ids(kind, emulators[kind], entity)
    assert len(truth) >= 100
    providers = gateway.data("{ providers { name capabilities { canCount } } }")["providers"]
    counts = next(p["capabilities"]["canCount"] for p in providers if p["name"] == kind)
    forward = paged(gateway, FIELDS[entity], kind, forward=True)
    assert forward.ids() == truth
    # Where the API gives no count, totalCount is null, never a guess.
    assert forward.last["totalCount"] == (len(truth) if counts else None)
    assert len(forward.pages) == -(-len(truth) // 37)
    backward = paged(gateway, FIELDS[entity], kind, forward=False)
    assert backward.ids() == truth
    assert backward.last["totalCount"] == (len(truth) if counts else None)


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


def test_unknown_remote_id_is_null_not_an_error(gateway):
    body = gateway.post(
        "query($id: ID!) { node(id: $id) { id } }", {"id": raw_id("Contact:revyops:999999")}
    )
    assert answer(body) == {"data": {"node": None}}


@pytest.mark.parametrize(
    "bad", ["not-an-id", raw_id("Spaceship:revyops:1"), raw_id("Contact:nocolon")]
)
def test_malformed_node_id_is_bad_user_input(gateway, bad):
    body = gateway.post("query($id: ID!) { node(id: $id) { id } }", {"id": bad})
    assert body["data"] == {"node": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == "id"
    assert error["path"] == ["node"]
