"""Subscription clients over real sockets: graphql-transport-ws by WebSocket (the
`websockets` library) and multipart subscriptions by HTTP (httpx streaming)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.waiting import wait_until

PROTOCOL = "graphql-transport-ws"
MULTIPART = 'multipart/mixed;subscriptionSpec="1.0",application/json'


def ws_url(url: str) -> str:
    return url.replace("http", "ws", 1) + "/graphql"


def open_subscriptions(url: str, headers: Mapping[str, str] | None = None) -> int:
    """What the gateway's /metrics says is open."""
    text = httpx.get(f"{url}/metrics", headers=dict(headers or {})).text
    for line in text.splitlines():
        if line.startswith("crm_gateway_subscriptions_open "):
            return int(float(line.split()[1]))
    raise AssertionError("no crm_gateway_subscriptions_open in /metrics")


def wait_open(url: str, count: int) -> None:
    """Until `count` subscriptions are open (each listens from then on)."""
    wait_until(lambda: open_subscriptions(url) == count, what=f"{count} open subscriptions")


class Socket:
    """One graphql-transport-ws connection, acknowledged."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation = str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": operation, "type": "subscribe", "payload": payload}))
        return operation

    async def message(self, operation: str) -> dict[str, Any]:
        """The next message of `operation` (pings answered, other operations' skipped)."""
        while True:
            async with asyncio.timeout(15):
                message: dict[str, Any] = json.loads(await self.ws.recv())
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
            elif message.get("id") == operation:
                return message

    async def event(self, operation: str) -> dict[str, Any]:
        """The `recordChanged` of the operation's next `next` message."""
        message = await self.message(operation)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["recordChanged"]
        return event

    async def complete(self, operation: str) -> None:
        await self.ws.send(json.dumps({"id": operation, "type": "complete"}))


@asynccontextmanager
async def socket(
    url: str,
    payload: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
) -> AsyncIterator[Socket]:
    """A connection to the gateway at `url`, its `connection_init` acknowledged."""
    async with connect(
        ws_url(url),
        subprotocols=[PROTOCOL],  # type: ignore[list-item]
        additional_headers=dict(headers or {}),
        origin=origin,  # type: ignore[arg-type]
        open_timeout=15,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": dict(payload or {})}))
        async with asyncio.timeout(15):
            ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        yield Socket(ws)


class Multipart:
    """A multipart subscription's response, read part by part."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_text()
        self._buffer = ""

    async def payload(self) -> dict[str, Any]:
        """The next part with a payload (heartbeats, the empty parts, skipped)."""
        while True:
            part = await self._part()
            if part.get("payload") is not None:
                payload: dict[str, Any] = part["payload"]
                return payload

    async def _part(self) -> dict[str, Any]:
        while True:
            _, sep, rest = self._buffer.partition("\r\n\r\n")
            if sep:
                body, boundary, after = rest.partition("\r\n--graphql")
                if boundary:
                    self._buffer = after
                    return json.loads(body) if body.strip() else {}
            self._buffer += await anext(self._chunks)


@asynccontextmanager
async def multipart(
    url: str, query: str, headers: Mapping[str, str] | None = None
) -> AsyncIterator[Multipart]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=15) as http,
        http.stream(
            "POST",
            "/graphql",
            json={"query": query},
            headers={"accept": MULTIPART, **(headers or {})},
        ) as response,
    ):
        yield Multipart(response)
