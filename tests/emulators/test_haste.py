"""The hasteCRM emulator against its contract, in process."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, haste
from emulators.routing import pack
from gateway.providers import create_emulator
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge
from tests.support.stack import emulator_client
from tests.support.waiting import wait_until

SMALL = EmulatorOptions(rate_limits=False, companies=8, contacts=24, deals=10, notes=12)
AUTH = {"Authorization": f"Bearer {haste.DEMO_ACCESS_TOKEN}"}


# --- what the tests know of hasteCRM, read straight from its API ----------------------


def _all_rows(client: httpx.Client, entity: Entity) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        body = client.get(f"/v1/{entity.plural}", params=params, headers=AUTH).json()
        rows += body["data"]
        following = body["meta"]["cursor"]["next"]
        if not following:
            return rows
        params["cursor"] = following


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    return [str(r["id"]) for r in _all_rows(client, entity)]


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    rows = client.get("/v1/contacts", params={"limit": count}, headers=AUTH).json()["data"]
    return {r["id"]: (r["company"] or {}).get("id") for r in rows}


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    return {
        r["id"]: {"name": r["name"] or None, "domain": r["domain"] or None}
        for r in _all_rows(client, Entity.COMPANY)
    }


KNOWLEDGE = ProviderKnowledge(
    kind="haste",
    remote_ids=_remote_ids,
    sample_ids={
        Entity.CONTACT: "cont_000017",
        Entity.COMPANY: "comp_000003",
        Entity.DEAL: "deal_000001",
        Entity.NOTE: "note_000009",
    },
    unknown_ids=dict.fromkeys(Entity, "nope-0"),
    contact_companies=_contact_companies,
    companies=_companies,
)
# --------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("haste", SMALL), "haste", AUTH) as client:
        yield client


@pytest.fixture(scope="module")
async def full() -> AsyncIterator[httpx.AsyncClient]:
    """The demo's world (1,000 contacts), for what needs its size; shared by the module."""
    app = create_emulator("haste", EmulatorOptions(rate_limits=False))
    async with emulator_client(app, "haste", AUTH) as client:
        yield client


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert {"requestId", "timestamp"} <= set(body["meta"])
    found: dict[str, Any] = body["error"]
    return found


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "UNAUTHORIZED"),
        ({"Authorization": "Bearer nope"}, "TOKEN_INVALID"),
        ({"Authorization": f"Basic {haste.DEMO_ACCESS_TOKEN}"}, "TOKEN_INVALID"),
        ({"X-API-Key": "nope"}, "API_KEY_INVALID"),
        # The bearer token wins when both come.
        ({"Authorization": "Bearer nope", "X-API-Key": haste.DEMO_API_KEY}, "TOKEN_INVALID"),
    ],
)
async def test_credentials_are_checked(headers: dict[str, str], code: str) -> None:
    async with emulator_client(create_emulator("haste", SMALL), "haste") as client:
        assert error(await client.get("/v1/contacts", headers=headers), 401)["code"] == code


