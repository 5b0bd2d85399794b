"""The hasteCRM emulator against its contract, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.emulators import EmulatorOptions, create_emulator, haste
from gateway.servers import ServerThread

AUTH = {"Authorization": f"Bearer {haste.DEMO_ACCESS_TOKEN}"}


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
