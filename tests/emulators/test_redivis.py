"""The Redivis emulator against its contract, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from emulators import EmulatorOptions, redivis
from emulators.routing import pack
from gateway.providers import create_emulator
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge
from tests.support.stack import emulator_client

SMALL = EmulatorOptions(rate_limits=False, companies=6, contacts=25, deals=8, notes=5)
AUTH = {"Authorization": f"Bearer {redivis.DEMO_TOKEN}"}
API = "/api/v1"
CONTACTS = f"{API}/tables/acme.crm.contacts"


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


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("redivis", SMALL), "redivis", AUTH) as client:
        yield client


@pytest.fixture(scope="module")
async def full() -> AsyncIterator[httpx.AsyncClient]:
    """The demo's world (1,000 contacts), for what needs its data; shared by the module."""
    app = create_emulator("redivis", EmulatorOptions(rate_limits=False))
    async with emulator_client(app, "redivis", AUTH) as client:
        yield client


def error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["status"], body["error"]) == (status, kind)
    description: str = body["error_description"]
    return description


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


async def test_tokens_and_scopes(api: httpx.AsyncClient) -> None:
    for header in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        error(await api.get(CONTACTS, headers=header), 401, "invalid_token")
    limited = {"Authorization": f"Bearer {redivis.LIMITED_TOKEN}"}
    refused = await api.get(f"{CONTACTS}/rows", headers=limited)
    assert error(refused, 403, "insufficient_scope") == "This call needs the data.data scope."
    assert refused.json()["scope"] == ["data.data"]
    # The OpenAPI document is open, like the real one.
    assert (await api.get(f"{API}/openAPI.json", headers={})).json()["info"]["title"]


async def test_head_errors_travel_in_a_header(api: httpx.AsyncClient) -> None:
    missing = await api.head(f"{API}/tables/acme.crm.planets")
    assert missing.status_code == 404
    assert missing.content == b""
    payload = json.loads(unquote(missing.headers["X-Redivis-Error-Payload"]))
    assert payload["error"] == "not_found"
    unauthorised = await api.head(CONTACTS, headers={"Authorization": "Bearer nope"})
    assert json.loads(unquote(unauthorised.headers["X-Redivis-Error-Payload"]))["status"] == 401
    assert (await api.head(f"{API}/datasets/acme.crm")).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/datasets/acme.crm",
        f"{API}/datasets/ACME.crm:crm1:v1_0",
        f"{API}/datasets/acme.crm%3Acurrent",
        f"{API}/tables/acme.crm:next.contacts:abcd",
        f"{API}/tables/Acme.CRM.contacts",
        f"{API}/tables/acme.crm:abcd:current.contacts:x1y2",
        f"{API}/tables/acme.crm%3Acurrent.contacts",
        f"{API}/tables/acme.crm:current.contacts",
    ],
)
async def test_references_in_their_accepted_spellings(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "status", "kind"),
    [
        (f"{API}/datasets/acme.crm:v2_0", {}, 404, "not_found"),
        (f"{API}/datasets/other.crm", {}, 404, "not_found"),
        (f"{API}/organizations/other/datasets", {}, 404, "not_found"),
        (f"{API}/tables/acme.crm", {}, 404, "not_found"),
        (f"{API}/tables/acme.crm.contacts/variables/shoe", {}, 404, "not_found"),
        (f"{API}/queries/q_99", {}, 404, "not_found"),
        (f"{API}/nothing", {}, 404, "not_found"),
        (CONTACTS, {"verbose": 1}, 400, "invalid_request"),
        (f"{API}/datasets/acme.crm/tables", {"maxResults": 0}, 400, "invalid_request"),
        (f"{API}/datasets/acme.crm/tables", {"maxResults": 1001}, 400, "invalid_request"),
        (f"{API}/datasets/acme.crm/tables", {"pageToken": "junk"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"format": "csv"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"format": "xml"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"format": "parquet"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"offset": 10}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"maxResults": 0}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"pageToken": "zz"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"pageToken": ""}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"selectedVariables": "id,shoe"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"selectedVariables": ","}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"maxResults": "x"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"pageToken": "x", "maxResults": 1001}, 400, "invalid_request"),
        (
            f"{CONTACTS}/rows",
            {"maxResults": 1001, "pageToken": redivis._token("table:contacts", 5)},
            400,
            "invalid_request",
        ),
    ],
)
async def test_read_refusals(
    api: httpx.AsyncClient, path: str, params: dict[str, Any], status: int, kind: str
) -> None:
    error(await api.get(path, params=params), status, kind)