async def test_an_api_key_reads_the_same_workspace(api: httpx.AsyncClient) -> None:
    by_token = (await api.get("/v1/contacts")).json()["data"]
    api.headers.pop("Authorization")
    by_key = await api.get("/v1/contacts", headers={"X-API-Key": haste.DEMO_API_KEY})
    assert by_key.json()["data"] == by_token
    assert by_key.headers["X-RateLimit-Limit"] == "100"
    assert by_key.headers["X-RateLimit-Window"] == "60"


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/contacts", {"limit": 0}, 400, "VALIDATION_ERROR"),
        ("/v1/contacts", {"limit": 101}, 400, "VALIDATION_ERROR"),
        ("/v1/contacts", {"limit": "x"}, 400, "VALIDATION_ERROR"),
        ("/v1/contacts", {"cursor": "garbage!"}, 400, "INVALID_CURSOR"),
        ("/v1/contacts", {"cursor": pack({"p": -1, "q": "x"})}, 400, "INVALID_CURSOR"),
        ("/v1/contacts", {"shoe_size": 4}, 400, "VALIDATION_ERROR"),
        ("/v1/contacts", {"sort": "email"}, 400, "VALIDATION_ERROR"),
        ("/v1/contacts", {"created_after": "yesterday"}, 400, "VALIDATION_ERROR"),
        ("/v1/notes", {"search": "x"}, 400, "VALIDATION_ERROR"),
        ("/v1/contacts/cont_nope", {}, 404, "RESOURCE_NOT_FOUND"),
        ("/v1/planets", {}, 404, "RESOURCE_NOT_FOUND"),
    ],
)
async def test_read_refusals(
    api: httpx.AsyncClient, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    assert error(await api.get(path, params=params), status)["code"] == code


async def test_not_found_names_the_resource(api: httpx.AsyncClient) -> None:
    found = error(await api.get("/v1/deals/deal_nope"), 404)
    assert found["details"] == {"resource": "deal", "id": "deal_nope"}
    assert error(await api.put("/v1/deals"), 405)["code"] == "METHOD_NOT_ALLOWED"


async def test_cursors_walk_forward_and_back_and_belong_to_their_query(
    api: httpx.AsyncClient,
) -> None:
    first = (await api.get("/v1/contacts", params={"limit": 10})).json()
    assert first["meta"]["cursor"]["previous"] is None
    assert first["meta"]["cursor"]["hasMore"]
    second = (
        await api.get(
            "/v1/contacts", params={"limit": 10, "cursor": first["meta"]["cursor"]["next"]}
        )
    ).json()
    back = second["meta"]["cursor"]["previous"]
    again = (await api.get("/v1/contacts", params={"limit": 10, "cursor": back})).json()
    assert again["data"] == first["data"]
    third = (
        await api.get(
            "/v1/contacts", params={"limit": 10, "cursor": second["meta"]["cursor"]["next"]}
        )
    ).json()
    assert len(third["data"]) == 4
    assert third["meta"]["cursor"] == {
        "next": None,
        "previous": third["meta"]["cursor"]["previous"],
        "hasMore": False,
    }
    other = {"limit": 10, "cursor": first["meta"]["cursor"]["next"], "sort": "-created_at"}
    assert error(await api.get("/v1/contacts", params=other), 400)["code"] == "INVALID_CURSOR"
    # A cursor belongs to its query, not to its limit.
    longer = {"limit": 7, "cursor": first["meta"]["cursor"]["next"]}
    assert (await api.get("/v1/contacts", params=longer)).status_code == 200


async def test_sorts_fields_and_filters(api: httpx.AsyncClient) -> None:
    rows = (await api.get("/v1/contacts", params={"limit": 100})).json()["data"]
    stamps = [r["createdAt"] for r in rows]
    assert stamps == sorted(stamps)
    by_score = (
        await api.get("/v1/contacts", params={"limit": 100, "sort": "-score,last_name"})
    ).json()["data"]
    scores = [r["score"] for r in by_score]
    assert scores == sorted(scores, reverse=True)
    sparse = (await api.get("/v1/contacts", params={"fields": "email,first_name"})).json()["data"]
    assert set(sparse[0]) == {"id", "email", "firstName"}
    one = next(r for r in rows if r["company"])
    for name, value in (
        ("search", one["email"].upper()[2:9]),
        ("status", one["status"]),
        ("lifecycle", one["lifecycle"]),
        ("owner", one["owner"]["id"]),
        ("company", one["company"]["id"]),
        ("search", one["company"]["name"]),
        ("created_after", one["createdAt"]),
        ("created_before", one["createdAt"][:10] + "T23:59:59"),
        ("updated_after", "2000-01-01"),
    ):
        got = (await api.get("/v1/contacts", params={name: value, "limit": 100})).json()["data"]
        assert one["id"] in [r["id"] for r in got], name
    tags = [t for r in rows for t in r["tags"]]
    if tags:
        tagged = (await api.get("/v1/contacts", params={"tag": tags[0], "limit": 100})).json()
        assert all(tags[0] in r["tags"] for r in tagged["data"])
    deals = (await api.get("/v1/deals", params={"limit": 100, "sort": "value"})).json()["data"]
    deal = next(d for d in deals if d["contacts"])
    for name, value in (
        ("stage", deal["stage"]["name"].upper()),
        ("stage", deal["stage"]["id"]),
        ("pipeline", deal["pipeline"]["id"]),
        ("contact", deal["contacts"][0]["id"]),
        ("search", deal["title"][:4]),
    ):
        got = (await api.get("/v1/deals", params={name: value, "limit": 100})).json()["data"]
        assert deal["id"] in [d["id"] for d in got], name
    companies = (await api.get("/v1/companies", params={"sort": "-name"})).json()["data"]
    names = [c["name"] for c in companies]
    assert names == sorted(names, reverse=True)
    found = (
        await api.get("/v1/companies", params={"domain": companies[0]["domain"].upper()})
    ).json()
    assert [c["id"] for c in found["data"]] == [companies[0]["id"]]


async def test_search_trees(api: httpx.AsyncClient) -> None:
    rows = (await api.get("/v1/contacts", params={"limit": 100})).json()["data"]
    ids = [r["id"] for r in rows]
    batch = {"or": [{"field": "id", "operator": "equals", "value": i} for i in ids[:3]]}
    got = (await api.post("/v1/contacts/search", json={"query": batch})).json()
    assert [r["id"] for r in got["data"]] == ids[:3]
    one = rows[0]
    tree = {
        "and": [
            {"field": "last_name", "operator": "contains", "value": one["lastName"].upper()},
            {"field": "id", "operator": "not_equals", "value": "nobody"},
            {"field": "score", "operator": "greater_than", "value": -1},
            {"field": "score", "operator": "less_than", "value": 1000},
            {"field": "address.city", "operator": "equals", "value": one["address"]["city"]},
            {"field": "email", "operator": "greater_than", "value": 5},  # no crash, no match
        ]
    }
    assert (await api.post("/v1/contacts/search", json=tree)).json()["data"] == []
    tree["and"].pop()
    sort = [{"field": "score", "order": "desc"}]
    found = (await api.post("/v1/contacts/search", json={**tree, "sort": sort})).json()["data"]
    assert one["id"] in [r["id"] for r in found]
    paged = (await api.post("/v1/contacts/search", json={"limit": 5})).json()
    cursor = paged["meta"]["cursor"]["next"]
    following = await api.post(
        "/v1/contacts/search", params={"cursor": cursor, "fields": "email"}, json={"limit": 5}
    )
    assert [r["id"] for r in following.json()["data"]] == ids[5:10]
    assert set(following.json()["data"][0]) == {"id", "email"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"planet": 1}, "Unknown search keys: ['planet']."),
        ({"query": [1]}, "A search node must be an object."),
        ({"or": {}}, "`or` takes a list."),
        ({"field": "id", "operator": "like"}, "A search leaf needs `field` and `operator`"),
        ({"sort": "score"}, "`sort` takes [{field, order}]."),
        ({"sort": [{"field": "email"}]}, "Cannot sort contacts by email."),
    ],
)
async def test_search_refusals(api: httpx.AsyncClient, body: Any, message: str) -> None:
    found = error(await api.post("/v1/contacts/search", json=body), 400)
    assert found["code"] == "VALIDATION_ERROR"
    assert found["message"].startswith(message)


