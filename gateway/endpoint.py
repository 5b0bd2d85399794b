"""The /graphql HTTP endpoint: Strawberry's router, hardened against what a client sends.

- A body above `max_bytes` is refused with 413 before it is read whole: a declared
  Content-Length is checked up front, a chunked body is counted as it streams in.
- A body that is not JSON, not a JSON object, or nested too deep is refused with 400.
- Every refusal is a GraphQL-shaped JSON body with `extensions.code`, never plain text.

The limit lives in the router rather than in an app middleware so that it also holds
when a host app mounts the gateway with `create_router`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from cross_web import HTTPException
from fastapi import Request, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.status import WS_1008_POLICY_VIOLATION
from starlette.types import Message
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET

from gateway.auth import refusal_response

# Deeper JSON than any real query needs; bounds the recursion of everything that walks
# the variables afterwards (recursive filter inputs, error formatting).
MAX_JSON_DEPTH = 64

_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
}


def error_response(status: int, message: str) -> JSONResponse:
    """A request-level refusal in the GraphQL error shape."""
    code = _CODES.get(status, "BAD_REQUEST")
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status
    )


def too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON `value` nests lists and objects more than `limit` levels (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (list, dict)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"The request body is larger than {limit} bytes.")


def _limited(
    receive: Callable[[], Awaitable[Message]], limit: int
) -> Callable[[], Awaitable[Message]]:
    """`receive` that counts body bytes and refuses, without reading on, past `limit`."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return wrapped


class GatewayGraphQLRouter(GraphQLRouter[Any, None]):
    """GraphQLRouter with a body-size limit and GraphQL-shaped HTTP errors."""

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Any = UNSET,
        root_value: Any = UNSET,
    ) -> Response | WebSocket:
        refused = getattr(context, "refused", None)
        if not isinstance(request, Request):
            if refused is not None:
                await request.close(code=WS_1008_POLICY_VIOLATION)
                return request
            return await super().run(request, context, root_value)
        # GraphiQL's page (a GET without a query) stays open: the queries it sends do not.
        if refused is not None and (request.method != "GET" or "query" in request.query_params):
            return refusal_response(refused)
        try:
            declared = request.headers.get("content-length")
            if (
                declared is not None
                and declared.isascii()
                and declared.isdigit()
                and int(declared) > self.max_bytes
            ):
                raise _too_large(self.max_bytes)
            limited = Request(request.scope, _limited(request.receive, self.max_bytes))
            return await super().run(limited, context, root_value)
        except HTTPException as error:
            return error_response(error.status_code, error.reason)

    def decode_json(self, data: str | bytes) -> object:
        try:
            value = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "The request body nests too deeply.") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "The request body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise HTTPException(400, "The request body must be a JSON object.")
        if too_deep(value):
            raise HTTPException(
                400, f"The request body nests more than {MAX_JSON_DEPTH} levels deep."
            )
        return value