async def test_listings_page_by_token(api: httpx.AsyncClient) -> None:
    orgs = (await api.get(f"{API}/organizations/acme/datasets")).json()
    assert [d["qualifiedReference"] for d in orgs["results"]] == ["acme.crm"]
    first = (await api.get(f"{API}/datasets/acme.crm/tables", params={"maxResults": 3})).json()
    assert [t["name"] for t in first["results"]] == ["contacts", "companies", "deals"]
    rest = (
        await api.get(
            f"{API}/datasets/acme.crm/tables",
            params={"maxResults": 3, "pageToken": first["nextPageToken"]},
        )
    ).json()
    assert [t["name"] for t in rest["results"]] == ["notes"]
    assert rest["nextPageToken"] is None
    foreign = await api.get(f"{CONTACTS}/variables", params={"pageToken": first["nextPageToken"]})
    assert error(foreign, 400, "invalid_request") == "pageToken does not belong to this listing."
    variables = (await api.get(f"{CONTACTS}/variables", params={"exactReferences": "true"})).json()
    assert [v["index"] for v in variables["results"]] == list(range(9))
    one = (await api.get(f"{CONTACTS}/variables/First-Name")).json()
    assert (one["name"], one["type"], one["valueLabels"]) == ("first_name", "string", [])
    table = (await api.get(CONTACTS)).json()
    assert (table["numRows"], table["container"]["name"]) == (25, "crm")
    deals = (await api.get(f"{API}/tables/acme.crm.deals/variables")).json()
    assert [v["index"] for v in deals["results"]] == list(range(11))
    amount = (await api.get(f"{API}/tables/acme.crm.deals/variables/amount")).json()
    assert amount["type"] == "float"


async def test_rows_select_cap_and_page(api: httpx.AsyncClient) -> None:
    everything = lines(await api.get(f"{CONTACTS}/rows"))
    assert len(everything) == 25
    assert next(iter(everything[0])) == "id"
    picked = lines(await api.get(f"{CONTACTS}/rows", params={"selectedVariables": "EMAIL, id"}))
    assert list(picked[0]) == ["email", "id"]
    capped = await api.get(f"{CONTACTS}/rows", params={"maxResults": 10})
    token = capped.headers["X-Redivis-Next-Page-Token"]
    page = await api.get(f"{CONTACTS}/rows", params={"maxResults": 10, "pageToken": token})
    assert [r["id"] for r in lines(page)] == [r["id"] for r in everything[10:20]]
    last = await api.get(
        f"{CONTACTS}/rows",
        params={"maxResults": 10, "pageToken": page.headers["X-Redivis-Next-Page-Token"]},
    )
    assert len(lines(last)) == 5
    assert "X-Redivis-Next-Page-Token" not in last.headers
    beyond = pack({"s": "table:contacts", "o": 99})
    error(await api.get(f"{CONTACTS}/rows", params={"pageToken": beyond}), 400, "invalid_request")
    with_body = await api.request("GET", f"{CONTACTS}/rows", content=b"{}")
    assert error(with_body, 400, "invalid_request") == "GET requests carry no body."


async def query(api: httpx.AsyncClient, sql: str, **extra: Any) -> list[dict[str, Any]]:
    response = await api.post(f"{API}/queries", json={"query": sql, **extra})
    assert response.status_code == 200, response.text
    resource = response.json()
    assert resource["status"] == "completed"
    rows = lines(await api.get(f"{API}/queries/{resource['id']}/rows"))
    assert len(rows) == resource["outputNumRows"]
    return rows


