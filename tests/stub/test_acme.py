"""The Acme emulator against its contract, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions
from gateway.records import Entity
from tests.stub import acme_emulator
from tests.support.knowledge import ProviderKnowledge
from tests.support.stack import emulator_client

# --- what the tests know of Acme, read straight from its API --------------------------
AUTH = {"Authorization": f"Bearer {acme_emulator.DEMO_TOKEN}"}


def _rows(client: httpx.Client, entity: Entity) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        params = {"page": page, "per_page": 100}
        body = client.get(f"/v1/{entity.plural}", params=params, headers=AUTH).json()
        rows += body["items"]
        if len(rows) >= body["total"]:
            return rows
        page += 1


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    return [str(r["id"]) for r in _rows(client, entity)]


KNOWLEDGE = ProviderKnowledge(
    kind="acme",
    remote_ids=_remote_ids,
    sample_ids={Entity.CONTACT: "17", Entity.COMPANY: "3"},
    unknown_ids={Entity.CONTACT: "999999", Entity.COMPANY: "999999"},
)
# --------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = acme_emulator.create_app(EmulatorOptions(companies=30, contacts=90))
    async with emulator_client(app, "acme", AUTH) as client:
        yield client


async def test_a_bearer_token_is_required(api: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": "Bearer nope"}, {"Authorization": ""}):
        response = await api.get("/v1/contacts", headers=headers)
        assert (response.status_code, response.json()) == (
            401,
            {"error": "A valid bearer token is required."},
        )


async def test_pages_are_numbered_in_id_order_with_the_total(api: httpx.AsyncClient) -> None:
    ids: list[int] = []
    for page in (1, 2, 3, 4):
        body = (await api.get("/v1/contacts", params={"page": page, "per_page": 25})).json()
        assert (body["page"], body["per_page"], body["total"]) == (page, 25, 90)
        ids += [row["id"] for row in body["items"]]
    assert ids == list(range(1, 91))
    past = (await api.get("/v1/contacts", params={"page": 5, "per_page": 25})).json()
    assert past["items"] == []


@pytest.mark.parametrize("params", [{"page": 0}, {"per_page": 101}, {"per_page": 0}, {"page": "x"}])
async def test_a_bad_page_is_400(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await api.get("/v1/companies", params=params)
    assert response.status_code == 400
    assert "error" in response.json()


async def test_one_row_by_id_or_404(api: httpx.AsyncClient) -> None:
    row = (await api.get("/v1/companies/3")).json()
    assert (row["id"], sorted(row)) == (
        3,
        ["created_at", "domain", "id", "name", "updated_at"],
    )
    for missing in ("/v1/companies/31", "/v1/companies/x", "/v1/deals", "/v1/contacts/²"):
        response = await api.get(missing)
        assert response.status_code == 404, missing


async def test_contacts_filter_by_exact_last_name(api: httpx.AsyncClient) -> None:
    every = (await api.get("/v1/contacts", params={"per_page": 100})).json()["items"]
    name = every[0]["last_name"]
    body = (await api.get("/v1/contacts", params={"last_name": name, "per_page": 100})).json()
    assert body["items"] == [row for row in every if row["last_name"] == name]
    assert body["total"] == len(body["items"])
    lower = await api.get("/v1/contacts", params={"last_name": name.lower(), "per_page": 100})
    assert lower.json()["total"] == 0
