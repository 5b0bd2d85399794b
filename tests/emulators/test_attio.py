"""The Attio emulator against its contract, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest

from gateway.emulators import EmulatorOptions, attio, create_emulator
from gateway.servers import ServerThread

AUTH = {"Authorization": f"Bearer {attio.DEMO_API_KEY}"}
PEOPLE = "/v2/objects/people/records"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with ServerThread(create_emulator("attio", EmulatorOptions(rate_limits=False))) as server:
        yield server.url


def test_auth_and_error_shape(url):
    response = httpx.get(f"{url}{PEOPLE}")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "auth_error"
    missing = httpx.get(f"{url}{PEOPLE}/not-a-record", headers=AUTH)
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "invalid_request_error")


def test_pages_in_creation_order_with_total(url):
    ids, page = [], 1
    while True:
        body = httpx.get(
            f"{url}{PEOPLE}", params={"page": page, "pageSize": 100}, headers=AUTH
        ).json()
        assert body["meta"] == {"page": page, "pageSize": 100, "total": 1000}
        if not body["data"]:
            break
        ids += [r["id"]["record_id"] for r in body["data"]]
        page += 1
    assert len(ids) == len(set(ids)) == 1000
    first = httpx.get(f"{url}{PEOPLE}", headers=AUTH).json()
    assert first["meta"]["pageSize"] == 25  # the default
    stamps = [r["created_at"] for r in first["data"]]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("params", [{"pageSize": 101}, {"pageSize": 0}, {"page": 0}, {"page": "x"}])
def test_bad_paging_is_invalid_request(url, params):
    response = httpx.get(f"{url}{PEOPLE}", params=params, headers=AUTH)
    assert (response.status_code, response.json()["error"]["type"]) == (
        400,
        "invalid_request_error",
    )


def test_record_shape_is_attribute_values(url):
    record = httpx.get(f"{url}{PEOPLE}", params={"pageSize": 1}, headers=AUTH).json()["data"][0]
    name = record["values"]["name"][0]
    assert name["attribute_type"] == "personal-name"
    assert name["full_name"] == f"{name['first_name']} {name['last_name']}"
    assert {"active_from", "active_until", "created_by_actor"} <= set(name)
    email = record["values"]["email_addresses"][0]
    assert email["email_domain"] == email["email_address"].split("@")[1]
    assert record["created_at"].endswith("000Z")


def test_query_endpoint_filters_and_sorts(url):
    body = {
        "filter": {
            "$or": [{"name": {"last_name": {"$eq": "Turing"}}}, {"job_title": {"$contains": "cto"}}]
        },
        "sorts": [{"attribute": "name", "field": "last_name", "direction": "desc"}],
        "limit": 100,
    }
    result = httpx.post(f"{url}{PEOPLE}/query", json=body, headers=AUTH).json()
    assert result["data"]
    for record in result["data"]:
        last = record["values"]["name"][0]["last_name"]
        title = record["values"]["job_title"][0]["value"]
        assert last == "Turing" or "cto" in title.lower()
    bad = httpx.post(
        f"{url}{PEOPLE}/query", json={"filter": {"name": {"$regex": "x"}}}, headers=AUTH
    )
    assert bad.status_code == 400


def test_create_patch_delete_and_uniqueness(url):
    created = httpx.post(
        f"{url}{PEOPLE}",
        json={
            "data": {"values": {"name": "Grace Hopper", "email_addresses": ["grace@navy.example"]}}
        },
        headers=AUTH,
    )
    assert created.status_code == 200
    record = created.json()["data"]
    record_id = record["id"]["record_id"]
    clash = httpx.post(
        f"{url}{PEOPLE}",
        json={"data": {"values": {"email_addresses": ["GRACE@navy.example"]}}},
        headers=AUTH,
    )
    assert clash.status_code == 400
    patched = httpx.patch(
        f"{url}{PEOPLE}/{record_id}",
        json={"data": {"values": {"email_addresses": ["g2@navy.example"]}}},
        headers=AUTH,
    ).json()["data"]
    assert len(patched["values"]["email_addresses"]) == 2  # PATCH appends multiselect values
    put = httpx.put(
        f"{url}{PEOPLE}/{record_id}",
        json={"data": {"values": {"email_addresses": ["g3@navy.example"]}}},
        headers=AUTH,
    ).json()["data"]
    assert [e["email_address"] for e in put["values"]["email_addresses"]] == ["g3@navy.example"]
    assert httpx.delete(f"{url}{PEOPLE}/{record_id}", headers=AUTH).json() == {}
    assert httpx.get(f"{url}{PEOPLE}/{record_id}", headers=AUTH).status_code == 404


def test_notes_newest_first_by_parent(url):
    notes = httpx.get(f"{url}/v2/notes", params={"pageSize": 50}, headers=AUTH).json()
    stamps = [n["created_at"] for n in notes["data"]]
    assert stamps == sorted(stamps, reverse=True)
    note = notes["data"][0]
    mine = httpx.get(
        f"{url}/v2/notes",
        params={
            "parent_object": note["parent_object"],
            "parent_record_id": note["parent_record_id"],
        },
        headers=AUTH,
    ).json()["data"]
    assert note["id"] in [n["id"] for n in mine]
    assert all(n["parent_record_id"] == note["parent_record_id"] for n in mine)


def test_429_carries_an_http_date(monkeypatch):
    monkeypatch.setattr(attio, "RATE_LIMITS", ((3, 60), (1000, 3600)))
    with ServerThread(create_emulator("attio", EmulatorOptions(rate_limits=True))) as server:
        answers = [httpx.get(f"{server.url}{PEOPLE}", headers=AUTH) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert parsedate_to_datetime(answers[-1].headers["Retry-After"]) is not None
    assert answers[-1].json()["error"]["type"] == "rate_limit_error"
