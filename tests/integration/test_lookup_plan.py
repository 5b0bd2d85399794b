"""The lookup planner over real HTTP: related records by the cheapest plan each API allows,
counted at the emulators, and answers equal to the emulators' own data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions
from gateway.demo import DEMO_CREDENTIALS
from gateway.providers import create_emulator
from gateway.records import Entity, Link
from gateway.servers import ServerThread
from tests.support.clients import GraphQLClient, cost
from tests.support.ids import gid
from tests.support.kinds import batched_lookups, with_links
from tests.support.knowledge import companies, contact_companies
from tests.support.servers import client_on
from tests.support.walk import Page, Paging, walk

pytestmark = pytest.mark.integration


def contacts_with(company: str) -> str:
    return (
        "query($p: String!, $n: Int!) { contacts(provider: $p, first: $n) "
        f"{{ edges {{ node {{ remoteId name company {company} }} }} }} }}"
    )


@pytest.fixture(scope="module")
def uncached(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    with client_on(emulators, cache=False) as client:
        yield client


@pytest.fixture
def fresh(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    """A gateway with its cache, empty: the first query is cold."""
    with client_on(emulators) as client:
        yield client


def check_companies(
    kind: str, url: str, edges: list[dict[str, Any]], fields: tuple[str, ...]
) -> None:
    """Each contact's company is the one the emulator links it to, with its fields."""
    links = contact_companies(kind, url, len(edges))
    truth = companies(kind, url)
    assert [e["node"]["remoteId"] for e in edges] == list(links)
    for edge in edges:
        node = edge["node"]
        expected = links[node["remoteId"]]
        if expected is None:
            assert node["company"] is None
            continue
        assert node["company"]["remoteId"] == expected
        for name in fields:
            assert node["company"][name] == truth[expected][name], (node, name)


@pytest.mark.parametrize(
    "kind",
    [k for k in with_links(Link.CONTACT_COMPANY) if k in batched_lookups(Entity.COMPANY)],
)
def test_contacts_with_company_id_and_name_cost_at_most_three(emulators, uncached, kind):
    query = contacts_with("{ id remoteId name }")
    ten, cost_ten = cost(emulators, kind, uncached, query, p=kind, n=10)
    fifty, cost_fifty = cost(emulators, kind, uncached, query, p=kind, n=50)
    assert cost_ten == cost_fifty <= 3
    check_companies(kind, emulators[kind], fifty["contacts"]["edges"], ("name",))
    check_companies(kind, emulators[kind], ten["contacts"]["edges"], ("name",))


def test_haste_inline_company_costs_nothing_extra(emulators, uncached):
    _, bare = cost(emulators, "haste", uncached, contacts_with("{ __typename }"), p="haste", n=50)
    fragments = """
    query($p: String!, $n: Int!) { contacts(provider: $p, first: $n) { edges { node {
      remoteId company { ... on Company { id name } ...Named __typename }
    } } } }
    fragment Named on Company { remoteId provider }"""
    for query in (contacts_with("{ id remoteId name }"), fragments):
        data, requests = cost(emulators, "haste", uncached, query, p="haste", n=50)
        assert requests == bare == 1  # the contacts' page, nothing for their companies
        check_companies("haste", emulators["haste"], data["contacts"]["edges"], ("name",))


@pytest.mark.parametrize(
    "query",
    [
        contacts_with("{ remoteId name domain }"),
        contacts_with("{ ...Full }") + " fragment Full on Company { remoteId name domain }",
        # A directive makes the selection a guess: looked up, to be safe.
        contacts_with("{ name remoteId @include(if: true) domain }"),
    ],
)
def test_fields_the_api_does_not_send_inline_are_looked_up(emulators, uncached, query):
    data, requests = cost(emulators, "haste", uncached, query, p="haste", n=50)
    # The page, then the 200 companies read whole in two pages of 100: not a GET each.
    assert requests == 3
    check_companies("haste", emulators["haste"], data["contacts"]["edges"], ("name", "domain"))


def test_a_directive_on_covered_fields_still_answers(emulators, uncached):
    query = contacts_with("{ name remoteId @skip(if: false) }")
    data, requests = cost(emulators, "haste", uncached, query, p="haste", n=10)
    assert requests <= 3
    check_companies("haste", emulators["haste"], data["contacts"]["edges"], ("name",))


