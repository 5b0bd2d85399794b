"""Relationships over real HTTP: right answers, and upstream requests that follow the
query's shape rather than its row count."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.demo import demo_provider
from gateway.pagination.connection import ConnectionArgs
from gateway.pagination.cursors import CursorCodec
from gateway.records import Entity, Link
from gateway.settings import ProviderSettings, Settings
from tests.support.clients import GraphQLClient, cost
from tests.support.kinds import with_links
from tests.support.knowledge import contact_companies
from tests.support.servers import client_on, serving
from tests.support.walk import Page, Paging, walk

pytestmark = pytest.mark.integration

CONTACTS = """
query($p: String!, $n: Int!) {
  contacts(provider: $p, first: $n) {
    edges { node { remoteId company { remoteId name } notes(first: 3) { edges { node { body } } } } }
  }
}
"""


@pytest.fixture(scope="module")
def uncached(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    with client_on(emulators, cache=False) as client:
        yield client


@pytest.fixture(scope="module")
def naive(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    # Naive mode is for comparisons: the N+1 it shows is above any sane cost limit.
    with client_on(emulators, cache=False, batching=False, max_operation_cost=100_000) as client:
        yield client


@pytest.fixture(scope="module")
def cached(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    with client_on(emulators) as client:
        yield client


def test_contact_company_matches_the_emulator(emulators, uncached):
    data, _ = cost(emulators, "basicsos", uncached, CONTACTS, p="basicsos", n=30)
    headers = {"Authorization": "Bearer bos_crm_demo_admin"}
    for edge in data["contacts"]["edges"]:
        node = edge["node"]
        row = httpx.get(
            f"{emulators['basicsos']}/api/contacts/{node['remoteId']}", headers=headers
        ).json()
        if row["companyId"] is None:
            assert node["company"] is None
            continue
        company = httpx.get(
            f"{emulators['basicsos']}/api/companies/{row['companyId']}", headers=headers
        ).json()
        assert node["company"] == {"remoteId": str(company["id"]), "name": company["name"]}
        notes = httpx.get(
            f"{emulators['basicsos']}/api/contact_notes",
            params={"filter": f'{{"contact_id": {row["id"]}}}', "range": "[0, 2]"},
            headers=headers,
        ).json()
        assert [n["node"]["body"] for n in node["notes"]["edges"]] == [n["text"] for n in notes]


@pytest.mark.parametrize("kind", ["basicsos"])
def test_batched_requests_do_not_grow_with_rows(emulators, uncached, naive, kind):
    _, ten = cost(emulators, kind, uncached, CONTACTS, p=kind, n=10)
    _, fifty = cost(emulators, kind, uncached, CONTACTS, p=kind, n=50)
    assert ten == fifty <= 3  # the list, its companies, its notes
    _, naive_fifty = cost(emulators, kind, naive, CONTACTS, p=kind, n=50)
    assert naive_fifty >= 10 * fifty


def test_singles_are_bounded_by_distinct_ids(emulators, uncached):
    query = (
        'query { contacts(provider: "revyops", first: 1) { edges { node { company { name } } } } }'
    )
    data, requests = cost(emulators, "revyops", uncached, query)
    companies = {
        e["node"]["company"]["name"] for e in data["contacts"]["edges"] if e["node"]["company"]
    }
    # One company: a GET for it is cheaper than reading the companies whole.
    assert len(companies) == 1
    assert requests == 1 + len(companies)
    many = query.replace("first: 1", "first: 50")
    _, requests = cost(emulators, "revyops", uncached, many)
    assert requests == 2  # the page, then every company in one page of up to 1,000


def test_the_same_query_again_costs_nothing(emulators, cached):
    first, cold = cost(emulators, "basicsos", cached, CONTACTS, p="basicsos", n=20)
    again, warm = cost(emulators, "basicsos", cached, CONTACTS, p="basicsos", n=20)
    assert cold > 0
    assert warm == 0
    assert again == first


def test_tenants_never_share_cache_entries(emulators):
    providers = [
        ProviderSettings(
            name=name,
            kind="basicsos",
            base_url=emulators["basicsos"],
            credentials={"token": token},
            rate_limit=False,
        )
        for name, token in (("one", "bos_crm_demo_admin"), ("two", "bos_crm_tenant_2"))
    ]
    query = "query($p: String!) { contacts(provider: $p, first: 5) { edges { node { name } } } }"
    with serving(Settings(providers=providers)) as client:
        one, cost_one = cost(emulators, "basicsos", client, query, p="one")
        two, cost_two = cost(emulators, "basicsos", client, query, p="two")
    assert cost_one == cost_two == 1  # the second tenant went upstream, not to the cache
    assert one != two


def test_a_missing_link_is_unsupported_for_that_field_only(gateway):
    body = gateway.post(
        '{ deals(provider: "basicsos", first: 2) { edges { node { name contacts { edges { node { name } } } } } } }'
    )
    assert body["data"]["deals"]["edges"][0]["node"]["name"]
    assert body["data"]["deals"]["edges"][0]["node"]["contacts"] is None
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"UNSUPPORTED"}
    assert body["errors"][0]["path"][-1] == "contacts"


def test_nested_connections_page_like_root_ones(gateway, emulators):
    query = """
    query($after: String) {
      companies(provider: "basicsos", first: 1) {
        edges { node { contacts(first: 2, after: $after) {
          totalCount edges { cursor node { remoteId } } pageInfo { hasNextPage endCursor }
        } } }
      }
    }"""

    def fetch(paging: Paging) -> Page:
        contacts: Page = gateway.data(query, paging)["companies"]["edges"][0]["node"]["contacts"]
        return contacts

    walked = walk(fetch)
    seen = walked.ids()
    assert len(seen) == len(set(seen)) == walked.last["totalCount"]


def test_note_target_resolves_to_its_type(gateway):
    data = gateway.data(
        '{ notes(provider: "basicsos", first: 40) { edges { node { remoteId target {'
        " __typename ... on Contact { name } ... on Company { name } ... on Deal { name } } } } } }"
    )
    kinds = {e["node"]["target"]["__typename"] for e in data["notes"]["edges"]}
    assert kinds == {"Contact"}  # the first 40 notes are contact notes (table order)


@pytest.mark.parametrize("kind", with_links(Link.CONTACT_COMPANY))
def test_contact_company_on_every_provider(gateway, emulators, kind):
    truth = contact_companies(kind, emulators[kind])
    data = gateway.data(
        "query($p: String!) { contacts(provider: $p, first: 30) "
        "{ edges { node { remoteId company { remoteId } } } } }",
        {"p": kind},
    )
    got = {
        e["node"]["remoteId"]: (e["node"]["company"] or {}).get("remoteId")
        for e in data["contacts"]["edges"]
    }
    assert got == truth
    assert any(v is None for v in got.values())
    assert any(v for v in got.values())


@pytest.mark.parametrize("kind", ["attio", "haste", "redivis"])
def test_company_contacts_are_the_contacts_pointing_at_it(gateway, kind):
    data = gateway.data(
        "query($p: String!) { companies(provider: $p, first: 5) { edges { node { remoteId "
        "contacts(first: 100) { edges { node { remoteId company { remoteId } } } } } } } }",
        {"p": kind},
    )
    seen = 0
    for edge in data["companies"]["edges"]:
        company = edge["node"]
        for contact in company["contacts"]["edges"]:
            assert contact["node"]["company"]["remoteId"] == company["remoteId"]
            seen += 1
    assert seen > 0


@pytest.mark.parametrize("kind", ["basicsos", "attio", "redivis"])
def test_nested_connections_filter_and_order(gateway, kind):
    query = """
    query($p: String!, $filter: ContactFilter, $order: [ContactOrder!]) {
      companies(provider: $p, first: 10) { edges { node {
        contacts(first: 100, filter: $filter, orderBy: $order) {
          totalCount edges { node { remoteId firstName lastName } }
        }
      } } }
    }"""
    whole = gateway.data(query, {"p": kind})["companies"]["edges"]
    shaped = gateway.data(
        query,
        {
            "p": kind,
            "filter": {
                "or": [{"lastName": {"startsWith": "h"}}, {"firstName": {"in": ["Ada", "Alan"]}}]
            },
            "order": [{"field": "LAST_NAME", "direction": "DESC"}, {"field": "FIRST_NAME"}],
        },
    )["companies"]["edges"]
    kept_any = False
    for full, part in zip(whole, shaped, strict=True):
        nodes = [e["node"] for e in full["node"]["contacts"]["edges"]]
        kept = [
            n
            for n in nodes
            if n["lastName"].lower().startswith("h") or n["firstName"] in ("Ada", "Alan")
        ]
        kept.sort(key=lambda n: n["firstName"])
        kept.sort(key=lambda n: n["lastName"], reverse=True)
        got = part["node"]["contacts"]
        assert [e["node"]["remoteId"] for e in got["edges"]] == [n["remoteId"] for n in kept]
        assert got["totalCount"] == len(kept)
        kept_any = kept_any or bool(kept)
    assert kept_any


@pytest.mark.parametrize("kind", ["attio", "haste", "redivis"])
def test_inline_children_match_the_records_links(emulators, kind):
    """The children path for links the records carry inline (used when a parent came
    without them) gives the same contacts as the deal's own list."""
    import asyncio

    from gateway.datasources import source_class
    from gateway.upstream import open_client

    settings = demo_provider(kind, emulators[kind]).model_copy(update={"rate_limit": False})
    cls = source_class(kind)

    async def run() -> tuple[list[list[str]], list[list[str]]]:
        async with open_client(settings, cls.client_auth(settings)) as client:
            source = cls(settings, client, cache=False)
            window = await source.connection(
                Entity.DEAL, ConnectionArgs(first=10), CursorCodec(b"x")
            )
            deals = [e.node for e in window.edges]
            children = await source.children(Link.DEAL_CONTACTS, [d.remote_id for d in deals])
            groups = [group for group in children if not isinstance(group, Exception)]
            assert len(groups) == len(children), children
            return [[c.remote_id for c in group] for group in groups], [
                d.linked[Link.DEAL_CONTACTS] for d in deals
            ]

    got, expected = asyncio.run(run())
    assert got == expected
    assert any(expected)