WRITE_REFUSALS: list[tuple[str, Any, str]] = [
    ("contacts", {"email": "bad"}, "email"),
    ("contacts", {"status": "gone"}, "status"),
    ("contacts", {"companyId": "comp_nope"}, "companyId"),
    ("contacts", {"tags": "vip"}, "tags"),
    ("contacts", {"customFields": []}, "customFields"),
    ("companies", {"domain": "x.test"}, "name"),
    ("deals", {"title": "T", "value": "lots"}, "value"),
    ("deals", {"title": "T", "stageId": "stage-9"}, "stageId"),
    ("deals", {"title": "T", "contactIds": ["cont_nope"]}, "contactIds"),
    ("deals", {"title": "T", "status": "maybe"}, "status"),
    ("notes", {"content": "x"}, "contactId"),
]


@pytest.mark.parametrize(("resource", "body", "field"), WRITE_REFUSALS)
async def test_write_refusals_name_the_field(
    api: httpx.AsyncClient, resource: str, body: Any, field: str
) -> None:
    found = error(await api.post(f"/v1/{resource}", json=body), 400)
    assert found["code"] == "VALIDATION_ERROR"
    assert field in found["details"]["fields"]


async def test_bodies_that_are_not_objects(api: httpx.AsyncClient) -> None:
    parse = error(await api.post("/v1/contacts", content=b"{nope"), 400)
    assert parse["code"] == "INVALID_INPUT"
    listed = error(await api.post("/v1/contacts", json=[1]), 400)
    assert listed["code"] == "INVALID_INPUT"