async def test_queries_run_the_sql_subset(api: httpx.AsyncClient) -> None:
    table = "`acme.crm.deals`"
    rows = await query(api, f"SELECT * FROM {table}")
    assert len(rows) == 8
    first = rows[0]
    one = await query(api, f"SELECT id, name FROM {table} WHERE id = '{first['id']}'")
    assert one == [{"id": first["id"], "name": first["name"]}]
    ordered = await query(
        api, f"SELECT amount FROM {table} ORDER BY amount DESC, id LIMIT 3 OFFSET 1"
    )
    amounts = sorted((r["amount"] for r in rows), reverse=True)
    assert [r["amount"] for r in ordered] == amounts[1:4]
    for sql, count in (
        (f"SELECT id FROM {table} WHERE amount >= 0 AND amount < 1e12", 8),
        (f"SELECT id FROM {table} WHERE amount > 1e12 OR amount <= -1", 0),
        (f"SELECT id FROM {table} WHERE status != 'nothing' AND status <> 'none'", 8),
        (f"SELECT id FROM {table} WHERE id IN ('{first['id']}', 'x')", 1),
        (f"SELECT id FROM {table} WHERE close_date IS NOT NULL OR close_date IS NULL", 8),
        (f"SELECT id FROM {table} WHERE (status = 'open' OR status = 'won') AND TRUE = TRUE", None),
        (f"SELECT id FROM {table} WHERE LOWER(name) LIKE '%'", 8),
        (f"SELECT id FROM {table} WHERE LOWER(name) LIKE '\\\\%'", 0),
        (f"SELECT id FROM {table} WHERE name = 'a\\x41\\u00e9\\101\\n'", 0),
    ):
        if count is None:
            continue
        assert len(await query(api, sql)) == count, sql
    bare = await query(api, "SELECT id FROM contacts LIMIT 2", defaultDataset="acme.crm")
    assert len(bare) == 2


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM contacts", "Expected SELECT, found 'DELETE'."),
        ("SELECT", "Unexpected end of query (expected None)."),
        ("SELECT id FROM 'contacts'", "Expected a table reference"),
        ("SELECT id FROM acme.crm.planets", "Table 'acme.crm.planets' not found."),
        ("SELECT 'x' FROM acme.crm.contacts", "Expected a column name"),
        ("SELECT shoe FROM acme.crm.contacts", "Unknown variable 'shoe' in contacts."),
        ("SELECT id FROM acme.crm.contacts LIMIT -1", "LIMIT needs a non-negative integer."),
        ("SELECT id FROM acme.crm.contacts LIMIT 1.5", "LIMIT needs a non-negative integer."),
        ("SELECT id FROM acme.crm.contacts GROUP BY id", "Unsupported SQL: 'GROUP'."),
        ("SELECT id FROM acme.crm.contacts WHERE id = id", "Expected a literal, found 'id'."),
        ("SELECT id FROM acme.crm.contacts WHERE id ~ 'x'", "Unsupported SQL near"),
        ("SELECT id FROM acme.crm.contacts WHERE LOWER(id) LIKE 5", "LIKE needs a string pattern"),
        ("SELECT id FROM acme.crm.contacts WHERE LOWER(id) LIKE 'x\\\\'", "LIKE pattern ends"),
        ("SELECT id FROM acme.crm.contacts WHERE id = 'a''b'", "'' does not escape a quote"),
        ("SELECT id FROM acme.crm.contacts WHERE id = 'open", "Unterminated string literal"),
        ("SELECT id FROM acme.crm.contacts WHERE id = 'a\nb'", "cannot hold a raw newline"),
        ("SELECT id FROM acme.crm.contacts WHERE id = '\\q'", "Illegal escape sequence \\q"),
        ("SELECT id FROM acme.crm.contacts WHERE id = '\\18'", "octal needs 3 octal digits"),
        ("SELECT id FROM acme.crm.contacts WHERE id = '\\xZ1'", "needs 2 hex digits"),
        ("SELECT id FROM acme.crm.contacts WHERE id = '\\UFFFFFFFF'", "not a Unicode scalar"),
        ("SELECT id FROM acme.crm.contacts WHERE id = 'a\\\nb'", "Illegal escaped newline"),
        ("SELECT id FROM acme.crm.contacts WHERE id = 'x\\", "Unterminated string literal"),
    ],
)
async def test_sql_refusals(api: httpx.AsyncClient, sql: str, message: str) -> None:
    response = await api.post(f"{API}/queries", json={"query": sql})
    assert message in error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "The body is not valid JSON."),
        (b"[]", "`query` (a SQL string) is required."),
        (b'{"query": "x", "priority": 1}', "Unknown body field(s): priority."),
        (b'{"query": "x", "timeoutMs": 60001}', "timeoutMs must be between 0 and 60000."),
        (b'{"query": "x", "timeoutMs": true}', "timeoutMs must be between 0 and 60000."),
        (b'{"query": "x", "defaultDataset": 1}', "defaultDataset must be a dataset reference."),
    ],
)
async def test_query_body_refusals(api: httpx.AsyncClient, body: bytes, message: str) -> None:
    response = await api.post(f"{API}/queries", content=body)
    assert error(response, 400, "invalid_request") == message


async def test_another_tokens_query_is_hidden(api: httpx.AsyncClient) -> None:
    made = (
        await api.post(f"{API}/queries", json={"query": "SELECT id FROM acme.crm.notes"})
    ).json()
    assert (await api.get(f"{API}/queries/{made['id']}")).json()["outputNumRows"] == 5
    other = {"Authorization": f"Bearer {redivis.TENANT2_TOKEN}"}
    error(await api.get(f"{API}/queries/{made['id']}", headers=other), 404, "not_found")


