"""The Redivis emulator against its contract, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.emulators import EmulatorOptions, create_emulator, redivis
from gateway.servers import ServerThread

AUTH = {"Authorization": f"Bearer {redivis.DEMO_TOKEN}"}
ROWS = "/api/v1/tables/acme.crm.contacts/rows"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with ServerThread(create_emulator("redivis", EmulatorOptions(rate_limits=False))) as server:
        yield server.url


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_errors_have_the_contract_shape(url):
    missing = httpx.get(f"{url}{ROWS}")
    assert missing.status_code == 401
    assert missing.json() == {
        "status": 401,
        "error": "invalid_token",
        "error_description": missing.json()["error_description"],
    }
    limited = httpx.get(
        f"{url}{ROWS}", headers={"Authorization": f"Bearer {redivis.LIMITED_TOKEN}"}
    )
    assert limited.status_code == 403
    assert limited.json()["error"] == "insufficient_scope"
    assert limited.json()["scope"] == ["data.data"]
    unknown = httpx.get(f"{url}/api/v1/tables/acme.crm.spaceships", headers=AUTH)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


def test_rows_page_with_tokens_in_id_order(url):
    ids, params = [], {"maxResults": 300}
    while True:
        response = httpx.get(f"{url}{ROWS}", params=params, headers=AUTH)
        assert response.headers["content-type"].startswith("application/x-ndjson")
        ids += [row["id"] for row in lines(response)]
        token = response.headers.get("X-Redivis-Next-Page-Token")
        if not token:
            break
        params["pageToken"] = token
    assert len(ids) == len(set(ids)) == 1000
    assert ids == sorted(ids)
    table = httpx.get(f"{url}/api/v1/tables/acme.crm.contacts", headers=AUTH).json()
    assert table["numRows"] == 1000


def test_references_are_case_insensitive_and_may_be_encoded(url):
    for reference in (
        "ACME.CRM.Contacts",
        "acme.crm%3Acurrent.contacts",
        "acme.crm:current.contacts",
    ):
        response = httpx.get(f"{url}/api/v1/tables/{reference}", headers=AUTH)
        assert response.status_code == 200, reference


@pytest.mark.parametrize("params", [{"maxResults": 0}, {"maxResults": 1001}, {"pageToken": "zz"}])
def test_bad_paging_is_invalid_request(url, params):
    response = httpx.get(f"{url}{ROWS}", params=params, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_a_token_belongs_to_its_listing(url):
    first = httpx.get(f"{url}{ROWS}", params={"maxResults": 5}, headers=AUTH)
    token = first.headers["X-Redivis-Next-Page-Token"]
    other = httpx.get(
        f"{url}/api/v1/tables/acme.crm.deals/rows",
        params={"maxResults": 5, "pageToken": token},
        headers=AUTH,
    )
    assert other.status_code == 400


def test_queries_filter_sort_and_page(url):
    sql = (
        "SELECT id, last_name FROM `acme.crm.contacts` WHERE last_name IN ('Turing', 'Hopper') "
        "AND id > 'person_000100' ORDER BY last_name DESC, id LIMIT 50"
    )
    query = httpx.post(f"{url}/api/v1/queries", json={"query": sql}, headers=AUTH).json()
    assert query["status"] == "completed"
    rows = lines(httpx.get(f"{url}/api/v1/queries/{query['id']}/rows", headers=AUTH))
    assert len(rows) == query["outputNumRows"] <= 50
    assert all(r["last_name"] in ("Turing", "Hopper") and r["id"] > "person_000100" for r in rows)
    assert rows == sorted(rows, key=lambda r: (r["last_name"] == "Hopper", r["id"]))
    assert set(rows[0]) == {"id", "last_name"}


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM `acme.crm.contacts`",
        "SELECT * FROM `acme.crm.contacts` GROUP BY id",
        "SELECT nope FROM `acme.crm.contacts`",
    ],
)
def test_sql_outside_the_subset_is_refused(url, sql):
    response = httpx.post(f"{url}/api/v1/queries", json={"query": sql}, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_tenants_see_different_rows(url):
    mine = lines(httpx.get(f"{url}{ROWS}", params={"maxResults": 3}, headers=AUTH))
    other = lines(
        httpx.get(
            f"{url}{ROWS}",
            params={"maxResults": 3},
            headers={"Authorization": f"Bearer {redivis.TENANT2_TOKEN}"},
        )
    )
    assert [r["email"] for r in mine] != [r["email"] for r in other]


def test_429_says_when_in_epoch_milliseconds(monkeypatch):
    monkeypatch.setattr(redivis, "RATE_LIMIT", 3)
    with ServerThread(create_emulator("redivis", EmulatorOptions(rate_limits=True))) as server:
        answers = [
            httpx.get(f"{server.url}{ROWS}", params={"maxResults": 1}, headers=AUTH)
            for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Remaining"] == "2"
    retry = int(answers[-1].headers["Retry-After"])
    assert retry > 10**12  # milliseconds since the epoch, not seconds to wait
    assert time.time() * 1000 < retry <= (time.time() + 61) * 1000
    assert answers[-1].json()["error"] == "rate_limit_exceeded"
