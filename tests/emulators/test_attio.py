"""The Attio emulator against its contract, in process."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.request
import uuid
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, attio
from gateway.providers import create_emulator
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge
from tests.support.stack import emulator_client

SMALL = EmulatorOptions(rate_limits=False, companies=8, contacts=20, deals=6, notes=10)
AUTH = {"Authorization": f"Bearer {attio.DEMO_API_KEY}"}
PEOPLE = "/v2/objects/people/records"
COMPANIES = "/v2/objects/companies/records"
DEALS = "/v2/objects/deals/records"


# --- what the tests know of Attio, read straight from its API -------------------------
OBJECTS = {Entity.CONTACT: "people", Entity.COMPANY: "companies", Entity.DEAL: "deals"}


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    if entity is Entity.NOTE:
        path, id_key = "/v2/notes", "note_id"
    else:
        path, id_key = f"/v2/objects/{OBJECTS[entity]}/records", "record_id"
    ids: list[str] = []
    page = 1
    while True:
        body = client.get(path, params={"page": page, "pageSize": 100}, headers=AUTH).json()
        ids += [str(r["id"][id_key]) for r in body["data"]]
        if not body["data"] or len(ids) >= body["meta"]["total"]:
            return ids
        page += 1


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    rows = client.get(PEOPLE, params={"pageSize": count}, headers=AUTH).json()["data"]
    return {
        r["id"]["record_id"]: (
            r["values"]["company"][0]["target_record_id"] if r["values"]["company"] else None
        )
        for r in rows
    }


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    found: dict[str, CompanyFields] = {}
    page = 1
    while True:
        data = client.get(
            "/v2/objects/companies/records", params={"page": page, "pageSize": 100}, headers=AUTH
        ).json()["data"]
        for r in data:
            values = r["values"]
            name = values["name"][0]["value"] if values.get("name") else None
            domain = values["domains"][0]["domain"] if values.get("domains") else None
            found[r["id"]["record_id"]] = {"name": name or None, "domain": domain or None}
        if len(data) < 100:
            return found
        page += 1


KNOWLEDGE = ProviderKnowledge(
    kind="attio",
    remote_ids=_remote_ids,
    sample_ids=dict.fromkeys(Entity, "0f6b1b8e-4f1c-5a8e-9c2d-3b4a5c6d7e8f"),
    unknown_ids=dict.fromkeys(Entity, "nope-0"),
    contact_companies=_contact_companies,
    companies=_companies,
)
# --------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = create_emulator("attio", SMALL)
    async with emulator_client(app, "attio", AUTH) as client:
        yield client


@pytest.fixture(scope="module")
async def full() -> AsyncIterator[httpx.AsyncClient]:
    """The demo's world (1,000 people), for what needs its data; shared by the module."""
    app = create_emulator("attio", EmulatorOptions(rate_limits=False))
    async with emulator_client(app, "attio", AUTH) as client:
        yield client


def invalid(
    response: httpx.Response, status: int = 400, kind: str = "invalid_request_error"
) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == kind
    message: str = error["message"]
    return message


@pytest.mark.parametrize("header", [None, "Basic " + attio.DEMO_API_KEY, "Bearer nope", "Bearer"])
async def test_keys_are_checked(header: str | None) -> None:
    async with emulator_client(create_emulator("attio", SMALL), "attio") as client:
        headers = {"Authorization": header} if header else {}
        response = await client.get(PEOPLE, headers=headers)
        invalid(response, 401, "auth_error")


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (PEOPLE, {"page": 0}, "`page` must be 1 or more."),
        (PEOPLE, {"pageSize": 101}, "`pageSize` must be between 1 and 100."),
        (PEOPLE, {"pageSize": 0}, "`pageSize` must be between 1 and 100."),
        (PEOPLE, {"page": "x"}, "`page` and `pageSize` must be integers."),
        (PEOPLE, {"limit": 5}, "Unknown query parameter 'limit'."),
        (PEOPLE, {"cursor": "abc"}, "Unknown query parameter 'cursor'."),
        ("/v2/notes", {"offset": 5}, "Unknown query parameter 'offset'."),
        (PEOPLE, [("page", 1), ("page", 2)], "Query parameter 'page' is given more than once."),
        (PEOPLE, {"sort": "name", "direction": "up"}, "`direction` must be asc or desc."),
        (PEOPLE, {"sort": "shoe_size"}, "filter_error: people has no attribute 'shoe_size'."),
        ("/v2/objects/planets/records", {}, "Object 'planets' not found."),
        (f"{PEOPLE}/nope", {}, "Record 'nope' not found."),
        ("/v2/notes/nope", {}, "Note 'nope' not found."),
        ("/v2/webhooks/nope", {}, "Webhook 'nope' not found."),
        ("/v2/notes", {"parent_object": "planets"}, "Object 'planets' not found."),
        ("/v2/nothing-here", {}, "Not Found"),
    ],
)
async def test_read_refusals(api: httpx.AsyncClient, path: str, params: Any, message: str) -> None:
    response = await api.get(path, params=params)
    status = 404 if "not found" in message.lower() else 400
    assert invalid(response, status) == message