async def test_fixed_windows_with_headers_in_milliseconds() -> None:
    app = create_emulator("redivis", EmulatorOptions(companies=2, contacts=2, deals=1, notes=1))
    now = [1_700_000_000.0]
    app.state.emulator.rate_window.clock = lambda: now[0]
    async with emulator_client(app, "redivis", AUTH) as client:
        reset = str(int((now[0] + 60) * 1000))
        for left in (999, 998):
            ok = await client.get(f"{API}/datasets/acme.crm")
            assert ok.headers["X-RateLimit-Remaining"] == str(left)
            assert ok.headers["X-RateLimit-Reset"] == reset
        app.state.emulator.rate_window.counts[redivis.DEMO_TOKEN] = (now[0], redivis.RATE_LIMIT)
        refused = await client.get(f"{API}/datasets/acme.crm")
        error(refused, 429, "rate_limit_exceeded")
        assert refused.headers["Retry-After"] == reset  # an instant, not a delay
        now[0] += 60
        assert (await client.get(f"{API}/datasets/acme.crm")).status_code == 200


async def test_injected_faults_answer_in_the_error_shape(api: httpx.AsyncClient) -> None:
    await api.post("/_emulator/faults", json={"error_rate": 1})
    error(await api.get(CONTACTS), 500, "internal_error")
    await api.post("/_emulator/faults", json={"rate_limit_rate": 1})
    throttled = await api.get(CONTACTS)
    error(throttled, 429, "rate_limit_exceeded")
    assert int(throttled.headers["Retry-After"]) > 10**12


async def test_errors_have_the_contract_shape(api: httpx.AsyncClient) -> None:
    anonymous = api.build_request("GET", f"{CONTACTS}/rows")
    del anonymous.headers["Authorization"]
    missing = await api.send(anonymous)
    assert missing.status_code == 401
    assert missing.json() == {
        "status": 401,
        "error": "invalid_token",
        "error_description": missing.json()["error_description"],
    }
    limited = {"Authorization": f"Bearer {redivis.LIMITED_TOKEN}"}
    error(await api.get(CONTACTS, headers=limited), 403, "insufficient_scope")
    unknown = await api.get(f"{API}/tables/acme.crm.spaceships")
    assert unknown.json() == {
        "status": 404,
        "error": "not_found",
        "error_description": unknown.json()["error_description"],
    }
    assert (await api.get(f"{API}/tables/acme.crm:v9_0.contacts")).status_code == 404


async def test_head_without_a_token_is_refused_in_a_header() -> None:
    # The refusal is built before any route runs (it answered 500 once: no body stream).
    async with emulator_client(create_emulator("redivis", SMALL), "redivis") as client:
        response = await client.head(CONTACTS)
    assert response.status_code == 401
    assert response.content == b""
    payload = json.loads(unquote(response.headers["X-Redivis-Error-Payload"]))
    assert payload["error"] == "invalid_token"


async def test_rows_page_with_tokens_in_id_order(full: httpx.AsyncClient) -> None:
    ids: list[str] = []
    params: dict[str, str | int] = {"maxResults": 300}
    while True:
        response = await full.get(f"{CONTACTS}/rows", params=params)
        ids += [row["id"] for row in lines(response)]
        token = response.headers.get("X-Redivis-Next-Page-Token")
        if not token:
            break
        params["pageToken"] = token
    assert len(ids) == len(set(ids)) == 1000
    assert ids == sorted(ids)
    assert (await full.get(CONTACTS)).json()["numRows"] == 1000


async def test_max_results_alone_is_the_real_uncapped_limit(full: httpx.AsyncClient) -> None:
    response = await full.get(f"{CONTACTS}/rows", params={"maxResults": 5000})
    assert len(lines(response)) == 1000
    assert "X-Redivis-Next-Page-Token" not in response.headers


async def test_a_token_belongs_to_its_listing(api: httpx.AsyncClient) -> None:
    first = await api.get(f"{CONTACTS}/rows", params={"maxResults": 5})
    token = first.headers["X-Redivis-Next-Page-Token"]
    other = await api.get(
        f"{API}/tables/acme.crm.deals/rows", params={"maxResults": 5, "pageToken": token}
    )
    error(other, 400, "invalid_request")