def test_revyops_companies_of_100_contacts_cost_two_cold_and_none_warm(emulators, fresh):
    query = contacts_with("{ name }")
    cold_data, cold = cost(emulators, "revyops", fresh, query, p="revyops", n=100)
    warm_data, warm = cost(emulators, "revyops", fresh, query, p="revyops", n=100)
    assert cold <= 2  # the page of contacts, the companies in one page of up to 1,000
    assert warm == 0
    assert warm_data == cold_data
    edges = [{"node": {**e["node"]}} for e in cold_data["contacts"]["edges"]]
    links = contact_companies("revyops", emulators["revyops"], 100)
    truth = companies("revyops", emulators["revyops"])
    for edge in edges:
        expected = links[edge["node"]["remoteId"]]
        name = None if expected is None else {"name": truth[expected]["name"]}
        assert edge["node"]["company"] == name


def test_a_write_clears_the_whole_read(emulators, fresh):
    query = contacts_with("{ id name }")
    data, _ = cost(emulators, "revyops", fresh, query, p="revyops", n=20)
    node = next(e["node"]["company"] for e in data["contacts"]["edges"] if e["node"]["company"])
    mutation = """
    mutation($id: ID!, $name: String!) {
      updateCompany(input: {id: $id, name: $name}) { company { name } userErrors { message } }
    }"""
    renamed = node["name"] + " (renamed)"
    try:
        fresh.data(mutation, {"id": node["id"], "name": renamed})
        again, requests = cost(emulators, "revyops", fresh, query, p="revyops", n=20)
        assert requests > 0
        names = {
            e["node"]["company"]["name"] for e in again["contacts"]["edges"] if e["node"]["company"]
        }
        assert renamed in names
    finally:
        fresh.data(mutation, {"id": node["id"], "name": node["name"]})


NESTED = """
query($p: String!, $n: Int!) { companies(provider: $p, first: $n) { edges { node {
  remoteId contacts(first: 3) { edges { node { remoteId } } pageInfo { hasNextPage } }
} } } }"""
WHOLE = """
query($p: String!, $n: Int!) { companies(provider: $p, first: $n) { edges { node {
  remoteId contacts(first: 100) { edges { node { remoteId } } }
} } } }"""


@pytest.mark.parametrize("kind", with_links(Link.COMPANY_CONTACTS))
def test_nested_windows_of_20_companies(emulators, uncached, naive_gateway, kind):
    data, requests = cost(emulators, kind, uncached, NESTED, p=kind, n=20)
    before, naive_requests = cost(emulators, kind, naive_gateway, NESTED, p=kind, n=20)
    assert data == before  # cursors aside (each gateway has its own secret)
    whole = uncached.data(WHOLE, {"p": kind, "n": 20})
    for got, full in zip(data["companies"]["edges"], whole["companies"]["edges"], strict=True):
        ids = [e["node"]["remoteId"] for e in full["node"]["contacts"]["edges"]]
        window = got["node"]["contacts"]
        assert [e["node"]["remoteId"] for e in window["edges"]] == ids[:3]
        assert window["pageInfo"]["hasNextPage"] == (len(ids) > 3)
    assert requests < naive_requests
    if kind == "revyops":
        # The companies' page, their domains in one read whole (not a GET each), and the
        # contacts of each company by its domain.
        assert requests == 1 + 1 + 20


