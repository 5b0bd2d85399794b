"""A TTL cache of upstream reads, shared by identical concurrent calls.

One per provider instance, bounded in age, in entries and in bytes (each entry
measured once, when stored, by `gateway.sizes`). Keys start with the
instance's identity (name, kind, base URL, options and a digest of its
credentials), so entries of two instances never mix, even where a cache is
shared and two instances reach the same API with the same credentials (two
Redivis datasets). A write through the provider clears its entries: the next
read sees what the write changed.

Stale-if-error (the idea of RFC 5861): an entry past its `ttl` is kept for
`stale_ttl` seconds more, and served when the fetch that should replace it
fails with one of the `stale_on` errors (the provider's rate limit is spent).
What was served stale is noted in the operation's `StaleReads`, so the
response can say so.

With a `SharedCache` (gateway.shared: `redis_url`), entries live in Redis for
every replica, expiring after `ttl + stale_ttl`; the local store serves only
while Redis is away. Identical in-flight fetches are still shared per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from contextvars import ContextVar
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Generic, TypeVar

from cachetools import TTLCache

from gateway.shared import RedisDown, SharedCache
from gateway.sizes import deep_size

V = TypeVar("V")

# A value and when it was fetched (on the cache's timer).
Entry = tuple[V, float]
# An entry above this share of its store's bytes is not kept (here or in Redis): a single
# huge read would otherwise push out everything else.
ENTRY_SHARE = 8


def fingerprint(base_url: str, credentials: Mapping[str, str]) -> str:
    """A short digest naming a tenant: never the credentials themselves."""
    digest = hashlib.sha256(base_url.encode())
    for key in sorted(credentials):
        digest.update(f"\0{key}\0{credentials[key]}".encode())
    return digest.hexdigest()[:16]


def identity(
    name: str, kind: str, base_url: str, options: Mapping[str, Any], credentials: Mapping[str, str]
) -> str:
    """A digest naming one provider instance: what its cache keys start with.

    Two instances with the same API and credentials may still differ in what they serve
    (Redivis's `dataset`, BasicsOS's `token_role`) and in who may use them (a client's
    `providers`): neither may ever read the other's entries."""
    described = json.dumps([name, kind, base_url, options], sort_keys=True, default=str)
    digest = hashlib.sha256(described.encode())
    digest.update(b"\0" + fingerprint(base_url, credentials).encode())
    return digest.hexdigest()[:24]


class StaleReads:
    """What one operation was served past its TTL: per provider, the oldest age in seconds."""

    def __init__(self) -> None:
        self.ages: dict[str, float] = {}

    def add(self, provider: str, age: float) -> None:
        self.ages[provider] = max(age, self.ages.get(provider, 0.0))


# Set for the length of an operation (by the schema); None outside one.
stale_reads: ContextVar[StaleReads | None] = ContextVar("stale_reads", default=None)
# The ages of stale values a fetch in progress was given by another cache it reads
# through: what it makes of them is no fresher, and must not be cached as fresh.
_fetch_ages: ContextVar[list[float] | None] = ContextVar("fetch_ages", default=None)


def _note_stale(provider: str, age: float) -> None:
    reads = stale_reads.get()
    if reads is not None:
        reads.add(provider, age)
    ages = _fetch_ages.get()
    if ages is not None:
        ages.append(age)


