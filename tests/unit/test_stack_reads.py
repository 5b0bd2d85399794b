"""Reads through the whole stack in process: every provider's connections walked both ways
against the emulator's own data, node lookups, relationships, filters, orders and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.datasources import source_class
from gateway.records import Entity
from tests.conftest import answer, gid
from tests.providers import ALL_KINDS
from tests.unit.stack import Stack, remote_ids, running_stack

FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
TYPES = {"contact": "Contact", "company": "Company", "deal": "Deal", "note": "Note"}
CASES = [
    (kind, entity)
    for kind in ALL_KINDS
    for entity in FIELDS
    if Entity(entity) in source_class(kind).describe().entities
]
PAGE = """
query($p: String!, $first: Int, $after: String, $last: Int, $before: String) {
  list: %s(provider: $p, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id provider remoteId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
# Ids of the right shape that name no record, by (kind, entity or "" for all); others "nope-0".
UNKNOWN = {
    ("revyops", ""): "999999",
    ("basicsos", ""): "999999",
    ("basicsos", "note"): "contact_notes/999999",
}
CAPABILITIES = (
    "{ providers { name kind paginationStyle capabilities { canCount filters sortable } } }"
)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as running:
        yield running


async def walk(stack: Stack, field: str, kind: str, *, forward: bool) -> tuple[list[str], Any]:
    ids: list[str] = []
    cursor = None
    size = 13 if forward else 11
    while True:
        variables: dict[str, Any] = {"p": kind}
        variables.update(
            {"first": size, "after": cursor} if forward else {"last": size, "before": cursor}
        )
        page = (await stack.data(PAGE % field, variables))["list"]
        edges, info = page["edges"], page["pageInfo"]
        more = info["hasNextPage"] if forward else info["hasPreviousPage"]
        assert len(edges) == size or not more
        if edges:
            assert (info["startCursor"], info["endCursor"]) == (
                edges[0]["cursor"],
                edges[-1]["cursor"],
            )
        batch = [e["node"]["remoteId"] for e in edges]
        ids = ids + batch if forward else batch + ids
        if not more:
            return ids, page["totalCount"]
        cursor = info["endCursor"] if forward else info["startCursor"]


@pytest.mark.parametrize(("kind", "entity"), CASES)
async def test_walks_both_ways_equal_the_emulator_data(
    stack: Stack, kind: str, entity: str
) -> None:
    truth = await remote_ids(stack.emulators[kind], kind, entity)
    assert len(truth) >= 30
    counts = source_class(kind).describe().can_count
    forward, total = await walk(stack, FIELDS[entity], kind, forward=True)
    assert forward == truth
    assert total == (len(truth) if counts else None)
    backward, total = await walk(stack, FIELDS[entity], kind, forward=False)
    assert backward == truth


@pytest.mark.parametrize(("kind", "entity"), CASES)
async def test_node_and_nodes_round_trip(stack: Stack, kind: str, entity: str) -> None:
    page = (await stack.data(PAGE % FIELDS[entity], {"p": kind, "first": 4}))["list"]
    nodes = [e["node"] for e in page["edges"]]
    for node in nodes:
        got = await stack.data(
            "query($id: ID!) { node(id: $id) { id ... on Record { provider remoteId } } }",
            {"id": node["id"]},
        )
        assert got["node"] == node
    got = await stack.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [n["id"] for n in reversed(nodes)]},
    )
    assert [n["id"] for n in got["nodes"]] == [n["id"] for n in reversed(nodes)]
    # An id the provider does not know is null, not an error.
    remote = UNKNOWN.get((kind, entity), UNKNOWN.get((kind, ""), "nope-0"))
    unknown = gid(TYPES[entity], kind, remote)
    body = await stack.post("query($id: ID!) { node(id: $id) { id } }", {"id": unknown})
    assert answer(body) == {"data": {"node": None}}, body


