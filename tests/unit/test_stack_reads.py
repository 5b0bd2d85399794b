"""Reads through the whole stack in process: every provider's connections walked both ways
against the emulator's own data, node lookups, relationships, filters, orders and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.datasources import source_class
from gateway.pagination.connection import ConnectionArgs
from gateway.records import Entity, Link
from tests.support.clients import answer
from tests.support.ids import gid
from tests.support.kinds import ALL_KINDS, ENTITY_CASES, with_links
from tests.support.knowledge import knowledge
from tests.support.relay_spec import expected
from tests.support.stack import Stack, remote_ids, running_stack
from tests.support.walk import Page, Paging, Walk, walk_async

FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
TYPES = {"contact": "Contact", "company": "Company", "deal": "Deal", "note": "Note"}
CASES = ENTITY_CASES
PAGE = """
query($p: String!, $first: Int, $after: String, $last: Int, $before: String) {
  list: %s(provider: $p, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id provider remoteId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
CAPABILITIES = (
    "{ providers { name kind paginationStyle capabilities { canCount filters sortable } } }"
)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as running:
        yield running


async def paged(stack: Stack, field: str, kind: str, *, forward: bool) -> Walk:
    async def fetch(paging: Paging) -> Page:
        page: Page = (await stack.data(PAGE % field, {"p": kind, **paging}))["list"]
        return page

    return await walk_async(fetch, 13 if forward else 11, forward=forward)


@pytest.mark.parametrize(("kind", "entity"), CASES)
async def test_walks_both_ways_equal_the_emulator_data(
    stack: Stack, kind: str, entity: str
) -> None:
    truth = await remote_ids(stack.emulators[kind], kind, entity)
    assert len(truth) >= 30
    counts = source_class(kind).describe().can_count
    forward = await paged(stack, FIELDS[entity], kind, forward=True)
    assert forward.ids() == truth
    assert forward.last["totalCount"] == (len(truth) if counts else None)
    backward = await paged(stack, FIELDS[entity], kind, forward=False)
    assert backward.ids() == truth


# Windows from the cursor at `index` (from the end when negative), of `size` records.
WINDOWS = [(0, 5), (3, 1), (12, 20), (-1, 7), (-2, 30)]


@pytest.mark.parametrize(("kind", "entity"), CASES)
async def test_windows_from_any_cursor_follow_the_relay_spec(
    stack: Stack, kind: str, entity: str
) -> None:
    walked = await paged(stack, FIELDS[entity], kind, forward=True)
    ids, cursors = walked.ids(), walked.cursors
    for index, size in WINDOWS:
        at = index % len(ids)
        for args, after, before in (
            (ConnectionArgs(first=size), at, None),
            (ConnectionArgs(last=size), None, at),
        ):
            paging = {
                "first": args.first,
                "last": args.last,
                "after": None if after is None else cursors[after],
                "before": None if before is None else cursors[before],
            }
            page = (await stack.data(PAGE % FIELDS[entity], {"p": kind, **paging}))["list"]
            edges, has_previous, has_next = expected(len(ids), args, after, before)
            assert [e["node"]["remoteId"] for e in page["edges"]] == [ids[i] for i in edges]
            info = page["pageInfo"]
            assert (info["hasPreviousPage"], info["hasNextPage"]) == (has_previous, has_next), (
                paging
            )


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
    unknown = gid(TYPES[entity], kind, knowledge(kind).unknown_ids[Entity(entity)])
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
    for edge in body["data"]["companies"]["edges"]:
        nested = edge["node"]["contacts"]
        if nested is not None:
            assert len(nested["edges"]) <= 3


@pytest.mark.parametrize("kind", with_links(Link.CONTACT_COMPANY))
async def test_contacts_have_their_companies(stack: Stack, kind: str) -> None:
    body = await stack.post(RELATIONS, {"p": kind})
    contacts = body["data"]["contacts"]["edges"]
    linked = [c["node"] for c in contacts if c["node"]["company"] is not None]
    assert linked, "the seed gives most contacts a company"


@pytest.mark.parametrize("kind", with_links(Link.CONTACT_COMPANY, Link.COMPANY_CONTACTS))
async def test_a_companys_contacts_name_it_back(stack: Stack, kind: str) -> None:
    body = await stack.post(RELATIONS, {"p": kind})
    for company in body["data"]["companies"]["edges"]:
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
    edges { node { remoteId firstName lastName status createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""
# Where contacts link to companies.
LIST_WITH_COMPANY = LIST.replace("createdAt", "createdAt company { id }")
FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"lastName": {"eq": "Turing"}}, lambda n: n["lastName"] == "Turing"),
    ({"lastName": {"neq": "Turing"}}, lambda n: n["lastName"] != "Turing"),
    ({"lastName": {"gt": "Stroustrup"}}, lambda n: n["lastName"] > "Stroustrup"),
    ({"lastName": {"in": ["Knuth", "Liskov"]}}, lambda n: n["lastName"] in ("Knuth", "Liskov")),
    ({"lastName": {"startsWith": "ho"}}, lambda n: n["lastName"].lower().startswith("ho")),
    ({"firstName": {"contains": "RAC"}}, lambda n: "rac" in n["firstName"].lower()),
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
COMPANY_FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"companyId": {"isNull": True}}, lambda n: n["company"] is None),
]
REFUSED = {"UNSUPPORTED", "BAD_USER_INPUT"}


class Refused(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


async def listed(
    stack: Stack, kind: str, filter: Any = None, order: Any = None, query: str = LIST
) -> dict[str, Any]:
    """Every node, or the body of the first refused page."""

    async def fetch(paging: Paging) -> Page:
        variables = {"p": kind, "filter": filter, "order": order, **paging}
        body = await stack.post(query, variables)
        if "errors" in body:
            raise Refused(body)
        page: Page = body["data"]["contacts"]
        return page

    try:
        return {"nodes": (await walk_async(fetch)).nodes}
    except Refused as refused:
        return refused.body


async def answered(stack: Stack, kind: str, query: str, cases: list[tuple[Any, Any]]) -> int:
    """How many of the filters of `cases` the provider answered, each with exactly the
    nodes its predicate keeps; the others must be refused."""
    everything = (await listed(stack, kind, query=query))["nodes"]
    count = 0
    for filter, keep in cases:
        got = await listed(stack, kind, filter, query=query)
        if "errors" in got:
            codes = {e["extensions"]["code"] for e in got["errors"]}
            assert codes <= REFUSED, got["errors"]
            continue
        count += 1
        assert got["nodes"] == [n for n in everything if keep(n)], filter
    return count


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_filters_keep_what_the_predicate_keeps_or_are_refused(
    stack: Stack, kind: str
) -> None:
    declared = Entity.CONTACT in source_class(kind).describe().query_support
    assert await answered(stack, kind, LIST, FILTERS) or not declared


@pytest.mark.parametrize("kind", with_links(Link.CONTACT_COMPANY))
async def test_company_filters_keep_what_the_predicate_keeps_or_are_refused(
    stack: Stack, kind: str
) -> None:
    await answered(stack, kind, LIST_WITH_COMPANY, COMPANY_FILTERS)


ORDERS = [("LAST_NAME", "lastName"), ("FIRST_NAME", "firstName"), ("CREATED_AT", "createdAt")]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_orders_sort_or_are_refused(stack: Stack, kind: str) -> None:
    for field, key in ORDERS:
        for direction in ("ASC", "DESC"):
            got = await listed(stack, kind, order=[{"field": field, "direction": direction}])
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
