"""A TTL cache of upstream reads, shared by identical concurrent calls.

One per provider instance, bounded in size and age. Keys start with a
fingerprint of the instance's base URL and credentials, so entries of two
tenants never mix even where a cache is shared. A write through the provider
clears its entries: the next read sees what the write changed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

from cachetools import TTLCache

V = TypeVar("V")


def fingerprint(base_url: str, credentials: Mapping[str, str]) -> str:
    """A short digest naming a tenant: never the credentials themselves."""
    digest = hashlib.sha256(base_url.encode())
    for key in sorted(credentials):
        digest.update(f"\0{key}\0{credentials[key]}".encode())
    return digest.hexdigest()[:16]


class ReadCache(Generic[V]):
    """Values by key for `ttl` seconds (at most `maxsize` of them); one fetch per key at a time."""

    def __init__(self, tenant: str, *, ttl: float, maxsize: int, enabled: bool = True) -> None:
        self.tenant = tenant
        self.enabled = enabled
        self._store: TTLCache[tuple[str, Hashable], V] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._inflight: dict[tuple[str, Hashable], asyncio.Future[V]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[V]]) -> V:
        if not self.enabled:
            return await fetch()
        full = (self.tenant, key)
        if full in self._store:
            self.hits += 1
            return self._store[full]
        pending = self._inflight.get(full)
        if pending is not None:
            self.hits += 1
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                return await fetch()  # the call we waited on was cancelled, not us
        self.misses += 1
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[full] = future
        generation = self._generation
        try:
            value = await fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # consumed here, so an unawaited future logs nothing
            raise
        else:
            future.set_result(value)
            # A write that cleared the cache meanwhile makes this value possibly stale.
            if generation == self._generation:
                self._store[full] = value
            return value
        finally:
            self._inflight.pop(full, None)

    def clear(self) -> None:
        self._store.clear()
        self._generation += 1
