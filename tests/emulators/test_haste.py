"""The hasteCRM emulator against its contract, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, haste
from gateway.providers import create_emulator
from gateway.records import Entity
from gateway.servers import ServerThread
from tests.support.knowledge import CompanyFields, ProviderKnowledge

pytestmark = pytest.mark.integration

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


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with ServerThread(create_emulator("haste", EmulatorOptions(rate_limits=False))) as server:
        yield server.url


def test_auth_bearer_or_key(url):
    assert httpx.get(f"{url}/v1/contacts").json()["error"]["code"] == "UNAUTHORIZED"
    bad = httpx.get(f"{url}/v1/contacts", headers={"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "TOKEN_INVALID")
    key = httpx.get(f"{url}/v1/contacts", headers={"X-API-Key": haste.DEMO_API_KEY})
    assert key.status_code == 200
    assert httpx.get(f"{url}/v1/contacts", headers={"X-API-Key": "x"}).json()["error"]["code"] == (
        "API_KEY_INVALID"
    )


def test_cursor_walk_visits_every_contact_once_in_creation_order(url):
    ids, params = [], {"limit": 100}
    while True:
        body = httpx.get(f"{url}/v1/contacts", params=params, headers=AUTH).json()
        ids += [c["id"] for c in body["data"]]
        cursor = body["meta"]["cursor"]
        assert cursor["hasMore"] is (cursor["next"] is not None)
        if not cursor["next"]:
            break
        params["cursor"] = cursor["next"]
    assert len(ids) == len(set(ids)) == 1000
    assert ids == sorted(ids)


def test_previous_steps_back_one_page_and_is_null_first(url):
    first = httpx.get(f"{url}/v1/contacts", params={"limit": 10}, headers=AUTH).json()
    assert first["meta"]["cursor"]["previous"] is None
    second = httpx.get(
        f"{url}/v1/contacts",
        params={"limit": 10, "cursor": first["meta"]["cursor"]["next"]},
        headers=AUTH,
    ).json()
    back = httpx.get(
        f"{url}/v1/contacts",
        params={"limit": 10, "cursor": second["meta"]["cursor"]["previous"]},
        headers=AUTH,
    ).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in first["data"]]


def test_cursor_is_bound_to_its_query_not_its_limit(url):
    page = httpx.get(f"{url}/v1/contacts", params={"limit": 5}, headers=AUTH).json()
    cursor = page["meta"]["cursor"]["next"]
    other_limit = httpx.get(
        f"{url}/v1/contacts", params={"limit": 7, "cursor": cursor}, headers=AUTH
    )
    assert other_limit.status_code == 200
    other_sort = httpx.get(
        f"{url}/v1/contacts",
        params={"limit": 5, "cursor": cursor, "sort": "-created_at"},
        headers=AUTH,
    )
    assert (other_sort.status_code, other_sort.json()["error"]["code"]) == (400, "INVALID_CURSOR")
    garbage = httpx.get(f"{url}/v1/contacts", params={"cursor": "!!"}, headers=AUTH)
    assert garbage.json()["error"]["code"] == "INVALID_CURSOR"


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_limit_outside_1_to_100_is_refused(url, limit):
    response = httpx.get(f"{url}/v1/contacts", params={"limit": limit}, headers=AUTH)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_reverse_sort_is_the_exact_reverse(url):
    forward = httpx.get(f"{url}/v1/deals", params={"limit": 100}, headers=AUTH).json()["data"]
    total = []
    params: dict[str, str | int] = {"limit": 100, "sort": "-created_at"}
    while True:
        body = httpx.get(f"{url}/v1/deals", params=params, headers=AUTH).json()
        total += body["data"]
        if not body["meta"]["cursor"]["next"]:
            break
        params["cursor"] = body["meta"]["cursor"]["next"]
    assert [d["id"] for d in total][::-1][:100] == [d["id"] for d in forward]


def test_unknown_filter_and_missing_record(url):
    bad = httpx.get(f"{url}/v1/contacts", params={"colour": "red"}, headers=AUTH)
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "VALIDATION_ERROR")
    missing = httpx.get(f"{url}/v1/contacts/cont_999999", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["details"] == {"resource": "contact", "id": "cont_999999"}


def test_write_then_read_and_duplicate_email(url):
    created = httpx.post(
        f"{url}/v1/contacts", json={"email": "neo@example.net", "firstName": "Neo"}, headers=AUTH
    )
    assert created.status_code == 201
    contact = created.json()["data"]
    assert contact["fullName"] == "Neo"
    again = httpx.post(f"{url}/v1/contacts", json={"email": "NEO@example.net"}, headers=AUTH)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "DUPLICATE_EMAIL")
    patched = httpx.patch(
        f"{url}/v1/contacts/{contact['id']}", json={"lastName": "Anderson"}, headers=AUTH
    )
    assert patched.json()["data"]["fullName"] == "Neo Anderson"
    deleted = httpx.delete(f"{url}/v1/contacts/{contact['id']}", headers=AUTH)
    assert deleted.json()["data"] == {"message": "Contact deleted successfully"}


def test_tenants_see_different_data(url):
    demo = httpx.get(f"{url}/v1/contacts", params={"limit": 3}, headers=AUTH).json()["data"]
    other = httpx.get(
        f"{url}/v1/contacts",
        params={"limit": 3},
        headers={"Authorization": f"Bearer {haste.TENANT2_ACCESS_TOKEN}"},
    ).json()["data"]
    assert [c["email"] for c in demo] != [c["email"] for c in other]


def test_rate_limit_answers_429_with_headers(monkeypatch):
    monkeypatch.setattr(haste, "RATE_LIMITS", ((5, 60), (1000, 3600)))
    with ServerThread(create_emulator("haste", EmulatorOptions(rate_limits=True))) as server:
        answers = [httpx.get(f"{server.url}/v1/contacts", headers=AUTH) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].headers["X-RateLimit-Remaining"] == "4"
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["error"]["code"] == "RATE_LIMITED"


def test_get_by_id_and_sparse_fields(url):
    first = httpx.get(f"{url}/v1/contacts", params={"limit": 1}, headers=AUTH).json()["data"][0]
    one = httpx.get(f"{url}/v1/contacts/{first['id']}", headers=AUTH)
    assert one.status_code == 200
    assert one.json()["data"] == first
    assert one.headers["X-RateLimit-Limit"] == "100"
    assert "requestId" in one.json()["meta"]
    sparse = httpx.get(
        f"{url}/v1/contacts", params={"limit": 1, "fields": "email,first_name"}, headers=AUTH
    ).json()["data"][0]
    assert set(sparse) == {"id", "email", "firstName"}


def test_search_pages_past_one_hundred_with_its_cursor(url):
    body: dict[str, object] = {
        "query": {"field": "status", "operator": "not_equals", "value": "none"},
        "limit": 100,
    }
    ids: list[str] = []
    while True:
        page = httpx.post(f"{url}/v1/contacts/search", json=body, headers=AUTH).json()
        ids += [c["id"] for c in page["data"]]
        if not page["meta"]["cursor"]["next"]:
            break
        body["cursor"] = page["meta"]["cursor"]["next"]
    assert len(ids) == len(set(ids)) >= 1000
    batch = httpx.post(
        f"{url}/v1/contacts/search",
        json={"or": [{"field": "id", "operator": "equals", "value": i} for i in ids[:3]]},
        headers=AUTH,
    ).json()["data"]
    assert [c["id"] for c in batch] == ids[:3]


def test_bulk_operations_report_each_result(url):
    made = httpx.post(
        f"{url}/v1/companies/bulk",
        json={
            "operations": [
                {"method": "create", "data": {"name": "Bulk One"}},
                {"method": "create", "data": {}},
                {"method": "delete", "id": "comp_999999"},
            ]
        },
        headers=AUTH,
    ).json()["data"]
    assert (made["succeeded"], made["failed"]) == (1, 2)
    assert made["results"][1]["error"]["code"] == "VALIDATION_ERROR"
    assert made["results"][2]["error"]["code"] == "RESOURCE_NOT_FOUND"
    new_id = made["results"][0]["data"]["id"]
    gone = httpx.request(
        "DELETE", f"{url}/v1/companies/bulk", json={"ids": [new_id]}, headers=AUTH
    ).json()["data"]
    assert gone["succeeded"] == 1
    assert httpx.get(f"{url}/v1/companies/{new_id}", headers=AUTH).status_code == 404
    too_many = httpx.post(
        f"{url}/v1/contacts/bulk",
        json={"operations": [{"method": "delete", "id": "x"}] * 101},
        headers=AUTH,
    )
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (400, "BULK_LIMIT_EXCEEDED")


def test_stats_count_requests_and_injected_429_has_headers():
    with ServerThread(create_emulator("haste", EmulatorOptions(rate_limits=False))) as server:
        httpx.get(f"{server.url}/v1/contacts")
        httpx.get(f"{server.url}/v1/deals", headers=AUTH)
        stats = httpx.get(f"{server.url}/_emulator/stats").json()
        assert stats["requests"] == 2
        assert stats["by_status"] == {"401": 1, "200": 1}
        assert stats["by_endpoint"]["GET /v1/deals"] == 1
        httpx.post(f"{server.url}/_emulator/faults", json={"rate_limit_rate": 1.0})
        throttled = httpx.get(f"{server.url}/v1/deals", headers=AUTH)
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"
        assert throttled.headers["X-RateLimit-Remaining"] == "0"
        assert throttled.json()["error"]["details"]["retryAfter"] == 1