async def test_queries_filter_sort_and_page(full: httpx.AsyncClient) -> None:
    sql = (
        "SELECT id, last_name FROM `acme.crm.contacts` WHERE last_name IN ('Turing', 'Hopper') "
        "AND id > 'person_000100' ORDER BY last_name DESC, id LIMIT 50"
    )
    rows = await query(full, sql)
    assert len(rows) <= 50
    assert all(r["last_name"] in ("Turing", "Hopper") and r["id"] > "person_000100" for r in rows)
    assert rows == sorted(rows, key=lambda r: (r["last_name"] == "Hopper", r["id"]))
    assert set(rows[0]) == {"id", "last_name"}


async def test_query_rows_page_and_default_dataset(full: httpx.AsyncClient) -> None:
    body = {
        "query": "SELECT * FROM notes WHERE target_type = 'deal' OR LOWER(title) LIKE 'demo%'",
        "defaultDataset": "acme.crm",
    }
    made = (await full.post(f"{API}/queries", json=body)).json()
    rows: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"maxResults": 40}
    while True:
        response = await full.get(f"{API}/queries/{made['id']}/rows", params=params)
        rows += lines(response)
        if "X-Redivis-Next-Page-Token" not in response.headers:
            break
        params["pageToken"] = response.headers["X-Redivis-Next-Page-Token"]
    assert len(rows) == made["outputNumRows"] > 40
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert all(r["target_type"] == "deal" or r["title"].lower().startswith("demo") for r in rows)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM `acme.crm.contacts` WHERE nope = 1",
        "SELECT id FROM `acme.crm.contacts` LIMIT 'x'",
        "SELECT id FROM `acme.crm.contacts`; DROP TABLE contacts",
        "SELECT id FROM contacts",
    ],
)
async def test_sql_outside_the_subset_is_refused(api: httpx.AsyncClient, sql: str) -> None:
    error(await api.post(f"{API}/queries", json={"query": sql}), 400, "invalid_request")


async def test_tenants_see_different_rows(api: httpx.AsyncClient) -> None:
    mine = lines(await api.get(f"{CONTACTS}/rows", params={"maxResults": 3}))
    other = {"Authorization": f"Bearer {redivis.TENANT2_TOKEN}"}
    theirs = lines(await api.get(f"{CONTACTS}/rows", params={"maxResults": 3}, headers=other))
    assert [r["email"] for r in mine] != [r["email"] for r in theirs]


async def test_stats_count_requests(api: httpx.AsyncClient) -> None:
    before = (await api.get("/_emulator/stats")).json()["requests"]
    for _ in range(3):
        await api.get(f"{API}/tables/acme.crm.notes")
    stats = (await api.get("/_emulator/stats")).json()
    assert stats["requests"] == before + 3
    assert stats["by_endpoint"]["GET /api/v1/tables/acme.crm.notes"] == 3


async def test_unenforced_limits_are_not_spent(api: httpx.AsyncClient) -> None:
    answers = [await api.get(f"{CONTACTS}/rows", params={"maxResults": 1}) for _ in range(3)]
    assert {a.headers["X-RateLimit-Remaining"] for a in answers} == {str(redivis.RATE_LIMIT)}


# --- string literals and LIKE patterns: BigQuery's lexical rules ----------------------

SELECT = "SELECT id FROM `acme.crm.contacts` WHERE "


async def query_ids(api: httpx.AsyncClient, where: str) -> list[str]:
    return [row["id"] for row in await query(api, SELECT + where)]


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
async def test_string_literal_escapes_are_decoded(
    full: httpx.AsyncClient, where: str, expected: list[str]
) -> None:
    assert await query_ids(full, where) == expected


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
async def test_like_patterns_escape_wildcards(
    full: httpx.AsyncClient, pattern: str, count: int
) -> None:
    assert len(await query_ids(full, f"LOWER(id) LIKE {pattern}")) == count


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
async def test_literals_bigquery_refuses_are_refused(
    api: httpx.AsyncClient, literal: str, problem: str
) -> None:
    response = await api.post(f"{API}/queries", json={"query": SELECT + f"last_name = {literal}"})
    assert problem.lower() in error(response, 400, "invalid_request").lower()


async def test_query_text_must_be_valid_unicode(api: httpx.AsyncClient) -> None:
    body = json.dumps({"query": SELECT + "last_name = '\ud800'"})  # ASCII: `\ud800` escape
    response = await api.post(
        f"{API}/queries", content=body, headers={"Content-Type": "application/json"}
    )
    assert "UTF-8" in error(response, 400, "invalid_request")
