"""The Redivis emulator against its contract, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from emulators import EmulatorOptions, redivis
from gateway.providers import create_emulator
from gateway.records import Entity
from gateway.servers import ServerThread
from tests.support.knowledge import CompanyFields, ProviderKnowledge

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {redivis.DEMO_TOKEN}"}
ROWS = "/api/v1/tables/acme.crm.contacts/rows"


# --- what the tests know of Redivis, read straight from its API -----------------------


def _rows(client: httpx.Client, entity: Entity, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's first `limit` rows, or all of them."""
    path = f"/api/v1/tables/acme.crm.{entity.plural}/rows"
    params: dict[str, Any] = {"format": "jsonl", "maxResults": limit or 1000}
    rows: list[dict[str, Any]] = []
    while True:
        response = client.get(path, params=params, headers=AUTH)
        rows += [json.loads(line) for line in response.text.splitlines() if line]
        token = response.headers.get("X-Redivis-Next-Page-Token")
        if not token or limit:
            return rows
        params["pageToken"] = token


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    return [str(r["id"]) for r in _rows(client, entity)]


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    return {r["id"]: r["company_id"] for r in _rows(client, Entity.CONTACT, count)}


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    return {
        str(r["id"]): {"name": r["name"] or None, "domain": r["domain"] or None}
        for r in _rows(client, Entity.COMPANY)
    }


KNOWLEDGE = ProviderKnowledge(
    kind="redivis",
    remote_ids=_remote_ids,
    sample_ids={
        Entity.CONTACT: "person_000017",
        Entity.COMPANY: "org_000003",
        Entity.DEAL: "deal_000001",
        Entity.NOTE: "note_000009",
    },
    unknown_ids=dict.fromkeys(Entity, "nope-0"),
    contact_companies=_contact_companies,
    companies=_companies,
    # One contact per deal (a `contact_id` column): the deal's first one.
    deal_contacts_kept=1,
)
# --------------------------------------------------------------------------------------


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
    metadata = httpx.get(
        f"{url}/api/v1/tables/acme.crm.contacts",
        headers={"Authorization": f"Bearer {redivis.LIMITED_TOKEN}"},
    )
    assert (metadata.status_code, metadata.json()["error"]) == (403, "insufficient_scope")
    wrong = httpx.get(f"{url}{ROWS}", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_token")
    unknown = httpx.get(f"{url}/api/v1/tables/acme.crm.spaceships", headers=AUTH)
    assert unknown.json() == {
        "status": 404,
        "error": "not_found",
        "error_description": unknown.json()["error_description"],
    }
    version = httpx.get(f"{url}/api/v1/tables/acme.crm:v9_0.contacts", headers=AUTH)
    assert version.status_code == 404


def test_head_errors_travel_in_a_header(url):
    response = httpx.head(f"{url}/api/v1/tables/acme.crm.spaceships", headers=AUTH)
    assert response.status_code == 404
    assert response.content == b""
    payload = json.loads(unquote(response.headers["X-Redivis-Error-Payload"]))
    assert payload["error"] == "not_found"


def test_head_without_a_token_is_refused_in_a_header(url):
    # The refusal is built before any route runs (it answered 500 once: no body stream).
    response = httpx.head(f"{url}/api/v1/tables/acme.crm.contacts")
    assert response.status_code == 401
    assert response.content == b""
    payload = json.loads(unquote(response.headers["X-Redivis-Error-Payload"]))
    assert payload["error"] == "invalid_token"


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
        "acme.crm:abcd:current.contacts:x1y2",
        "acme.crm%3Acurrent.contacts",
        "acme.crm:current.contacts",
    ):
        response = httpx.get(f"{url}/api/v1/tables/{reference}", headers=AUTH)
        assert response.status_code == 200, reference


