"""The FastAPI app: GraphQL at /graphql, health endpoints, lifespan.

`create_app(settings)` for a service; `create_router(settings)` for a backend
team that mounts the gateway inside its own FastAPI app (`include_router`
runs the router's lifespan with the host app's).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from gateway import logredact
from gateway.datasources import DataSource, source_class
from gateway.endpoint import GatewayGraphQLRouter
from gateway.pagination import CursorCodec, PageLimits
from gateway.settings import Settings
from gateway.upstream import open_client
from resolvers.context import Context, Gateway
from schema import build_schema
from schema.bounds import input_limits

log = logging.getLogger("gateway")

# One line per upstream request at INFO is noise; credentials in URLs are redacted anyway.
for noisy in ("httpx", "httpcore"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


def _check_credentials(settings: Settings) -> None:
    """Fail at start-up, naming the key, when a provider lacks a credential."""
    for provider in settings.providers:
        source_class(provider.kind).client_auth(provider)


def create_router(settings: Settings) -> APIRouter:
    """The gateway's routes, with a lifespan that opens and closes the provider clients."""
    _check_credentials(settings)
    logredact.install()
    secret = settings.cursor_secret
    gateway = Gateway(
        sources={},
        codec=CursorCodec(
            secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
        ),
        limits=PageLimits(default_size=settings.default_page_size, max_size=settings.max_page_size),
        batching=settings.batching,
        input_limits=input_limits(settings),
        operation_deadline=settings.operation_deadline,
    )

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            sources: dict[str, DataSource] = {}
            for provider in settings.providers:
                cls = source_class(provider.kind)
                client = await stack.enter_async_context(
                    open_client(provider, cls.client_auth(provider))
                )
                sources[provider.name] = cls(
                    provider, client, cache=settings.cache, blocks=settings.blocks
                )
            gateway.sources = sources
            log.info("gateway ready with providers: %s", ", ".join(sources) or "none")
            yield
            gateway.sources = {}

    async def context() -> Context:
        return Context(gateway)

    schema = build_schema(
        introspection=settings.introspection, field_suggestions=settings.field_suggestions
    )
    graphql = GatewayGraphQLRouter(
        schema,
        context_getter=context,
        graphql_ide="graphiql" if settings.graphiql else None,
        multipart_uploads_enabled=False,
        max_bytes=settings.max_request_size,
    )
    router = APIRouter(lifespan=lifespan)
    router.include_router(graphql, prefix="/graphql")

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        # Ready while the clients are open and some provider is not known to be down: one
        # failing CRM leaves the others' data worth serving.
        circuits = {name: s.upstream.breaker.state.value for name, s in gateway.sources.items()}
        ready = bool(circuits) and any(state != "OPEN" for state in circuits.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "providers": circuits},
            status_code=200 if ready else 503,
        )

    return router


def create_app(settings: Settings) -> FastAPI:
    """The gateway as a standalone app."""
    logging.basicConfig(level=settings.log_level)
    openapi = settings.openapi
    app = FastAPI(
        title="CRM GraphQL gateway",
        openapi_url="/openapi.json" if openapi else None,
        docs_url="/docs" if openapi else None,
        redoc_url="/redoc" if openapi else None,
    )
    app.include_router(create_router(settings))
    return app
