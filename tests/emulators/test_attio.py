"""The Attio emulator against its contract, over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from emulators import EmulatorOptions, attio
from gateway.providers import create_emulator
from gateway.records import Entity
from gateway.servers import ServerThread
from tests.support.knowledge import CompanyFields, ProviderKnowledge

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {attio.DEMO_API_KEY}"}
PEOPLE = "/v2/objects/people/records"


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
    ids, workspace, page = [], None, 1
    while True:
        body = httpx.get(
            f"{url}{PEOPLE}", params={"page": page, "pageSize": 100}, headers=AUTH
        ).json()
        assert body["meta"] == {"page": page, "pageSize": 100, "total": 1000}
        if not body["data"]:
            break
        ids += [r["id"]["record_id"] for r in body["data"]]
        workspace = body["data"][0]["id"]["workspace_id"]
        page += 1
    assert len(ids) == len(set(ids)) == 1000
    # The documented order: created_at ascending, which is the seed's index order.
    expected = [
        str(uuid.uuid5(attio.NAMESPACE, f"{workspace}:people:seed:{i}")) for i in range(1000)
    ]
    assert ids == expected
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


def test_get_by_id_alias_and_object_uuid(url):
    first = httpx.get(
        f"{url}/v2/objects/deals/records", params={"pageSize": 1}, headers=AUTH
    ).json()["data"][0]
    record_id, object_id = first["id"]["record_id"], first["id"]["object_id"]
    for obj in ("deals", "opportunities", object_id):
        got = httpx.get(f"{url}/v2/objects/{obj}/records/{record_id}", headers=AUTH)
        assert got.status_code == 200
        assert got.json()["data"] == first
    stage = first["values"]["stage"][0]
    assert stage["attribute_type"] == "status"
    assert stage["status"]["title"] in ("Lead", "In Progress", "Won 🎉", "Lost")
    unknown = httpx.get(f"{url}/v2/objects/widgets/records", headers=AUTH)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", PEOPLE, {"limit": 10}, None),
        ("GET", PEOPLE, {"cursor": "abc"}, None),
        ("GET", PEOPLE, {"sort": "shoe_size"}, None),
        ("GET", PEOPLE, {"sort": "name", "direction": "up"}, None),
        ("GET", "/v2/notes", {"offset": 5}, None),
        ("POST", f"{PEOPLE}/query", {}, {"limit": 101}),
        ("POST", f"{PEOPLE}/query", {}, {"limit": 10, "page": 2}),
        ("POST", f"{PEOPLE}/query", {}, {"cursor": "x"}),
        ("POST", f"{PEOPLE}/query", {}, {"sorts": [{"attribute": "name", "direction": "up"}]}),
    ],
)
def test_strict_parameters(url, method, path, params, body):
    response = httpx.request(method, f"{url}{path}", params=params, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_query_pages_by_limit_offset_and_batches_ids(url):
    walk = httpx.get(f"{url}{PEOPLE}", params={"pageSize": 10}, headers=AUTH).json()["data"]
    page = httpx.post(f"{url}{PEOPLE}/query", json={"limit": 5, "offset": 5}, headers=AUTH).json()
    assert page["meta"] == {"page": 2, "pageSize": 5, "total": 1000}
    assert [r["id"] for r in page["data"]] == [r["id"] for r in walk[5:10]]
    wanted = [r["id"]["record_id"] for r in walk[:3]] + [str(uuid.uuid4())]
    batch = httpx.post(
        f"{url}{PEOPLE}/query", json={"filter": {"record_id": {"$in": wanted}}}, headers=AUTH
    ).json()
    assert [r["id"]["record_id"] for r in batch["data"]] == wanted[:3]


def test_tenant_two_sees_another_workspace(url):
    other = {"Authorization": f"Bearer {attio.TENANT2_API_KEY}"}
    mine = httpx.get(f"{url}{PEOPLE}", headers=AUTH).json()["data"]
    theirs = httpx.get(f"{url}{PEOPLE}", headers=other).json()["data"]
    assert {r["id"]["record_id"] for r in mine}.isdisjoint(r["id"]["record_id"] for r in theirs)
    assert mine[0]["id"]["workspace_id"] != theirs[0]["id"]["workspace_id"]
    assert [r["values"]["name"] for r in mine] != [r["values"]["name"] for r in theirs]
    mine_id = mine[0]["id"]["record_id"]
    assert httpx.get(f"{url}{PEOPLE}/{mine_id}", headers=other).status_code == 404


def test_stats_count_requests(url):
    before = httpx.get(f"{url}/_emulator/stats").json()
    httpx.get(f"{url}{PEOPLE}", headers=AUTH)
    httpx.get(f"{url}{PEOPLE}")  # a 401 counts too
    after = httpx.get(f"{url}/_emulator/stats").json()
    assert after["requests"] - before["requests"] == 2
    key = f"GET {PEOPLE}"
    assert after["by_endpoint"][key] - before["by_endpoint"].get(key, 0) == 2
    assert after["by_status"]["401"] - before["by_status"].get("401", 0) == 1


def test_deal_and_note_written_then_read_back(url):
    company = httpx.get(
        f"{url}/v2/objects/companies/records", params={"pageSize": 1}, headers=AUTH
    ).json()["data"][0]
    company_id = company["id"]["record_id"]
    deal = httpx.post(
        f"{url}/v2/objects/deals/records",
        json={
            "data": {
                "values": {
                    "name": "Big one",
                    "stage": "Lead",
                    "value": 4200,
                    "associated_company": {
                        "target_object": "companies",
                        "target_record_id": company_id,
                    },
                }
            }
        },
        headers=AUTH,
    )
    assert deal.status_code == 200
    deal_id = deal.json()["data"]["id"]["record_id"]
    read = httpx.get(f"{url}/v2/objects/deals/records/{deal_id}", headers=AUTH).json()["data"]
    assert read["values"]["value"][0]["currency_value"] == 4200
    assert read["values"]["value"][0]["currency_code"] == "USD"
    assert read["values"]["associated_company"][0]["target_record_id"] == company_id
    bad_stage = httpx.put(
        f"{url}/v2/objects/deals/records/{deal_id}",
        json={"data": {"values": {"stage": "Maybe"}}},
        headers=AUTH,
    )
    assert bad_stage.status_code == 400
    note = httpx.post(
        f"{url}/v2/notes",
        json={
            "data": {
                "parent_object": "deals",
                "parent_record_id": deal_id,
                "title": "Kick-off",
                "format": "plaintext",
                "content": "Went well.",
            }
        },
        headers=AUTH,
    ).json()["data"]
    note_id = note["id"]["note_id"]
    got = httpx.get(f"{url}/v2/notes/{note_id}", headers=AUTH).json()["data"]
    assert got["content_plaintext"] == "Went well."
    assert httpx.delete(f"{url}/v2/notes/{note_id}", headers=AUTH).json() == {}
    missing = httpx.get(f"{url}/v2/notes/{note_id}", headers=AUTH)
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "invalid_request_error")


def test_assert_upserts_on_a_unique_attribute(url):
    body = {"data": {"values": {"domains": ["upsert.example"], "name": "Upsert Inc"}}}
    path = f"{url}/v2/objects/companies/records"
    params = {"matching_attribute": "domains"}
    first = httpx.put(path, params=params, json=body, headers=AUTH).json()["data"]
    body["data"]["values"]["name"] = "Upsert Ltd"
    second = httpx.put(path, params=params, json=body, headers=AUTH).json()["data"]
    assert first["id"] == second["id"]
    assert second["values"]["name"][0]["value"] == "Upsert Ltd"
    wrong = httpx.put(path, params={"matching_attribute": "name"}, json=body, headers=AUTH)
    assert wrong.status_code == 400


def test_webhook_delivers_signed_events_to_loopback(url):
    received: list[tuple[bytes, str]] = []
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["Attio-Signature"]))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    listener = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        target = f"http://127.0.0.1:{listener.server_address[1]}/hook"
        created = httpx.post(
            f"{url}/v2/webhooks",
            json={
                "data": {
                    "target_url": target,
                    "subscriptions": [{"event_type": "record.created", "filter": None}],
                }
            },
            headers=AUTH,
        ).json()["data"]
        secret, webhook_id = created["secret"], created["id"]["webhook_id"]
        listed = httpx.get(f"{url}/v2/webhooks", headers=AUTH).json()
        assert webhook_id in [w["id"]["webhook_id"] for w in listed["data"]]
        assert "secret" not in listed["data"][0]
        person = httpx.post(
            f"{url}{PEOPLE}",
            json={"data": {"values": {"email_addresses": ["hooked@example.net"]}}},
            headers=AUTH,
        ).json()["data"]
        assert arrived.wait(5)
        body, signature = received[0]
        assert signature == hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        event = json.loads(body)
        assert event["webhook_id"] == webhook_id
        assert event["events"][0]["event_type"] == "record.created"
        assert event["events"][0]["id"]["record_id"] == person["id"]["record_id"]
        assert httpx.delete(f"{url}/v2/webhooks/{webhook_id}", headers=AUTH).json() == {}
        assert httpx.get(f"{url}/v2/webhooks/{webhook_id}", headers=AUTH).status_code == 404
    finally:
        listener.shutdown()
        listener.server_close()