async def test_pages_past_the_end_are_empty_with_the_true_total(api: httpx.AsyncClient) -> None:
    body = (await api.get(PEOPLE, params={"page": 3, "pageSize": 10})).json()
    assert body == {"data": [], "meta": {"page": 3, "pageSize": 10, "total": 20}}


async def test_aliases_and_object_ids_name_the_same_object(api: httpx.AsyncClient) -> None:
    deals = (await api.get(DEALS)).json()["data"]
    alias = (await api.get("/v2/objects/opportunities/records")).json()["data"]
    by_id = (await api.get(f"/v2/objects/{deals[0]['id']['object_id']}/records")).json()["data"]
    assert deals == alias == by_id
    assert len(deals) == 6


async def test_list_search_and_sort(api: httpx.AsyncClient) -> None:
    everyone = (await api.get(PEOPLE, params={"pageSize": 100})).json()["data"]
    last_names = [p["values"]["name"][0]["last_name"] for p in everyone]
    one = everyone[5]
    needle = one["values"]["email_addresses"][0]["email_address"].upper()
    found = (await api.get(PEOPLE, params={"query": needle})).json()["data"]
    assert [p["id"]["record_id"] for p in found] == [one["id"]["record_id"]]
    down = (
        await api.get(PEOPLE, params={"sort": "name", "direction": "desc", "pageSize": 100})
    ).json()["data"]
    full = [p["values"]["name"][0]["full_name"].lower() for p in down]
    assert full == sorted(full, reverse=True)
    assert len(last_names) == 20


QUERY_REFUSALS: list[tuple[Any, str]] = [
    ({"limit": 5, "page": 1}, "Page with `limit`/`offset` or with `page`/`pageSize`, not both."),
    ({"limit": 0}, "`limit` must be between 1 and 100."),
    ({"limit": 101}, "`limit` must be between 1 and 100."),
    ({"limit": True}, "`limit` must be between 1 and 100."),
    ({"offset": -1}, "`offset` must be 0 or more."),
    ({"whatever": 1}, "Unknown body keys: whatever."),
    ({"cursor": "x"}, "Unknown body keys: cursor."),
    ({"sorts": "name"}, "`sorts` must be a list."),
    ({"sorts": [{"field": "x"}]}, "Each sort needs an `attribute`."),
    (
        {"sorts": [{"attribute": "name", "x": 1}]},
        "A sort has only `attribute`, `field` and `direction`.",
    ),
    (
        {"sorts": [{"attribute": "name", "direction": "up"}]},
        "A sort's `direction` is asc or desc, its `field` a string.",
    ),
    ({"filter": [1]}, "filter_error: a filter is an object."),
    ({"filter": {"$and": {}}}, "filter_error: $and takes a list."),
    ({"filter": {"name": {"$regex": "x"}}}, "filter_error: unsupported operator '$regex'."),
    ({"filter": {"planet": "x"}}, "filter_error: people has no attribute 'planet'."),
]


@pytest.mark.parametrize(("body", "message"), QUERY_REFUSALS)
async def test_query_refusals(api: httpx.AsyncClient, body: Any, message: str) -> None:
    assert invalid(await api.post(f"{PEOPLE}/query", json=body)) == message


async def test_query_bodies_that_are_not_objects(api: httpx.AsyncClient) -> None:
    parse = await api.post(f"{PEOPLE}/query", content=b"{nope")
    assert invalid(parse) == "The body is not valid JSON."
    assert invalid(await api.post(f"{PEOPLE}/query", json=[1])) == "The body must be a JSON object."
    strict = await api.post(f"{PEOPLE}/query", params={"x": 1}, json={})
    assert invalid(strict) == "Unknown query parameter 'x'."