async def test_writes_and_conflicts(api: httpx.AsyncClient) -> None:
    made = await api.post(
        "/v1/contacts",
        json={"email": "ann@new.test", "firstName": "Ann", "company": "Brand New Co", "id": "x"},
    )
    assert made.status_code == 201
    ann = made.json()["data"]
    assert ann["id"].startswith("cont_")
    assert ann["company"]["name"] == "Brand New Co"
    again = await api.post("/v1/contacts", json={"email": "x@y.test", "company": "brand new co"})
    assert again.json()["data"]["company"]["id"] == ann["company"]["id"]
    dup = error(await api.post("/v1/contacts", json={"email": "ANN@new.test"}), 409)
    assert dup["code"] == "DUPLICATE_EMAIL"
    path = f"/v1/contacts/{ann['id']}"
    patched = await api.patch(
        path, json={"customFields": {"a": 1}, "tags": ["x"], "title": "CTO", "fullName": "nope"}
    )
    patched = await api.patch(path, json={"customFields": {"b": 2}, "title": None})
    body = patched.json()["data"]
    assert body["customFields"] == {"a": 1, "b": 2}
    assert body["title"] is None
    assert body["fullName"] == "Ann" or body["fullName"].startswith("Ann")
    company = (await api.get("/v1/companies")).json()["data"][0]
    firm = await api.post("/v1/companies", json={"name": "D", "domain": company["domain"].upper()})
    assert error(firm, 409)["code"] == "CONFLICT"
    deal = await api.post(
        "/v1/deals",
        json={
            "title": "Big",
            "value": 10.567,
            "contactIds": [ann["id"]],
            "companyId": company["id"],
        },
    )
    assert deal.status_code == 201
    assert deal.json()["data"]["value"] == 10.57
    note = await api.post(f"{path}/notes", json={"content": "hello", "private": True})
    assert note.status_code == 201
    assert note.json()["data"]["contactId"] == ann["id"]
    mine = (await api.get(f"{path}/notes")).json()["data"]
    assert [n["id"] for n in mine] == [note.json()["data"]["id"]]
    gone = await api.delete(path)
    assert gone.json()["data"] == {"message": "Contact deleted successfully"}
    deal_row = (await api.get(f"/v1/deals/{deal.json()['data']['id']}")).json()["data"]
    assert deal_row["contacts"] == []
    assert error(await api.get(f"/v1/notes/{note.json()['data']['id']}"), 404)
    await api.delete(f"/v1/companies/{company['id']}")
    assert (await api.get(f"/v1/deals/{deal_row['id']}")).json()["data"]["company"] is None