@pytest.mark.parametrize(
    "params",
    [
        {"maxResults": 0},
        {"maxResults": "ten"},
        {"maxResults": 1001, "pageToken": redivis._token("table:contacts", 5)},
        {"pageToken": "zz"},
        {"pageToken": ""},
        {"pageToken": redivis._token("table:contacts", 5000)},
        {"offset": 10},
        {"format": "parquet"},
        {"selectedVariables": "id,nope"},
    ],
)
def test_bad_row_reads_are_invalid_request(url, params):
    response = httpx.get(f"{url}{ROWS}", params=params, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_max_results_alone_is_the_real_uncapped_limit(url):
    response = httpx.get(f"{url}{ROWS}", params={"maxResults": 5000}, headers=AUTH)
    assert len(lines(response)) == 1000
    assert "X-Redivis-Next-Page-Token" not in response.headers
    picked = lines(
        httpx.get(
            f"{url}{ROWS}", params={"maxResults": 2, "selectedVariables": "EMAIL,id"}, headers=AUTH
        )
    )
    assert [list(row) for row in picked] == [["email", "id"], ["email", "id"]]


def test_listings_page_with_next_page_token(url):
    path, names, params = "/api/v1/datasets/acme.crm/tables", [], {"maxResults": 3}
    while True:
        page = httpx.get(f"{url}{path}", params=params, headers=AUTH).json()
        names += [table["name"] for table in page["results"]]
        if page["nextPageToken"] is None:
            break
        params["pageToken"] = page["nextPageToken"]
    assert names == ["contacts", "companies", "deals", "notes"]
    for bad in ({"maxResults": 1001}, {"maxResults": 0}, {"pageToken": "garbage!"}):
        response = httpx.get(f"{url}{path}", params=bad, headers=AUTH)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    variables = httpx.get(f"{url}/api/v1/tables/acme.crm.deals/variables", headers=AUTH).json()
    assert [v["index"] for v in variables["results"]] == list(range(11))
    amount = httpx.get(f"{url}/api/v1/tables/acme.crm.deals/variables/amount", headers=AUTH)
    assert amount.json()["type"] == "float"


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
    other = {"Authorization": f"Bearer {redivis.TENANT2_TOKEN}"}
    hidden = httpx.get(f"{url}/api/v1/queries/{query['id']}", headers=other)
    assert hidden.status_code == 404


def test_query_rows_page_and_default_dataset(url):
    body = {
        "query": "SELECT * FROM notes WHERE target_type = 'deal' OR LOWER(title) LIKE 'demo%'",
        "defaultDataset": "acme.crm",
    }
    query = httpx.post(f"{url}/api/v1/queries", json=body, headers=AUTH).json()
    rows: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"maxResults": 40}
    while True:
        response = httpx.get(
            f"{url}/api/v1/queries/{query['id']}/rows", params=params, headers=AUTH
        )
        rows += lines(response)
        if "X-Redivis-Next-Page-Token" not in response.headers:
            break
        params["pageToken"] = response.headers["X-Redivis-Next-Page-Token"]
    assert len(rows) == query["outputNumRows"] > 40
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert all(r["target_type"] == "deal" or r["title"].lower().startswith("demo") for r in rows)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM `acme.crm.contacts`",
        "SELECT * FROM `acme.crm.contacts` GROUP BY id",
        "SELECT nope FROM `acme.crm.contacts`",
        "SELECT id FROM `acme.crm.contacts` WHERE nope = 1",
        "SELECT id FROM `acme.crm.contacts` LIMIT 'x'",
        "SELECT id FROM `acme.crm.contacts`; DROP TABLE contacts",
        "SELECT id FROM contacts",
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


def test_stats_count_requests(url):
    before = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    for _ in range(3):
        httpx.get(f"{url}/api/v1/tables/acme.crm.notes", headers=AUTH)
    stats = httpx.get(f"{url}/_emulator/stats").json()
    assert stats["requests"] == before + 3
    assert stats["by_endpoint"]["GET /api/v1/tables/acme.crm.notes"] >= 3


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


def test_unenforced_limits_are_not_spent(url):
    answers = [httpx.get(f"{url}{ROWS}", params={"maxResults": 1}, headers=AUTH) for _ in range(3)]
    assert {a.headers["X-RateLimit-Remaining"] for a in answers} == {str(redivis.RATE_LIMIT)}