async def ids(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[str]:
    response = await api.post(f"{path}/query", json=body)
    assert response.status_code == 200, response.text
    return [r["id"]["record_id"] for r in response.json()["data"]]


async def test_query_filters(api: httpx.AsyncClient) -> None:
    people = (await api.get(PEOPLE, params={"pageSize": 100})).json()["data"]
    every = [p["id"]["record_id"] for p in people]
    first, second = people[0], people[1]
    name = first["values"]["name"][0]
    email = first["values"]["email_addresses"][0]
    assert await ids(
        api, PEOPLE, {"filter": {"email_addresses": email["email_address"].upper()}}
    ) == [first["id"]["record_id"]]
    sub = {"name": {"last_name": {"$eq": name["last_name"]}}}
    assert first["id"]["record_id"] in await ids(api, PEOPLE, {"filter": sub})
    domain = {"email_addresses": {"email_domain": {"$ends_with": email["email_domain"][-4:]}}}
    assert first["id"]["record_id"] in await ids(api, PEOPLE, {"filter": domain})
    batch = {"record_id": {"$in": every[:3]}}
    assert await ids(api, PEOPLE, {"filter": batch}) == every[:3]
    unknown = {"record_id": {"$in": [*every[:3], str(uuid.uuid4())]}}
    assert await ids(api, PEOPLE, {"filter": unknown}) == every[:3]
    either = {"$or": [{"record_id": every[0]}, {"record_id": every[1]}]}
    assert await ids(api, PEOPLE, {"filter": either}) == every[:2]
    both = {"$and": [{"record_id": {"$in": every[:2]}}, {"$not": {"record_id": every[0]}}]}
    assert await ids(api, PEOPLE, {"filter": both}) == [second["id"]["record_id"]]
    starts = {"name": {"$starts_with": name["full_name"][:3].lower()}}
    assert first["id"]["record_id"] in await ids(api, PEOPLE, {"filter": starts})
    contains = {"name": {"$contains": name["full_name"][1:4].upper()}}
    assert first["id"]["record_id"] in await ids(api, PEOPLE, {"filter": contains})
    stamp = first["created_at"]
    for op, expect in (("$lt", 0), ("$lte", 1), ("$gte", 20), ("$gt", 19)):
        got = await ids(api, PEOPLE, {"filter": {"created_at": {op: stamp}}, "limit": 100})
        assert len(got) == expect, op
    empty = await ids(api, PEOPLE, {"filter": {"phone_numbers": {"$not_empty": False}}})
    full = await ids(api, PEOPLE, {"filter": {"phone_numbers": {"$not_empty": True}}})
    assert sorted(empty + full) == sorted(every)
    company = first["values"]["company"] or second["values"]["company"]
    target = company[0]["target_record_id"]
    ref = {"company": {"target_object": "companies", "target_record_id": target}}
    staff = await ids(api, PEOPLE, {"filter": ref, "limit": 100})
    assert staff
    assert all(
        p["values"]["company"][0]["target_record_id"] == target
        for p in people
        if p["id"]["record_id"] in staff
    )


async def test_query_windows_and_sorts(api: httpx.AsyncClient) -> None:
    page = (await api.post(f"{PEOPLE}/query", json={"limit": 5, "offset": 10})).json()
    assert page["meta"] == {"page": 3, "pageSize": 5, "total": 20}
    listed = (await api.get(PEOPLE, params={"pageSize": 20})).json()["data"]
    assert [r["id"] for r in page["data"]] == [r["id"] for r in listed[10:15]]
    paged = (await api.post(f"{PEOPLE}/query", json={"page": 3, "pageSize": 5})).json()
    assert paged["data"] == page["data"]
    sorts = [{"attribute": "name", "field": "last_name", "direction": "desc"}]
    rows = (await api.post(f"{PEOPLE}/query", json={"sorts": sorts})).json()["data"]
    last = [r["values"]["name"][0]["last_name"].lower() for r in rows]
    assert last == sorted(last, reverse=True)
    deals = (await api.post(f"{DEALS}/query", json={"sorts": [{"attribute": "value"}]})).json()[
        "data"
    ]
    amounts = [d["values"]["value"][0]["currency_value"] for d in deals]
    assert amounts == sorted(amounts)


WRITE_REFUSALS: list[tuple[str, Any, int, str]] = [
    (PEOPLE, {"data": []}, 400, 'The body must be {"data": {"values": {...}}}.'),
    (PEOPLE, {"data": {"values": {"planet": "x"}}}, 400, "people has no attribute 'planet'."),
    (
        PEOPLE,
        {"data": {"values": {"name": 5}}},
        400,
        "`name` takes a string or {first_name, last_name, full_name}.",
    ),
    (
        PEOPLE,
        {"data": {"values": {"job_title": ["a", "b"]}}},
        400,
        "Attribute 'job_title' takes a single value.",
    ),
    (PEOPLE, {"data": {"values": {"job_title": True}}}, 400, "Attribute 'job_title' takes a text."),
    (
        PEOPLE,
        {"data": {"values": {"email_addresses": ["nope"]}}},
        400,
        "'nope' is not a valid email address for 'email_addresses'.",
    ),
    (
        PEOPLE,
        {"data": {"values": {"phone_numbers": [5]}}},
        400,
        "'phone_numbers' takes phone numbers as strings.",
    ),
    (
        PEOPLE,
        {"data": {"values": {"primary_location": 5}}},
        400,
        "'primary_location' takes a location object.",
    ),
    (
        PEOPLE,
        {"data": {"values": {"company": "nope"}}},
        404,
        "value_not_found: no companies record 'nope'.",
    ),
    (COMPANIES, {"data": {"values": {"domains": ["nodot"]}}}, 400, "'nodot' is not a domain."),
    (
        COMPANIES,
        {"data": {"values": {"categories": [5]}}},
        400,
        "'categories' takes option titles.",
    ),
    (DEALS, {"data": {"values": {"stage": "Lead"}}}, 400, "Deals need a `name`."),
    (
        DEALS,
        {"data": {"values": {"name": "D", "stage": "Maybe"}}},
        400,
        "'Maybe' is not a stage; stages: Lead, In Progress, Won 🎉, Lost.",
    ),
    (DEALS, {"data": {"values": {"name": "D", "value": "lots"}}}, 400, "'value' takes a number."),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), WRITE_REFUSALS)
