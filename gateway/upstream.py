"""The HTTP client each data source talks through: a stack of layers over one provider
instance's `httpx.AsyncClient`, built in one place, `build_upstream`.

From the top, each layer handing the call (`gateway.calls.Call`) to the one below:

    ResponseCache  cached reads; a write clears every cached read   (gateway.responses)
    Sendable       a request httpx cannot build is refused, unsent  (gateway.wire)
    Retry          the deadline; retries, backoff, a 429's one wait (gateway.retry)
    Answers        an error status becomes its UpstreamError        (gateway.answers)
    Breaker        nothing is sent while the circuit is open        (gateway.breaker)
    Throttle       a slot in the rate limiter and the shared budget (gateway.throttle)
    Wire           the request on the wire, its span and metrics    (gateway.wire)

Retries sit above the breaker and the throttle: every try passes the breaker and takes a
slot of its own. Every failure leaves as an `UpstreamError` carrying the provider name and
status; nothing here ever puts a credential or a full URL (which may hold a `client_id`)
into a message. The client is opened in the app's lifespan, one per provider instance.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.answers import Answers, ErrorMessage
from gateway.blocks import BlockCache
from gateway.breaker import Breaker, CircuitBreaker, CircuitState
from gateway.cache import ReadCache
from gateway.calls import Call, Clock, Layer, Sleep
from gateway.errors import UpstreamBadResponse, UpstreamError
from gateway.limiter import RateLimiter, Window
from gateway.provider_settings import ProviderSettings
from gateway.responses import STALE_ON as STALE_ON  # the data sources' read caches use it
from gateway.responses import Gate, ResponseCache, polling, uncached
from gateway.retry import Retry, RetryBudget, RetryPolicy
from gateway.shared import RedisState, SharedCache
from gateway.shared_budget import SharedBudget
from gateway.throttle import RateLimitState, Throttle
from gateway.wire import Sendable, Wire


@dataclass(frozen=True)
class ClientAuth:
    """How a provider wants its credentials: headers and/or query parameters."""

    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


def open_client(
    settings: ProviderSettings,
    auth: ClientAuth,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The long-lived client for one provider instance (`transport`: unit tests' mock)."""
    return httpx.AsyncClient(
        transport=transport,
        base_url=settings.base_url,
        headers={"Accept": "application/json", **auth.headers},
        params=dict(auth.params),
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        follow_redirects=False,
    )


@dataclass(frozen=True, eq=False)
class Upstream:
    """One provider instance's upstream as its data source sees it: `request` enters the
    stack at its top. The other fields are the stack's client and state, for the app to
    report (the breaker, the caches' counts) and for tests to look at."""

    provider: str
    top: Layer
    client: httpx.AsyncClient
    breaker: CircuitBreaker
    limiter: RateLimiter
    budget: RetryBudget
    rate_limit: RateLimitState
    shared_budget: SharedBudget | None = None
    # The response cache, and the caches of what was parsed from responses.
    cache: ReadCache[httpx.Response] | None = None
    derived: tuple[BlockCache | ReadCache[Any], ...] = ()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        ok_statuses: tuple[int, ...] = (),
        idempotent: bool | None = None,
        cached: bool = True,
    ) -> httpx.Response:
        """The response, or an UpstreamError (statuses in `ok_statuses` pass through).

        `cached=False`: an idempotent read that must see the provider's current state.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "OPTIONS")
        call = Call(method, path, params, json_body, ok_statuses, idempotent, cached)
        return await self.top.send(call)

    async def forget(self) -> None:
        """The provider's data changed outside the gateway: forget every cached read of this
        instance, on every replica."""
        if isinstance(self.top, ResponseCache):
            await self.top.forget()

    @staticmethod
    def uncached(skip: bool = True) -> AbstractContextManager[None]:
        """Reads inside skip the response cache (`gateway.responses.uncached`)."""
        return uncached(skip)

    @staticmethod
    def polling(gate: Gate) -> AbstractContextManager[None]:
        """Reads inside wait for `gate` and never touch the cache (`gateway.responses.polling`)."""
        return polling(gate)

    def json(self, response: httpx.Response) -> Any:
        """The body as JSON, or UpstreamBadResponse."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self.bad_response("the body is not valid JSON", response) from None

    def bad_response(self, what: str, response: httpx.Response | None = None) -> UpstreamError:
        status = response.status_code if response is not None else None
        return UpstreamBadResponse(
            f"{self.provider} sent an unusable response: {what}.",
            provider=self.provider,
            status=status,
        )


