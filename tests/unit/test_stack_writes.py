"""Writes through the whole stack in process: round trips on every writable provider, the
special writes where a provider has them, and refusals with their codes."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.datasources import source_class
from gateway.operations import Op
from gateway.records import Entity
from gateway.settings import ProviderSettings
from tests.support.ids import gid
from tests.support.kinds import WRITABLE_KINDS
from tests.support.stack import Stack, emulator_url, running_stack

serial = itertools.count(1)
MEMBER = ProviderSettings(
    name="bos-member",
    kind="basicsos",
    base_url=emulator_url("basicsos"),
    credentials={"token": "bos_crm_demo_member"},
    options={"token_role": "member"},
    rate_limit=False,
)
CONTACT = "contact { id remoteId firstName lastName emails { address } company { remoteId } }"
NODE = (
    "query($id: ID!) { node(id: $id) { id ... on Contact { lastName } ... on Company { name } } }"
)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(WRITABLE_KINDS, extra=[MEMBER]) as running:
        yield running


def writes(kind: str, entity: Entity, op: Op) -> bool:
    return (entity, op) in source_class(kind).describe().writes


async def mutate(stack: Stack, name: str, input: dict[str, Any], fields: str) -> dict[str, Any]:
    by_id = name.startswith(("delete", "archive", "restore")) and not name.startswith("bulk")
    kind = "DeleteInput" if by_id else f"{name[0].upper()}{name[1:]}Input"
    body = await stack.post(
        f"mutation($input: {kind}!) {{ {name}(input: $input) {{ {fields} }} }}", {"input": input}
    )
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"][name]
    return result


@pytest.mark.parametrize("kind", WRITABLE_KINDS)
async def test_contact_and_company_round_trip(stack: Stack, kind: str) -> None:
    n = next(serial)
    company_id = None
    if writes(kind, Entity.COMPANY, Op.CREATE):
        company = await mutate(
            stack,
            "createCompany",
            {"provider": kind, "name": f"Acme {n}", "domain": f"acme{n}.example"},
            "company { id name domain } userErrors { field message }",
        )
        assert company["userErrors"] == []
        assert company["company"]["name"] == f"Acme {n}"
        company_id = company["company"]["id"]
        renamed = await mutate(
            stack,
            "updateCompany",
            {"id": company_id, "name": f"Acme {n} Ltd"},
            "company { name } userErrors { message }",
        )
        assert renamed["company"]["name"] == f"Acme {n} Ltd"
    email = f"w{n}@example.com"
    created = await mutate(
        stack,
        "createContact",
        {"provider": kind, "firstName": "Grace", "lastName": f"Hopper{n}", "email": email},
        f"{CONTACT} userErrors {{ field message }}",
    )
    assert created["userErrors"] == []
    contact = created["contact"]
    assert (contact["firstName"], contact["lastName"]) == ("Grace", f"Hopper{n}")
    assert [e["address"] for e in contact["emails"]] == [email]
    updated = await mutate(
        stack,
        "updateContact",
        {"id": contact["id"], "lastName": f"Murray{n}"},
        "contact { lastName } userErrors { message }",
    )
    assert updated == {"contact": {"lastName": f"Murray{n}"}, "userErrors": []}
    read = await stack.data(NODE, {"id": contact["id"]})
    assert read["node"]["lastName"] == f"Murray{n}"
    if writes(kind, Entity.NOTE, Op.CREATE):
        note = await mutate(
            stack,
            "createNote",
            {"provider": kind, "body": "hello", "targetId": contact["id"]},
            "note { id body } userErrors { message }",
        )
        assert note["note"]["body"] == "hello"
        deleted = await mutate(
            stack, "deleteNote", {"id": note["note"]["id"]}, "deletedId userErrors { message }"
        )
        assert deleted["deletedId"] == note["note"]["id"]
    if writes(kind, Entity.DEAL, Op.CREATE):
        deal = await mutate(
            stack,
            "createDeal",
            {"provider": kind, "name": f"Deal {n}", "amount": "1200.50"}
            | ({"companyId": company_id, "stage": "lead"} if kind == "basicsos" else {}),
            "deal { id name amount { amount currency } } userErrors { message }",
        )
        assert deal["deal"]["name"] == f"Deal {n}"
        changed = await mutate(
            stack, "updateDeal", {"id": deal["deal"]["id"], "name": f"Deal {n}b"}, "deal { name }"
        )
        assert changed["deal"]["name"] == f"Deal {n}b"
        await mutate(stack, "deleteDeal", {"id": deal["deal"]["id"]}, "deletedId")
    deleted = await mutate(
        stack, "deleteContact", {"id": contact["id"]}, "deletedId userErrors { message }"
    )
    assert deleted == {"deletedId": contact["id"], "userErrors": []}
    assert (await stack.data(NODE, {"id": contact["id"]}))["node"] is None
    if company_id is not None:
        await mutate(stack, "deleteCompany", {"id": company_id}, "deletedId")
        assert (await stack.data(NODE, {"id": company_id}))["node"] is None


@pytest.mark.parametrize("kind", WRITABLE_KINDS)
async def test_writes_to_missing_or_forged_ids_are_refused(stack: Stack, kind: str) -> None:
    missing = gid("Contact", kind, "999999" if kind in ("revyops", "basicsos") else "missing-1")
    body = await stack.post(
        'mutation($id: ID!) { updateContact(input: {id: $id, lastName: "X"}) '
        "{ contact { id } userErrors { field message } } }",
        {"id": missing},
    )
    refused = [e["extensions"]["code"] for e in body.get("errors", [])]
    user_errors = (body["data"] or {}).get("updateContact") or {"userErrors": []}
    assert refused in (["NOT_FOUND"], ["BAD_USER_INPUT"]) or user_errors["userErrors"], body
    for forged in ("nonsense", gid("Company", kind, "1")):
        body = await stack.post(
            "mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }", {"id": forged}
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await stack.post(
        'mutation { createContact(input: {provider: "nope", lastName: "X"}) { contact { id } } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("kind", WRITABLE_KINDS)
async def test_bulk_and_merge_where_the_provider_has_them(stack: Stack, kind: str) -> None:
    described = source_class(kind).describe()
    n = next(serial)
    rows = [{"lastName": f"Bulk{n}-{i}", "email": f"b{n}-{i}@example.com"} for i in range(3)]
    body = await stack.post(
        "mutation($input: BulkCreateContactsInput!) { bulkCreateContacts(input: $input) "
        "{ succeeded failed results { contact { id lastName } } } }",
        {"input": {"provider": kind, "contacts": rows}},
    )
    if Entity.CONTACT not in described.can_bulk:
        assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED"
        return
    made = body["data"]["bulkCreateContacts"]
    assert (made["succeeded"], made["failed"]) == (3, 0)
    ids = [r["contact"]["id"] for r in made["results"]]
    assert [r["contact"]["lastName"] for r in made["results"]] == [r["lastName"] for r in rows]
    changed = await mutate(
        stack,
        "bulkUpdateContacts",
        {"contacts": [{"id": i, "title": "CTO"} for i in ids]},
        "succeeded failed",
    )
    assert changed == {"succeeded": 3, "failed": 0}
    if described.can_merge_contacts:
        merged = await mutate(
            stack,
            "mergeContacts",
            {"winnerId": ids[0], "loserIds": ids[1:2]},
            "contact { id } userErrors { message }",
        )
        assert merged == {"contact": {"id": ids[0]}, "userErrors": []}
        assert (await stack.data(NODE, {"id": ids[1]}))["node"] is None
        ids = [ids[0], ids[2]]
    gone = await mutate(stack, "bulkDeleteContacts", {"ids": ids}, "succeeded failed")
    assert gone == {"succeeded": len(ids), "failed": 0}


async def test_a_member_archives_and_an_admin_restores(stack: Stack) -> None:
    deals = await stack.data(
        '{ deals(provider: "bos-member", first: 2) { edges { node { id remoteId } } } }'
    )
    deal = deals["deals"]["edges"][1]["node"]
    archived = await mutate(
        stack, "archiveDeal", {"id": deal["id"]}, "deal { remoteId } userErrors { message }"
    )
    assert archived == {"deal": {"remoteId": deal["remoteId"]}, "userErrors": []}
    admin_id = gid("Deal", "basicsos", deal["remoteId"])
    refused = await stack.post(
        "mutation($id: ID!) { archiveDeal(input: {id: $id}) { deal { id } } }", {"id": admin_id}
    )
    assert refused["errors"][0]["extensions"]["code"] == "UNSUPPORTED"
    restored = await mutate(
        stack, "restoreDeal", {"id": admin_id}, "deal { remoteId } userErrors { message }"
    )
    assert restored == {"deal": {"remoteId": deal["remoteId"]}, "userErrors": []}
    merge = await stack.post(
        "mutation($w: ID!, $l: [ID!]!) { mergeContacts(input: {winnerId: $w, loserIds: $l}) { contact { id } } }",
        {"w": gid("Contact", "revyops", "1"), "l": [gid("Contact", "revyops", "2")]},
    )
    assert merge["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


async def test_a_field_the_provider_cannot_write_is_a_user_error(stack: Stack) -> None:
    note = await mutate(
        stack,
        "createNote",
        {"provider": "haste", "title": "t", "body": "b"},
        "note { id } userErrors { message }",
    )
    assert note["note"] is None
    assert "no writable title" in note["userErrors"][0]["message"]
