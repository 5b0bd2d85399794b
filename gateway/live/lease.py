"""Which replica polls a provider: the one holding its lease in Redis.

One poller per provider for all the replicas, not one each: the replicas share one cache
in Redis, which one poll's changes evict everywhere (and their events reach every replica
through the hub's fan-out), so more pollers would only spend the budget again and publish
every change twice. The holder renews the lease before each list it polls; one that stops
(stopped, crashed, cut off) loses it after `ttl` seconds, and the next replica to ask
takes it. While Redis is away every replica polls for itself: their caches are local
then, and each must see the changes to evict its own (each keeping to its part of the
budget, as its limiter does).
"""

from __future__ import annotations

import contextlib
import uuid

from redis.asyncio import Redis

from gateway.shared import NAMESPACE, RedisDown, RedisState

# Take the lease if it is free, renew it if it is ours: one step, so two replicas cannot
# both take it. KEYS: the lease. ARGV: the holder, the lease's life in ms.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Give it up if it is ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """The lease on polling provider instance `instance` (its identity), held `ttl`
    seconds past each renewal."""

    def __init__(self, redis: RedisState, instance: str, ttl: float) -> None:
        self.redis = redis
        self.key = f"{NAMESPACE}:poll:{instance}"
        self.ttl = ttl
        self.holder = uuid.uuid4().hex

    async def hold(self) -> bool:
        """Whether this replica holds the lease now (taken or renewed); True while Redis is
        away (see the module's docstring)."""

        async def hold(redis: Redis) -> int:
            held: int = await redis.register_script(_HOLD)(
                keys=[self.key], args=[self.holder, max(1, int(self.ttl * 1000))]
            )
            return held

        try:
            return bool(await self.redis.run(hold))
        except RedisDown:
            return True

    async def release(self) -> None:
        """Give the lease up, so another replica polls at once (nothing if Redis is away)."""

        async def release(redis: Redis) -> None:
            await redis.register_script(_RELEASE)(keys=[self.key], args=[self.holder])

        with contextlib.suppress(RedisDown):
            await self.redis.run(release)
