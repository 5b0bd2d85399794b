"""Where every change is published: it forgets what the provider's caches hold, then
reaches every listener of this process.

Forgetting drops every cached read of the provider instance (records, list blocks, whole
reads, responses) and, with Redis, raises the instance's write generation there, so every
replica misses too: a change may shift any list's positions, and a provider's cache is
cheap to refill next to a stale answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from gateway.live.changes import RecordChange

log = logging.getLogger("gateway.live")

# A listener that falls this far behind loses its oldest changes rather than hold memory.
QUEUE_SIZE = 256


class ChangeHub:
    """`forget(provider)` drops that provider instance's cached reads, on every replica
    (None: nothing is cached, as in some tests)."""

    def __init__(self, forget: Callable[[str], Awaitable[None]] | None = None) -> None:
        self._forget = forget
        self._listeners: set[asyncio.Queue[RecordChange]] = set()

    async def publish(self, change: RecordChange) -> None:
        """A record changed: forget the provider's cached reads, then tell the listeners."""
        if self._forget is not None:
            await self._forget(change.provider)
        self.deliver(change)

    def deliver(self, change: RecordChange) -> None:
        """Hand `change` to this process's listeners (caches already forgotten)."""
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()
                log.warning("a change listener fell behind; its oldest change was dropped")
            queue.put_nowait(change)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[RecordChange]]:
        """A queue that receives every change published while the block runs."""
        queue: asyncio.Queue[RecordChange] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
