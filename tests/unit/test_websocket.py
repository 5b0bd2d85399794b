"""No WebSocket is accepted while the gateway serves no subscriptions: whatever library the
server has, an upgrade to /graphql is refused before anything runs."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message

from gateway.app import create_app
from gateway.settings import Settings


@pytest.mark.parametrize("protocol", [b"graphql-transport-ws", b"graphql-ws", b""])
async def test_a_websocket_upgrade_is_refused_before_it_is_accepted(protocol: bytes) -> None:
    app = create_app(Settings())
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    subprotocols = [protocol.decode()] if protocol else []
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"sec-websocket-protocol", protocol)] if protocol else [],
        "subprotocols": subprotocols,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "state": {},
    }
    await app(scope, receive, send)
    # Closing before accepting makes the server answer the handshake with 403, not 101.
    assert [m["type"] for m in sent] == ["websocket.close"]