async def test_write_refusals_leave_nothing_behind(
    api: httpx.AsyncClient, path: str, body: Any, status: int, message: str
) -> None:
    before = (await api.get(path)).json()["meta"]["total"]
    assert invalid(await api.post(path, json=body), status) == message
    assert (await api.get(path)).json()["meta"]["total"] == before


async def test_writes_in_short_and_object_forms(api: httpx.AsyncClient) -> None:
    company = (await api.get(COMPANIES)).json()["data"][0]
    domain = company["values"]["domains"][0]["domain"]
    values = {
        "name": "Ada Lovelace",
        "email_addresses": [{"email_address": "Ada@Engine.test"}],
        "phone_numbers": [{"original_phone_number": "+1 555 0100"}],
        "primary_location": "London",
        "company": {"target_object": "companies", "domains": [{"domain": domain.upper()}]},
        "job_title": {"value": "Analyst"},
    }
    created = await api.post(PEOPLE, json={"data": {"values": values}})
    assert created.status_code == 200
    person = created.json()["data"]
    got = person["values"]
    assert got["name"][0]["first_name"] == "Ada"
    assert got["name"][0]["last_name"] == "Lovelace"
    assert got["email_addresses"][0]["email_address"] == "ada@engine.test"
    assert got["email_addresses"][0]["email_root_domain"] == "engine.test"
    assert got["primary_location"][0]["locality"] == "London"
    assert got["company"][0]["target_record_id"] == company["id"]["record_id"]
    assert got["description"] == []
    record = f"{PEOPLE}/{person['id']['record_id']}"
    extra = {"data": {"values": {"email_addresses": ["second@engine.test"]}}}
    appended = (await api.patch(record, json=extra)).json()["data"]["values"]
    assert len(appended["email_addresses"]) == 2  # PATCH appends to multiselects
    replaced = (await api.put(record, json=extra)).json()["data"]["values"]
    assert len(replaced["email_addresses"]) == 1  # PUT overwrites them
    assert replaced["name"] == appended["name"]  # untouched attributes stay
    cleared = (await api.patch(record, json={"data": {"values": {"job_title": None}}})).json()
    assert cleared["data"]["values"]["job_title"] == []
    taken = (await api.get(PEOPLE)).json()["data"][0]["values"]["email_addresses"][0]
    clash = await api.patch(
        record, json={"data": {"values": {"email_addresses": [taken["email_address"]]}}}
    )
    assert invalid(clash).startswith("uniqueness_conflict: email_addresses")
    again = {"data": {"values": {"email_addresses": [taken["email_address"].upper()]}}}
    assert invalid(await api.post(PEOPLE, json=again)).startswith("uniqueness_conflict")
    deal = {
        "name": "Big",
        "stage": {"status": {"title": "Won 🎉"}},
        "value": {"currency_value": 10, "currency_code": "EUR"},
        "associated_people": [person["id"]["record_id"]],
    }
    made = (await api.post(DEALS, json={"data": {"values": deal}})).json()["data"]["values"]
    assert made["stage"][0]["status"]["celebration_enabled"] is True
    assert made["value"][0]["currency_code"] == "EUR"
    assert made["owner"][0]["referenced_actor_id"] == attio.OWNER_ID
    categories = {"categories": ["Robots", {"option": {"title": "Robots"}}], "domains": ["r.test"]}
    firm = (await api.post(COMPANIES, json={"data": {"values": categories}})).json()["data"]
    options = firm["values"]["categories"]
    assert options[0]["option"] == options[1]["option"]  # one option per title
    assert (await api.delete(record)).json() == {}
    assert (await api.get(record)).status_code == 404


