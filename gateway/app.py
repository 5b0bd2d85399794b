"""The FastAPI app: GraphQL at /graphql, health endpoints, lifespan, CORS.

`create_app(settings)` for a service, or for a host app to `mount` under a
prefix; `create_router(settings)` for a backend team that includes the
gateway's routes in its own FastAPI app (`include_router`). The provider
clients open in the lifespan, or on first use where no lifespan runs (a
mounted app's never does), and close when a lifespan ends.

CORS is an app's concern: `create_app` applies `cors_origins`; a host app
that includes the router calls `add_cors(app, settings)` (or keeps its own
CORSMiddleware), since two layers of CORS headers would conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import strawberry
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection

from gateway import graphiql, logredact
from gateway.auth import Authenticator, OperatorToken, refusal_response
from gateway.datasources import DataSource, source_class
from gateway.endpoint import GatewayGraphQLRouter, error_response
from gateway.errors import Forbidden, Unauthenticated
from gateway.headers import REQUEST_ID, SecureRoute, SecurityHeaders
from gateway.live import service as live
from gateway.live.hub import ChangeHub
from gateway.live.slots import SubscriptionSlots
from gateway.live.webhooks import Webhooks
from gateway.manifest import load_manifest
from gateway.metrics import Metrics
from gateway.pagination.connection import PageLimits
from gateway.pagination.cursors import CursorCodec
from gateway.persisted import PersistedDocuments
from gateway.probe import Probes
from gateway.query_store import QueryStore
from gateway.settings import Settings, warn_inline_secrets
from gateway.shared import RedisDown, RedisState
from gateway.upstream import open_client
from gateway.version import gateway_version
from gateway.websocket import Subscriptions
from resolvers.context import Context, Gateway
from schema import build_schema
from schema.bounds import input_limits

log = logging.getLogger("gateway")


def check_credentials(settings: Settings) -> None:
    """Fail at start-up, naming the key, when a provider lacks a credential."""
    for provider in settings.providers:
        source_class(provider.kind).client_auth(provider)


# A provider instance's name -> the transport its client sends through instead of the network:
# in-process tests reach the emulators' ASGI apps this way.
Transports = Mapping[str, httpx.AsyncBaseTransport]


class ProviderClients:
    """Opens every provider's HTTP client once, at start-up or on first use, and closes
    them when the lifespan ends."""

    def __init__(
        self,
        settings: Settings,
        gateway: Gateway,
        redis: RedisState | None = None,
        transports: Transports | None = None,
        probes: Probes | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.redis = redis
        self.transports = transports or {}
        self.probes = probes
        self._stack: AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None

    async def open(self) -> None:
        if self._stack is not None:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._stack is not None:
                return
            async with AsyncExitStack() as stack:
                sources: dict[str, DataSource] = {}
                for provider in self.settings.providers:
                    cls = source_class(provider.kind)
                    client = await stack.enter_async_context(
                        open_client(
                            provider,
                            cls.client_auth(provider),
                            transport=self.transports.get(provider.name),
                        )
                    )
                    sources[provider.name] = cls(
                        provider,
                        client,
                        cache=self.settings.cache,
                        blocks=self.settings.blocks,
                        redis=self.redis,
                        replicas_hint=self.settings.replicas_hint,
                    )
                self._stack = stack.pop_all()
            self.gateway.sources = sources
            log.info("gateway ready with providers: %s", ", ".join(sources) or "none")
            if self.probes is not None:
                self.probes.start(sources)

    async def close(self) -> None:
        if self.probes is not None:
            await self.probes.stop()
        stack, self._stack = self._stack, None
        self.gateway.sources = {}
        if stack is not None:
            await stack.aclose()
        if self.redis is not None:
            await self.redis.close()


def create_router(
    settings: Settings,
    *,
    transports: Transports | None = None,
    probe: bool = False,
    clock: Callable[[], float] | None = None,
) -> APIRouter:
    """The gateway's routes, with a lifespan that opens and closes the provider clients.

    `probe`: once the clients are open, send each provider one cheap authenticated request
    in the background (`gateway.probe`), and let `/readyz` say which are not usable.
    `clock`: POSIX time, which tokens' expiry is read against (tests move it)."""
    warn_inline_secrets(settings)
    check_credentials(settings)
    logredact.guard_httpx()
    gateway, redis = gateway_state(settings)
    if clock is not None:
        gateway.wall_clock = clock
    probes = Probes() if probe else None
    clients = ProviderClients(settings, gateway, redis, transports, probes)
    webhooks = Webhooks(settings, gateway, redis, ready=clients.open)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await clients.open()
        try:
            async with live.running(settings, gateway, redis, webhooks):
                yield
        finally:
            await clients.close()

    graphql = _graphql(settings, gateway, clients, redis)
    router = APIRouter(lifespan=lifespan, route_class=SecureRoute)
    router.include_router(graphql, prefix="/graphql")

    @router.api_route("/graphql", methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def other_methods() -> Response:
        return error_response(
            405, "GraphQL is served over GET and POST.", headers={"Allow": "GET, POST"}
        )

    operator = _add_metrics(router, gateway, settings)
    _add_health(router, gateway, clients, redis, operator)
    webhooks.route(router)  # signed by the providers: no client auth
    return router


def _add_metrics(router: APIRouter, gateway: Gateway, settings: Settings) -> OperatorToken:
    """`/metrics`, behind `metrics_token` when it is set; that token's check, for `/readyz`."""
    token = settings.metrics_token
    operator = OperatorToken(None if token is None else token.get_secret_value())

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        refused = operator.check(request.headers)
        if refused is not None:
            return refusal_response(refused)
        return await gateway.metrics.endpoint()

    return operator


def _graphql(
    settings: Settings, gateway: Gateway, clients: ProviderClients, redis: RedisState | None
) -> GatewayGraphQLRouter:
    """The /graphql routes: the schema, persisted documents, batches, GraphiQL and
    subscriptions as the settings say."""
    schema = build_schema(
        introspection=settings.introspection,
        field_suggestions=settings.field_suggestions,
        max_batch=settings.max_batch,
    )
    persisted = persisted_documents(settings, schema, redis)
    if persisted.manifest is not None:
        # Only the manifest's names become labels: clients cannot make up new ones.
        gateway.metrics.names = persisted.manifest.names
    contexts = _contexts(settings, gateway, clients)

    async def context(connection: HTTPConnection) -> Context:
        return await contexts(connection, connection.headers)

    return GatewayGraphQLRouter(
        schema,
        context_getter=context,
        graphql_ide="graphiql" if settings.graphiql else None,
        multipart_uploads_enabled=False,
        max_bytes=settings.max_request_size,
        ide_query=graphiql.default_query(next((p.name for p in settings.providers), None)),
        ide_headers=graphiql.default_headers(
            api_keys=any(c.method == "api_key" for c in settings.clients),
            jwt=settings.auth.jwt is not None,
        ),
        route_class=SecureRoute,
        persisted=persisted,
        subscriptions=(
            Subscriptions(contexts, origin_allowed(settings.cors_origins))
            if settings.subscriptions
            else None
        ),
    )


def persisted_documents(
    settings: Settings, schema: strawberry.Schema, redis: RedisState | None
) -> PersistedDocuments:
    """The trusted documents (read and checked against `schema` now: a bad file stops
    start-up) and the APQ store, as the settings say."""
    path = settings.persisted_documents
    manifest = None if path is None else load_manifest(path, schema._schema)
    store = None
    if settings.apq:
        store = QueryStore(
            max_entries=settings.apq_cache_size,
            max_bytes=settings.apq_cache_bytes,
            max_document=settings.max_request_size,
            redis=redis,
        )
    # On an open gateway GraphiQL's requests cannot be told from anyone's: all may send any.
    open_ad_hoc = settings.graphiql and not settings.auth_required
    if settings.persisted_only and open_ad_hoc:
        log.warning(
            "persisted_only with graphiql on and no [[clients]] or [auth.jwt]: every request "
            "may send any document (give GraphiQL's users a client with the ad_hoc scope)"
        )
    return PersistedDocuments(
        manifest=manifest,
        store=store,
        persisted_only=settings.persisted_only,
        open_ad_hoc=open_ad_hoc,
    )


def gateway_state(settings: Settings) -> tuple[Gateway, RedisState | None]:
    """The state every request shares, and Redis when replicas share one."""
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
        max_operation_cost=settings.max_operation_cost,
        merge_whole_max=settings.merge_whole_max,
        # Read at scrape time: the sources exist once the lifespan has opened them.
        metrics=Metrics(lambda: {name: s.upstream for name, s in gateway.sources.items()}),
    )

    async def forget(provider: str) -> None:
        source = gateway.sources.get(provider)
        if source is not None:
            await source.upstream.forget()

    gateway.changes = ChangeHub(forget)
    gateway.subscriptions = SubscriptionSlots(settings.max_subscriptions_per_client)
    gateway.metrics.subscriptions_open = lambda: gateway.subscriptions.total
    if settings.redis_url is None or secret is None:  # the settings require both together
        return gateway, None
    redis = RedisState(
        settings.redis_url.get_secret_value(),
        secret.get_secret_value().encode(),
        timeout=settings.redis_timeout,
    )
    gateway.metrics.redis_up = lambda: redis.reachable
    return gateway, redis


