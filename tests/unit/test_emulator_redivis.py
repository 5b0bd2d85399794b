"""The Redivis emulator against its contract, in process: what the gateway never sends."""

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
from tests.support.stack import emulator_client

SMALL = EmulatorOptions(rate_limits=False, companies=6, contacts=25, deals=8, notes=5)
AUTH = {"Authorization": f"Bearer {redivis.DEMO_TOKEN}"}
API = "/api/v1"
CONTACTS = f"{API}/tables/acme.crm.contacts"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("redivis", SMALL), "redivis", AUTH) as client:
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
        (f"{CONTACTS}/rows", {"selectedVariables": "id,shoe"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"selectedVariables": ","}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"maxResults": "x"}, 400, "invalid_request"),
        (f"{CONTACTS}/rows", {"pageToken": "x", "maxResults": 1001}, 400, "invalid_request"),
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