async def test_assert_upserts_on_the_unique_attribute(api: httpx.AsyncClient) -> None:
    refused = await api.put(COMPANIES, params={"matching_attribute": "name"}, json={})
    assert invalid(refused) == "`matching_attribute` must be a unique attribute of companies."
    matching = {"matching_attribute": "domains"}
    empty = await api.put(COMPANIES, params=matching, json={"data": {"values": {}}})
    assert invalid(empty) == "`domains` is required to assert a record."
    shapeless = await api.put(COMPANIES, params=matching, json={"data": {"values": 1}})
    assert invalid(shapeless) == 'The body must be {"data": {"values": {...}}}.'
    new = {"data": {"values": {"domains": ["fresh.test"], "name": "Fresh"}}}
    created = (await api.put(COMPANIES, params=matching, json=new)).json()["data"]
    again = {"data": {"values": {"domains": ["FRESH.test"], "name": "Fresher"}}}
    updated = (await api.put(COMPANIES, params=matching, json=again)).json()["data"]
    assert updated["id"] == created["id"]
    assert updated["values"]["name"][0]["value"] == "Fresher"
    deals = await api.put(DEALS, params={"matching_attribute": "name"}, json=new)
    assert invalid(deals) == "`matching_attribute` must be a unique attribute of deals."


