"""The RevyOps emulator against its contract."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators import revyops
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge

pytestmark = pytest.mark.integration

# --- what the tests know of RevyOps, read straight from its API -----------------------
AUTH = {"client_id": revyops.DEMO_CLIENT_ID}


def _rows(client: httpx.Client, entity: Entity, limit: int | None = None) -> list[dict[str, Any]]:
    """The first `limit` rows, or all of them."""
    params: dict[str, Any] = {**AUTH, "page_size": limit or 1000}
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(f"/public/v2/{entity.plural}", params={**params, "page": page}).json()
        rows += body["results"]
        if not body["next"] or limit:
            return rows
        page += 1


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    return [str(r["id"]) for r in _rows(client, entity)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    return {str(r["id"]): _text(r["company_id"]) for r in _rows(client, Entity.CONTACT, count)}


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    return {
        str(r["id"]): {"name": r["name"] or None, "domain": r["domain"] or None}
        for r in _rows(client, Entity.COMPANY)
    }


KNOWLEDGE = ProviderKnowledge(
    kind="revyops",
    remote_ids=_remote_ids,
    sample_ids={Entity.CONTACT: "17", Entity.COMPANY: "3"},
    unknown_ids={Entity.CONTACT: "999999", Entity.COMPANY: "999999"},
    contact_companies=_contact_companies,
    companies=_companies,
)
# --------------------------------------------------------------------------------------