@dataclass(eq=False)
class ReadCache(Generic[V]):
    """Values by key for `ttl` seconds (at most `maxsize` of them, `max_bytes` together); one
    fetch per key at a time. A value above `max_bytes / ENTRY_SHARE` is served, not kept.

    With `stale_ttl` and `stale_on`, a value up to `stale_ttl` seconds past its `ttl` is
    served when its fetch fails with one of the `stale_on` errors, and noted as stale for
    `provider`. `timer` (seconds) is a parameter so tests need not wait. With `shared`,
    entries are kept in Redis under `name` and `tenant`, local only while it is away.

    `tenant` starts every key: the provider instance's `identity`.
    """

    tenant: str
    _: KW_ONLY
    ttl: float
    maxsize: int
    max_bytes: int = 64 * 2**20
    enabled: bool = True
    stale_ttl: float = 0.0
    stale_on: tuple[type[Exception], ...] = ()
    provider: str = ""
    timer: Callable[[], float] = time.monotonic
    shared: SharedCache | None = None
    name: str = ""
    # Each entry with its estimated size in bytes, which the TTLCache adds up.
    _store: TTLCache[tuple[str, Hashable], tuple[V, float, int]] = field(init=False, repr=False)
    _inflight: dict[tuple[str, Hashable], asyncio.Future[Entry[V]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _generation: int = field(default=0, init=False)
    hits: int = field(default=0, init=False)
    misses: int = field(default=0, init=False)
    stale: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.stale_ttl = max(0.0, self.stale_ttl)
        if not self.stale_ttl:
            self.stale_on = ()
        # Entries outlive their freshness by `stale_ttl`: whether one is fresh is ours to
        # tell; the TTLCache drops it when it is too old to serve even stale.
        self._store = TTLCache(
            maxsize=self.max_bytes,
            ttl=self.ttl + self.stale_ttl,
            timer=self.timer,
            getsizeof=_held_size,
        )

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[V]]) -> V:
        if not self.enabled:
            return await fetch()
        full = (self.tenant, key)
        entry, generation = await self._lookup(full)
        if entry is not None and self.timer() - entry[1] < self.ttl:
            self.hits += 1
            return entry[0]
        try:
            entry = await self._shared(full, fetch, generation)
        except self.stale_on:
            entry, _ = await self._lookup(full)  # again: a write meanwhile cleared it
            if entry is None or self.timer() - entry[1] > self.ttl + self.stale_ttl:
                raise
            self.stale += 1
        value, stored_at = entry
        age = self.timer() - stored_at
        if age >= self.ttl:
            _note_stale(self.provider, age)
        return value

    async def _lookup(self, full: tuple[str, Hashable]) -> tuple[Entry[V] | None, int | None]:
        """The entry of `full` (from Redis when shared and up), and the shared generation it
        was looked up under (None: the local store answered)."""
        if self.shared is not None:
            try:
                generation, found = await self.shared.load(self.name, full)
            except RedisDown:
                pass
            else:
                if found is None:
                    return None, generation
                value, age = found
                return (value, self.timer() - age), generation
        return self._local(full), None

    def _local(self, full: tuple[str, Hashable]) -> Entry[V] | None:
        held = self._store.get(full)
        return None if held is None else (held[0], held[1])

    async def _keep(self, full: tuple[str, Hashable], entry: Entry[V], shared: int | None) -> None:
        """Store a fetched entry: in Redis under the generation it was read in, else here;
        neither when it is too large for its share of the store."""
        size = deep_size(entry[0]) + deep_size(full)
        if size > self.max_bytes // ENTRY_SHARE:
            return
        if self.shared is not None and shared is not None:
            age = self.timer() - entry[1]
            try:
                await self.shared.store(
                    self.name, full, shared, entry[0], age, self.ttl + self.stale_ttl
                )
                return
            except RedisDown:
                pass
        self._store[full] = (*entry, size)
        while len(self._store) > self.maxsize:
            self._store.popitem()  # the least recently used

    async def _shared(
        self,
        full: tuple[str, Hashable],
        fetch: Callable[[], Awaitable[V]],
        shared: int | None = None,
    ) -> Entry[V]:
        """A new entry for `full`: fetched, or shared with the fetch already in flight."""
        pending = self._inflight.get(full)
        if pending is not None:
            self.hits += 1
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                return await self._fetch(fetch)  # the call we waited on was cancelled, not us
        self.misses += 1
        future: asyncio.Future[Entry[V]] = asyncio.get_running_loop().create_future()
        self._inflight[full] = future
        generation = self._generation
        try:
            entry = await self._fetch(fetch)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # consumed here, so an unawaited future logs nothing
            raise
        else:
            future.set_result(entry)
            # A write that cleared the cache meanwhile makes this value possibly stale.
            if generation == self._generation:
                await self._keep(full, entry, shared)
            return entry
        finally:
            self._inflight.pop(full, None)

    async def _fetch(self, fetch: Callable[[], Awaitable[V]]) -> Entry[V]:
        ages: list[float] = []
        token = _fetch_ages.set(ages)
        try:
            value = await fetch()
        finally:
            _fetch_ages.reset(token)
        # Made from a stale value of another cache: it is as old as that value.
        return value, self.timer() - max(ages, default=0.0)

    def peek(self, key: Hashable) -> V | None:
        """The fresh value held for `key`, if any, without counting a hit or fetching:
        what a cost estimate asks before anything is sent."""
        if not self.enabled:
            return None
        entry = self._local((self.tenant, key))
        if entry is None or self.timer() - entry[1] >= self.ttl:
            return None
        return entry[0]

    @property
    def counts(self) -> tuple[int, int, int]:
        """Hits, misses and stale serves so far."""
        return self.hits, self.misses, self.stale

    @property
    def size(self) -> int:
        """Bytes held here (Redis's are not), as measured when stored."""
        return int(self._store.currsize)

    def clear(self) -> None:
        """Forget every entry, stale ones too: a write may have changed any of them."""
        self._store.clear()
        self._generation += 1


def _held_size(held: tuple[Any, float, int]) -> int:
    return held[2]
