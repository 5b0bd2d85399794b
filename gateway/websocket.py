"""GraphQL over WebSocket (graphql-transport-ws): Strawberry's own protocol handler, with
each operation authenticated on its own and given a context of its own.

A connection's credentials are the `X-API-Key` or `Authorization` of its `connection_init`
payload (what GraphiQL sends from its headers editor, and what a browser, which cannot set
a WebSocket's headers, can send), else those of the upgrade request. They are checked at
`connection_init`, which is refused with close code 4403 when they are not valid, and again
for every operation, as an HTTP request is: each gets a fresh context, its client's
providers, its own deadline and its own share of the budgets, never the connection's.

A message larger than `max_request_size` closes the connection (1009), as a body that
large is refused over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from starlette.status import WS_1009_MESSAGE_TOO_BIG
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http import GraphQLRequestData
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
)
from strawberry.utils.aio import aclosing

from gateway.errors import GatewayError
from gateway.limiter import ANONYMOUS, Share, sharing

# Where a connection's credentials are looked for, by lowercase name.
CREDENTIALS = ("x-api-key", "authorization")


@dataclass(frozen=True)
class Subscriptions:
    """What the GraphQL router needs to serve subscriptions.

    `contexts(connection, headers)`: a fresh operation context, authenticated with
    `headers` (its `refused` set when they are not valid). `origin_allowed(origin)`:
    whether a page of that (cross) origin may open a WebSocket.
    """

    contexts: Callable[[HTTPConnection, Mapping[str, str]], Awaitable[Any]]
    origin_allowed: Callable[[str], bool]


def credentials(payload: Mapping[str, object], headers: Mapping[str, str]) -> dict[str, str]:
    """The credentials a connection's operations present: the `connection_init` payload's
    (any case) when it has some, else the upgrade request's headers."""
    given = {
        key.lower(): value
        for key, value in payload.items()
        if key.lower() in CREDENTIALS and isinstance(value, str)
    }
    if given:
        return given
    return {name: headers[name] for name in CREDENTIALS if name in headers}


class GatewayTransportWS(BaseGraphQLTransportWSHandler[Any, None]):
    """Strawberry's graphql-transport-ws handler, authenticating each operation."""

    credentials: dict[str, str]

    @property
    def subscriptions(self) -> Subscriptions:
        found: Subscriptions = getattr(self.view, "subscriptions")  # noqa: B009
        return found

    @property
    def connection(self) -> HTTPConnection:
        request: HTTPConnection = self.context.request
        return request

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        if isinstance(payload, dict) and not self.connection_init_received:
            self.credentials = credentials(payload, self.connection.headers)
            context = await self.subscriptions.contexts(self.connection, self.credentials)
            refused: GatewayError | None = context.refused
            if refused is not None:
                await self.websocket.close(code=4403, reason=refused.message)
                return
        await super().handle_connection_init(message)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        """Strawberry's, with the operation's own context and its client's budget share."""
        context = await self.subscriptions.contexts(self.connection, self.credentials)
        refused = await self._refusal(operation, context)
        if refused is not None:
            error = GraphQLError(refused.message, extensions=refused.extensions)
            await operation.send_initial_errors([error])
            return
        client = context.client
        with sharing(Share(client.name, client.weight) if client else ANONYMOUS):
            await self._run(operation, context)

    async def _refusal(self, operation: Operation[Any, None], context: Any) -> GatewayError | None:
        """Why the operation may not run: its credentials, or a document the gateway does not
        run (`persisted_only`), as over HTTP."""
        refused: GatewayError | None = context.refused
        persisted = getattr(self.view, "persisted", None)
        if refused is None and persisted is not None:
            data = GraphQLRequestData(
                operation.query, operation.variables, operation.operation_name, None
            )
            try:
                await persisted.resolve(data, context.client)
            except GatewayError as error:
                refused = error
        return refused

    async def _run(self, operation: Operation[Any, None], context: Any) -> None:
        try:
            stream = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(stream):
                await self._send_result_stream(operation, stream)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return  # the handler closed the socket instead (a syntax error, say)
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise


class BoundedWebSocketAdapter(ASGIWebSocketAdapter):
    """Reads messages of at most the view's `max_bytes`, each a JSON object."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        limit: int = getattr(self.view, "max_bytes")  # noqa: B009
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > limit or len(text.encode()) > limit:
                    await self.close(
                        WS_1009_MESSAGE_TOO_BIG, f"messages are limited to {limit} bytes"
                    )
                    return
                try:
                    # The HTTP body's checks: JSON, an object, not nested too deep.
                    message = self.view.decode_json(text)
                except HTTPException:
                    if ignore_parsing_errors:
                        continue
                    raise NonJsonMessageReceived from None
                yield message
        except KeyError:
            raise NonTextMessageReceived from None
        except WebSocketDisconnect:
            return
