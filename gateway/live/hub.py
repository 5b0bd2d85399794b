"""Where every change is published: it forgets what the provider's caches hold, then
reaches every listener of this process, and of every other replica through Redis.

Forgetting drops every cached read of the provider instance (records, list blocks, whole
reads, responses) and, with Redis, raises the instance's write generation there, so every
replica misses too: a change may shift any list's positions, and a provider's cache is
cheap to refill next to a stale answer.

The gateway's own writes are announced with `written` (the write has forgotten the caches
already); their echoes, the same change coming back as a webhook or a poll, reach the
listeners once (`gateway.live.echoes`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from gateway.live.changes import RecordChange
from gateway.live.echoes import Echoes
from gateway.live.fanout import RedisFanout
from gateway.shared import RedisState

log = logging.getLogger("gateway.live")

# A listener that falls this far behind loses its oldest changes rather than hold memory.
QUEUE_SIZE = 256


class ChangeHub:
    """`forget(provider)` drops that provider instance's cached reads, on every replica
    (None: nothing is cached, as in some tests). `echoes`: see `gateway.live.echoes`."""

    def __init__(
        self,
        forget: Callable[[str], Awaitable[None]] | None = None,
        echoes: Echoes | None = None,
    ) -> None:
        self._forget = forget
        self.echoes = echoes or Echoes()
        self._listeners: set[asyncio.Queue[RecordChange]] = set()
        self._fanout: RedisFanout | None = None

    async def publish(self, change: RecordChange) -> None:
        """A record changed: forget the provider's cached reads, then tell the listeners."""
        if self._forget is not None:
            await self._forget(change.provider)
        self.written(change)

    def written(self, change: RecordChange) -> None:
        """Tell every replica's listeners of `change`, whose caches are forgotten already."""
        if self._fanout is not None:
            self._fanout.send(change)
        self.deliver(change)

    def deliver(self, change: RecordChange) -> None:
        """Hand `change` to this process's listeners (caches already forgotten), unless they
        heard it already as the gateway's own write."""
        if self.echoes.is_echo(change):
            return
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()
                log.warning("a change listener fell behind; its oldest change was dropped")
            queue.put_nowait(change)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[RecordChange]]:
        """A queue that receives every change published while the block runs."""
        queue = self.join()
        try:
            yield queue
        finally:
            self.leave(queue)

    def join(self) -> asyncio.Queue[RecordChange]:
        """A new listener's queue, until `leave` (what `listen` does around a block)."""
        queue: asyncio.Queue[RecordChange] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue[RecordChange]) -> None:
        self._listeners.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @asynccontextmanager
    async def fanned_out(self, redis: RedisState) -> AsyncIterator[RedisFanout]:
        """While the block runs, changes cross to and from the other replicas on `redis`."""
        fanout = RedisFanout(redis, self.deliver)
        async with fanout.running():
            self._fanout = fanout
            try:
                yield fanout
            finally:
                self._fanout = None
