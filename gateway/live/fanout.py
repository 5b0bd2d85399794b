"""Changes one replica hears reach the listeners of every other, through Redis pub/sub.

Each change a replica publishes is sent on one channel, signed and encoded as the shared
caches' values are (`gateway.shared.Codec`), tagged with the sending replica's random
origin. Every replica subscribes and hands what the others sent to its own listeners; its
own messages come back to it too and are dropped (its listeners heard them already). The
caches need nothing from here: the sender's `forget` raised the provider's write
generation in Redis, so every replica misses already.

Publishing never waits for Redis: a change goes into a bounded outbox that one task
sends from. With Redis away the sends fail at once (`RedisState` remembers it is away)
and those changes reach this replica's listeners only. The subscriber reconnects every
`retry_after` seconds until Redis answers again; changes sent meanwhile are lost to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.live.changes import RecordChange
from gateway.shared import NAMESPACE, RedisDown, RedisState

log = logging.getLogger("gateway.live")

CHANNEL = f"{NAMESPACE}:changes"
# Changes waiting to be sent while Redis is slow; past it the oldest are dropped.
OUTBOX_SIZE = 1000


class RedisFanout:
    """Sends this replica's changes to the others and hands theirs to `receive`."""

    def __init__(self, state: RedisState, receive: Callable[[RecordChange], None]) -> None:
        self.state = state
        self.receive = receive
        self.origin = secrets.token_hex(8)
        self.subscribed = asyncio.Event()  # set while the channel is subscribed to
        # Checked by both loops: redis-py may turn a cancellation into an error of its own,
        # which the loops survive, so cancelling them alone might not stop them.
        self._stopped = False
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(OUTBOX_SIZE)

    def send(self, change: RecordChange) -> None:
        """Queue `change` for the other replicas; returns at once."""
        if self._outbox.full():
            self._outbox.get_nowait()
            log.warning("redis is too slow for the changes: the oldest unsent one was dropped")
        self._outbox.put_nowait(self.state.codec.encode((self.origin, change)))

    async def _sending(self) -> None:
        while not self._stopped:
            blob = await self._outbox.get()
            # Away: the other replicas miss this event (their caches miss all the same).
            with contextlib.suppress(RedisDown):
                await self.state.run(partial(_publish, blob=blob))

    async def _receiving(self) -> None:
        while not self._stopped:
            try:
                await self._listen()
            except (RedisError, OSError, TimeoutError) as error:
                if self.subscribed.is_set():
                    log.warning(
                        "lost the changes channel (%s): other replicas' changes are not heard "
                        "until redis answers again",
                        type(error).__name__,
                    )
            self.subscribed.clear()
            await asyncio.sleep(self.state.retry_after)

    async def _listen(self) -> None:
        # A connection of its own, without a read timeout: it waits for messages for ever.
        client = Redis.from_url(self.state.url, socket_connect_timeout=self.state.timeout)
        async with client, client.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            if not self.subscribed.is_set():
                log.info("listening for other replicas' changes")
            self.subscribed.set()
            while not self._stopped:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._heard(message.get("data"))

    def _heard(self, blob: object) -> None:
        value = self.state.codec.decode(blob) if isinstance(blob, bytes) else None
        if not (isinstance(value, tuple) and len(value) == 2):
            log.warning("dropped a message on the changes channel: not signed by a replica")
            return
        origin, change = value
        if origin != self.origin and isinstance(change, RecordChange):
            self.receive(change)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Send and receive while the block runs. Starts once subscribed (or after a short
        wait when Redis is away), so a change sent right after start-up is heard."""
        tasks = [asyncio.create_task(self._sending()), asyncio.create_task(self._receiving())]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.state.timeout * 4):
                await self.subscribed.wait()
        try:
            yield
        finally:
            self._stopped = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _publish(redis: Redis, *, blob: bytes) -> None:
    await redis.publish(CHANNEL, blob)
