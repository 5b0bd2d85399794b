"""The HTTP client each data source talks through: timeouts and error normalisation.

One `httpx.AsyncClient` per provider instance, opened in the app's lifespan.
Every failure leaves here as an `UpstreamError` carrying the provider name and
status; nothing here ever puts a credential or a full URL (which may hold a
`client_id`) into a message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway import metrics
from gateway.blocks import BlockCache
from gateway.cache import ReadCache
from gateway.errors import (
    CircuitOpen,
    ClientRateLimited,
    NoRateLimitSlot,
    RequestNotSendable,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotSent,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    upstream_error_for_status,
)
from gateway.resilience import (
    CircuitBreaker,
    CircuitState,
    Clock,
    RateLimiter,
    Refused,
    RetryBudget,
    RetryPolicy,
    Sleep,
    Slot,
    Window,
)
from gateway.settings import ProviderSettings
from gateway.shared import RedisDown, SharedBudget, SharedCache


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


ErrorMessage = Callable[[Any], str | None]


@dataclass(frozen=True)
class Call:
    """One request as the data source asked for it: what every try sends again."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json_body: Any = None
    ok_statuses: tuple[int, ...] = ()  # statuses >= 400 handed back, not raised


def portable(response: httpx.Response) -> httpx.Response:
    """The response as it may be stored in Redis: status, headers and body, and a request
    without its headers and query, where credentials travel."""
    request = httpx.Request(response.request.method, response.request.url.copy_with(query=None))
    # The body is already decoded: its encoding no longer applies.
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=response.content, request=request
    )


# After these a cached read past its TTL (within `stale_ttl`) beats an error: the provider's
# budget is spent (no limiter slot before the deadline, or a 429 after the one wait).
STALE_ON: tuple[type[Exception], ...] = (UpstreamRateLimited,)
# Set inside `Upstream.uncached()`: per task, so concurrent reads elsewhere keep the cache.
_uncached: ContextVar[bool] = ContextVar("uncached", default=False)

# Above this a number is milliseconds since the epoch (Redivis), not seconds.
_EPOCH_MILLIS = 10**10
# Above this (and below the millisecond range) a number is Unix seconds, not a delay.
_EPOCH_SECONDS = 10**9


def seconds_until(value: str | None, now: float | None = None) -> float | None:
    """How long a `Retry-After` or `X-RateLimit-Reset` value says to wait, in seconds.

    Providers say it three ways: delay seconds (`120`), an HTTP date (Attio),
    or an instant as Unix seconds (hasteCRM's reset) or milliseconds (Redivis).
    """
    if value is None or not value.strip():
        return None
    now = time.time() if now is None else now
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(text).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            return None
    if number >= _EPOCH_MILLIS:
        return max(0.0, number / 1000 - now)
    if number >= _EPOCH_SECONDS:
        return max(0.0, number - now)
    return max(0.0, number)


