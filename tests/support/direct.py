"""Changes made directly in a provider, through the emulator's own REST API with its demo
credentials (not through the gateway), as a salesperson's edit in the CRM would be.

`edit` gives one contact a new first name, deletes another and creates a third. RevyOps
and BasicsOS take a request each; Redivis, which has no row writes, takes a next version
of the dataset whose contacts an upload replaces, then its release.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.demo import DEMO_CREDENTIALS

REDIVIS = "/api/v1"


def client(kind: str, url: str) -> httpx.Client:
    """A client of the `kind` emulator at `url`, with its demo credentials."""
    credentials = DEMO_CREDENTIALS[kind]
    if kind == "revyops":
        return httpx.Client(base_url=url, params={"client_id": credentials["client_id"]})
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {credentials['token']}"})


def contact_ids(kind: str, url: str, count: int) -> list[str]:
    """The ids of the provider's first `count` contacts, read from the emulator."""
    with client(kind, url) as http:
        if kind == "revyops":
            body = http.get("/public/v2/contacts", params={"page_size": count}).json()
            return [str(row["id"]) for row in body["results"]]
        if kind == "basicsos":
            rows = http.get("/api/contacts", params={"range": json.dumps([0, count - 1])}).json()
            return [str(row["id"]) for row in rows]
        return [str(row["id"]) for row in _redivis_rows(http)[:count]]


def edit(kind: str, url: str, *, updated: str, renamed: str, deleted: str) -> str:
    """Give contact `updated` the first name `renamed`, delete contact `deleted`, and
    create a contact named `renamed` too; the new contact's id."""
    with client(kind, url) as http:
        if kind == "redivis":
            return _redivis_edit(http, updated, renamed, deleted)
        path = "/public/v2/contacts" if kind == "revyops" else "/api/contacts"
        change = http.patch if kind == "revyops" else http.put
        _ok(change(f"{path}/{updated}", json={"first_name": renamed}))
        _ok(http.delete(f"{path}/{deleted}"))
        new = {"first_name": renamed, "last_name": "New", "email": "new.contact@example.test"}
        return str(_ok(http.post(path, json=new)).json()["id"])


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.is_success, response.text
    return response


def _redivis_rows(http: httpx.Client) -> list[dict[str, Any]]:
    path = f"{REDIVIS}/tables/acme.crm.contacts/rows"
    response = _ok(http.get(path, params={"maxResults": 100_000}))
    return [json.loads(line) for line in response.text.splitlines() if line]


def _redivis_edit(http: httpx.Client, updated: str, renamed: str, deleted: str) -> str:
    now = datetime.now(UTC).isoformat()
    rows = [row for row in _redivis_rows(http) if row["id"] != deleted]
    for row in rows:
        if row["id"] == updated:
            row.update(first_name=renamed, updated_at=now)
    new = {"id": "person_900001", "first_name": renamed, "created_at": now, "updated_at": now}
    dataset = f"{REDIVIS}/datasets/acme.crm"
    table = f"{REDIVIS}/tables/acme.crm:next.contacts"
    _ok(http.post(f"{dataset}/versions"))
    _ok(http.patch(table, json={"uploadMergeStrategy": "replace"}))
    upload = _ok(http.post(f"{table}/uploads", json={"name": "edit", "type": "stream"})).json()
    _ok(http.post(f"{REDIVIS}{upload['uri']}/rows", json={"rows": [*rows, new]}))
    _ok(http.post(f"{dataset}/versions/next/release"))
    return new["id"]