async def test_bulk_operations(api: httpx.AsyncClient) -> None:
    first = (await api.get("/v1/contacts", params={"limit": 2})).json()["data"]
    ops = [
        {"method": "create", "data": {"email": "b1@bulk.test", "tags": ["old"]}},
        {"method": "create", "data": {"email": "bad"}},
        {"method": "update", "id": first[0]["id"], "data": {"title": "Boss"}},
        {"method": "update", "id": "cont_nope", "data": {}},
        {"method": "delete", "id": first[1]["id"]},
        {"method": "merge"},
        {"method": "update", "id": first[0]["id"]},
        {"method": "create", "data": {"email": "b1@bulk.test"}},
    ]
    result = (await api.post("/v1/contacts/bulk", json={"operations": ops})).json()["data"]
    assert (result["succeeded"], result["failed"]) == (3, 5)
    codes = [r["error"]["code"] for r in result["results"] if r["status"] == "error"]
    assert codes == [
        "VALIDATION_ERROR",
        "RESOURCE_NOT_FOUND",
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
        "DUPLICATE_EMAIL",
    ]
    too_many = {"operations": [{"method": "delete", "id": "x"}] * 101}
    limit = error(await api.post("/v1/contacts/bulk", json=too_many), 400)
    assert limit["code"] == "BULK_LIMIT_EXCEEDED"
    assert limit["details"] == {"limit": 100}
    not_list = error(await api.post("/v1/contacts/bulk", json={"operations": {}}), 400)
    assert not_list["message"] == "operations must be a list."
    created = (
        await api.post("/v1/companies/bulk", json={"companies": [{"name": "C1"}, {"domain": "x"}]})
    ).json()["data"]
    assert (created["created"], created["failed"], created["companies"][0]["name"]) == (1, 1, "C1")
    tag = {
        "filter": {"search": "bulk.test"},
        "update": {"tags": {"add": ["new"], "remove": ["old"]}},
    }
    updated = (await api.patch("/v1/contacts/bulk", json=tag)).json()["data"]
    assert updated["succeeded"] == 1
    assert updated["results"][0]["data"]["tags"] == ["new"]
    bad = error(await api.patch("/v1/contacts/bulk", json={"update": []}), 400)
    assert bad["message"] == "filter and update must be objects."
    removed = (
        await api.request("DELETE", "/v1/contacts/bulk", json={"ids": [first[0]["id"], "cont_x"]})
    ).json()["data"]
    assert (removed["succeeded"], removed["failed"]) == (1, 1)


async def test_merge(api: httpx.AsyncClient) -> None:
    rows = (await api.get("/v1/contacts", params={"limit": 3})).json()["data"]
    a, b, c = (r["id"] for r in rows)
    for body, status, message in (
        ({"primaryId": a}, 400, "primaryId and duplicateIds are required."),
        ({"primaryId": a, "duplicateIds": [a]}, 400, "A contact cannot be merged into itself."),
        ({"primaryId": a, "duplicateIds": ["cont_x"]}, 404, "Contact not found"),
    ):
        assert error(await api.post("/v1/contacts/merge", json=body), status)["message"] == message
    merged = (
        await api.post("/v1/contacts/merge", json={"primaryId": a, "duplicateIds": [b, c]})
    ).json()
    assert merged["data"]["id"] == a
    assert merged["data"]["mergedCount"] == 2
    assert error(await api.get(f"/v1/contacts/{b}"), 404)


async def test_rate_limits_are_described_and_enforced() -> None:
    now = [1_700_000_000.0]
    app = create_emulator("haste", EmulatorOptions(companies=2, contacts=2, deals=1, notes=1))
    app.state.emulator.log.clock = lambda: now[0]
    async with emulator_client(app, "haste") as client:
        for left in range(99, -1, -1):
            ok = await client.get("/v1/notes", headers=AUTH)
            assert ok.headers["X-RateLimit-Remaining"] == str(left)
        throttled = await client.get("/v1/notes", headers=AUTH)
        assert throttled.headers["Retry-After"] == "61"
        refused = error(throttled, 429)
        assert refused["code"] == "RATE_LIMITED"
        assert refused["details"] == {
            "limit": 100,
            "window": 60,
            "reset": int(now[0]) + 61,
            "retryAfter": 61,
        }
        now[0] += 60
        assert (await client.get("/v1/notes", headers=AUTH)).status_code == 200


async def test_injected_faults_answer_in_the_error_shape(api: httpx.AsyncClient) -> None:
    await api.post("/_emulator/faults", json={"rate_limit_rate": 1})
    throttled = await api.get("/v1/contacts")
    assert error(throttled, 429)["details"]["retryAfter"] == 1
    assert throttled.headers["Retry-After"] == "1"
    await api.post("/_emulator/faults", json={"error_rate": 1})
    assert error(await api.get("/v1/contacts"), 500)["code"] == "INTERNAL_ERROR"
    await api.post("/_emulator/faults", json={"timeout_rate": 1, "timeout_seconds": 0})
    assert error(await api.get("/v1/contacts"), 504)["code"] == "INTERNAL_ERROR"


