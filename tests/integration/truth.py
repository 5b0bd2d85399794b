"""The emulators' data read straight from their APIs, without any gateway code.

Each reader returns the remote ids of an entity in the provider's default
order: what a full walk of the gateway's connection must produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from gateway.datasources import source_class
from gateway.demo import DEMO_CREDENTIALS
from gateway.providers import KINDS
from gateway.records import Entity


def _revyops(client: httpx.Client, entity: str) -> list[str]:
    path = {"contact": "contacts", "company": "companies"}[entity]
    params: dict[str, Any] = {
        "client_id": DEMO_CREDENTIALS["revyops"]["client_id"],
        "page_size": 1000,
    }
    ids: list[str] = []
    page = 1
    while True:
        body = client.get(f"/public/v2/{path}", params={**params, "page": page}).json()
        ids += [str(r["id"]) for r in body["results"]]
        if not body["next"]:
            return ids
        page += 1


def _basicsos(client: httpx.Client, entity: str) -> list[str]:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['basicsos']['token']}"}

    def table(name: str) -> list[dict[str, Any]]:
        params = {"range": json.dumps([0, 100_000])}
        rows: list[dict[str, Any]] = client.get(
            f"/api/{name}", params=params, headers=headers
        ).json()
        return rows

    if entity == "note":
        return [
            f"{name}/{row['id']}"
            for name in ("contact_notes", "company_notes", "deal_notes")
            for row in table(name)
        ]
    name = {"contact": "contacts", "company": "companies", "deal": "deals"}[entity]
    return [str(row["id"]) for row in table(name)]


def _attio(client: httpx.Client, entity: str) -> list[str]:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['attio']['api_key']}"}
    if entity == "note":
        path, id_key = "/v2/notes", "note_id"
    else:
        objects = {"contact": "people", "company": "companies", "deal": "deals"}
        path, id_key = f"/v2/objects/{objects[entity]}/records", "record_id"
    ids: list[str] = []
    page = 1
    while True:
        body = client.get(f"{path}", params={"page": page, "pageSize": 100}, headers=headers).json()
        ids += [str(r["id"][id_key]) for r in body["data"]]
        if not body["data"] or len(ids) >= body["meta"]["total"]:
            return ids
        page += 1


def _haste(client: httpx.Client, entity: str) -> list[str]:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['haste']['token']}"}
    path = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        body = client.get(f"/v1/{path[entity]}", params=params, headers=headers).json()
        ids += [str(r["id"]) for r in body["data"]]
        following = body["meta"]["cursor"]["next"]
        if not following:
            return ids
        params["cursor"] = following


def _redivis(client: httpx.Client, entity: str) -> list[str]:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['redivis']['token']}"}
    table = {"contact": "contacts", "company": "companies", "deal": "deals", "note": "notes"}
    ids: list[str] = []
    params: dict[str, Any] = {"format": "jsonl", "maxResults": 1000}
    while True:
        response = client.get(
            f"/api/v1/tables/acme.crm.{table[entity]}/rows", params=params, headers=headers
        )
        ids += [str(json.loads(line)["id"]) for line in response.text.splitlines() if line]
        token = response.headers.get("X-Redivis-Next-Page-Token")
        if not token:
            return ids
        params["pageToken"] = token


READERS: dict[str, Callable[[httpx.Client, str], list[str]]] = {
    "revyops": _revyops,
    "attio": _attio,
    "haste": _haste,
    "redivis": _redivis,
    "basicsos": _basicsos,
}

ALL = ("contact", "company", "deal", "note")
# Each kind's entities, as its capabilities declare them (ALL's order).
ENTITIES: dict[str, tuple[str, ...]] = {
    kind: tuple(e for e in ALL if Entity(e) in source_class(kind).describe().entities)
    for kind in KINDS
}


def remote_ids(kind: str, emulator: str | httpx.Client, entity: str) -> list[str]:
    """`emulator`: its URL, or a client of it (the unit layer's reaches its app in process)."""
    if isinstance(emulator, httpx.Client):
        return READERS[kind](emulator, entity)
    with httpx.Client(base_url=emulator) as client:
        return READERS[kind](client, entity)


def contact_companies(kind: str, url: str, count: int = 30) -> dict[str, str | None]:
    """The first contacts' company ids, read straight from each API's own shape."""
    creds = DEMO_CREDENTIALS[kind]
    if kind == "revyops":
        rows = httpx.get(
            f"{url}/public/v2/contacts",
            params={"client_id": creds["client_id"], "page_size": count},
        ).json()["results"]
        return {
            str(r["id"]): None if r["company_id"] is None else str(r["company_id"]) for r in rows
        }
    if kind == "attio":
        rows = httpx.get(
            f"{url}/v2/objects/people/records",
            params={"pageSize": count},
            headers={"Authorization": f"Bearer {creds['api_key']}"},
        ).json()["data"]
        return {
            r["id"]["record_id"]: (
                r["values"]["company"][0]["target_record_id"] if r["values"]["company"] else None
            )
            for r in rows
        }
    if kind == "haste":
        rows = httpx.get(
            f"{url}/v1/contacts",
            params={"limit": count},
            headers={"Authorization": f"Bearer {creds['token']}"},
        ).json()["data"]
        return {r["id"]: (r["company"] or {}).get("id") for r in rows}
    if kind == "redivis":
        response = httpx.get(
            f"{url}/api/v1/tables/acme.crm.contacts/rows",
            params={"maxResults": count},
            headers={"Authorization": f"Bearer {creds['token']}"},
        )
        rows = [json.loads(line) for line in response.text.splitlines() if line]
        return {r["id"]: r["company_id"] for r in rows}
    rows = httpx.get(
        f"{url}/api/contacts",
        params={"range": json.dumps([0, count - 1])},
        headers={"Authorization": f"Bearer {creds['token']}"},
    ).json()
    return {str(r["id"]): None if r["companyId"] is None else str(r["companyId"]) for r in rows}


def companies(kind: str, url: str) -> dict[str, dict[str, str | None]]:
    """Every company's name and domain by id, read straight from each API's own shape."""
    creds = DEMO_CREDENTIALS[kind]
    rows: list[tuple[str, str | None, str | None]] = []
    if kind == "revyops":
        body = httpx.get(
            f"{url}/public/v2/companies",
            params={"client_id": creds["client_id"], "page_size": 1000},
        ).json()
        rows = [(str(r["id"]), r["name"], r["domain"]) for r in body["results"]]
    elif kind == "attio":
        page = 1
        while True:
            data = httpx.get(
                f"{url}/v2/objects/companies/records",
                params={"page": page, "pageSize": 100},
                headers={"Authorization": f"Bearer {creds['api_key']}"},
            ).json()["data"]
            for r in data:
                values = r["values"]
                name = values["name"][0]["value"] if values.get("name") else None
                domain = values["domains"][0]["domain"] if values.get("domains") else None
                rows.append((r["id"]["record_id"], name, domain))
            if len(data) < 100:
                break
            page += 1
    elif kind == "haste":
        params: dict[str, Any] = {"limit": 100}
        while True:
            body = httpx.get(
                f"{url}/v1/companies",
                params=params,
                headers={"Authorization": f"Bearer {creds['token']}"},
            ).json()
            rows += [(r["id"], r["name"], r["domain"]) for r in body["data"]]
            if not body["meta"]["cursor"]["next"]:
                break
            params["cursor"] = body["meta"]["cursor"]["next"]
    elif kind == "redivis":
        response = httpx.get(
            f"{url}/api/v1/tables/acme.crm.companies/rows",
            params={"maxResults": 1000, "format": "jsonl"},
            headers={"Authorization": f"Bearer {creds['token']}"},
        )
        lines = [json.loads(line) for line in response.text.splitlines() if line]
        rows = [(str(r["id"]), r["name"], r["domain"]) for r in lines]
    else:
        data = httpx.get(
            f"{url}/api/companies",
            params={"range": json.dumps([0, 100_000])},
            headers={"Authorization": f"Bearer {creds['token']}"},
        ).json()
        rows = [(str(r["id"]), r["name"], r["domain"]) for r in data]
    return {i: {"name": name or None, "domain": domain or None} for i, name, domain in rows}