# --- string literals and LIKE patterns: BigQuery's lexical rules ----------------------

CONTACTS = "SELECT id FROM `acme.crm.contacts` WHERE "


def query_ids(url: str, where: str) -> list[str]:
    response = httpx.post(f"{url}/api/v1/queries", json={"query": CONTACTS + where}, headers=AUTH)
    assert response.status_code == 200, response.text
    query_id = response.json()["id"]
    rows = lines(httpx.get(f"{url}/api/v1/queries/{query_id}/rows", headers=AUTH))
    return [row["id"] for row in rows]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # `\'` is a quote inside the literal, which then goes on to its real end.
        (r"id IN ('x\'y', 'person_000001')", ["person_000001"]),
        (r"id IN ('a\\', 'person_000002')", ["person_000002"]),  # `\\` is one backslash
        (r"id IN ('\"', 'person_000003')", ["person_000003"]),
        (r"id = 'person\x5f00000\u0031'", ["person_000001"]),  # hex and Unicode escapes
        (r"id = 'person\137\U0000003000002'", ["person_000002"]),  # octal
        ("id = ''", []),  # the empty literal is fine
        ("id = 'person_000001' OR id = 'person_000002'", ["person_000001", "person_000002"]),
        ("id = 'and' OR id = 'person_000004'", ["person_000004"]),  # a string is no keyword
    ],
)
def test_string_literal_escapes_are_decoded(url, where, expected):
    assert query_ids(url, where) == expected


@pytest.mark.parametrize(
    ("pattern", "count"),
    [
        (r"'person\\_000001'", 1),  # `\_` in the pattern is a literal underscore
        (r"'perso\\__000001'", 0),  # ... so it does not match the `n`
        ("'perso__000001'", 1),  # while `_` is any one character
        ("'person_00000_'", 9),
        ("'%%'", 1000),
        (r"'%\\%%'", 0),  # `\%` is a literal percent sign, which no id holds
        (r"'person\\x000001'", 0),  # any other escaped character stands for itself
        (r"'%\\\\%'", 0),  # `\\` is a literal backslash
    ],
)
def test_like_patterns_escape_wildcards(url, pattern, count):
    assert len(query_ids(url, f"LOWER(id) LIKE {pattern}")) == count


@pytest.mark.parametrize(
    ("literal", "problem"),
    [
        ("'it''s'", "''"),  # `''` ends the literal; the quote after it is a syntax error
        ("'a''", "''"),
        ("'line\nbreak'", "newline"),
        ("'cr\rhere'", "newline"),
        ("'a\\\nb'", "newline"),  # an escaped newline is refused too
        (r"'100\%'", "escape"),  # LIKE escapes need `\\%` in the SQL text
        (r"'\q'", "escape"),
        (r"'\x4'", "escape"),
        (r"'\ud800'", "escape"),  # a surrogate is no character
        (r"'\8'", "escape"),
        ("'never closed", "Unterminated"),
        ("'ends in a backslash\\'", "Unterminated"),
    ],
)
def test_literals_bigquery_refuses_are_refused(url, literal, problem):
    sql = CONTACTS + f"last_name = {literal}"
    response = httpx.post(f"{url}/api/v1/queries", json={"query": sql}, headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert problem.lower() in response.json()["error_description"].lower()


def test_like_pattern_ending_in_a_backslash_is_refused(url):
    sql = CONTACTS + r"LOWER(last_name) LIKE 'abc\\'"
    response = httpx.post(f"{url}/api/v1/queries", json={"query": sql}, headers=AUTH)
    assert response.status_code == 400
    assert "backslash" in response.json()["error_description"]


def test_query_text_must_be_valid_unicode(url):
    body = json.dumps({"query": CONTACTS + "last_name = '\ud800'"})  # ASCII: `\ud800` escape
    response = httpx.post(
        f"{url}/api/v1/queries",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error_description"]
