"""The upstream's top layer: idempotent reads served from the response cache, and writes
that clear every cached read they may have changed, here and, through Redis, on every
replica."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

import httpx

from gateway.cache import ReadCache
from gateway.calls import Call, Layer
from gateway.errors import UpstreamRateLimited
from gateway.shared import SharedCache

# After these a cached read past its TTL (within `stale_ttl`) beats an error: the provider's
# budget is spent (no limiter slot before the deadline, or a 429 after the one wait).
STALE_ON: tuple[type[Exception], ...] = (UpstreamRateLimited,)
# Set inside `uncached()`: per task, so concurrent reads elsewhere keep the cache.
_uncached: ContextVar[bool] = ContextVar("uncached", default=False)
# Set inside `polling()`: what each of the task's calls waits for before it is sent.
Gate = Callable[[], Awaitable[None]]
_polling: ContextVar[Gate | None] = ContextVar("polling", default=None)


@contextmanager
def uncached(skip: bool = True) -> Iterator[None]:
    """Reads inside skip the response cache: their caller caches what it parsed (a block),
    and the same data twice would only take memory. `skip=False` undoes it inside."""
    token = _uncached.set(skip)
    try:
        yield
    finally:
        _uncached.reset(token)


@contextmanager
def polling(gate: Gate) -> Iterator[None]:
    """Calls inside are a poller's: each first waits for `gate` (its budget), and none is
    answered from the cache or kept in it, whatever an `uncached(False)` inside says: a
    poll must see the provider's current state, and its reads would only push out what
    clients read."""
    token = _polling.set(gate)
    try:
        yield
    finally:
        _polling.reset(token)


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


class Clearable(Protocol):
    """A cache of what was parsed from responses (list blocks, whole collections)."""

    def clear(self) -> None: ...


class ResponseCache:
    """The layer that serves idempotent, cached calls from `store` (None: nothing is
    cached) and, after any other call, clears `store` and `derived`, the caches of what
    was parsed from responses, and tells the replicas through `shared`."""

    def __init__(
        self,
        below: Layer,
        store: ReadCache[httpx.Response] | None = None,
        *,
        derived: Sequence[Clearable] = (),
        shared: SharedCache | None = None,
    ) -> None:
        self.below = below
        self.store = store
        self.derived = tuple(derived)
        self.shared = shared

    async def send(self, call: Call) -> httpx.Response:
        gate = _polling.get()
        if gate is not None and call.idempotent:
            await gate()
            return await self.below.send(call)
        if call.idempotent and call.cached and self.store is not None and not _uncached.get():
            key = (
                call.method,
                call.path,
                json.dumps(call.params, sort_keys=True, default=str),
                json.dumps(call.json_body, sort_keys=True, default=str),
            )
            return await self.store.get(key, lambda: self._read(call))
        try:
            return await self.below.send(call)
        finally:
            if not call.idempotent:
                await self.forget()  # a write (even one that seemed to fail) may change any read

    async def _read(self, call: Call) -> httpx.Response:
        response = await self.below.send(call)
        return response if self.shared is None else portable(response)

    async def forget(self) -> None:
        """Forget every cached read here, and tell the other replicas' caches."""
        self.evict()
        if self.shared is not None:
            await self.shared.bump()

    def evict(self) -> None:
        """Forget every cached read of this provider instance: responses, blocks, records."""
        if self.store is not None:
            self.store.clear()
        for derived in self.derived:
            derived.clear()
