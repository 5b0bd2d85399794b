"""A WebSocket client of an ASGI app in process: no socket, no thread, the app's own event
loop. Enough of the ASGI WebSocket protocol for graphql-transport-ws."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from starlette.types import ASGIApp, Message

PROTOCOL = "graphql-transport-ws"


class Closed(Exception):
    """The app closed the connection (or refused it) with `code`."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed with {code} {reason}")
        self.code = code
        self.reason = reason


class AsgiWebSocket:
    """`async with AsgiWebSocket(app, headers) as ws:` once the app accepted it; `Closed`
    when it refuses."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(b"host", b"gateway")] + [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ]
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None

    async def __aenter__(self) -> AsgiWebSocket:
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": self.headers,
            "subprotocols": [PROTOCOL],
            "client": ("127.0.0.1", 50000),
            "server": ("gateway", 80),
            "state": {},
        }
        self._task = asyncio.ensure_future(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "websocket.connect"})
        first = await self._next()
        if first["type"] != "websocket.accept":
            await self._task
            raise Closed(first.get("code", 1000), first.get("reason", ""))
        return self

    async def _next(self) -> Message:
        async with asyncio.timeout(15):
            return await self._outbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        await self._inbox.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def send_text(self, text: str) -> None:
        await self._inbox.put({"type": "websocket.receive", "text": text})

    async def receive(self) -> dict[str, Any]:
        message = await self._next()
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000), message.get("reason", ""))
        received: dict[str, Any] = json.loads(message["text"])
        return received

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inbox.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            async with asyncio.timeout(15):
                await self._task
