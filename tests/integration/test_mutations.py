"""Writes over real HTTP: round trips, userErrors, unsupported writes, write outcomes, a burst."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import ProviderSettings, Settings
from tests.support.clients import GraphQLClient
from tests.support.ids import gid
from tests.support.kinds import WRITABLE_KINDS
from tests.support.walk import walk_field

pytestmark = pytest.mark.integration

CREATE_CONTACT = """
mutation($input: CreateContactInput!) {
  createContact(input: $input) {
    contact { id remoteId firstName lastName emails { address } company { name } }
    userErrors { field message }
  }
}"""
UPDATE_CONTACT = """
mutation($input: UpdateContactInput!) {
  updateContact(input: $input) { contact { id lastName } userErrors { field message } }
}"""
DELETE_CONTACT = """
mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId userErrors { field message } } }
"""
NODE = "query($id: ID!) { node(id: $id) { ... on Contact { lastName } } }"
serial = itertools.count(1)
PROVIDERS = WRITABLE_KINDS


def _all_ids(client: GraphQLClient, provider: str) -> list[str]:
    """Every contact id of a provider, walked through the gateway."""
    query = (
        "query($p: String!, $after: String) { contacts(provider: $p, first: 100, after: $after) "
        "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }"
    )
    return walk_field(client, query, "contacts", {"p": provider}).ids("id")


@pytest.fixture
def own() -> Iterator[dict[str, object]]:
    """Fresh emulators and a caching gateway: writes here must not disturb other tests."""
    with ExitStack() as stack:
        urls = emulator_servers(stack, WRITABLE_KINDS)
        providers = [
            *(demo_provider(k, url, rate_limit=False) for k, url in urls.items()),
            ProviderSettings(
                name="bos-member",
                kind="basicsos",
                base_url=urls["basicsos"],
                credentials={"token": "bos_crm_demo_member"},
                options={"token_role": "member"},
                rate_limit=False,
            ),
        ]
        with ServerThread(create_app(Settings(providers=providers))) as server:
            client = GraphQLClient(server.url)
            yield {"client": client, "url": server.url, **urls}
            client.http.close()


def email() -> str:
    return f"new.person.{next(serial)}@example.net"


@pytest.mark.parametrize("provider", WRITABLE_KINDS)
def test_create_read_update_delete(own, provider):
    client = own["client"]
    company = client.data(
        f'{{ companies(provider: "{provider}", first: 1) {{ edges {{ node {{ id name }} }} }} }}'
    )
    company_node = company["companies"]["edges"][0]["node"]
    address = email()
    created = client.data(
        CREATE_CONTACT,
        {
            "input": {
                "provider": provider,
                "firstName": "Ada",
                "lastName": "Byron",
                "email": address,
                "companyId": company_node["id"],
            }
        },
    )["createContact"]
    assert created["userErrors"] == []
    contact = created["contact"]
    assert contact["emails"] == [{"address": address}]
    assert contact["company"] == {"name": company_node["name"]}
    assert client.data(NODE, {"id": contact["id"]})["node"] == {"lastName": "Byron"}
    updated = client.data(UPDATE_CONTACT, {"input": {"id": contact["id"], "lastName": "Lovelace"}})
    assert updated["updateContact"]["contact"]["lastName"] == "Lovelace"
    # Read your writes: the cached record was evicted by the write.
    assert client.data(NODE, {"id": contact["id"]})["node"] == {"lastName": "Lovelace"}
    deleted = client.data(DELETE_CONTACT, {"id": contact["id"]})["deleteContact"]
    assert deleted == {"deletedId": contact["id"], "userErrors": []}
    assert client.data(NODE, {"id": contact["id"]})["node"] is None
    again = client.data(DELETE_CONTACT, {"id": contact["id"]})["deleteContact"]
    assert again["deletedId"] is None
    assert again["userErrors"][0]["field"] == ["input", "id"]


def test_lists_see_writes_at_once(own):
    client = own["client"]
    query = '{ contacts(provider: "basicsos", first: 1) { totalCount } }'
    before = client.data(query)["contacts"]["totalCount"]
    client.data(CREATE_CONTACT, {"input": {"provider": "basicsos", "email": email()}})
    assert client.data(query)["contacts"]["totalCount"] == before + 1


def test_invalid_input_comes_back_as_user_errors(own):
    client = own["client"]
    # RevyOps needs an email (or LinkedIn URL) to create a contact: its 400 names the field.
    refused = client.data(CREATE_CONTACT, {"input": {"provider": "revyops", "firstName": "X"}})
    assert refused["createContact"]["contact"] is None
    assert refused["createContact"]["userErrors"][0]["field"] == ["input", "email"]
    # A field the provider does not have is refused before anything is sent.
    before = httpx.get(f"{own['basicsos']}/_emulator/stats").json()["requests"]
    unknown = client.data(
        CREATE_CONTACT, {"input": {"provider": "basicsos", "email": email(), "title": "CTO"}}
    )
    assert unknown["createContact"]["userErrors"][0]["field"] == ["input", "title"]
    assert httpx.get(f"{own['basicsos']}/_emulator/stats").json()["requests"] == before
    # A reference to another provider's record.
    foreign = client.data('{ companies(provider: "revyops", first: 1) { edges { node { id } } } }')
    crossed = client.data(
        CREATE_CONTACT,
        {
            "input": {
                "provider": "basicsos",
                "email": email(),
                "companyId": foreign["companies"]["edges"][0]["node"]["id"],
            }
        },
    )
    assert crossed["createContact"]["userErrors"][0]["field"] == ["input", "companyId"]


def test_unsupported_writes_say_so(own):
    body = own["client"].post(
        'mutation { createDeal(input: {provider: "revyops", name: "X"}) { deal { id } } }'
    )
    assert body["data"]["createDeal"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


def test_a_failed_write_is_not_retried_and_says_what_happened(own):
    httpx.post(f"{own['basicsos']}/_emulator/faults", json={"error_rate": 1.0}).raise_for_status()
    before = httpx.get(f"{own['basicsos']}/_emulator/stats").json()["requests"]
    body = own["client"].post(CREATE_CONTACT, {"input": {"provider": "basicsos", "email": email()}})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["writeOutcome"] == "UNKNOWN"  # a 500 after sending
    assert httpx.get(f"{own['basicsos']}/_emulator/stats").json()["requests"] == before + 1


def test_a_burst_of_creates_loses_and_doubles_nothing(own):
    async def burst() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=str(own["url"]), timeout=60) as client:

            async def one(i: int) -> dict[str, Any]:
                provider = PROVIDERS[i % len(PROVIDERS)]
                response = await client.post(
                    "/graphql",
                    json={
                        "query": CREATE_CONTACT,
                        "variables": {"input": {"provider": provider, "email": email()}},
                    },
                )
                body: dict[str, Any] = response.json()
                return body

            return await asyncio.gather(*(one(i) for i in range(200)))

    before = {p: _all_ids(own["client"], p) for p in PROVIDERS}
    answers = asyncio.run(burst())
    created = [a["data"]["createContact"]["contact"] for a in answers]
    assert all(c is not None for c in created)
    ids = [c["id"] for c in created]
    assert len(set(ids)) == 200
    for provider in PROVIDERS:
        new = set(_all_ids(own["client"], provider)) - set(before[provider])
        mine = {c["id"] for i, c in enumerate(created) if PROVIDERS[i % len(PROVIDERS)] == provider}
        assert new == mine  # every acknowledged one is there, and nothing else appeared
    for contact in created:
        found = own["client"].data(
            "query($id: ID!) { node(id: $id) { ... on Contact { emails { address } } } }",
            {"id": contact["id"]},
        )
        assert found["node"]["emails"] == contact["emails"]


def test_merge_contacts_moves_notes_and_removes_the_losers(own):
    client = own["client"]
    ids = [
        client.data(CREATE_CONTACT, {"input": {"provider": "basicsos", "email": email()}})[
            "createContact"
        ]["contact"]["id"]
        for _ in range(3)
    ]
    for contact in ids[1:]:
        client.data(
            'mutation($t: ID!) { createNote(input: {provider: "basicsos", body: "hi", targetId: $t})'
            " { note { id } userErrors { message } } }",
            {"t": contact},
        )
    merged = client.data(
        "mutation($w: ID!, $l: [ID!]!) { mergeContacts(input: {winnerId: $w, loserIds: $l})"
        " { contact { id notes { totalCount } } userErrors { field message } } }",
        {"w": ids[0], "l": ids[1:]},
    )["mergeContacts"]
    assert merged["userErrors"] == []
    assert merged["contact"]["notes"]["totalCount"] == 2
    for loser in ids[1:]:
        assert client.data(NODE, {"id": loser})["node"] is None
    unsupported = client.post(
        "mutation($w: ID!, $l: [ID!]!) { mergeContacts(input: {winnerId: $w, loserIds: $l}) { contact { id } } }",
        {"w": "Q29udGFjdDpyZXZ5b3BzOjE=", "l": ["Q29udGFjdDpyZXZ5b3BzOjI="]},
    )
    assert unsupported["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


def test_a_member_archives_a_deal_and_an_admin_restores_it(own):
    client = own["client"]
    deal = client.data(
        '{ deals(provider: "bos-member", first: 1) { edges { node { id remoteId } } } }'
    )
    member_id = deal["deals"]["edges"][0]["node"]["id"]
    remote = deal["deals"]["edges"][0]["node"]["remoteId"]
    archived = client.data(
        "mutation($id: ID!) { deleteDeal(input: {id: $id}) { deletedId userErrors { message } } }",
        {"id": member_id},
    )["deleteDeal"]
    assert archived["deletedId"] == member_id
    admin = client.data('{ deals(provider: "basicsos", first: 1) { edges { node { remoteId } } } }')
    assert admin["deals"]["edges"][0]["node"]["remoteId"] != remote  # archived deals are hidden
    admin_id = gid("Deal", "basicsos", remote)
    restored = client.data(
        "mutation($id: ID!) { restoreDeal(input: {id: $id}) { deal { remoteId } userErrors { message } } }",
        {"id": admin_id},
    )["restoreDeal"]
    assert restored == {"deal": {"remoteId": remote}, "userErrors": []}
    admin = client.data('{ deals(provider: "basicsos", first: 1) { edges { node { remoteId } } } }')
    assert admin["deals"]["edges"][0]["node"]["remoteId"] == remote


@pytest.mark.parametrize("provider", ["basicsos", "haste", "attio"])
def test_deals_and_notes_round_trip(own, provider):
    client = own["client"]
    company = client.data(
        f'{{ companies(provider: "{provider}", first: 1) {{ edges {{ node {{ id name }} }} }} }}'
    )
    company_node = company["companies"]["edges"][0]["node"]
    stage = {"basicsos": "Proposal", "haste": None, "attio": "Lead"}[provider]
    fields = {
        "provider": provider,
        "name": "Big one",
        "amount": "1250.50",
        "companyId": company_node["id"],
    }
    if stage:
        fields["stage"] = stage
    if provider == "haste":
        fields["currency"] = "EUR"
    created = client.data(
        "mutation($i: CreateDealInput!) { createDeal(input: $i) "
        "{ deal { id name amount { amount } company { name } } userErrors { field message } } }",
        {"i": fields},
    )["createDeal"]
    assert created["userErrors"] == []
    deal = created["deal"]
    assert deal["name"] == "Big one"
    assert deal["amount"]["amount"] in ("1250.5", "1250.50")
    assert deal["company"] == {"name": company_node["name"]}
    note = client.data(
        "mutation($i: CreateNoteInput!) { createNote(input: $i) "
        "{ note { id body target { ... on Deal { id } } } userErrors { field message } } }",
        {"i": {"provider": provider, "title": "Call", "body": "Went well", "targetId": deal["id"]}}
        if provider != "haste"
        else {"i": {"provider": provider, "body": "Went well", "targetId": deal["id"]}},
    )["createNote"]
    assert note["userErrors"] == []
    assert note["note"]["body"] == "Went well"
    assert note["note"]["target"] == {"id": deal["id"]}
    notes = client.data(
        "query($id: ID!) { node(id: $id) { ... on Deal { notes { edges { node { id } } } } } }",
        {"id": deal["id"]},
    )["node"]["notes"]["edges"]
    assert [n["node"]["id"] for n in notes] == [note["note"]["id"]]


def test_attio_notes_cannot_be_edited(own):
    client = own["client"]
    note = client.data('{ notes(provider: "attio", first: 1) { edges { node { id } } } }')
    body = client.post(
        'mutation($id: ID!) { updateNote(input: {id: $id, body: "x"}) { note { id } } }',
        {"id": note["notes"]["edges"][0]["node"]["id"]},
    )
    assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


def test_haste_merges_contacts(own):
    client = own["client"]
    ids = [
        client.data(CREATE_CONTACT, {"input": {"provider": "haste", "email": email()}})[
            "createContact"
        ]["contact"]["id"]
        for _ in range(2)
    ]
    merged = client.data(
        "mutation($w: ID!, $l: [ID!]!) { mergeContacts(input: {winnerId: $w, loserIds: $l})"
        " { contact { id } userErrors { message } } }",
        {"w": ids[0], "l": ids[1:]},
    )["mergeContacts"]
    assert merged == {"contact": {"id": ids[0]}, "userErrors": []}
    assert client.data(NODE, {"id": ids[1]})["node"] is None


def test_haste_bulk_reports_each_operation(own):
    client = own["client"]
    taken = email()
    client.data(CREATE_CONTACT, {"input": {"provider": "haste", "email": taken}})
    created = client.data(
        "mutation($i: BulkCreateContactsInput!) { bulkCreateContacts(input: $i) "
        "{ succeeded failed results { index contact { id emails { address } } userErrors { field message } } } }",
        {
            "i": {
                "provider": "haste",
                "contacts": [
                    {"email": email()},
                    {"email": taken},
                    {"email": "not-an-email"},
                    {"email": email()},
                ],
            }
        },
    )["bulkCreateContacts"]
    assert (created["succeeded"], created["failed"]) == (2, 2)
    outcomes = {r["index"]: r for r in created["results"]}
    assert outcomes[0]["contact"]
    assert outcomes[3]["contact"]
    assert outcomes[1]["contact"] is None
    assert outcomes[1]["userErrors"][0]["field"] == ["input", "email"]  # duplicate
    assert outcomes[2]["userErrors"][0]["field"] == ["input", "email"]  # invalid
    ids = [outcomes[0]["contact"]["id"], outcomes[3]["contact"]["id"]]
    updated = client.data(
        "mutation($i: BulkUpdateContactsInput!) { bulkUpdateContacts(input: $i) "
        "{ succeeded results { contact { lastName } } } }",
        {"i": {"contacts": [{"id": ids[0], "lastName": "One"}, {"id": ids[1], "lastName": "Two"}]}},
    )["bulkUpdateContacts"]
    assert [r["contact"]["lastName"] for r in updated["results"]] == ["One", "Two"]
    deleted = client.data(
        "mutation($i: BulkDeleteContactsInput!) { bulkDeleteContacts(input: $i) "
        "{ succeeded results { deletedId } } }",
        {"i": {"ids": ids}},
    )["bulkDeleteContacts"]
    assert [r["deletedId"] for r in deleted["results"]] == ids
    assert all(client.data(NODE, {"id": i})["node"] is None for i in ids)
    unsupported = client.post(
        'mutation { bulkCreateContacts(input: {provider: "basicsos", contacts: [{email: "a@b.co"}]}) { succeeded } }'
    )
    assert unsupported["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


def test_archive_deal_needs_a_member_token(own):
    client = own["client"]
    deals = client.data(
        '{ deals(provider: "bos-member", first: 2) { edges { node { id remoteId } } } }'
    )
    member_deal = deals["deals"]["edges"][1]["node"]
    archived = client.data(
        "mutation($id: ID!) { archiveDeal(input: {id: $id}) { deal { remoteId } userErrors { message } } }",
        {"id": member_deal["id"]},
    )["archiveDeal"]
    assert archived == {"deal": {"remoteId": member_deal["remoteId"]}, "userErrors": []}
    admin_id = gid("Deal", "basicsos", member_deal["remoteId"])
    refused = client.post(
        "mutation($id: ID!) { archiveDeal(input: {id: $id}) { deal { id } } }", {"id": admin_id}
    )
    assert refused["errors"][0]["extensions"]["code"] == "UNSUPPORTED"
    assert "member" in refused["errors"][0]["message"]
    writable = client.data("{ providers { name capabilities { writable } } }")["providers"]
    by_name = {p["name"]: p["capabilities"]["writable"] for p in writable}
    assert "Deal.archive" in by_name["bos-member"]
    assert "Deal.archive" not in by_name["basicsos"]