@pytest.fixture(scope="module")
def naive_gateway(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    with client_on(emulators, cache=False, batching=False) as client:
        yield client


PAGE = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  node(id: $id) { ... on Company {
    contacts(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { remoteId } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  } }
}"""


@pytest.mark.parametrize("kind", with_links(Link.COMPANY_CONTACTS))
def test_nested_paging_forward_and_backward_matches_the_whole_list(emulators, uncached, kind):
    whole = uncached.data(WHOLE.replace("remoteId contacts", "id contacts"), {"p": kind, "n": 8})
    lists = {
        c["node"]["id"]: [e["node"]["remoteId"] for e in c["node"]["contacts"]["edges"]]
        for c in whole["companies"]["edges"]
    }
    company = max(lists, key=lambda i: len(lists[i]))
    expected = lists[company]
    assert len(expected) >= 3

    def window(paging: Paging) -> Page:
        contacts: Page = uncached.data(PAGE, {"id": company, **paging})["node"]["contacts"]
        return contacts

    assert walk(window, 2).ids() == expected
    backward = walk(window, 2, forward=False)
    assert backward.ids() == expected
    # A cursor stays bound to its parent: another company's list refuses it.
    other = next(i for i in lists if i != company)
    cursor = backward.last["pageInfo"]["endCursor"]
    body = uncached.post(PAGE, {"id": other, "first": 2, "after": cursor})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


LONG = """
query($id: ID!, $first: Int, $after: String, $last: Int) {
  node(id: $id) { ... on Company { remoteId contacts(first: $first, after: $after, last: $last) {
    totalCount edges { cursor node { remoteId firstName } } pageInfo { hasNextPage endCursor }
  } } }
}"""
BY_COMPANY = """
query($company: ID!) {
  contacts(provider: "basicsos", first: 3, filter: {companyId: {eq: $company}}) {
    edges { node { remoteId } }
  }
}"""


def test_a_nested_window_of_a_long_child_list_reads_one_block():
    """BasicsOS lists contacts by company in ranges: `contacts(first: 3)` of a company
    with 150 of them reads their first block, which the next window and the root list
    filtered by that company share, not the whole list."""
    emulator = create_emulator("basicsos", EmulatorOptions(rate_limits=False))
    with ServerThread(emulator) as upstream:
        headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['basicsos']['token']}"}
        with httpx.Client(base_url=upstream.url, headers=headers) as api:
            company = api.post("/api/companies", json={"name": "Many Contacts"}).json()["id"]
            for n in range(150):
                row = {"firstName": f"C{n}", "lastName": "Long", "companyId": company}
                assert api.post("/api/contacts", json=row).status_code == 201
        urls = {"basicsos": upstream.url}
        with client_on(urls) as client:
            node = gid("Company", "basicsos", str(company))
            client.data(
                "query($id: ID!) { node(id: $id) { ... on Company { name } } }", {"id": node}
            )
            # The company itself is cached now; what follows costs only the contacts.
            first, requests = cost(urls, "basicsos", client, LONG, id=node, first=3)
            assert requests == 1
            window = first["node"]["contacts"]
            assert window["totalCount"] == 150
            assert window["pageInfo"]["hasNextPage"]
            after = window["pageInfo"]["endCursor"]
            second, requests = cost(urls, "basicsos", client, LONG, id=node, first=3, after=after)
            assert requests == 0
            listed, requests = cost(urls, "basicsos", client, BY_COMPANY, company=node)
            assert requests == 0
            ids = [e["node"]["remoteId"] for e in window["edges"]]
            assert ids == [e["node"]["remoteId"] for e in listed["contacts"]["edges"]]
            assert ids[-1] not in [
                e["node"]["remoteId"] for e in second["node"]["contacts"]["edges"]
            ]
            # The far end of the list: its last block only.
            last, requests = cost(urls, "basicsos", client, LONG, id=node, last=3)
            assert requests == 1
            names = [e["node"]["firstName"] for e in last["node"]["contacts"]["edges"]]
            assert names == ["C147", "C148", "C149"]


def test_cursors_of_the_whole_list_plan_serve_the_block_plan(gateway):
    """Companies asked together read their whole child lists in one request; a company
    asked alone reads blocks. A cursor one plan gave, the other continues from."""
    together = gateway.data(
        '{ companies(provider: "basicsos", first: 8) { edges { node { id contacts(first: 100) {'
        " edges { cursor node { remoteId } } } } } } }"
    )
    lists = {
        c["node"]["id"]: c["node"]["contacts"]["edges"] for c in together["companies"]["edges"]
    }
    company = max(lists, key=lambda i: len(lists[i]))
    edges = lists[company]
    assert len(edges) >= 3
    alone = gateway.data(PAGE, {"id": company, "first": 2, "after": edges[0]["cursor"]})
    got = [e["node"]["remoteId"] for e in alone["node"]["contacts"]["edges"]]
    assert got == [e["node"]["remoteId"] for e in edges[1:3]]
    back = gateway.data(PAGE, {"id": company, "last": 1, "before": edges[2]["cursor"]})
    assert [e["node"]["remoteId"] for e in back["node"]["contacts"]["edges"]] == [
        edges[1]["node"]["remoteId"]
    ]