async def test_notes(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/v2/notes", params={"pageSize": 100})).json()
    stamps = [n["created_at"] for n in listed["data"]]
    assert stamps == sorted(stamps, reverse=True)
    assert listed["meta"]["total"] == 10
    person = (await api.get(PEOPLE)).json()["data"][0]["id"]["record_id"]
    data = {
        "parent_object": "people",
        "parent_record_id": person,
        "title": "Call",
        "format": "markdown",
        "content": "**hi**",
    }
    for bad, status, message in (
        ({**data, "parent_record_id": "nope"}, 404, "Parent record 'nope' not found."),
        ({**data, "format": "html"}, 400, "`format` must be plaintext or markdown."),
        ({**data, "title": 5}, 400, "A note needs a `title` and `content` (strings)."),
        ("x", 400, 'The body must be {"data": {...}}.'),
    ):
        assert invalid(await api.post("/v2/notes", json={"data": bad}), status) == message
    note = (await api.post("/v2/notes", json={"data": data})).json()["data"]
    assert note["content_markdown"] == "**hi**"
    assert note["parent_object"] == "people"
    mine = (
        await api.get("/v2/notes", params={"parent_object": "people", "parent_record_id": person})
    ).json()["data"]
    assert note["id"]["note_id"] in [n["id"]["note_id"] for n in mine]
    assert all(n["parent_record_id"] == person for n in mine)
    path = f"/v2/notes/{note['id']['note_id']}"
    assert (await api.get(path)).json()["data"] == note
    assert (await api.delete(path)).json() == {}
    assert (await api.get(path)).status_code == 404
    # Deleting a record takes its notes and the references to it along.
    await api.post("/v2/notes", json={"data": data})
    await api.delete(f"{PEOPLE}/{person}")
    left = (await api.get("/v2/notes", params={"parent_record_id": person})).json()
    assert left["meta"]["total"] == 0


async def test_webhooks_are_stored_signed_and_delivered_to_loopback_only(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, str, bytes]] = []
    deliver = attio._deliver
    monkeypatch.setattr(attio, "_deliver", lambda *args: sent.append(args))
    subscriptions = [{"event_type": "record.created", "filter": None}]
    for data, message in (
        (
            {"target_url": "http://example.com/x", "subscriptions": subscriptions},
            "`target_url` must be an https URL.",
        ),
        ({"target_url": 5, "subscriptions": subscriptions}, "`target_url` must be an https URL."),
        (
            {"target_url": "https://a.test", "subscriptions": []},
            "`subscriptions` must be a non-empty list.",
        ),
        (
            {"target_url": "https://a.test", "subscriptions": [{"event_type": "x"}]},
            "Unknown event type in {'event_type': 'x'}.",
        ),
        (
            {
                "target_url": "https://a.test",
                "subscriptions": [{"event_type": "note.created", "filter": 1}],
            },
            "A subscription's `filter` is null or an object.",
        ),
        ("x", 'The body must be {"data": {"target_url", "subscriptions"}}.'),
    ):
        assert invalid(await api.post("/v2/webhooks", json={"data": data})) == message
    local = {"target_url": "http://127.0.0.1:9/hook", "subscriptions": subscriptions}
    hook = (await api.post("/v2/webhooks", json={"data": local})).json()["data"]
    remote = {"target_url": "https://hooks.example.com/", "subscriptions": subscriptions}
    other = (await api.post("/v2/webhooks", json={"data": remote})).json()["data"]
    assert hook["status"] == "active"
    assert hook["secret"]
    listed = (await api.get("/v2/webhooks")).json()
    assert listed["meta"]["total"] == 2
    assert all("secret" not in h for h in listed["data"])
    person = await api.post(PEOPLE, json={"data": {"values": {"name": "Hook Test"}}})
    [(url, secret, body)] = sent  # the https target is not loopback: nothing sent there
    assert (url, secret) == (local["target_url"], hook["secret"])
    event = json.loads(body)
    assert event["webhook_id"] == hook["id"]["webhook_id"]
    assert event["events"][0]["event_type"] == "record.created"
    assert event["events"][0]["id"]["record_id"] == person.json()["data"]["id"]["record_id"]
    path = f"/v2/webhooks/{hook['id']['webhook_id']}"
    bad = await api.patch(path, json={"data": {"status": "paused"}})
    assert invalid(bad) == 'The body must be {"data": {"target_url"?, "subscriptions"?}}.'
    notes = [{"event_type": "note.created"}]
    changed = {"target_url": "http://localhost:9/other", "subscriptions": notes}
    patched = (await api.patch(path, json={"data": changed})).json()["data"]
    assert patched["target_url"] == changed["target_url"]
    assert "secret" not in patched
    assert (await api.get(path)).json()["data"] == patched
    assert (await api.delete(f"/v2/webhooks/{other['id']['webhook_id']}")).json() == {}
    assert (await api.get("/v2/webhooks")).json()["meta"]["total"] == 1
    invalid(await api.get(f"/v2/webhooks/{other['id']['webhook_id']}"), 404)
    # The real delivery signs the raw body with the webhook's secret.
    posted: list[Any] = []

    class Thread:
        def __init__(self, target: Any, daemon: bool) -> None:
            self.target = target

        def start(self) -> None:
            self.target()

    def urlopen(request: Any, timeout: float) -> Any:
        posted.append(request)
        raise OSError("refused")  # a failed delivery is dropped

    monkeypatch.setattr(threading, "Thread", Thread)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    deliver("http://127.0.0.1:9/x", "s3cret", b'{"a":1}')
    [request] = posted
    expected = hmac.new(b"s3cret", b'{"a":1}', hashlib.sha256).hexdigest()
    assert request.get_header("Attio-signature") == expected
    assert request.get_header("X-attio-signature") == expected


