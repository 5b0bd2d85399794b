"""Forged global ids over real HTTP: a remote id its provider never hands out is refused
before any upstream request (reads: not found; writes: BAD_USER_INPUT naming the id), so it
can never reach another path, query string or record (issue 9, item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.demo import demo_kinds
from gateway.servers import emulator_servers
from tests.support.clients import GraphQLClient, answer
from tests.support.ids import gid
from tests.support.kinds import WRITABLE_KINDS
from tests.support.servers import client_on

pytestmark = pytest.mark.integration

WRITABLE = WRITABLE_KINDS
# Remote ids no provider hands out: path traversal, query and fragment injection, control
# characters, and digits that are not ASCII ("²".isdigit() is true in Python).
FORGED = (
    "../../../../../etc/passwd",
    "..",
    ".",
    "²",
    "\uff11\uff12",  # fullwidth digits
    "1\n",
    "x\r\ny",
    "7?x-injected=1",
    "7#frag",
    "%2e%2e",
    "a/b",
    "1 OR 1=1",
    "' OR '1'='1",
)
NODE = (
    "query($id: ID!) { node(id: $id) { id ... on Company { name } ... on Contact { lastName } } }"
)
DELETE_CONTACT = """
mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId userErrors { field message } } }
"""
UPDATE_CONTACT = """
mutation($input: UpdateContactInput!) {
  updateContact(input: $input) { contact { id lastName } userErrors { field message } }
}"""


class World:
    """Fresh emulators of every kind and a gateway over them (writes here stay here)."""

    def __init__(self, urls: dict[str, str], client: GraphQLClient) -> None:
        self.urls = urls
        self.client = client

    def stats(self, kind: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.urls[kind]}/_emulator/stats").json()
        return body

    def requests(self, kind: str) -> int:
        count: int = self.stats(kind)["requests"]
        return count

    def first(self, kind: str, entity: str) -> dict[str, Any]:
        """The first record of a list, through the gateway."""
        data = self.client.data(
            f'{{ {entity}(provider: "{kind}", first: 1) {{ edges {{ node {{ id remoteId }} }} }} }}'
        )
        node: dict[str, Any] = data[entity]["edges"][0]["node"]
        return node


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with ExitStack() as stack:
        urls = emulator_servers(stack, demo_kinds())
        yield World(urls, stack.enter_context(client_on(urls, cache=False)))


@pytest.mark.parametrize("kind", sorted(demo_kinds()))
def test_node_of_a_forged_id_is_null_and_sends_nothing(world: World, kind: str) -> None:
    # Before: `../../../../../etc/passwd` as a hasteCRM company sent GET /etc/passwd.
    before = world.requests(kind)
    for remote_id in FORGED:
        for type_name in ("Company", "Contact"):
            body = world.client.post(NODE, {"id": gid(type_name, kind, remote_id)})
            assert answer(body) == {"data": {"node": None}}, remote_id
    assert world.requests(kind) == before


def test_company_id_leading_to_the_contacts_path_is_not_a_company(world: World) -> None:
    # Before: GET /v1/companies/../contacts/cont_000001 read a contact, labelled Company.
    before = world.requests("haste")
    body = world.client.post(NODE, {"id": gid("Company", "haste", "../contacts/cont_000001")})
    assert answer(body) == {"data": {"node": None}}
    # A contact id of the right shape, asked for as a company, is not one either.
    body = world.client.post(NODE, {"id": gid("Company", "haste", "cont_000001")})
    assert answer(body) == {"data": {"node": None}}
    assert world.requests("haste") == before


@pytest.mark.parametrize("kind", ["revyops", "basicsos"])
def test_non_ascii_digits_are_not_found_and_keep_the_circuit_closed(
    world: World, kind: str
) -> None:
    # Before: RevyOps sent three GETs answered 500 per lookup and opened its circuit for
    # every client; BasicsOS ended in INTERNAL_SERVER_ERROR (int("²")).
    real = world.first(kind, "contacts")
    before = world.requests(kind)
    for _ in range(8):  # more than the breaker's threshold
        body = world.client.post(NODE, {"id": gid("Contact", kind, "²")})
        assert answer(body) == {"data": {"node": None}}
    assert world.requests(kind) == before
    assert world.client.data(NODE, {"id": real["id"]})["node"]["id"] == real["id"]
    nodes = world.client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [gid("Contact", kind, "²"), real["id"]]},
    )["nodes"]
    assert nodes == [None, {"id": real["id"]}]


def test_delete_through_a_traversing_id_deletes_nothing(world: World) -> None:
    # Before: DELETE /v1/contacts/../companies/comp_000002 deleted the company.
    company = gid("Company", "haste", "comp_000002")
    assert world.client.data(NODE, {"id": company})["node"]["name"]
    before = world.stats("haste")
    body = world.client.post(
        DELETE_CONTACT, {"id": gid("Contact", "haste", "../companies/comp_000002")}
    )
    assert body["data"] == {"deleteContact": None}
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "BAD_USER_INPUT", "argument": "id"}
    ]
    assert world.stats("haste")["requests"] == before["requests"]
    assert world.client.data(NODE, {"id": company})["node"]["name"]


@pytest.mark.parametrize("kind", WRITABLE)
@pytest.mark.parametrize("suffix", ["?x-injected=1&dryRun=false", "#x", "/../1", "\n"])
def test_update_with_an_injected_id_is_refused_and_applies_nothing(
    world: World, kind: str, suffix: str
) -> None:
    # Before: PATCH /v1/contacts/cont_000003?x-injected=1&dryRun=false was applied.
    contact = world.first(kind, "contacts")
    before = world.requests(kind)
    forged = gid("Contact", kind, contact["remoteId"] + suffix)
    body = world.client.post(UPDATE_CONTACT, {"input": {"id": forged, "lastName": "Forged"}})
    assert body["data"] == {"updateContact": None}
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "BAD_USER_INPUT", "argument": "id"}
    ]
    assert "id" in body["errors"][0]["message"]
    assert world.requests(kind) == before
    assert world.client.data(NODE, {"id": contact["id"]})["node"]["lastName"] != "Forged"


@pytest.mark.parametrize("kind", WRITABLE)
def test_delete_of_a_forged_id_is_refused_before_sending(world: World, kind: str) -> None:
    before = world.requests(kind)
    for remote_id in ("..", "²", "1?x=1", "../companies/1"):
        body = world.client.post(DELETE_CONTACT, {"id": gid("Contact", kind, remote_id)})
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "id"}
    assert world.requests(kind) == before


@pytest.mark.parametrize("kind", WRITABLE)
def test_a_forged_reference_is_a_user_error_naming_it(world: World, kind: str) -> None:
    contact = world.first(kind, "contacts")
    before = world.requests(kind)
    forged = gid("Company", kind, "../contacts/" + contact["remoteId"])
    payload = world.client.data(
        UPDATE_CONTACT, {"input": {"id": contact["id"], "companyId": forged}}
    )["updateContact"]
    assert payload["contact"] is None
    assert [e["field"] for e in payload["userErrors"]] == [["input", "companyId"]]
    assert world.requests(kind) == before


@pytest.mark.parametrize("kind", ["haste", "basicsos"])
def test_merge_with_a_forged_loser_is_refused_before_sending(world: World, kind: str) -> None:
    contact = world.first(kind, "contacts")
    before = world.requests(kind)
    body = world.client.post(
        "mutation($w: ID!, $l: [ID!]!) { mergeContacts(input: {winnerId: $w, loserIds: $l}) "
        "{ contact { id } userErrors { field message } } }",
        {"w": contact["id"], "l": [gid("Contact", kind, "../companies/1")]},
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "loserIds"}
    assert world.requests(kind) == before


def test_bulk_delete_refuses_only_the_forged_item(world: World) -> None:
    contacts = world.client.data(
        '{ contacts(provider: "haste", first: 2) { edges { node { id remoteId } } } }'
    )["contacts"]["edges"]
    good = contacts[1]["node"]
    forged = gid("Contact", "haste", "../companies/comp_000001")
    payload = world.client.data(
        "mutation($ids: [ID!]!) { bulkDeleteContacts(input: {ids: $ids}) "
        "{ succeeded failed results { deletedId userErrors { field } } } }",
        {"ids": [forged, good["id"]]},
    )["bulkDeleteContacts"]
    assert (payload["succeeded"], payload["failed"]) == (1, 1)
    assert payload["results"][0]["userErrors"] == [{"field": ["input", "id"]}]
    assert payload["results"][1]["deletedId"] == good["id"]
    assert world.client.data(NODE, {"id": gid("Company", "haste", "comp_000001")})["node"]


@pytest.mark.parametrize("kind", sorted(demo_kinds()))
def test_every_id_the_provider_hands_out_is_accepted(world: World, kind: str) -> None:
    # The formats are strict, not wrong: real records of every entity still resolve by id.
    entities = ("contacts", "companies", "deals", "notes")
    ids = []
    for entity in entities:
        data = world.client.post(
            f'{{ {entity}(provider: "{kind}", first: 20) {{ edges {{ node {{ id }} }} }} }}'
        )["data"]
        if data and data[entity]:  # RevyOps has no deals or notes
            ids += [e["node"]["id"] for e in data[entity]["edges"]]
    assert len(ids) >= 40
    nodes = world.client.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert [n["id"] for n in nodes["nodes"]] == ids
