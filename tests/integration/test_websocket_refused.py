"""With `subscriptions` off (the default), a WebSocket upgrade to /graphql over a real socket
is not switched to (no 101), and a subscription over HTTP says they are off."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.app import create_app
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.subscribing import PROTOCOL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with ServerThread(create_app(Settings(graphiql=True))) as server:
        yield server.url


def test_an_upgrade_request_is_not_switched(url: str) -> None:
    parts = urlsplit(url)
    assert parts.hostname is not None
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /graphql HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: graphql-transport-ws\r\n"
        "\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.makefile("rb").readline().decode()
    version, status, *_ = status_line.split(" ")
    assert version.startswith("HTTP/1.1")
    assert status != "101"


async def test_a_websocket_client_is_refused(url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url.replace("http", "ws", 1) + "/graphql", subprotocols=[PROTOCOL]):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 403


def test_a_subscription_over_http_is_told_they_are_off(url: str) -> None:
    query = "subscription { recordChanged { id } }"
    body = httpx.post(f"{url}/graphql", json={"query": query}).json()
    assert body["errors"][0]["extensions"]["code"] == "SUBSCRIPTIONS_DISABLED"
