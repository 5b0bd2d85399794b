"""Headers every answer of the gateway carries, and the request id.

- `X-Content-Type-Options: nosniff`, so a browser never reads a JSON answer as a page;
- `X-Frame-Options: DENY`, so no other site frames the gateway's pages (GraphiQL also
  says `frame-ancestors 'none'` in its Content-Security-Policy);
- `Cache-Control: no-store` unless the route set its own (GraphiQL's versioned assets):
  an answer may hold a client's data, and no shared cache may keep it;
- `Vary: Origin, Authorization, X-API-Key`: the answer depends on who asks;
- `X-Request-Id`: the client's own when it sent a well-formed one, else a fresh one; the
  operation's log line carries it too.

`SecureRoute` applies them to the gateway's routes, so they hold when a host app includes
the router; `SecurityHeaders` does the same for what a whole app answers outside them
(404s, CORS preflights, redirects).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logs import current_request_id

REQUEST_ID = "X-Request-Id"
VARY = ("Origin", "Authorization", "X-API-Key")
# What a client may send as its request id: tracing ids, UUIDs, base64; nothing that could
# break a log line or a header.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._~:/+=@-]{1,128}")


def request_id(scope: Scope) -> str:
    """The request's id, chosen once per request and kept in its scope's state."""
    state: dict[str, Any] = scope.setdefault("state", {})
    known = state.get("request_id")
    if isinstance(known, str):
        return known
    sent = Headers(scope=scope).get(REQUEST_ID)
    chosen = sent if sent is not None and _WELL_FORMED.fullmatch(sent) else uuid.uuid4().hex
    state["request_id"] = chosen
    return chosen


def secure(headers: MutableHeaders, scope: Scope) -> None:
    """Add the gateway's headers to an answer's, keeping what the route set itself."""
    headers[REQUEST_ID] = request_id(scope)
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cache-Control", "no-store")
    # Once each: CORS adds its own `Origin` to what the route already said.
    varied: dict[str, str] = {}
    for value in [*headers.get("vary", "").split(","), *VARY]:
        if value.strip():
            varied.setdefault(value.strip().lower(), value.strip())
    headers["Vary"] = ", ".join(varied.values())


class SecureRoute(APIRoute):
    """An APIRoute whose answers carry the gateway's headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            # Before the handler: the operation line and every other record read it.
            token = current_request_id.set(request_id(request.scope))
            try:
                response = await handler(request)
            finally:
                current_request_id.reset(token)
            secure(response.headers, request.scope)
            return response

        return secured


class SecurityHeaders:
    """ASGI middleware: the gateway's headers on every HTTP answer of an app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                secure(MutableHeaders(scope=message), scope)
            await send(message)

        await self.app(scope, receive, send_secured)