@dataclass
class RateLimitState:
    """What the provider's last rate-limit headers said (none: unknown)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # Unix time

    def update(self, headers: httpx.Headers, now: float | None = None) -> None:
        now = time.time() if now is None else now
        limit, remaining = headers.get("X-RateLimit-Limit"), headers.get("X-RateLimit-Remaining")
        if limit and limit.strip().isdigit():
            self.limit = int(limit)
        if remaining and remaining.strip().isdigit():
            self.remaining = int(remaining)
        wait = seconds_until(headers.get("X-RateLimit-Reset"), now)
        if wait is not None:
            self.reset_at = now + wait


class Upstream:
    """Sends requests for one provider instance and turns failures into UpstreamErrors.

    Every request passes the circuit breaker and the rate limiter; idempotent
    ones are retried on timeouts, unreachable hosts and 5xx; any request is
    retried once after a 429 (the provider processed nothing), after waiting
    as its `Retry-After` says, when that fits in the deadline. A request the
    breaker or the limiter stopped (`UpstreamNotSent`) is never retried.
    `clock` and `sleep` (monotonic time, and waiting) are parameters for tests.
    """

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        error_message: ErrorMessage,
        *,
        settings: ProviderSettings | None = None,
        windows: tuple[Window, ...] = (),
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.clock = clock
        self.sleep = sleep
        self.client = client
        self._error_message = error_message
        self.rate_limit = RateLimitState()
        if settings is not None and settings.rate_limits is not None:
            windows = tuple(Window(int(n), float(s)) for n, s in settings.rate_limits)
        self.limiter = RateLimiter(
            windows,
            enabled=settings.rate_limit if settings else False,
            reserve=settings.reserve if settings else 0.0,
            clock=clock,
            sleep=sleep,
        )
        self.retry = RetryPolicy(max_retries=settings.max_retries if settings else 0)
        self.deadline = settings.request_deadline if settings else 30.0
        self.budget = RetryBudget()
        self.breaker = (
            CircuitBreaker(
                failure_ratio=settings.breaker_failure_ratio,
                min_requests=settings.breaker_min_requests,
                window=settings.breaker_window,
                cooldown=settings.breaker_cooldown,
                clock=clock,
            )
            if settings
            else CircuitBreaker(clock=clock)
        )
        self.cache: ReadCache[httpx.Response] | None = None
        # Caches of what was parsed from responses (list blocks, whole collections): every
        # write clears them with `cache`.
        self.derived: list[BlockCache | ReadCache[Any]] = []
        # The tenant's caches in Redis, when replicas share them: a write tells them all.
        self.shared: SharedCache | None = None
        # The provider's windows as every replica together spends them, when they share Redis.
        self.shared_budget: SharedBudget | None = None

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
        call = Call(method, path, params, json_body, ok_statuses)
        if idempotent and cached and self.cache is not None and not _uncached.get():
            key = (
                method,
                path,
                json.dumps(params, sort_keys=True, default=str),
                json.dumps(json_body, sort_keys=True, default=str),
            )

            async def read() -> httpx.Response:
                response = await self._send(call, True)
                return response if self.shared is None else portable(response)

            return await self.cache.get(key, read)
        try:
            return await self._send(call, idempotent)
        finally:
            if not idempotent:
                self.evict()  # a write (even one that seemed to fail) may change any read
                if self.shared is not None:
                    await self.shared.bump()  # and the other replicas' caches

    def evict(self) -> None:
        """Forget every cached read of this provider instance: responses, blocks, records."""
        if self.cache is not None:
            self.cache.clear()
        for derived in self.derived:
            derived.clear()

    @staticmethod
    @contextmanager
    def uncached(skip: bool = True) -> Iterator[None]:
        """Reads inside skip the response cache: their caller caches what it parsed (a block),
        and the same data twice would only take memory. `skip=False` undoes it inside."""
        token = _uncached.set(skip)
        try:
            yield
        finally:
            _uncached.reset(token)

    async def _send(self, call: Call, idempotent: bool) -> httpx.Response:
        self._check_sendable(call)
        deadline = self.clock() + self.deadline
        attempt, throttled_once = 0, False
        previous: UpstreamError | None = None
        while True:
            error = await self._attempt(call, deadline)
            if previous is None and not isinstance(error, UpstreamNotSent):
                self.budget.deposit()  # the budget grows with requests sent, not refused
            if isinstance(error, httpx.Response):
                return error
            if isinstance(error, UpstreamNotSent):
                # A retry that was never sent: the try before it says what happened (and
                # whether a write may have been applied).
                raise previous or error
            previous = error
            now = self.clock()
            if isinstance(error, UpstreamRateLimited):
                await self._pause_replicas(error.retry_after if error.retry_after else 1.0)
            if isinstance(error, UpstreamRateLimited) and not throttled_once:
                wait = error.retry_after if error.retry_after is not None else 1.0
                if now + wait < deadline:
                    throttled_once = True
                    self.limiter.pause_until(now + wait)
                    continue
            retryable = (
                idempotent
                and isinstance(error, UpstreamTimeout | UpstreamUnavailable)
                # This failure may have opened the circuit: a retry would only meet it.
                and self.breaker.state is CircuitState.CLOSED
            )
            if retryable and attempt < self.retry.max_retries:
                pause = self.retry.backoff(attempt)
                if now + pause < deadline and self.budget.withdraw():
                    attempt += 1
                    await self.sleep(pause)
                    continue
            raise error

    def _check_sendable(self, call: Call) -> None:
        """Refuse, before it spends a limiter slot, a request httpx cannot build (a URL past
        its length limit, from long filter values)."""
        try:
            self.client.build_request(call.method, call.path, params=call.params)
        except httpx.InvalidURL:
            raise RequestNotSendable(
                f"the request to {self.provider} would need a URL longer than HTTP clients "
                "allow; narrow the filter (fewer or shorter values).",
                provider=self.provider,
            ) from None

    async def _attempt(self, call: Call, deadline: float) -> httpx.Response | UpstreamError:
        """One try: the response, or the error it amounts to (not raised)."""
        if not self.breaker.allow():
            return CircuitOpen(
                f"{self.provider} is failing; its circuit breaker is open "
                f"(next try in {self.breaker.retry_in():.0f} s).",
                provider=self.provider,
            )
        queued = self.clock()
        slot = await self._slot(deadline)
        metrics.limiter_wait(self.provider, self.clock() - queued)
        if isinstance(slot, Refused):
            self.breaker.release()  # nothing was sent: a probe slot it took is free again
            if slot.by_share:
                return ClientRateLimited(
                    f"this client's share of {self.provider}'s rate limit leaves it no slot "
                    f"before the request deadline; retry in {slot.retry_after:.1f} s.",
                    provider=self.provider,
                    retry_after=slot.retry_after,
                )
            return NoRateLimitSlot(
                f"{self.provider}'s rate limit leaves no slot before the request deadline.",
                provider=self.provider,
            )
        try:
            outcome = await self._exchange(call, deadline)
        finally:
            self.limiter.done(slot)
        if isinstance(outcome, UpstreamError):
            return outcome
        response = outcome
        self.rate_limit.update(response.headers)
        await self._adapt(response)
        status = response.status_code
        if status >= 500 or status == 408:
            self.breaker.failure()
        elif status >= 400:
            self.breaker.answered()  # a client's mistake, or the limiter's business (429)
        else:
            self.breaker.success()
        if response.status_code >= 400 and response.status_code not in call.ok_statuses:
            return self._status_error(response)
        return response

    async def _exchange(self, call: Call, deadline: float) -> httpx.Response | UpstreamError:
        """The request on the wire: its response, or the transport failure it met (which
        the breaker counts)."""
        timeout = max(0.001, deadline - self.clock())
        try:
            with metrics.upstream_request(self.provider, call.method, call.path) as sent:
                response = await self.client.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.json_body,
                    headers=sent.headers,
                    timeout=httpx.Timeout(
                        min(timeout, self.client.timeout.read or timeout),
                        connect=min(timeout, self.client.timeout.connect or timeout),
                    ),
                )
                sent.status = response.status_code
        except httpx.TimeoutException as error:
            self.breaker.failure()
            return UpstreamTimeout(
                f"{self.provider} did not answer in time.",
                provider=self.provider,
                not_applied=isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout),
            )
        except httpx.TransportError as error:
            self.breaker.failure()
            return UpstreamUnavailable(
                f"{self.provider} is unreachable ({type(error).__name__}).",
                provider=self.provider,
                not_applied=isinstance(error, httpx.ConnectError),
            )
        except BaseException:
            self.breaker.release()  # cancelled (or a bug): the outcome is unknown
            raise
        return response

    async def _slot(self, deadline: float) -> Slot | Refused:
        """A slot in this process's limiter and, with replicas, in their common budget."""
        while True:
            slot = await self.limiter.take(deadline)
            if isinstance(slot, Refused):
                if self.shared_budget is not None:
                    await self.shared_budget.state.recover()
                return slot
            whole = self.limiter.replicas() == 1
            if refused := await self._shared_slot(deadline):
                self.limiter.cancel(slot)
                return refused
            if whole and self.limiter.replicas() > 1:
                # Granted on the whole budget, then Redis was found away: it must fit in this
                # replica's share instead.
                self.limiter.cancel(slot)
                if self.shared_budget is not None:
                    self.shared_budget.unsent()
                continue
            return slot

    async def _shared_slot(self, deadline: float) -> Refused | None:
        """None when the replicas together leave this request room before `deadline` (waiting
        for it, with the local slot held so this process's order stays as it was)."""
        if self.shared_budget is None or not self.limiter.enabled:
            return None
        while True:
            try:
                wait, by_share = await self.shared_budget.take()
            except RedisDown:
                return None  # from now on the limiter keeps to this replica's share
            self.limiter.elsewhere(self.shared_budget.others)
            if wait <= 0:
                return None
            if self.clock() + wait > deadline:
                return Refused(wait, by_share)
            await self.sleep(wait)

    async def _pause_replicas(self, seconds: float) -> None:
        """The provider said its budget is spent: every replica pauses, not only this one."""
        if self.shared_budget is not None and 0 < seconds < 3600:
            with suppress(RedisDown):
                await self.shared_budget.pause(seconds)

    async def _adapt(self, response: httpx.Response) -> None:
        """Pause when the provider's headers say its budget is spent until the reset."""
        state = self.rate_limit
        if state.remaining == 0 and state.reset_at is not None:
            wait = state.reset_at - time.time()
            if 0 < wait < 3600:
                self.limiter.pause_until(self.clock() + wait)
                await self._pause_replicas(wait)

    def _status_error(self, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        detail, body = None, None
        try:
            body = response.json()
            detail = self._error_message(body)
        except (ValueError, TypeError, KeyError, AttributeError):
            detail = None
        message = f"{self.provider} answered {status}" + (f": {detail}" if detail else ".")
        if status == 429:
            wait = seconds_until(response.headers.get("Retry-After"))
            if wait is not None:
                message += f" Retry after {wait:.1f} s."
            return UpstreamRateLimited(
                message, provider=self.provider, status=status, retry_after=wait, body=body
            )
        return upstream_error_for_status(status, message, provider=self.provider, body=body)

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
