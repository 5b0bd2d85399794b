"""A WebSocket upgrade to /graphql over a real socket is not switched to (no 101)."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from gateway.app import create_app
from gateway.servers import ServerThread
from gateway.settings import Settings

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