@pytest.mark.parametrize(
    "bad", ["not-an-id", gid("Spaceship", "revyops", "1"), "Q29udGFjdDpub2NvbG9u"]
)
async def test_malformed_ids_are_bad_user_input(stack: Stack, bad: str) -> None:
    body = await stack.post("query($id: ID!) { node(id: $id) { id } }", {"id": bad})
    assert body["data"] == {"node": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == "id"


async def test_unknown_provider_and_forged_cursor_are_refused(stack: Stack) -> None:
    body = await stack.post('{ contacts(provider: "nope", first: 1) { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await stack.post(
        '{ contacts(provider: "haste", first: 1, after: "forged") { totalCount } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await stack.post('{ contacts(provider: "haste", first: -1) { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # A cursor of one provider does not page another.
    page = (await stack.data(PAGE % "contacts", {"p": "attio", "first": 2}))["list"]
    cursor = page["pageInfo"]["endCursor"]
    body = await stack.post(PAGE % "contacts", {"p": "haste", "first": 2, "after": cursor})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


RELATIONS = """
query($p: String!) {
  contacts(provider: $p, first: 12) { edges { node {
    remoteId name firstName lastName emails { address } phones { number } tags status
    company { remoteId name domain employeeCount address { city } }
    deals(first: 2) { edges { node { remoteId name amount { amount currency } status } } }
    notes(first: 2) { edges { node { remoteId title body target { __typename } } } }
  } } }
  companies(provider: $p, first: 5) { edges { node {
    remoteId name contacts(first: 3) { totalCount edges { node { remoteId } } }
    deals(first: 2) { edges { node { remoteId company { remoteId } } } }
  } } }
}"""


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_relationships_resolve_or_say_unsupported(stack: Stack, kind: str) -> None:
    body = await stack.post(RELATIONS, {"p": kind})
    # A relationship the provider lacks is UNSUPPORTED on that field alone; the rest answers.
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert codes <= {"UNSUPPORTED"}, body["errors"]
    contacts = body["data"]["contacts"]["edges"]
    assert len(contacts) == 12
    linked = [c["node"] for c in contacts if c["node"]["company"] is not None]
    assert linked, "the seed gives most contacts a company"
    companies = body["data"]["companies"]["edges"]
    for edge in companies:
        nested = edge["node"]["contacts"]
        if nested is not None:
            assert len(nested["edges"]) <= 3
    # A company's contacts name it back.
    for company in companies:
        remote = company["node"]["remoteId"]
        for contact in (company["node"]["contacts"] or {"edges": []})["edges"]:
            got = await stack.data(
                "query($id: ID!) { node(id: $id) { ... on Contact { company { remoteId } } } }",
                {"id": gid("Contact", kind, contact["node"]["remoteId"])},
            )
            assert got["node"]["company"]["remoteId"] == remote


LIST = """
query($p: String!, $filter: ContactFilter, $order: [ContactOrder!], $after: String) {
  contacts(provider: $p, first: 50, after: $after, filter: $filter, orderBy: $order) {
    edges { node { remoteId firstName lastName status createdAt company { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"lastName": {"eq": "Turing"}}, lambda n: n["lastName"] == "Turing"),
    ({"lastName": {"neq": "Turing"}}, lambda n: n["lastName"] != "Turing"),
    ({"lastName": {"gt": "Stroustrup"}}, lambda n: n["lastName"] > "Stroustrup"),
    ({"lastName": {"in": ["Knuth", "Liskov"]}}, lambda n: n["lastName"] in ("Knuth", "Liskov")),
    ({"lastName": {"startsWith": "ho"}}, lambda n: n["lastName"].lower().startswith("ho")),
    ({"firstName": {"contains": "RAC"}}, lambda n: "rac" in n["firstName"].lower()),
    ({"companyId": {"isNull": True}}, lambda n: n["company"] is None),
    ({"status": {"eq": "active"}}, lambda n: n["status"] == "active"),
    (
        {"createdAt": {"gte": "2024-01-03T00:00:00Z"}},
        lambda n: n["createdAt"] >= "2024-01-03T00:00:00",
    ),
    (
        {"or": [{"lastName": {"eq": "Knuth"}}, {"firstName": {"eq": "Ada"}}]},
        lambda n: n["lastName"] == "Knuth" or n["firstName"] == "Ada",
    ),
    (
        {"and": [{"lastName": {"gte": "T"}}, {"not": {"firstName": {"eq": "Ada"}}}]},
        lambda n: n["lastName"] >= "T" and n["firstName"] != "Ada",
    ),
]
REFUSED = {"UNSUPPORTED", "BAD_USER_INPUT"}


async def walk_list(
    stack: Stack, kind: str, filter: Any = None, order: Any = None
) -> dict[str, Any]:
    """Every node, or the body of the first refused page."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await stack.post(LIST, {"p": kind, "filter": filter, "order": order, "after": after})
        if "errors" in body:
            return body
        page = body["data"]["contacts"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return {"nodes": nodes}
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_filters_keep_what_the_predicate_keeps_or_are_refused(
    stack: Stack, kind: str
) -> None:
    everything = (await walk_list(stack, kind))["nodes"]
    declared = Entity.CONTACT in source_class(kind).describe().query_support
    answered = 0
    for filter, keep in FILTERS:
        got = await walk_list(stack, kind, filter)
        if "errors" in got:
            codes = {e["extensions"]["code"] for e in got["errors"]}
            assert codes <= REFUSED, got["errors"]
            continue
        answered += 1
        assert got["nodes"] == [n for n in everything if keep(n)], filter
    assert answered or not declared


ORDERS = [("LAST_NAME", "lastName"), ("FIRST_NAME", "firstName"), ("CREATED_AT", "createdAt")]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_orders_sort_or_are_refused(stack: Stack, kind: str) -> None:
    for field, key in ORDERS:
        for direction in ("ASC", "DESC"):
            got = await walk_list(stack, kind, order=[{"field": field, "direction": direction}])
            if "errors" in got:
                codes = {e["extensions"]["code"] for e in got["errors"]}
                assert codes <= REFUSED, got["errors"]
                continue
            values = [n[key] for n in got["nodes"] if n[key] is not None]
            assert values == sorted(values, key=str.lower, reverse=direction == "DESC") or (
                values == sorted(values, reverse=direction == "DESC")
            )
            assert len(got["nodes"]) == 90


async def test_providers_describe_themselves(stack: Stack) -> None:
    providers = (await stack.data(CAPABILITIES))["providers"]
    assert [p["name"] for p in providers] == list(ALL_KINDS)
    for p in providers:
        described = source_class(p["kind"]).describe()
        assert p["capabilities"]["canCount"] == described.can_count


async def test_a_costly_operation_is_refused_before_sending(stack: Stack) -> None:
    # Costly by nesting: the estimate multiplies the page sizes (the limit is the default).
    query = (
        '{ companies(provider: "haste", first: 100) { edges { node { contacts(first: 100) '
        "{ edges { node { deals(first: 100) { edges { node { notes(first: 100) "
        "{ edges { node { id } } } } } } } } } } } } }"
    )
    stats = (await stack.direct["haste"].get("/_emulator/stats")).json()["requests"]
    body = await stack.post(query)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "OPERATION_TOO_COSTLY"
    assert error["extensions"]["estimated"] > error["extensions"]["limit"]
    assert body["extensions"]["cost"]["actual"] == 0
    assert (await stack.direct["haste"].get("/_emulator/stats")).json()["requests"] == stats