async def test_cursor_walk_visits_every_contact_once_in_creation_order(
    api: httpx.AsyncClient,
) -> None:
    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 10}
    while True:
        body = (await api.get("/v1/contacts", params=params)).json()
        ids += [c["id"] for c in body["data"]]
        cursor = body["meta"]["cursor"]
        assert cursor["hasMore"] is (cursor["next"] is not None)
        if not cursor["next"]:
            break
        params["cursor"] = cursor["next"]
    assert len(ids) == len(set(ids)) == 24
    assert ids == sorted(ids)


async def test_reverse_sort_is_the_exact_reverse(full: httpx.AsyncClient) -> None:
    forward = (await full.get("/v1/deals", params={"limit": 100})).json()["data"]
    total = []
    params: dict[str, str | int] = {"limit": 100, "sort": "-created_at"}
    while True:
        body = (await full.get("/v1/deals", params=params)).json()
        total += body["data"]
        if not body["meta"]["cursor"]["next"]:
            break
        params["cursor"] = body["meta"]["cursor"]["next"]
    assert [d["id"] for d in total][::-1][:100] == [d["id"] for d in forward]


async def test_unknown_filter_and_missing_record(api: httpx.AsyncClient) -> None:
    missing = error(await api.get("/v1/contacts/cont_999999"), 404)
    assert missing["details"] == {"resource": "contact", "id": "cont_999999"}


