"""The BasicsOS emulator against its contract, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, basicsos
from gateway.providers import create_emulator
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge
from tests.support.stack import emulator_client

SMALL = EmulatorOptions(rate_limits=False, companies=6, contacts=20, deals=8, notes=12)
ADMIN = {"Authorization": f"Bearer {basicsos.DEMO_ADMIN_TOKEN}"}
MEMBER = {"Authorization": f"Bearer {basicsos.DEMO_MEMBER_TOKEN}"}


# --- what the tests know of BasicsOS, read straight from its API ----------------------
AUTH = {"Authorization": f"Bearer {basicsos.DEMO_ADMIN_TOKEN}"}
# The unified note list: contact notes, then company notes, then deal notes.
NOTE_TABLES = ("contact_notes", "company_notes", "deal_notes")


def _table(client: httpx.Client, name: str, count: int = 100_001) -> list[dict[str, Any]]:
    """The table's first `count` rows (an inclusive range)."""
    params = {"range": json.dumps([0, count - 1])}
    rows: list[dict[str, Any]] = client.get(f"/api/{name}", params=params, headers=AUTH).json()
    return rows


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    if entity is Entity.NOTE:
        return [f"{name}/{row['id']}" for name in NOTE_TABLES for row in _table(client, name)]
    return [str(row["id"]) for row in _table(client, entity.plural)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    return {str(r["id"]): _text(r["companyId"]) for r in _table(client, "contacts", count)}


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    return {
        str(r["id"]): {"name": r["name"] or None, "domain": r["domain"] or None}
        for r in _table(client, "companies")
    }


KNOWLEDGE = ProviderKnowledge(
    kind="basicsos",
    remote_ids=_remote_ids,
    sample_ids={
        Entity.CONTACT: "17",
        Entity.COMPANY: "3",
        Entity.DEAL: "1",
        Entity.NOTE: "deal_notes/7",
    },
    unknown_ids={
        Entity.CONTACT: "999999",
        Entity.COMPANY: "999999",
        Entity.DEAL: "999999",
        Entity.NOTE: "contact_notes/999999",
    },
    contact_companies=_contact_companies,
    companies=_companies,
)
# --------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("basicsos", SMALL), "basicsos", ADMIN) as client:
        yield client


def refused(response: httpx.Response, status: int, message: str, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == message
    assert body.get("code") == code


def params(**values: Any) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


async def rows(api: httpx.AsyncClient, resource: str, **values: Any) -> list[dict[str, Any]]:
    response = await api.get(f"/api/{resource}", params=params(range=[0, 999], **values))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message", "code"),
    [
        ("GET", "/api/planets", None, 404, "Unknown resource", None),
        ("GET", "/api/contacts/abc", None, 400, "Invalid request", None),
        ("GET", "/api/contacts/9999", None, 404, "Not found", None),
        ("GET", "/api/contacts_summary/9999", None, 404, "Not found", None),
        (
            "POST",
            "/api/contacts_summary",
            {"name": "x"},
            400,
            "Cannot write to contacts_summary",
            "INVALID_RESOURCE",
        ),
        ("POST", "/api/planets", {"name": "x"}, 404, "Unknown resource", None),
        ("POST", "/api/contacts", {"shoe": 1}, 400, "No writable fields to create", None),
        (
            "POST",
            "/api/companies",
            {"domain": "x.test"},
            400,
            "Invalid name: required",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/deals",
            {"name": "D", "status": "s", "company_id": 0},
            400,
            "Invalid companyId: expected a positive integer",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/deals",
            {"name": "D", "status": "s", "company_id": 1, "amount": "lots"},
            400,
            "Invalid amount: expected a number",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/deals",
            {"name": "D", "status": "s", "company_id": 9999},
            400,
            "Invalid companyId: no such record",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/contacts",
            {"custom_fields": []},
            400,
            "Invalid customFields: expected an object",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/contacts",
            {"first_name": 5},
            400,
            "Invalid firstName: expected a string",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/contact_notes",
            {"contact_id": 1, "date": "soon"},
            400,
            "Invalid date: expected an ISO 8601 date",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/contact_notes",
            {"contact_id": 1, "attachments": [{"name": "x"}]},
            400,
            "Invalid attachments: expected [{url, name?, type?}]",
            "VALIDATION_FAILED",
        ),
        (
            "POST",
            "/api/contacts",
            [1],
            400,
            "Invalid JSON body: expected an object",
            "INVALID_REQUEST",
        ),
        ("PUT", "/api/contacts/9999", {"first_name": "x"}, 404, "Not found", None),
        ("PUT", "/api/contacts/1", {"shoe": 1}, 400, "No writable fields to update", None),
        (
            "DELETE",
            "/api/contacts_summary/1",
            None,
            400,
            "Cannot delete from contacts_summary",
            "INVALID_RESOURCE",
        ),
        ("DELETE", "/api/contacts/9999", None, 404, "Not found", None),
        ("POST", "/api/contacts/1/restore", None, 400, "Restore is only supported for deals", None),
        ("POST", "/api/deals/9999/restore", None, 404, "Not found", None),
        ("POST", "/api/merge_contacts", {"loserId": 1}, 400, "loserId and winnerId required", None),
        (
            "POST",
            "/api/merge_contacts",
            {"loserId": 1, "winnerId": 1},
            400,
            "loserId and winnerId must differ",
            None,
        ),
        (
            "POST",
            "/api/merge_contacts",
            {"loserId": 1, "winnerId": 9999},
            404,
            "Contact not found",
            None,
        ),
    ],
)
async def test_refusals(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    body: Any,
    status: int,
    message: str,
    code: str | None,
) -> None:
    response = await api.request(method, path, json=body)
    refused(response, status, message, code)


async def test_credentials_and_roles(api: httpx.AsyncClient) -> None:
    for header in ({"Authorization": "Bearer nope"}, {"Authorization": "Token x"}):
        refused(await api.get("/api/contacts", headers=header), 401, "Unauthorized")
    forbidden = ("Forbidden", "FORBIDDEN")
    refused(await api.delete("/api/contacts/1", headers=MEMBER), 403, *forbidden)
    refused(await api.post("/api/deals/1/restore", headers=MEMBER), 403, *forbidden)
    merge = {"loserId": 1, "winnerId": 2}
    refused(await api.post("/api/merge_contacts", json=merge, headers=MEMBER), 403, *forbidden)
    parse = await api.post("/api/contacts", content=b"{nope")
    refused(parse, 400, "Invalid JSON body", "INVALID_REQUEST")


@pytest.mark.parametrize(
    "values",
    [
        {"range": "[0"},
        {"range": [3, 1]},
        {"range": [-1, 4]},
        {"range": [0, True]},
        {"filter": [1]},
        {"filters": {"field": "id"}},
        {"sorts": [{"order": "ASC"}]},
        {"filter": "{"},
    ],
)
async def test_malformed_list_parameters(api: httpx.AsyncClient, values: dict[str, Any]) -> None:
    response = await api.get("/api/contacts", params=params(**values))
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


async def test_ranges_and_content_range(api: httpx.AsyncClient) -> None:
    default = await api.get("/api/contacts")
    assert default.headers["Content-Range"] == "contacts 0-19/20"
    assert len(default.json()) == 20
    middle = await api.get("/api/contacts", params=params(range=[5, 9]))
    assert middle.headers["Content-Range"] == "contacts 5-9/20"
    assert [r["id"] for r in middle.json()] == [6, 7, 8, 9, 10]
    tail = await api.get("/api/contacts", params=params(range=[15, 29]))
    assert tail.headers["Content-Range"] == "contacts 15-19/20"
    assert len(tail.json()) == 5
    past = await api.get("/api/contacts", params=params(range=[40, 49]))
    assert past.headers["Content-Range"] == "contacts 40-40/20"
    assert past.json() == []
    others = await api.get("/api/tasks")
    assert others.json() == []
    assert others.headers["Content-Range"] == "tasks 0-0/0"


async def test_filters_and_sorts(api: httpx.AsyncClient) -> None:
    contacts = await rows(api, "contacts")
    one = contacts[2]
    chain = [{"field": "id", "op": "eq", "value": str(i), "logicalOp": "or"} for i in (2, 4, 9)]
    assert [r["id"] for r in await rows(api, "contacts", filters=chain)] == [2, 4, 9]
    for spec in (
        [{"field": "first_name", "op": "like", "value": one["firstName"][1:3].upper()}],
        [{"field": "email", "op": "starts_with", "value": one["email"][:4].upper()}],
        [{"field": "id", "op": "gte", "value": "3"}, {"field": "id", "op": "lte", "value": "3"}],
        [{"field": "id", "op": "gt", "value": "2"}, {"field": "id", "op": "lt", "value": "4"}],
        [{"field": "id", "op": "eq", "value": "3"}, {"field": "id", "op": "bogus", "value": "1"}],
        [{"field": "id", "op": "eq", "value": "3"}, {"field": "email", "op": "eq", "value": 3}],
    ):
        assert one["id"] in [r["id"] for r in await rows(api, "contacts", filters=spec)], spec
    empties = await rows(api, "contacts", filters=[{"field": "company_id", "op": "blank"}])
    fulls = await rows(api, "contacts", filters=[{"field": "company_id", "op": "notblank"}])
    assert len(empties) + len(fulls) == 20
    nots = [{"field": "email", "op": "nlike", "value": one["email"]}]
    assert one["id"] not in [r["id"] for r in await rows(api, "contacts", filters=nots)]
    assert (
        len(await rows(api, "contacts", filters=[{"field": "id", "op": "neq", "value": "x"}])) == 20
    )
    assert await rows(api, "contacts", filters=[{"field": "id", "op": "eq", "value": "x"}]) == []
    assert len(await rows(api, "contacts", filters=[1, {"op": "eq"}])) == 20
    down = await rows(api, "contacts", sort="last_name", order="DESC")
    names = [r["lastName"] for r in down]
    assert names == sorted(names, reverse=True)
    both = await rows(api, "deals", sorts=[{"field": "amount", "order": "desc"}, {"field": "id"}])
    amounts = [r["amount"] for r in both]
    assert amounts == sorted(amounts, reverse=True)
    companies = await rows(api, "companies")
    firm = companies[0]
    assert [c["id"] for c in await rows(api, "companies", filter={"q": firm["name"].upper()})] == [
        firm["id"]
    ]
    by_id = await rows(api, "deals", filter={"company_id": [firm["id"], 9999], "shoe": 1})
    assert all(d["companyId"] == firm["id"] for d in by_id)
    summary = await rows(api, "companies_summary", filter={"q": firm["name"]})
    assert summary[0]["nbContacts"] == sum(1 for c in contacts if c["companyId"] == firm["id"])
    people = await rows(api, "contacts_summary", filter={"q": one["email"]})
    assert [p["id"] for p in people] == [one["id"]]
    assert "companyName" in people[0]
    single = (await api.get(f"/api/companies_summary/{firm['id']}")).json()
    assert single["nbDeals"] == sum(
        1 for d in await rows(api, "deals") if d["companyId"] == firm["id"]
    )


async def test_writes_archive_restore_and_cascades(api: httpx.AsyncClient) -> None:
    company = await api.post(
        "/api/companies",
        json={"name": "Acme", "category": ["a", "b"], "id": 77},
    )
    assert company.status_code == 201
    firm = company.json()
    assert (firm["category"], firm["customFields"], firm["id"]) == ("a,b", {}, 7)
    person = (
        await api.post("/api/contacts", json={"firstName": "Ann", "company_id": firm["id"]})
    ).json()
    note = await api.post(
        "/api/contact_notes",
        json={"contact_id": person["id"], "text": "hi", "date": "2024-01-02T03:04:05"},
    )
    assert note.json()["date"] == "2024-01-02T03:04:05.000Z"
    deal = (
        await api.post(
            "/api/deals",
            json={"name": "D", "status": "won", "company_id": firm["id"], "amount": "12.5"},
        )
    ).json()
    assert (deal["amount"], deal["companyName"], deal["archivedAt"]) == (12.5, "Acme", None)
    updated = await api.put(f"/api/deals/{deal['id']}", json={"custom_fields": {"x": 1}})
    assert updated.json()["customFields"] == {"x": 1}
    archived = await api.delete(f"/api/deals/{deal['id']}", headers=MEMBER)
    assert archived.json()["archived"] is True
    assert (await api.get(f"/api/deals/{deal['id']}")).status_code == 404
    assert deal["id"] not in [d["id"] for d in await rows(api, "deals")]
    listed = await rows(api, "deals", filter={"include_archived": True})
    assert deal["id"] in [d["id"] for d in listed]
    restored = (await api.post(f"/api/deals/{deal['id']}/restore")).json()
    assert restored["archivedAt"] is None
    assert "companyName" not in restored
    gone = await api.delete(f"/api/companies/{firm['id']}")
    assert gone.json()["name"] == "Acme"
    assert (await api.get(f"/api/contacts/{person['id']}")).status_code == 404
    assert note.json()["id"] not in [n["id"] for n in await rows(api, "contact_notes")]
    assert (await api.get(f"/api/deals/{deal['id']}")).json()["companyId"] is None
    assert (await api.delete(f"/api/deals/{deal['id']}")).status_code == 200
    assert (await api.delete("/api/contacts/1")).status_code == 200


async def test_merge_moves_notes_to_the_winner(api: httpx.AsyncClient) -> None:
    notes = await rows(api, "contact_notes")
    loser = notes[0]["contactId"]
    winner = next(c["id"] for c in await rows(api, "contacts") if c["id"] != loser)
    merged = await api.post("/api/merge_contacts", json={"loserId": loser, "winnerId": winner})
    assert merged.json() == {"id": winner}
    moved = await rows(api, "contact_notes", filter={"contact_id": winner})
    assert notes[0]["id"] in [n["id"] for n in moved]
    assert (await api.get(f"/api/contacts/{loser}")).status_code == 404


async def test_rate_limits_per_path() -> None:
    app = create_emulator("basicsos", EmulatorOptions(companies=2, contacts=2, deals=1, notes=1))
    now = [100.0]
    app.state.emulator.windows.clock = lambda: now[0]
    async with emulator_client(app, "basicsos", ADMIN) as client:
        for _ in range(basicsos.RATE_LIMIT):
            assert (await client.get("/api/contacts")).status_code == 200
        throttled = await client.get("/api/contacts")
        refused(throttled, 429, "Too many requests")
        assert throttled.headers["Retry-After"] == "61"
        assert (await client.get("/api/companies")).status_code == 200  # another path
        now[0] += 60
        assert (await client.get("/api/contacts")).status_code == 200


async def test_injected_faults_answer_in_the_error_shape(api: httpx.AsyncClient) -> None:
    await api.post("/_emulator/faults", json={"rate_limit_rate": 1})
    throttled = await api.get("/api/contacts")
    refused(throttled, 429, "Too many requests")
    assert throttled.headers["Retry-After"] == "60"
    await api.post("/_emulator/faults", json={"error_rate": 1})
    refused(await api.get("/api/contacts"), 500, "Injected server error.")
