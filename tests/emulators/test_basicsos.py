"""The BasicsOS emulator against its contract."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from emulators import basicsos
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge

pytestmark = pytest.mark.integration

# --- what the tests know of BasicsOS, read straight from its API ----------------------
AUTH = {"Authorization": f"Bearer {basicsos.DEMO_ADMIN_TOKEN}"}
# The unified note list: contact notes, then company notes, then deal notes.
NOTE_TABLES = ("contact_notes", "company_notes", "deal_notes")


def _table(client: httpx.Client, name: str, count: int = 100_001) -> list[dict[str, Any]]:
    """The table's first `count` rows (an inclusive range)."""
    params = {"range": json.dumps([0, count - 1])}
    rows: list[dict[str, Any]] = client.get(f"/api/{name}", params=params, headers=AUTH).json()
    return rows


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    if entity is Entity.NOTE:
        return [f"{name}/{row['id']}" for name in NOTE_TABLES for row in _table(client, name)]
    return [str(row["id"]) for row in _table(client, entity.plural)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    return {str(r["id"]): _text(r["companyId"]) for r in _table(client, "contacts", count)}


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    return {
        str(r["id"]): {"name": r["name"] or None, "domain": r["domain"] or None}
        for r in _table(client, "companies")
    }


KNOWLEDGE = ProviderKnowledge(
    kind="basicsos",
    remote_ids=_remote_ids,
    sample_ids={
        Entity.CONTACT: "17",
        Entity.COMPANY: "3",
        Entity.DEAL: "1",
        Entity.NOTE: "deal_notes/7",
    },
    unknown_ids={
        Entity.CONTACT: "999999",
        Entity.COMPANY: "999999",
        Entity.DEAL: "999999",
        Entity.NOTE: "contact_notes/999999",
    },
    contact_companies=_contact_companies,
    companies=_companies,
)
# --------------------------------------------------------------------------------------
