"""Every connection paged the way a frontend pages it, with a real GraphQL client (`gql`
over httpx): forward with first/after until hasNextPage is false, backward with
last/before until hasPreviousPage is false, each union checked against the emulators' data.

The documents are validated by the client against the committed schema.graphql, as a
frontend's codegen would. The emulators are this module's own, with a smaller world, so
their data is exactly the seed's (no other test's writes) and the walks stay quick.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.client import SyncClientSession
from gql.transport.httpx import HTTPXTransport

from emulators import EmulatorOptions
from emulators.seed import SeedContact, SeedWorld, build_world
from gateway.demo import demo_kinds
from gateway.servers import emulator_servers
from tests.support.ids import gid
from tests.support.kinds import ENTITY_CASES, NESTED_KINDS
from tests.support.knowledge import knowledge, remote_ids
from tests.support.servers import gateway_on
from tests.support.walk import Page, Paging, walk

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Sizes that are no multiple of the page sizes, so last pages come out short.
SIZES = {"companies": 120, "contacts": 410, "deals": 150, "notes": 230}
WORLD = build_world(**SIZES)
ROOT_PAGE = 50
NESTED_PAGE = 2
TYPES = {"contact": "Contact", "company": "Company", "deal": "Deal", "note": "Note"}
FIELDS = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
SINGULAR = {plural: entity for entity, plural in FIELDS.items()}

CHILD_KEYS = {
    "contacts": "emails { address }",
    "companies": "name",
    "deals": "name",
    "notes": "title body",
}
KEYS = """
  ... on Contact { emails { address } }
  ... on Company { name }
  ... on Deal { name }
  ... on Note { title body }
"""
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
ROOT_QUERY = f"""
query Root($provider: String!, $first: Int, $after: String, $last: Int, $before: String) {{
  page: %s(provider: $provider, first: $first, after: $after, last: $last, before: $before) {{
    edges {{ cursor node {{ remoteId }} }}
    {PAGE_INFO}
  }}
}}
"""
NESTED_QUERY = f"""
query Nested($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {{
  node(id: $id) {{
    {KEYS}
    ... on %s {{
      page: %s(first: $first, after: $after, last: $last, before: $before) {{
        edges {{ cursor node {{ %s }} }}
        {PAGE_INFO}
      }}
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[dict[str, str], str]]:
    options = EmulatorOptions(
        rate_limits=False,
        companies=SIZES["companies"],
        contacts=SIZES["contacts"],
        deals=SIZES["deals"],
        notes=SIZES["notes"],
    )
    with ExitStack() as stack:
        urls = emulator_servers(stack, demo_kinds(), options)
        gateway = stack.enter_context(gateway_on(urls))
        yield urls, gateway.url


@pytest.fixture(scope="module")
def session(servers) -> Iterator[SyncClientSession]:
    _, url = servers
    client = Client(
        transport=HTTPXTransport(url=f"{url}/graphql", timeout=60),
        schema=(ROOT / "schema.graphql").read_text(),
    )
    with client as session:
        yield session


def paged(
    session: SyncClientSession, query: str, variables: dict[str, Any], size: int, *, forward: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All nodes of a connection, in order, and the last answer's root (for parent checks)."""
    document = GraphQLRequest(query)
    holders: list[dict[str, Any]] = []

    def fetch(paging: Paging) -> Page:
        document.variable_values = {**variables, **paging}
        answer = session.execute(document)
        holders.append(answer.get("node", answer))
        page: Page = holders[-1]["page"]
        return page

    walked = walk(fetch, size, forward=forward, most=2000)
    return walked.nodes, holders[-1]


ROOTS = ENTITY_CASES


@pytest.mark.parametrize(("kind", "entity"), ROOTS)
def test_root_connections(servers, session, kind, entity):
    urls, _ = servers
    truth = remote_ids(kind, urls[kind], entity)
    assert len(truth) == SIZES[FIELDS[entity]]
    query = ROOT_QUERY % FIELDS[entity]
    for forward in (True, False):
        nodes, _ = paged(session, query, {"provider": kind}, ROOT_PAGE, forward=forward)
        assert [n["remoteId"] for n in nodes] == truth, "forward" if forward else "backward"


def children(world: SeedWorld, kind: str, relation: str, parent: int) -> list[Any]:
    """The seed records a parent's nested connection holds, as the provider's emulator keeps
    them."""
    if relation == "Company.contacts":
        return [c for c in world.contacts if c.company == parent]
    if relation == "Company.deals":
        return [d for d in world.deals if d.company == parent]
    if relation == "Deal.contacts":
        kept = world.deals[parent].contacts[: knowledge(kind).deal_contacts_kept]
        return [world.contacts[i] for i in kept]
    if relation == "Contact.deals":
        keep = knowledge(kind).deal_contacts_kept
        return [d for d in world.deals if parent in d.contacts[:keep]]
    owner, _, field = relation.partition(".")
    assert field == "notes", relation
    return [n for n in world.notes if (n.target_kind, n.target) == (owner.lower(), parent)]


def seed_key(record: Any) -> str:
    return str(record.email if isinstance(record, SeedContact) else record.name)


def node_key(node: dict[str, Any]) -> str:
    if "emails" in node:
        return str(node["emails"][0]["address"])
    return str(node["name"])


def relations(session: SyncClientSession, kind: str) -> list[str]:
    answer = session.execute(
        GraphQLRequest("{ providers { name capabilities { relationships } } }")
    )
    [provider] = [p for p in answer["providers"] if p["name"] == kind]
    listed: list[str] = provider["capabilities"]["relationships"]
    # The connections among them (a plural field): Company.contacts, Deal.notes, ...
    return [r for r in listed if r.partition(".")[2] in SINGULAR]


@pytest.mark.parametrize("kind", NESTED_KINDS)
def test_nested_connections(servers, session, kind):
    urls, _ = servers
    walked, most = 0, 0
    for relation in relations(session, kind):
        owner, _, field = relation.partition(".")
        parent_entity = owner.lower()
        parents = range(len(getattr(WORLD, FIELDS[parent_entity])))
        by_size = sorted(parents, key=lambda p: -len(children(WORLD, kind, relation, p)))
        empty = [p for p in parents if not children(WORLD, kind, relation, p)]
        # The busiest parent (several nested pages) and a childless one (else the next).
        chosen = by_size[:1] + (empty[:1] or by_size[1:2])
        remote = remote_ids(kind, urls[kind], parent_entity)
        for parent in chosen:
            expected = children(WORLD, kind, relation, parent)
            most = max(most, len(expected))
            node_id = gid(owner, kind, remote[parent])
            query = NESTED_QUERY % (owner, field, CHILD_KEYS[field])
            for forward in (True, False):
                nodes, holder = paged(session, query, {"id": node_id}, NESTED_PAGE, forward=forward)
                # The parent is the seed's record at that position.
                seed_parent = getattr(WORLD, FIELDS[parent_entity])[parent]
                assert node_key(holder) == seed_key(seed_parent) or parent_entity == "note"
                if field == "notes":
                    assert Counter(n["body"] for n in nodes) == Counter(n.body for n in expected), (
                        relation
                    )
                    titles = [n["title"] for n in nodes]
                    if any(titles):
                        assert Counter(titles) == Counter(n.title for n in expected), relation
                else:
                    assert Counter(map(node_key, nodes)) == Counter(map(seed_key, expected)), (
                        relation,
                        parent,
                    )
                walked += 1
    assert walked >= 4
    assert most > NESTED_PAGE  # some walk took several pages
