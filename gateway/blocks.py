"""Blocks of lists, cached as parsed records, one store per provider instance.

A list is read in aligned blocks of `block_size` records (gateway.pagination):
offset APIs by block number, cursor and token APIs from the position that
starts the block. A block is kept as the records it parsed to, so a window cut
from cached blocks costs no request, no JSON parsing and no mapping. The store
is bounded and ages out like the response cache (`cache_ttl`), its keys carry
the tenant fingerprint, identical concurrent block reads share one request,
and a write through the provider clears it with the response cache
(`ResponseCache.evict`). With `shared` (Redis) the blocks are kept there for every
replica; the links stay local hints, forgotten when another replica's write is
noticed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

from cachetools import TTLCache

from gateway.cache import ReadCache

V = TypeVar("V")


class BlockCache:
    """Blocks by key, plus what block reads learnt about the order of cursor lists."""

    def __init__(self, store: ReadCache[Any], *, ttl: float) -> None:
        # The store is built like every other read cache of the provider (TTL, stale, Redis).
        self.tenant = store.tenant
        self._blocks = store
        # Links between blocks (`gateway.pagination.positions.BlockChain`): small, so as many
        # as blocks.
        self.links: TTLCache[Hashable, Any] = TTLCache(
            maxsize=store.maxsize if store.enabled else 1, ttl=ttl
        )
        if store.shared is not None:
            store.shared.on_write.append(self.links.clear)

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[V]]) -> V:
        return cast(V, await self._blocks.get(key, fetch))

    def peek(self, key: Hashable) -> Any:
        """The block held fresh for `key`, or None (counts nothing, sends nothing)."""
        return self._blocks.peek(key)

    @property
    def counts(self) -> tuple[int, int, int]:
        """Hits, misses and stale serves so far."""
        return self._blocks.hits, self._blocks.misses, self._blocks.stale

    @property
    def size(self) -> int:
        """Bytes the blocks held here take, as measured when stored."""
        return self._blocks.size

    def clear(self) -> None:
        self._blocks.clear()
        self.links.clear()
