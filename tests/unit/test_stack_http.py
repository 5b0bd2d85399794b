"""The gateway's HTTP surface and the emulators' own answers, in process: API keys, GraphQL
over HTTP basics, GraphiQL, metrics, health, and upstream failures as coded errors."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from emulators import EmulatorOptions
from gateway.providers import create_emulator
from gateway.settings import ProviderSettings
from tests.support.kinds import ALL_KINDS
from tests.support.stack import Stack, emulator_client, emulator_url, running_stack

KEY = "reader-key-0123456789"
QUERY = '{ contacts(provider: "haste", first: 2) { edges { node { remoteId } } } }'
WRONG_TOKEN = ProviderSettings(
    name="haste-wrong",
    kind="haste",
    base_url=emulator_url("haste"),
    credentials={"token": "not-the-token"},
    rate_limit=False,
)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    clients = [
        {
            "name": "reader",
            "api_key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
            "providers": ["haste", "haste-wrong"],
        }
    ]
    async with running_stack(extra=[WRONG_TOKEN], graphiql=True, clients=clients) as running:
        yield running


async def test_api_keys_are_checked(stack: Stack) -> None:
    body = await stack.post(QUERY)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await stack.post(QUERY, headers={"X-API-Key": "wrong-key-0123456789"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await stack.post(QUERY, headers={"X-API-Key": KEY})
    assert len(body["data"]["contacts"]["edges"]) == 2
    # A provider the client may not use is as unknown to it as one that does not exist.
    body = await stack.post(QUERY.replace("haste", "revyops"), headers={"X-API-Key": KEY})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await stack.post(
        'mutation { createContact(input: {provider: "haste", lastName: "X"}) { contact { id } } }',
        headers={"X-API-Key": KEY},
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_graphql_over_http_basics(stack: Stack) -> None:
    auth = {"X-API-Key": KEY}
    got = await stack.http.get("/graphql", params={"query": QUERY}, headers=auth)
    assert got.status_code == 200
    assert len(got.json()["data"]["contacts"]["edges"]) == 2
    typed = await stack.http.post(
        "/graphql",
        json={"query": QUERY},
        headers={**auth, "Accept": "application/graphql-response+json"},
    )
    assert typed.headers["content-type"].startswith("application/graphql-response+json")
    mutation = 'mutation { deleteContact(input: {id: "x"}) { deletedId } }'
    over_get = await stack.http.get("/graphql", params={"query": mutation}, headers=auth)
    assert over_get.status_code == 405
    put = await stack.http.put("/graphql", headers=auth)
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, POST"
    bad = await stack.http.post(
        "/graphql", content=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    assert 400 <= bad.status_code < 500
    unacceptable = await stack.http.post(
        "/graphql", json={"query": QUERY}, headers={**auth, "Accept": "image/png"}
    )
    assert unacceptable.status_code == 406
    invalid = await stack.post("{ nope }", headers=auth)
    assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_graphiql_metrics_and_health(stack: Stack) -> None:
    page = await stack.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    await stack.post(QUERY, headers={"X-API-Key": KEY})
    metrics = await stack.http.get("/metrics")
    assert "crm_gateway_operations_total" in metrics.text
    assert 'provider="haste"' in metrics.text
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["providers"]) == {*ALL_KINDS, "haste-wrong"}
    assert (await stack.http.get("/healthz")).json()["status"] == "ok"
    root = await stack.http.get("/")
    assert root.status_code == 307
    assert root.headers["location"] == "/graphql"


async def test_upstream_failures_are_coded_errors(stack: Stack) -> None:
    auth = {"X-API-Key": KEY}
    body = await stack.post(QUERY.replace('"haste"', '"haste-wrong"'), headers=auth)
    [error] = body["errors"]
    assert error["extensions"]["provider"] == "haste-wrong"
    assert error["extensions"]["status"] == 401
    assert "not-the-token" not in str(body)
    # A garbled answer is the provider's fault, reported as such.
    faults = {"garbage_rate": 1.0, "only_matching": "/v1/companies"}
    assert (await stack.direct["haste"].post("/_emulator/faults", json=faults)).status_code == 200
    try:
        body = await stack.post(
            '{ companies(provider: "haste", first: 2) { edges { node { name } } } }', headers=auth
        )
        [error] = body["errors"]
        assert error["extensions"]["code"] == "UPSTREAM_BAD_RESPONSE"
        assert error["extensions"]["provider"] == "haste"
    finally:
        await stack.direct["haste"].post("/_emulator/faults", json={})
    assert (await stack.direct["haste"].get("/_emulator/faults")).json()["garbage_rate"] == 0


# A contacts list of each API (a new provider's own tests cover it: nothing here to add).
CONTACTS = {
    "revyops": "/public/v2/contacts",
    "attio": "/v2/objects/people/records",
    "haste": "/v1/contacts",
    "redivis": "/api/v1/tables/acme.crm.contacts/rows",
    "basicsos": "/api/contacts",
}


@pytest.mark.parametrize("kind", sorted(CONTACTS))
async def test_emulators_refuse_callers_without_credentials_and_count(kind: str) -> None:
    app = create_emulator(kind, EmulatorOptions(rate_limits=False, contacts=20, companies=5))
    async with emulator_client(app, kind) as client:
        refused = await client.get(CONTACTS[kind], headers={"Authorization": "Bearer wrong"})
        assert refused.status_code in (401, 403)
        missing = await client.get("/no/such/path")
        assert missing.status_code == 404
        stats = (await client.get("/_emulator/stats")).json()
        assert stats["requests"] == 2
        assert stats["by_status"].get(str(refused.status_code)) == 1
        bad = await client.post("/_emulator/faults", json={"error_rate": 2})
        assert bad.status_code in (400, 422)  # each in its provider's error shape
        reset = (await client.post("/_emulator/reset")).json()
        assert reset["requests"] == 0


async def test_revyops_api_key_goes_as_x_api_key_where_the_api_asks_for_one() -> None:
    keyed = ProviderSettings(
        name="revyops-keyed",
        kind="revyops",
        base_url=emulator_url("revyops"),
        credentials={"client_id": "revyops-demo-client", "api_key": "revyops-demo-key"},
        rate_limit=False,
    )
    options = EmulatorOptions(rate_limits=False, companies=3, contacts=4, require_api_key=True)
    query = '{ contacts(provider: "%s", first: 2) { totalCount } }'
    async with running_stack(["revyops"], options=options, extra=[keyed]) as stack:
        assert await stack.data(query % "revyops-keyed") == {"contacts": {"totalCount": 4}}
        refused = await stack.post(query % "revyops")
        extensions = refused["errors"][0]["extensions"]
        assert (extensions["code"], extensions["provider"], extensions["status"]) == (
            "UPSTREAM_AUTH",
            "revyops",
            403,
        )
        assert "revyops-demo-key" not in str(refused)