async def test_rate_limits_answer_429_with_an_http_date() -> None:
    app = create_emulator("attio", EmulatorOptions(companies=2, contacts=2, deals=1, notes=1))
    now = [1_700_000_000.0]
    app.state.emulator.log.clock = lambda: now[0]
    async with emulator_client(app, "attio") as client:
        for _ in range(100):
            assert (await client.get(PEOPLE, headers=AUTH)).status_code == 200
        refused = await client.get(PEOPLE, headers=AUTH)
        invalid(refused, 429, "rate_limit_error")
        when = parsedate_to_datetime(refused.headers["Retry-After"]).timestamp()
        assert when == now[0] + 61
        # Another key has its own budget.
        other = {"Authorization": f"Bearer {attio.TENANT2_API_KEY}"}
        assert (await client.get(PEOPLE, headers=other)).status_code == 200
        now[0] += 60
        assert (await client.get(PEOPLE, headers=AUTH)).status_code == 200


async def test_injected_faults_answer_in_the_error_shape(api: httpx.AsyncClient) -> None:
    await api.post("/_emulator/faults", json={"error_rate": 1})
    invalid(await api.get(PEOPLE), 500, "api_error")
    await api.post("/_emulator/faults", json={"rate_limit_rate": 1})
    throttled = await api.get(PEOPLE)
    invalid(throttled, 429, "rate_limit_error")
    assert parsedate_to_datetime(throttled.headers["Retry-After"])
    await api.post("/_emulator/faults", json={"timeout_rate": 1, "timeout_seconds": 0})
    invalid(await api.get(PEOPLE), 504, "api_error")
    stats = (await api.get("/_emulator/stats")).json()
    assert stats["by_status"] == {"500": 1, "429": 1, "504": 1}


async def test_pages_in_creation_order_with_total(api: httpx.AsyncClient) -> None:
    ids, workspace, page = [], None, 1
    while True:
        body = (await api.get(PEOPLE, params={"page": page, "pageSize": 8})).json()
        assert body["meta"] == {"page": page, "pageSize": 8, "total": 20}
        if not body["data"]:
            break
        ids += [r["id"]["record_id"] for r in body["data"]]
        workspace = body["data"][0]["id"]["workspace_id"]
        page += 1
    assert len(ids) == len(set(ids)) == 20
    # The documented order: created_at ascending, which is the seed's index order.
    expected = [str(uuid.uuid5(attio.NAMESPACE, f"{workspace}:people:seed:{i}")) for i in range(20)]
    assert ids == expected
    first = (await api.get(PEOPLE)).json()
    assert first["meta"]["pageSize"] == 25  # the default
    stamps = [r["created_at"] for r in first["data"]]
    assert stamps == sorted(stamps)


async def test_record_shape_is_attribute_values(api: httpx.AsyncClient) -> None:
    record = (await api.get(PEOPLE, params={"pageSize": 1})).json()["data"][0]
    name = record["values"]["name"][0]
    assert name["attribute_type"] == "personal-name"
    assert name["full_name"] == f"{name['first_name']} {name['last_name']}"
    assert {"active_from", "active_until", "created_by_actor"} <= set(name)
    email = record["values"]["email_addresses"][0]
    assert email["email_domain"] == email["email_address"].split("@")[1]
    assert record["created_at"].endswith("000Z")


async def test_query_endpoint_filters_and_sorts(full: httpx.AsyncClient) -> None:
    body = {
        "filter": {
            "$or": [{"name": {"last_name": {"$eq": "Turing"}}}, {"job_title": {"$contains": "cto"}}]
        },
        "sorts": [{"attribute": "name", "field": "last_name", "direction": "desc"}],
        "limit": 100,
    }
    result = (await full.post(f"{PEOPLE}/query", json=body)).json()
    assert result["data"]
    for record in result["data"]:
        last = record["values"]["name"][0]["last_name"]
        title = record["values"]["job_title"][0]["value"]
        assert last == "Turing" or "cto" in title.lower()


