"""Which webhook deliveries were already acted on: keys claimed once, for a while.

With Redis (`redis_url`) the keys live there (SET NX with an expiry), so a delivery
replayed to another replica is known there too; without it, or while Redis is away, in a
bounded local store (the oldest keys go first when it is full: a replay that old may be
acted on again, which only evicts the cache once more).
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.shared import NAMESPACE, RedisDown, RedisState

# Keys the local store keeps at most.
LOCAL_KEYS = 100_000


class Replays:
    """`claim(key, ttl)` is True for the first claim of `key` within `ttl` seconds.
    `clock` (monotonic seconds) is for tests."""

    def __init__(
        self,
        redis: RedisState | None = None,
        *,
        size: int = LOCAL_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.size = size
        self.clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    async def claim(self, key: str, ttl: float) -> bool:
        """Whether `key` was free (it is now taken for `ttl` seconds)."""
        if self.redis is not None:
            name, ms = self._redis_key(key), max(1, int(ttl * 1000))
            try:
                claimed = bool(await self.redis.run(lambda r: r.set(name, b"1", nx=True, px=ms)))
            except RedisDown:
                return self._claim_here(key, ttl)
            if claimed:  # also here, should Redis go away within `ttl`
                self._hold_here(key, ttl)
            return claimed
        return self._claim_here(key, ttl)

    async def hold(self, key: str, ttl: float) -> None:
        """Take `key` for `ttl` seconds from now, whether it was free or not."""
        self._hold_here(key, ttl)
        if self.redis is not None:
            name, ms = self._redis_key(key), max(1, int(ttl * 1000))
            with contextlib.suppress(RedisDown):
                await self.redis.run(lambda r: r.set(name, b"1", px=ms))

    async def free(self, key: str) -> None:
        self._expiry.pop(key, None)
        if self.redis is not None:
            name = self._redis_key(key)
            with contextlib.suppress(RedisDown):
                await self.redis.run(lambda r: r.delete(name))

    def _redis_key(self, key: str) -> str:
        return f"{NAMESPACE}:webhook-seen:{key}"

    def _claim_here(self, key: str, ttl: float) -> bool:
        now = self.clock()
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)  # the oldest, while they have expired
        expiry = self._expiry.get(key)
        if expiry is not None and expiry > now:
            return False
        self._hold_here(key, ttl)
        return True

    def _hold_here(self, key: str, ttl: float) -> None:
        self._expiry.pop(key, None)
        self._expiry[key] = self.clock() + ttl
        while len(self._expiry) > self.size:
            self._expiry.popitem(last=False)
