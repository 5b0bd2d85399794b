"""The emulators' data read straight from their APIs, without any gateway code.

Each reader returns the remote ids of an entity in the provider's default
order: what a full walk of the gateway's connection must produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from gateway.demo import DEMO_CREDENTIALS


def _revyops(url: str, entity: str) -> list[str]:
    path = {"contact": "contacts", "company": "companies"}[entity]
    params: dict[str, Any] = {
        "client_id": DEMO_CREDENTIALS["revyops"]["client_id"],
        "page_size": 1000,
    }
    ids: list[str] = []
    page = 1
    while True:
        body = httpx.get(f"{url}/public/v2/{path}", params={**params, "page": page}).json()
        ids += [str(r["id"]) for r in body["results"]]
        if not body["next"]:
            return ids
        page += 1


def _basicsos(url: str, entity: str) -> list[str]:
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['basicsos']['token']}"}

    def table(name: str) -> list[dict[str, Any]]:
        params = {"range": json.dumps([0, 100_000])}
        rows: list[dict[str, Any]] = httpx.get(
            f"{url}/api/{name}", params=params, headers=headers
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


READERS: dict[str, Callable[[str, str], list[str]]] = {
    "revyops": _revyops,
    "basicsos": _basicsos,
}

ENTITIES: dict[str, tuple[str, ...]] = {
    "revyops": ("contact", "company"),
    "basicsos": ("contact", "company", "deal", "note"),
}


def remote_ids(kind: str, url: str, entity: str) -> list[str]:
    return READERS[kind](url, entity)