async def test_get_by_id_alias_and_object_uuid(api: httpx.AsyncClient) -> None:
    first = (await api.get(DEALS, params={"pageSize": 1})).json()["data"][0]
    record_id, object_id = first["id"]["record_id"], first["id"]["object_id"]
    for obj in ("deals", "opportunities", object_id):
        got = await api.get(f"/v2/objects/{obj}/records/{record_id}")
        assert got.status_code == 200
        assert got.json()["data"] == first
    stage = first["values"]["stage"][0]
    assert stage["attribute_type"] == "status"
    assert stage["status"]["title"] in ("Lead", "In Progress", "Won 🎉", "Lost")


async def test_tenant_two_sees_another_workspace(api: httpx.AsyncClient) -> None:
    other = {"Authorization": f"Bearer {attio.TENANT2_API_KEY}"}
    mine = (await api.get(PEOPLE)).json()["data"]
    theirs = (await api.get(PEOPLE, headers=other)).json()["data"]
    assert {r["id"]["record_id"] for r in mine}.isdisjoint(r["id"]["record_id"] for r in theirs)
    assert mine[0]["id"]["workspace_id"] != theirs[0]["id"]["workspace_id"]
    assert [r["values"]["name"] for r in mine] != [r["values"]["name"] for r in theirs]
    mine_id = mine[0]["id"]["record_id"]
    assert (await api.get(f"{PEOPLE}/{mine_id}", headers=other)).status_code == 404


async def test_stats_count_requests(api: httpx.AsyncClient) -> None:
    before = (await api.get("/_emulator/stats")).json()
    await api.get(PEOPLE)
    anonymous = api.build_request("GET", PEOPLE)
    del anonymous.headers["Authorization"]
    await api.send(anonymous)  # a 401 counts too
    after = (await api.get("/_emulator/stats")).json()
    assert after["requests"] - before["requests"] == 2
    key = f"GET {PEOPLE}"
    assert after["by_endpoint"][key] - before["by_endpoint"].get(key, 0) == 2
    assert after["by_status"]["401"] - before["by_status"].get("401", 0) == 1


async def test_deal_and_note_written_then_read_back(api: httpx.AsyncClient) -> None:
    company = (await api.get(COMPANIES, params={"pageSize": 1})).json()["data"][0]
    company_id = company["id"]["record_id"]
    target = {"target_object": "companies", "target_record_id": company_id}
    values = {"name": "Big one", "stage": "Lead", "value": 4200, "associated_company": target}
    deal = await api.post(DEALS, json={"data": {"values": values}})
    assert deal.status_code == 200
    deal_id = deal.json()["data"]["id"]["record_id"]
    read = (await api.get(f"{DEALS}/{deal_id}")).json()["data"]
    assert read["values"]["value"][0]["currency_value"] == 4200
    assert read["values"]["value"][0]["currency_code"] == "USD"
    assert read["values"]["associated_company"][0]["target_record_id"] == company_id
    bad_stage = await api.put(f"{DEALS}/{deal_id}", json={"data": {"values": {"stage": "Maybe"}}})
    assert bad_stage.status_code == 400
    data = {
        "parent_object": "deals",
        "parent_record_id": deal_id,
        "title": "Kick-off",
        "format": "plaintext",
        "content": "Went well.",
    }
    note = (await api.post("/v2/notes", json={"data": data})).json()["data"]
    note_id = note["id"]["note_id"]
    got = (await api.get(f"/v2/notes/{note_id}")).json()["data"]
    assert got["content_plaintext"] == "Went well."
    assert (await api.delete(f"/v2/notes/{note_id}")).json() == {}
    invalid(await api.get(f"/v2/notes/{note_id}"), 404)


async def test_objects_are_listed_with_the_ids_webhook_events_name(
    api: httpx.AsyncClient,
) -> None:
    objects = (await api.get("/v2/objects")).json()["data"]
    assert [o["api_slug"] for o in objects] == ["people", "companies", "deals"]
    person = (await api.get(PEOPLE, params={"pageSize": 1})).json()["data"][0]
    people = objects[0]
    assert people["id"]["object_id"] == person["id"]["object_id"]
    assert people["id"]["workspace_id"] == person["id"]["workspace_id"]
    assert (people["singular_noun"], people["plural_noun"]) == ("Person", "People")
    by_id = await api.get(
        f"/v2/objects/{people['id']['object_id']}/records", params={"pageSize": 1}
    )
    assert by_id.json()["data"] == [person]
    assert invalid(await api.get("/v2/objects", params={"page": 1})) == (
        "Unknown query parameter 'page'."
    )