@dataclass(frozen=True)
class Replicas:
    """The Redis the gateway's replicas share, as one tenant (API and credentials) uses it
    for its rate budget. While Redis is away each replica keeps to 1/`hint` of every window.
    `clock`: the budget's Unix time (tests); None: Redis's own clock."""

    redis: RedisState
    tenant: str
    hint: int = 2
    clock: Callable[[], float] | None = None


def build_upstream(
    settings: ProviderSettings,
    client: httpx.AsyncClient,
    error_message: ErrorMessage,
    *,
    windows: tuple[Window, ...] = (),
    responses: ReadCache[httpx.Response] | None = None,
    derived: Sequence[BlockCache | ReadCache[Any]] = (),
    shared: SharedCache | None = None,
    replicas: Replicas | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> Upstream:
    """The upstream of one provider instance, its layers made from `settings`.

    `windows`: the kind's documented rate limits (the settings' `rate_limits` replace them);
    `responses`: the response cache (None: reads are not cached); `derived`: the caches of
    what was parsed from responses, which a write clears too; `shared`: the replicas' caches
    in Redis, which a write tells; `replicas`: the budget the replicas share in Redis.
    `clock` and `sleep` (monotonic time, and waiting) are parameters for tests.
    """
    name = settings.name
    limiter = _limiter(settings, windows, replicas, clock, sleep)
    shared_budget = _shared_budget(replicas, limiter)
    breaker = CircuitBreaker(
        failure_ratio=settings.breaker_failure_ratio,
        min_requests=settings.breaker_min_requests,
        window=settings.breaker_window,
        cooldown=settings.breaker_cooldown,
        clock=clock,
    )
    budget, rate_limit = RetryBudget(), RateLimitState()
    layer: Layer = Wire(client, provider=name, clock=clock)
    layer = Throttle(layer, limiter, provider=name, shared=shared_budget, state=rate_limit)
    layer = Breaker(layer, breaker, provider=name)
    layer = Answers(layer, provider=name, error_message=error_message)
    layer = Retry(
        layer,
        policy=RetryPolicy(max_retries=settings.max_retries),
        budget=budget,
        deadline=settings.request_deadline,
        pause_until=limiter.pause_until,
        circuit_closed=lambda: breaker.state is CircuitState.CLOSED,
        clock=clock,
        sleep=sleep,
    )
    layer = Sendable(layer, client, provider=name)
    layer = ResponseCache(layer, responses, derived=derived, shared=shared)
    return Upstream(
        provider=name,
        top=layer,
        client=client,
        breaker=breaker,
        limiter=limiter,
        budget=budget,
        rate_limit=rate_limit,
        shared_budget=shared_budget,
        cache=responses,
        derived=tuple(derived),
    )


def _limiter(
    settings: ProviderSettings,
    windows: tuple[Window, ...],
    replicas: Replicas | None,
    clock: Clock,
    sleep: Sleep,
) -> RateLimiter:
    if settings.rate_limits is not None:
        windows = tuple(Window(int(n), float(s)) for n, s in settings.rate_limits)

    def sharing() -> int:
        """How many replicas spend the windows unseen: all of them while Redis is away."""
        if replicas is None or replicas.redis.up:
            return 1
        return replicas.hint

    return RateLimiter(
        windows,
        enabled=settings.rate_limit,
        reserve=settings.reserve,
        replicas=sharing,
        clock=clock,
        sleep=sleep,
    )


def _shared_budget(replicas: Replicas | None, limiter: RateLimiter) -> SharedBudget | None:
    """The windows `limiter` keeps, held in the replicas' Redis (none to hold: no budget)."""
    if replicas is None or not limiter.enabled:
        return None
    spans = tuple((w.requests, w.span) for w in limiter.full)
    return SharedBudget(
        replicas.redis, replicas.tenant, spans, cap=limiter.cap, clock=replicas.clock
    )
