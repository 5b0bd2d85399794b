"""Subscriptions through the whole stack in process (graphql-transport-ws over an ASGI
WebSocket, no socket): the gateway's own writes of every kind reach a subscriber, and the
transport's refusals hold. The same over real sockets: tests/integration/test_subscriptions.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.asgi_websocket import AsgiWebSocket, Closed
from tests.support.stack import Stack, running_stack

KEY = "stack-key-0123456789abcdef"
OTHER = "other-key-0123456789abcdef"
EVENT = """subscription($types: [RecordType!]) { recordChanged(types: $types) {
  provider kind id type source record { ... on Contact { id lastName } } } }"""


def client(name: str, key: str) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"name": name, "api_key_sha256": digest, "scopes": ["read", "write"]}


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(
        ["haste"],
        subscriptions=True,
        max_subscriptions_per_client=2,
        max_request_size=20_000,
        cors_origins=["http://allowed.test"],
        clients=[client("stack", KEY), client("other", OTHER)],
    ) as running:
        yield running


async def open_count(stack: Stack) -> int:
    response = await stack.http.get("/metrics")
    for line in response.text.splitlines():
        if line.startswith("crm_gateway_subscriptions_open "):
            return int(float(line.split()[1]))
    raise AssertionError("no gauge")


async def until_open(stack: Stack, count: int) -> None:
    """Until `count` subscriptions listen (each starts in a task of its own)."""
    for _ in range(1500):
        if await open_count(stack) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {count} open subscriptions")


async def connected(stack: Stack, key: str = KEY, **headers: str) -> AsgiWebSocket:
    ws = await AsgiWebSocket(stack.app, headers).__aenter__()
    await ws.send({"type": "connection_init", "payload": {"X-API-Key": key}})
    assert (await ws.receive())["type"] == "connection_ack"
    return ws


async def subscribe(ws: AsgiWebSocket, operation: str, **variables: Any) -> None:
    payload = {"query": EVENT, "variables": variables}
    await ws.send({"id": operation, "type": "subscribe", "payload": payload})


async def events(ws: AsgiWebSocket, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        message = await ws.receive()
        assert message["type"] == "next", message
        found.append(message["payload"]["data"]["recordChanged"])
    return found


async def post(stack: Stack, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = await stack.post(query, variables, headers={"X-API-Key": KEY})
    assert "errors" not in body, body
    return body["data"]


async def contact_ids(stack: Stack, n: int) -> list[str]:
    data = await post(
        stack, f'{{ contacts(provider: "haste", first: {n}) {{ edges {{ node {{ id }} }} }} }}'
    )
    return [edge["node"]["id"] for edge in data["contacts"]["edges"]]


async def test_every_kind_of_write_reaches_the_subscriber(stack: Stack) -> None:
    ws = await connected(stack)
    try:
        await subscribe(ws, "1", types=["CONTACT"])
        await until_open(stack, 1)
        first, second, third = await contact_ids(stack, 3)
        await post(
            stack,
            'mutation($id: ID!) { updateContact(input: {id: $id, lastName: "One"}) { contact { id } } }',
            {"id": first},
        )
        [event] = await events(ws, 1)
        assert event == {
            "provider": "haste",
            "kind": "UPDATED",
            "id": first,
            "type": "CONTACT",
            "source": "GATEWAY",
            "record": {"id": first, "lastName": "One"},
        }
        await post(
            stack,
            "mutation($w: ID!, $l: ID!) { mergeContacts(input: {winnerId: $w, loserIds: [$l]}) "
            "{ userErrors { message } } }",
            {"w": first, "l": second},
        )
        merged, gone = await events(ws, 2)
        assert (merged["kind"], merged["id"]) == ("MERGED", first)
        assert (gone["kind"], gone["id"], gone["record"]) == ("DELETED", second, None)
        await post(
            stack,
            'mutation($id: ID!) { bulkUpdateContacts(input: {contacts: [{id: $id, lastName: "Bulk"}]}) '
            "{ succeeded } }",
            {"id": third},
        )
        [bulk] = await events(ws, 1)
        assert (bulk["kind"], bulk["record"]["lastName"]) == ("UPDATED", "Bulk")
        await ws.send({"id": "1", "type": "complete"})
        await until_open(stack, 0)
    finally:
        await ws.__aexit__(None, None, None)


async def test_a_company_write_is_not_heard_by_a_contacts_subscription(stack: Stack) -> None:
    ws = await connected(stack)
    try:
        await subscribe(ws, "1", types=["CONTACT"])
        await subscribe(ws, "2")
        await until_open(stack, 2)
        companies = await post(
            stack, '{ companies(provider: "haste", first: 1) { edges { node { id } } } }'
        )
        company = companies["companies"]["edges"][0]["node"]["id"]
        await post(
            stack,
            'mutation($id: ID!) { updateCompany(input: {id: $id, name: "Co"}) { company { id } } }',
            {"id": company},
        )
        message = await ws.receive()
        assert message["id"] == "2"
        assert message["payload"]["data"]["recordChanged"]["type"] == "COMPANY"
    finally:
        await ws.__aexit__(None, None, None)
    await until_open(stack, 0)


async def test_the_cap_and_the_arguments_are_checked_before_streaming(stack: Stack) -> None:
    ws = await connected(stack)
    try:
        await subscribe(ws, "1")
        await subscribe(ws, "2")
        await until_open(stack, 2)
        await subscribe(ws, "3")
        refused = await ws.receive()
        assert (refused["id"], refused["type"]) == ("3", "error")
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        other = await connected(stack, OTHER)
        try:
            wrong: list[dict[str, list[str]]] = [{"types": []}, {"providers": ["nowhere"]}]
            for variables in wrong:
                query = "subscription($types: [RecordType!], $providers: [String!]) { recordChanged(types: $types, providers: $providers) { id } }"
                await other.send(
                    {
                        "id": "x",
                        "type": "subscribe",
                        "payload": {"query": query, "variables": variables},
                    }
                )
                refused = await other.receive()
                assert refused["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        finally:
            await other.__aexit__(None, None, None)
    finally:
        await ws.__aexit__(None, None, None)
    await until_open(stack, 0)


async def test_refusals_of_the_transport(stack: Stack) -> None:
    with pytest.raises(Closed) as refused:
        await connected(stack, "wrong-key")
    assert refused.value.code == 4403
    with pytest.raises(Closed):
        await AsgiWebSocket(stack.app, {"origin": "http://evil.test"}).__aenter__()
    ws = await connected(stack, origin="http://allowed.test")
    await ws.send_text("x" * 20_001)
    with pytest.raises(Closed) as closed:
        await ws.receive()
    assert closed.value.code == 1009
    await ws.__aexit__(None, None, None)
    ws = await connected(stack)
    await ws.send_text("[1, 2]")
    with pytest.raises(Closed) as closed:
        await ws.receive()
    assert closed.value.code == 4400
    await ws.__aexit__(None, None, None)


async def test_over_plain_http_a_subscription_says_how_to_send_it(stack: Stack) -> None:
    body = await stack.post(EVENT, headers={"X-API-Key": KEY})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "data" not in body or body["data"] is None


async def test_with_subscriptions_off_none_is_served() -> None:
    async with running_stack(["haste"]) as stack:
        body = await stack.post(EVENT)
        assert body["errors"][0]["extensions"]["code"] == "SUBSCRIPTIONS_DISABLED"
        with pytest.raises(Closed):
            await AsgiWebSocket(stack.app).__aenter__()


async def test_persisted_only_holds_over_a_websocket(tmp_path: Path) -> None:
    trusted = "subscription Trusted { recordChanged { id } }"
    manifest = tmp_path / "documents.json"
    manifest.write_text(json.dumps({hashlib.sha256(trusted.encode()).hexdigest(): trusted}))
    async with running_stack(
        ["haste"],
        subscriptions=True,
        persisted_documents=manifest,
        persisted_only=True,
        clients=[client("stack", KEY)],
    ) as stack:
        ws = await connected(stack)
        try:
            await ws.send({"id": "1", "type": "subscribe", "payload": {"query": EVENT}})
            refused = await ws.receive()
            assert (refused["id"], refused["type"]) == ("1", "error")
            assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
            await ws.send({"id": "2", "type": "subscribe", "payload": {"query": trusted}})
            await until_open(stack, 1)
        finally:
            await ws.__aexit__(None, None, None)