def _contexts(
    settings: Settings, gateway: Gateway, clients: ProviderClients
) -> Callable[[HTTPConnection, Mapping[str, str]], Awaitable[Context]]:
    """An operation's context, for the client that `headers` authenticate."""
    authenticator = Authenticator(settings) if settings.auth_required else None

    async def context(connection: HTTPConnection, headers: Mapping[str, str]) -> Context:
        await clients.open()
        if authenticator is None:
            made = Context(gateway)
        else:
            try:
                made = Context(gateway, await authenticator.authenticate(headers))
            except (Unauthenticated, Forbidden) as refused:
                # The endpoint answers it before anything is parsed or executed.
                made = Context(gateway, refused=refused)
        if isinstance(connection, Request | WebSocket):
            made.request = connection
        return made

    return context


def _add_health(
    router: APIRouter,
    gateway: Gateway,
    clients: ProviderClients,
    redis: RedisState | None,
    operator: OperatorToken,
) -> None:
    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": gateway_version()}

    @router.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        await clients.open()
        # Ready while the clients are open and some provider is not known to be down or to
        # refuse the credentials: one failing CRM leaves the others' data worth serving.
        circuits = {name: s.upstream.breaker.state.value for name, s in gateway.sources.items()}
        probed = clients.probes.results if clients.probes is not None else {}
        unusable = {n: r.problem or "not usable" for n, r in probed.items() if not r.usable}
        ready = any(state != "OPEN" and name not in unusable for name, state in circuits.items())
        status = 200 if ready else 503
        body: dict[str, Any] = {"status": "ready" if ready else "unavailable"}
        if operator.check(request.headers) is not None:
            # Orchestrators probe without the token: the status is theirs, the list is not.
            return JSONResponse(body, status_code=status)
        body["providers"] = circuits
        if unusable:
            body["unusable"] = unusable
        if redis is not None:
            # Without Redis each replica caches alone: slower and less fresh, still ready.
            with contextlib.suppress(RedisDown):
                await redis.run(lambda client: client.ping())
            body["redis"] = redis.status
        return JSONResponse(body, status_code=status)