async def test_write_then_read_and_duplicate_email(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/contacts", json={"email": "neo@example.net", "firstName": "Neo"})
    assert created.status_code == 201
    contact = created.json()["data"]
    assert contact["fullName"] == "Neo"
    patched = await api.patch(f"/v1/contacts/{contact['id']}", json={"lastName": "Anderson"})
    assert patched.json()["data"]["fullName"] == "Neo Anderson"


async def test_tenants_see_different_data(api: httpx.AsyncClient) -> None:
    demo = (await api.get("/v1/contacts", params={"limit": 3})).json()["data"]
    other = (
        await api.get(
            "/v1/contacts",
            params={"limit": 3},
            headers={"Authorization": f"Bearer {haste.TENANT2_ACCESS_TOKEN}"},
        )
    ).json()["data"]
    assert [c["email"] for c in demo] != [c["email"] for c in other]


async def test_get_by_id_and_sparse_fields(api: httpx.AsyncClient) -> None:
    first = (await api.get("/v1/contacts", params={"limit": 1})).json()["data"][0]
    one = await api.get(f"/v1/contacts/{first['id']}")
    assert one.status_code == 200
    assert one.json()["data"] == first
    assert one.headers["X-RateLimit-Limit"] == "100"
    assert "requestId" in one.json()["meta"]
    sparse = (
        await api.get("/v1/contacts", params={"limit": 1, "fields": "email,first_name"})
    ).json()["data"][0]
    assert set(sparse) == {"id", "email", "firstName"}


async def test_search_pages_past_one_hundred_with_its_cursor(full: httpx.AsyncClient) -> None:
    body: dict[str, object] = {
        "query": {"field": "status", "operator": "not_equals", "value": "none"},
        "limit": 100,
    }
    ids: list[str] = []
    while True:
        page = (await full.post("/v1/contacts/search", json=body)).json()
        ids += [c["id"] for c in page["data"]]
        if not page["meta"]["cursor"]["next"]:
            break
        body["cursor"] = page["meta"]["cursor"]["next"]
    assert len(ids) == len(set(ids)) >= 1000
    batch = {"or": [{"field": "id", "operator": "equals", "value": i} for i in ids[:3]]}
    found = (await full.post("/v1/contacts/search", json=batch)).json()["data"]
    assert [c["id"] for c in found] == ids[:3]


async def test_bulk_operations_report_each_result(api: httpx.AsyncClient) -> None:
    operations = [
        {"method": "create", "data": {"name": "Bulk One"}},
        {"method": "create", "data": {}},
        {"method": "delete", "id": "comp_999999"},
    ]
    made = (await api.post("/v1/companies/bulk", json={"operations": operations})).json()["data"]
    assert (made["succeeded"], made["failed"]) == (1, 2)
    assert made["results"][1]["error"]["code"] == "VALIDATION_ERROR"
    assert made["results"][2]["error"]["code"] == "RESOURCE_NOT_FOUND"
    new_id = made["results"][0]["data"]["id"]
    gone = (await api.request("DELETE", "/v1/companies/bulk", json={"ids": [new_id]})).json()
    assert gone["data"]["succeeded"] == 1
    assert (await api.get(f"/v1/companies/{new_id}")).status_code == 404


async def test_stats_count_requests_and_injected_429_has_headers() -> None:
    async with emulator_client(create_emulator("haste", SMALL), "haste") as client:
        await client.get("/v1/contacts")
        await client.get("/v1/deals", headers=AUTH)
        stats = (await client.get("/_emulator/stats")).json()
        assert stats["requests"] == 2
        assert stats["by_status"] == {"401": 1, "200": 1}
        assert stats["by_endpoint"]["GET /v1/deals"] == 1
        await client.post("/_emulator/faults", json={"rate_limit_rate": 1.0})
        throttled = await client.get("/v1/deals", headers=AUTH)
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"
        assert throttled.headers["X-RateLimit-Remaining"] == "0"
        assert throttled.json()["error"]["details"]["retryAfter"] == 1


# --- webhooks (contract section 9) ----------------------------------------------------


async def test_webhooks_are_registered_listed_and_deleted(api: httpx.AsyncClient) -> None:
    hook = {"url": "http://127.0.0.1:9/in", "events": ["contact.updated", "contact.merged"]}
    created = await api.post("/v1/webhooks", json=hook)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["id"].startswith("wh_")
    assert data["secret"].startswith("whsec_")
    assert (data["url"], data["events"], data["active"]) == (hook["url"], hook["events"], True)
    listed = (await api.get("/v1/webhooks")).json()
    assert [h["id"] for h in listed["data"]] == [data["id"]]
    assert "secret" not in listed["data"][0]  # the secret shows once
    one = (await api.get(f"/v1/webhooks/{data['id']}")).json()["data"]
    assert one == listed["data"][0]
    deleted = await api.delete(f"/v1/webhooks/{data['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert error(await api.get(f"/v1/webhooks/{data['id']}"), 404)["code"] == "RESOURCE_NOT_FOUND"
    assert error(await api.delete(f"/v1/webhooks/{data['id']}"), 404)["code"]
    assert (await api.get("/v1/webhooks")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/in", "events": ["contact.exploded"]}, "events"),
        ({"url": "http://127.0.0.1:9/in", "events": []}, "events"),
        ({"url": "ftp://127.0.0.1/in", "events": ["contact.created"]}, "url"),
        ({"events": ["contact.created"]}, "url"),
        ({"url": "http://127.0.0.1:9/in", "events": ["deal.created"], "secret": "x"}, "body"),
    ],
)
async def test_a_bad_webhook_is_refused(api: httpx.AsyncClient, body: Any, field: str) -> None:
    found = error(await api.post("/v1/webhooks", json=body), 400)
    assert found["code"] == "VALIDATION_ERROR"
    assert field in found["details"]["fields"]


Queued = list[tuple[str, str, bytes]]


@pytest.fixture
def deliveries(monkeypatch: pytest.MonkeyPatch) -> list[Queued]:
    """What each request queued for delivery, instead of sending it."""
    sent: list[Queued] = []
    monkeypatch.setattr(haste, "_deliver", sent.append)
    return sent


def events(sent: list[Queued]) -> list[tuple[str, dict[str, Any]]]:
    parsed = [json.loads(body) for queued in sent for _, _, body in queued]
    return [(event["type"], event["data"]) for event in parsed]


async def test_writes_send_their_events_to_loopback_webhooks_only(
    api: httpx.AsyncClient, deliveries: list[Queued]
) -> None:
    every = sorted(haste.WEBHOOK_EVENTS)
    local = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/in", "events": every})
    remote = {"url": "https://hooks.example.com/in", "events": every}
    assert (await api.post("/v1/webhooks", json=remote)).status_code == 201
    created = (await api.post("/v1/contacts", json={"email": "hook@example.com"})).json()["data"]
    contact = created["id"]
    await api.patch(f"/v1/contacts/{contact}", json={"title": "Chief"})
    await api.post(f"/v1/contacts/{contact}/notes", json={"content": "hi"})
    await api.delete(f"/v1/contacts/{contact}")
    await api.get("/v1/contacts")  # a read sends nothing
    [[(url, secret, body)], *_] = deliveries
    assert (url, secret) == ("http://127.0.0.1:9/in", local.json()["data"]["secret"])
    event = json.loads(body)
    assert event["id"].startswith("evt_")
    assert event["workspaceId"]
    assert event["createdAt"]
    assert len(deliveries) == 4  # one batch per write, none for the read or the remote URL
    note = events(deliveries)[2][1]["id"]
    assert events(deliveries) == [
        ("contact.created", {"object": "contact", "id": contact}),
        ("contact.updated", {"object": "contact", "id": contact}),
        ("note.created", {"object": "note", "id": note}),
        ("contact.deleted", {"object": "contact", "id": contact}),
        ("note.deleted", {"object": "note", "id": note}),  # its notes go with it
    ]


async def test_only_subscribed_events_are_sent_and_merges_say_where(
    api: httpx.AsyncClient, deliveries: list[Queued]
) -> None:
    hook = {"url": "http://localhost:9/in", "events": ["contact.merged", "deal.updated"]}
    await api.post("/v1/webhooks", json=hook)
    a, b, c = (r["id"] for r in (await api.get("/v1/contacts")).json()["data"][:3])
    await api.post("/v1/contacts/merge", json={"primaryId": a, "duplicateIds": [b, c]})
    deal = (await api.get("/v1/deals")).json()["data"][0]["id"]
    bulk = {"operations": [{"method": "update", "id": deal, "data": {"title": "Bigger"}}]}
    await api.post("/v1/deals/bulk", json=bulk)
    await api.patch(f"/v1/companies/{(await api.get('/v1/companies')).json()['data'][0]['id']}")
    assert events(deliveries) == [
        ("contact.merged", {"object": "contact", "id": b, "mergedIntoId": a}),
        ("contact.merged", {"object": "contact", "id": c, "mergedIntoId": a}),
        ("deal.updated", {"object": "deal", "id": deal}),
    ]


class Receiver(http.server.BaseHTTPRequestHandler):
    """A loopback webhook target answering 500 until its `failures` run out."""

    failures = 0
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append((self.headers["X-Haste-Signature"], self.rfile.read(length)))
        failing = len(type(self).received) <= type(self).failures
        self.send_response(500 if failing else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_a_delivery_is_signed_and_retried_with_the_same_id(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(haste, "RETRY_DELAYS", (0.01, 0.02, 0.03))
    monkeypatch.setattr(Receiver, "received", [])
    monkeypatch.setattr(Receiver, "failures", 2)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/in"
        hook = await api.post("/v1/webhooks", json={"url": url, "events": ["company.updated"]})
        secret = hook.json()["data"]["secret"]
        company = (await api.get("/v1/companies")).json()["data"][0]["id"]
        await api.patch(f"/v1/companies/{company}", json={"industry": "Hooks"})
        wait_until(lambda: len(Receiver.received) == 3, what="the third try", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    ids = set()
    for header, body in Receiver.received:
        stamp, signature = (part.split("=", 1)[1] for part in header.split(","))
        assert abs(int(stamp) - time.time()) < 60
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        assert signature == expected.hexdigest()
        ids.add(json.loads(body)["id"])
    assert len(ids) == 1  # each try carries the same event id
    assert json.loads(body)["data"] == {"object": "company", "id": company}


def test_a_delivery_gives_up_after_three_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[str] = []

    def refused(request: Any, timeout: float) -> Any:
        tries.append(request.get_header("X-haste-signature"))
        raise OSError("refused")

    monkeypatch.setattr(haste, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    monkeypatch.setattr(urllib.request, "urlopen", refused)
    assert haste._send("http://127.0.0.1:9/in", "whsec_x", b"{}") is False
    assert len(tries) == 4
