"""The Redivis emulator's writes, as Redivis makes them: a next version, stream uploads to
its tables (appended, or replacing the table), and its release, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, redivis
from gateway.providers import create_emulator
from tests.support.stack import emulator_client

SMALL = EmulatorOptions(rate_limits=False, companies=3, contacts=5, deals=2, notes=2)
AUTH = {"Authorization": f"Bearer {redivis.DEMO_TOKEN}"}
API = "/api/v1"
DATASET = f"{API}/datasets/acme.crm"
NEXT = f"{API}/tables/acme.crm:next.contacts"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("redivis", SMALL), "redivis", AUTH) as client:
        yield client


async def rows(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get(f"{API}/tables/acme.crm.contacts/rows", params={"maxResults": 100})
    return [json.loads(line) for line in response.text.splitlines()]


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error_description"]
    return message


async def upload(api: httpx.AsyncClient, table: str, name: str = "edit") -> str:
    created = await api.post(f"{table}/uploads", json={"name": name, "type": "stream"})
    assert created.status_code == 200, created.text
    assert created.json()["kind"] == "upload"
    uri: str = created.json()["uri"]
    return uri


async def test_a_replacing_upload_changes_and_deletes_rows_on_release(
    api: httpx.AsyncClient,
) -> None:
    before = await rows(api)
    assert (await api.post(f"{DATASET}/versions")).json()["tag"] == "next"
    assert "already" in refused(await api.post(f"{DATASET}/versions"))
    assert (await api.get(DATASET)).json()["nextVersion"]["tag"] == "next"
    patched = await api.patch(NEXT, json={"uploadMergeStrategy": "replace"})
    assert patched.json()["uploadMergeStrategy"] == "replace"
    changed = {**before[0], "first_name": "Renamed", "updated_at": "2030-01-02T03:04:05Z"}
    uri = await upload(api, NEXT)
    inserted = await api.post(f"{API}{uri}/rows", json={"rows": [changed, *before[2:]]})
    assert inserted.json() == {"insertedRows": len(before) - 1}
    assert await rows(api) == before  # nothing shows before the release
    released = await api.post(f"{DATASET}/versions/next/release")
    assert released.json()["nextVersion"] is None
    after = await rows(api)
    assert [r["id"] for r in after] == [before[0]["id"], *(r["id"] for r in before[2:])]
    assert after[0]["first_name"] == "Renamed"
    assert after[0]["updated_at"] == "2030-01-02 03:04:05.000000"  # stored as Redivis writes it
    assert "no next version" in refused(await api.post(f"{DATASET}/versions/next/release"))


async def test_an_appending_upload_adds_rows_and_refuses_a_repeated_id(
    api: httpx.AsyncClient,
) -> None:
    before = await rows(api)
    await api.post(f"{DATASET}/versions")
    uri = await upload(api, NEXT)
    new = {"id": "person_900001", "first_name": "New", "created_at": "2030-01-01 00:00:00"}
    await api.post(f"{API}{uri}/rows", json={"rows": [new]})
    await api.post(f"{DATASET}/versions/next/release")
    after = await rows(api)
    assert [r["id"] for r in after] == [*(r["id"] for r in before), "person_900001"]
    assert after[-1]["last_name"] is None  # a variable left out is null
    await api.post(f"{DATASET}/versions")
    again = await upload(api, NEXT)
    await api.post(f"{API}{again}/rows", json={"rows": [new]})
    assert "repeat an id" in refused(await api.post(f"{DATASET}/versions/next/release"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": [{"id": "x", "shoe": 1}]}, "Unknown variables: shoe."),
        ({"rows": [{"first_name": "no id"}]}, "Every row needs its `id` (text)."),
        ({"rows": [{"id": "x", "updated_at": "yesterday"}]}, "'yesterday' is not a dateTime."),
        ({"rows": "x"}, "`rows` must be a list of objects."),
    ],
)
async def test_rows_an_upload_refuses(
    api: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    await api.post(f"{DATASET}/versions")
    uri = await upload(api, NEXT)
    assert refused(await api.post(f"{API}{uri}/rows", json=body)) == message


async def test_only_the_next_version_changes_and_only_with_the_edit_scope(
    api: httpx.AsyncClient,
) -> None:
    current = f"{API}/tables/acme.crm.contacts"
    assert refused(await api.patch(NEXT, json={}), 404) == "The dataset has no next version."
    await api.post(f"{DATASET}/versions")
    assert "use version next" in refused(await api.post(f"{current}/uploads", json={"name": "x"}))
    delimited = await api.post(f"{NEXT}/uploads", json={"name": "x"})
    assert refused(delimited) == "This server takes stream uploads only."
    assert "append or replace" in refused(await api.patch(NEXT, json={"uploadMergeStrategy": 1}))
    assert refused(await api.post(f"{API}/uploads/up_999999/rows", json={}), 404)
    limited = {"Authorization": f"Bearer {redivis.LIMITED_TOKEN}"}
    scope = await api.post(f"{DATASET}/versions/next/release", headers=limited)
    assert scope.status_code == 403
    assert scope.json()["scope"] == ["data.edit"]