def cors_origin_regex(origins: list[str]) -> str:
    """One regular expression for `cors_origins`: each origin exact, a `:*` port any port."""
    parts = []
    for origin in origins:
        base, star, _ = origin.partition(":*") if origin.endswith(":*") else (origin, "", "")
        parts.append(re.escape(base) + (r":[0-9]{1,5}" if star else ""))
    return "|".join(parts)


def origin_allowed(origins: list[str]) -> Callable[[str], bool]:
    """Whether a page of another origin may open a WebSocket: as `cors_origins` lets it
    call the gateway over HTTP."""
    if "*" in origins:
        return lambda _: True
    pattern = re.compile(cors_origin_regex(origins)) if origins else None
    return lambda origin: pattern is not None and pattern.fullmatch(origin) is not None


def add_cors(app: FastAPI, settings: Settings) -> None:
    """Let the browsers of `settings.cors_origins` call the gateway (nothing when empty)."""
    origins = settings.cors_origins
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if "*" in origins else [],
        allow_origin_regex=None if "*" in origins else cors_origin_regex(origins),
        allow_methods=["GET", "POST"],
        allow_headers=settings.cors_allow_headers,
        allow_credentials=settings.cors_allow_credentials,
        # Unlisted response headers are hidden from a page's script: these two let a frontend
        # show where the time went and quote the id of a failed request.
        expose_headers=["Server-Timing", REQUEST_ID],
        max_age=600,
    )


def create_app(
    settings: Settings,
    *,
    transports: Transports | None = None,
    probe: bool = False,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """The gateway as a standalone app (`transports`: see `Transports`; `probe` and `clock`:
    see `create_router`)."""
    openapi = settings.openapi
    app = FastAPI(
        title="CRM GraphQL gateway",
        openapi_url="/openapi.json" if openapi else None,
        docs_url="/docs" if openapi else None,
        redoc_url="/redoc" if openapi else None,
    )
    app.include_router(create_router(settings, transports=transports, probe=probe, clock=clock))
    add_cors(app, settings)
    # Outermost, so that CORS answers (preflights) carry them too.
    app.add_middleware(SecurityHeaders)

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        # The full path, so that the redirect also holds under a mount prefix.
        return RedirectResponse(request.url.path.rstrip("/") + "/graphql")

    return app
