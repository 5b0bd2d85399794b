"""The /graphql HTTP endpoint: Strawberry's router, hardened, speaking GraphQL over HTTP.

- A body above `max_bytes` is refused with 413 before it is read whole: a declared
  Content-Length is checked up front, a chunked body is counted as it streams in.
- A body that is not JSON, not a JSON object (nor an array of them: a batch), nested too
  deep, or whose `query`, `variables`, `operationName` or `extensions` have the wrong
  type is refused with 400; a POST that is not `application/json` with 415; a mutation
  over GET with 405 (`Allow: POST`); an `Accept` header naming neither response type with
  406.
- Every refusal is a GraphQL-shaped JSON body with `extensions.code`, never plain text.
- The response media type follows the GraphQL over HTTP draft: `Accept` picks
  `application/graphql-response+json` or `application/json` by q-value (the former on a
  tie between the two named explicitly, the latter for `*/*`); no `Accept` at all is read
  as `application/graphql-response+json`, as the draft says since its 2025 watershed.
  With `application/graphql-response+json` a request error (parse, validation, variable
  coercion, a document refused before it ran) has no `data` and status 400; with
  `application/json` every GraphQL response is 200, as legacy clients expect. Execution
  errors keep 200 and the partial data under both.

The limit lives in the router rather than in an app middleware so that it also holds
when a host app mounts the gateway with `create_router`.

Persisted documents (`gateway.persisted`) are resolved, and batches (`gateway.batch`) run,
on the way from the parsed request to execution.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from functools import partial
from typing import Any, overload

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import Request, Response, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.routing import APIWebSocketRoute
from graphql import GraphQLError
from starlette.status import WS_1008_POLICY_VIOLATION
from starlette.types import Message
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from gateway import batch, graphiql
from gateway.auth import refusal_response
from gateway.clients import Client
from gateway.errors import SubscriptionsOff
from gateway.limiter import ANONYMOUS, Share, sharing
from gateway.persisted import (
    PersistedDocuments,
    PersistedQueryError,
    document_ids,
    with_document_id,
)
from gateway.websocket import BoundedWebSocketAdapter, GatewayTransportWS, Subscriptions

# Deeper JSON than any real query needs; bounds the recursion of everything that walks
# the variables afterwards (recursive filter inputs, error formatting).
MAX_JSON_DEPTH = 64

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON_MEDIA = "application/json"

_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}

# The response media type negotiated for the request being handled (one task per request).
_media: ContextVar[str] = ContextVar("graphql_response_media", default=JSON_MEDIA)


def content_type(media: str) -> str:
    return f"{media}; charset=utf-8"


def error_response(
    status: int,
    message: str,
    *,
    media: str = JSON_MEDIA,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    """A request-level refusal in the GraphQL error shape (`code`: by `status` if not given)."""
    code = code or _CODES.get(status, "BAD_REQUEST")
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=dict(headers or {}),
        media_type=content_type(media),
    )


class MethodNotAllowed(HTTPException):
    """405, naming the methods that would do (`Allow`)."""

    def __init__(self, reason: str, allow: str) -> None:
        super().__init__(405, reason)
        self.allow = allow


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header; None when it allows neither.

    Each type takes the q-value of the most specific range naming it (RFC 9110). The
    higher q wins; on a tie a type named outright beats one matched by a wildcard, and
    between two named outright `application/graphql-response+json` wins; a wildcard alone
    gives `application/json`, which every client of the last decade reads.
    """
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE_JSON
    best: dict[str, tuple[int, float]] = {}  # media -> (specificity, q)
    for item in accept.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        name = name.lower()
        for media in (GRAPHQL_RESPONSE_JSON, JSON_MEDIA):
            specificity = {media: 2, "application/*": 1, "*/*": 0}.get(name)
            if specificity is not None and specificity >= best.get(media, (-1, 0.0))[0]:
                best[media] = (specificity, quality)

    def rank(media: str) -> tuple[float, int, bool]:
        specificity, quality = best[media]
        return quality, specificity, (media == GRAPHQL_RESPONSE_JSON) == (specificity == 2)

    candidates = [media for media in best if best[media][1] > 0]
    return max(candidates, key=rank) if candidates else None


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


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the document was refused before it ran: no data, and no error has a field
    path (parse, validation and variable errors, limits checked up front)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


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
    """GraphQLRouter with a body-size limit, GraphQL over HTTP media types and status
    codes, GraphQL-shaped HTTP errors, GraphiQL served from the package (the page and,
    under `static/`, its assets) when the IDE is on, and with `subscriptions` the
    graphql-transport-ws and multipart subscription transports (`gateway.websocket`)."""

    graphql_transport_ws_handler_class = GatewayTransportWS
    websocket_adapter_class = BoundedWebSocketAdapter

    def __init__(
        self,
        *args: Any,
        max_bytes: int,
        ide_query: str = graphiql.default_query(None),
        ide_headers: str = "",
        persisted: PersistedDocuments | None = None,
        subscriptions: Subscriptions | None = None,
        **kwargs: Any,
    ) -> None:
        # Without subscriptions: no WebSocket protocol, and no WebSocket route, so an upgrade
        # is refused before anything runs.
        kwargs["subscription_protocols"] = (
            ()
            if subscriptions is None
            else (GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL)
        )
        super().__init__(*args, **kwargs)
        self.subscriptions = subscriptions
        if subscriptions is None:
            self.routes[:] = [r for r in self.routes if not isinstance(r, APIWebSocketRoute)]
        self.max_bytes = max_bytes
        self.ide_query = ide_query
        self.ide_headers = ide_headers
        self.persisted = persisted or PersistedDocuments()
        if self.graphql_ide == "graphiql":
            self.add_api_route(
                "/static/{name}", self.graphiql_asset, methods=["GET"], include_in_schema=False
            )

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        # Only asked for another origin than the gateway's own, named in an `Origin` header.
        return self.subscriptions is not None and self.subscriptions.origin_allowed(origin)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming a persisted document is an operation, whatever its Accept says.
        params = request.query_params
        return super().should_render_graphql_ide(request) and not (
            params.get("extensions") or params.get("documentId")
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        if self.graphql_ide != "graphiql":
            return await super().render_graphql_ide(request)
        page = graphiql.render(
            request.url.path,
            self.ide_query,
            self.ide_headers,
            subscriptions=self.subscriptions is not None,
        )
        return HTMLResponse(
            page, headers={"Content-Security-Policy": graphiql.content_security_policy(page)}
        )

    async def graphiql_asset(self, name: str) -> Response:
        if name not in graphiql.asset_files():
            return error_response(404, "No such GraphiQL asset.")
        path = graphiql.ASSETS / name
        return FileResponse(
            path,
            media_type=graphiql.MEDIA_TYPES[path.suffix],
            headers={"Cache-Control": graphiql.IMMUTABLE},
        )

    @overload
    async def run(
        self, request: Request, context: Any = UNSET, root_value: None = UNSET
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Any = UNSET, root_value: None = UNSET
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: Any = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        # Every upstream request of this operation counts against its client's share of the
        # provider's budget (an open gateway has one anonymous client).
        client: Client | None = getattr(context, "client", None)
        with sharing(Share(client.name, client.weight) if client else ANONYMOUS):
            return await self._run(request, context, root_value)

    async def _run(
        self, request: Request | WebSocket, context: Any, root_value: Any
    ) -> Response | WebSocket:
        refused = getattr(context, "refused", None)
        if not isinstance(request, Request):
            if self.subscriptions is None:
                await request.close(code=WS_1008_POLICY_VIOLATION)  # unreachable: no route
                return request
            return await super().run(request, context, root_value)
        # GraphiQL's page stays open: the queries it sends do not.
        if refused is not None and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            return refusal_response(refused)
        accept = request.headers.get("accept")
        media = negotiate(accept)
        if media is None and "multipart/mixed" in (accept or "").lower():
            media = JSON_MEDIA  # a multipart subscription's: its errors are JSON
        if media is None and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            return error_response(
                406,
                f"The Accept header allows neither {GRAPHQL_RESPONSE_JSON} nor {JSON_MEDIA}.",
            )
        media = media or JSON_MEDIA
        token = _media.set(media)
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
        except MethodNotAllowed as error:
            return error_response(405, error.reason, media=media, headers={"Allow": error.allow})
        except PersistedQueryError as error:
            return error_response(error.status, error.message, media=media, code=error.code)
        except HTTPException as error:
            return error_response(error.status_code, error.reason, media=media)
        finally:
            _media.reset(token)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST":
            media, _ = parse_content_type(request.content_type or "")
            if media != JSON_MEDIA:
                raise HTTPException(
                    415, f"Send the request as {JSON_MEDIA} (got {request.content_type!r})."
                )
        data = await super().parse_http_body(request)
        items = data if isinstance(data, list) else [data]
        if any(item.query is None for item in items):  # it may name a persisted document
            items = list(map(with_document_id, items, await document_ids(request)))
            data = items if isinstance(data, list) else items[0]
        if isinstance(data, GraphQLRequestData):
            if not isinstance(data.operation_name, (str, type(None))):
                raise HTTPException(
                    400, "The GraphQL operation's `operationName` must be a string or null."
                )
            # The draft: an empty operationName is the same as none.
            data.operation_name = data.operation_name or None
        return data

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Any,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        client: Client | None = getattr(context, "client", None)
        resolve = partial(self.persisted.resolve, client=client)
        if isinstance(request_data, list):
            execute = partial(
                self._execute, request, request_adapter, root=root_value, sub=sub_response
            )
            return await batch.run_batch(request_data, context, resolve, execute)
        register = await resolve(request_data)
        return await self._execute(
            request, request_adapter, request_data, context, register, root_value, sub_response
        )

    async def _execute(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData,
        context: Any,
        register: str | None,
        root: None,
        sub: Response,
    ) -> ExecutionResult | SubscriptionExecutionResult:
        """One operation, its text kept for APQ (`register`) once it ran without a request
        error."""
        try:
            result = await super().execute_operation(
                request, request_adapter, request_data, context, root, sub
            )
        except HTTPException as error:
            cause = error.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type is OperationType.SUBSCRIPTION
            ):
                # Over plain HTTP (or with subscriptions off): say how it would be served.
                return ExecutionResult(data=None, errors=[self._not_streamed()])
            if isinstance(error.__cause__, CannotGetOperationTypeError):
                # A request error of a well-formed request (GraphQL's GetOperation()): a
                # GraphQL response, 200 as application/json, 400 as graphql-response+json.
                code = {"code": "OPERATION_RESOLUTION_FAILURE"}
                return ExecutionResult(
                    data=None, errors=[GraphQLError(error.reason, extensions=code)]
                )
            if isinstance(error.__cause__, InvalidOperationTypeError):
                raise MethodNotAllowed(
                    f"{error.reason}: send them with POST.",
                    "POST" if request_adapter.method == "GET" else "GET, POST",
                ) from error
            raise
        assert not isinstance(result, list)  # one request's data gives one result
        refused = isinstance(result, ExecutionResult) and is_request_error(result)
        if register is not None and request_data.query is not None and not refused:
            await self.persisted.register(register, request_data.query)
        return result

    def _not_streamed(self) -> GraphQLError:
        if self.subscriptions is None:
            off = SubscriptionsOff(
                "this gateway serves no subscriptions (its `subscriptions` setting is off)."
            )
            return GraphQLError(off.message, extensions=off.extensions)
        return GraphQLError(
            "a subscription streams its events: send it over a WebSocket (graphql-transport-ws) "
            'to this URL, or with `Accept: multipart/mixed;subscriptionSpec="1.0"`.',
            extensions={"code": "BAD_REQUEST"},
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if _media.get() == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            # The GraphQL spec: no `data` entry when the operation never ran.
            response.pop("data", None)
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media = _media.get()
        response.headers["content-type"] = content_type(media)
        if isinstance(response_data, dict) and "data" not in response_data:
            errors = response_data.get("errors") or []
            codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)}
            response.status_code = 500 if codes == {"INTERNAL_SERVER_ERROR"} else 400
        return response

    def decode_json(self, data: str | bytes) -> object:
        if not data.strip():
            raise HTTPException(400, "The request body is empty: send a JSON object.")
        try:
            value = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "The request body nests too deeply.") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "The request body is not valid JSON.") from None
        if too_deep(value):
            raise HTTPException(
                400, f"The request body nests more than {MAX_JSON_DEPTH} levels deep."
            )
        if isinstance(value, list):
            batching = self.schema.config.batching_config
            batch.check_batch(value, batching["max_operations"] if batching else 0)
        elif not isinstance(value, dict):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value
