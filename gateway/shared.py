"""Read caches shared by gateway replicas through Redis, and what happens when Redis is away.

With `redis_url` set, every replica keeps its cached reads (responses, list
blocks, whole collections) in one Redis, so a read one replica made costs the
others no request. Values are pickled and signed with a key derived from
`cursor_secret` (which `redis_url` makes required): Redis is the operator's own
store, and a value not signed by a replica is never unpickled, only dropped.

Write eviction across replicas: each tenant (provider instance) has a
generation counter in Redis, raised (INCR) by every write. An entry carries the
generation it was read under, and one MGET fetches the entry with the current
generation: an entry of an older one is a miss, so a write through one replica
hides every older entry from all of them at once; those expire by their TTL.

The same Redis holds each tenant's rate budget (`gateway.shared_budget`): a restarted
one is told again what it lost.

Redis down: each call has a short timeout; a failed one marks Redis degraded
(one log line) and the caches fall back to their local store. After
`retry_after` seconds the next call tries Redis again (one log line when it is
back). A write whose INCR failed raises the generation when Redis returns, so
no replica then reads what that write changed from before it; likewise each
replica tells Redis of its rate grants as soon as it is back (`Rejoins`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import pickle
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger("gateway")

T = TypeVar("T")
NAMESPACE = "crm-gateway"
_SIGNATURE = 32  # bytes of HMAC-SHA256 ahead of each value


class RedisDown(Exception):
    """Redis did not answer (or is known not to, until its retry time): use the local store."""


class Codec:
    """Values as signed pickles: only what a holder of the secret wrote is ever unpickled."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"crm-gateway redis cache\0" + secret).digest()

    def encode(self, value: Any) -> bytes:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return hmac.digest(self._key, payload, "sha256") + payload

    def decode(self, blob: bytes) -> Any:
        """The value, or None when `blob` is not one this codec signed."""
        signature, payload = blob[:_SIGNATURE], blob[_SIGNATURE:]
        if not hmac.compare_digest(signature, hmac.digest(self._key, payload, "sha256")):
            return None
        return pickle.loads(payload)


def key_digest(key: Hashable) -> str:
    """A cache key as the same text in every process (no `hash()`: it is salted per process).

    Keys are tuples of text, numbers, None and enums of text (`Entity`)."""
    text = json.dumps(key, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Rejoins(Protocol):
    """What keeps state in Redis that a restarted Redis has lost (a rate budget's grants):
    it tells Redis again on its return."""

    async def tell(self, redis: Redis) -> None: ...


class RedisState:
    """One app's connection to Redis and whether it is up, shared by all its caches.

    `timeout` bounds every call; after a failure Redis is not tried again for
    `retry_after` seconds, so requests meanwhile pay no timeout. `clock` is for tests.

    `reachable` says whether Redis answers (`status`). `up` is False from a failure until
    two `retry_after` after Redis answers again: every busy replica has found it back by
    then and told it of its grants made while it was away, which the rate budgets wait for
    (each replica keeps to its share until then).
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout: float = 0.5,
        retry_after: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.codec = Codec(secret)
        self.timeout = timeout
        self.retry_after = retry_after
        self.clock = clock
        self.reachable = True
        self._settled_at = 0.0
        self._retry_at = 0.0
        self._client: Redis | None = None
        # The Redis server last connected to (INFO's run_id): another one has lost everything.
        self._run_id: bytes | None = None
        # Tenants written to while Redis was away: their generation is raised on its return.
        self._unannounced: set[SharedCache] = set()
        # Every budget kept in this Redis: each tells it its recent grants on its return, as a
        # restarted Redis has lost them all, those made before it went away included.
        self._budgets: weakref.WeakSet[Rejoins] = weakref.WeakSet()

    @property
    def up(self) -> bool:
        return self.reachable and self.clock() >= self._settled_at

    @property
    def status(self) -> str:
        return "ok" if self.reachable else "degraded"

    def client(self) -> Redis:
        # Made on first use, inside the loop that serves the app; no retries of its own:
        # a call that fails falls back to the local cache at once.
        if self._client is None:
            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                redis_connect_func=self._connected,
            )
        return self._client

    async def _connected(self, connection: AbstractConnection) -> None:
        """Every new connection checks that Redis is the one it was. The client reconnects
        silently when a restarted Redis closed the old ones, so nobody sees an outage, yet
        the restarted one has lost every grant: that connection fails, as in an outage, and
        the probe after it tells Redis the grants again."""
        await connection.on_connect()
        await connection.send_command("INFO", "server")
        try:
            info = await connection.read_response()
        except ResponseError:  # INFO renamed away (some hosted Redis): nothing to compare
            return
        found = re.search(rb"^run_id:(\w+)", info if isinstance(info, bytes) else b"", re.M)
        run_id = found[1] if found else None
        previous, self._run_id = self._run_id, run_id
        # While Redis is away a new one is expected: the probe tells it everything anyway.
        if self.reachable and previous is not None and run_id is not None and run_id != previous:
            raise RedisConnectionError("redis restarted: its grants and generations are gone")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        """`call`'s answer, or RedisDown (never a Redis or socket error)."""
        if not self.reachable:
            await self._probe()
        try:
            return await self._call(call)
        except (RedisError, OSError, TimeoutError) as error:
            self._down(error)
            raise RedisDown from None

    async def recover(self) -> None:
        """Try Redis again if it is away and its retry time has come: so it hears of this
        replica's grants even while its limiter refuses every request (calling Redis none)."""
        if not self.reachable:
            with contextlib.suppress(RedisDown):
                await self._probe()

    async def _call(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        async with asyncio.timeout(self.timeout * 2):
            return await call(self.client())

    async def _probe(self) -> None:
        """Try Redis again if its retry time has come; RedisDown if not, or if it still fails."""
        if self.clock() < self._retry_at:
            raise RedisDown
        self._retry_at = self.clock() + self.retry_after  # one probe at a time
        try:
            # Connections from before the outage are dead: a restarted Redis needs new ones.
            await self.client().connection_pool.disconnect()
            await self._call(lambda redis: redis.ping())
            for tenant in list(self._unannounced):
                await self._call(tenant.incr)
                self._unannounced.discard(tenant)
            for budget in list(self._budgets):
                await self._call(budget.tell)
        except (RedisError, OSError, TimeoutError):
            raise RedisDown from None
        self.reachable = True
        self._settled_at = self.clock() + 2 * self.retry_after
        log.info("redis is back: read caches are shared again")

    def _down(self, error: BaseException) -> None:
        self._retry_at = self.clock() + self.retry_after
        if self.reachable:
            self.reachable = False
            # Not the URL: it may hold a password.
            log.warning(
                "redis is unreachable (%s): caching locally, keeping to a share of each rate "
                "limit, retrying every %.0f s",
                type(error).__name__,
                self.retry_after,
            )

    def unannounced(self, tenant: SharedCache) -> None:
        self._unannounced.add(tenant)

    def keeps(self, budget: Rejoins) -> None:
        self._budgets.add(budget)


class SharedCache:
    """One tenant's entries in Redis: `crm-gateway:<tenant>:<cache name>:<key digest>`.

    The tenant is the API and credentials, whose data a write changes for every instance
    that reaches it; the key starts with the instance's identity (`gateway.cache`).

    An entry is (generation, stored at in Unix seconds, value). `wall` is for tests.
    """

    def __init__(
        self, state: RedisState, tenant: str, *, wall: Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.tenant = tenant
        self.wall = wall
        self.generation_key = f"{NAMESPACE}:{tenant}:generation"
        self._seen: int | None = None
        # Called when a write through another replica is noticed: local hints (block links)
        # learnt before it may no longer hold.
        self.on_write: list[Callable[[], None]] = []

    def key(self, name: str, key: Hashable) -> str:
        return f"{NAMESPACE}:{self.tenant}:{name}:{key_digest(key)}"

    async def load(self, name: str, key: Hashable) -> tuple[int, tuple[Any, float] | None]:
        """The current generation, and the entry's value and age in seconds if it has one
        of that generation (an older one was read before a write: a miss)."""
        generation, blob = await self.state.run(
            lambda redis: redis.mget(self.generation_key, self.key(name, key))
        )
        current = int(generation or 0)
        self._saw(current)
        if not isinstance(blob, bytes):
            return current, None
        entry = self.state.codec.decode(blob)
        if not isinstance(entry, tuple) or len(entry) != 3 or entry[0] != current:
            return current, None
        return current, (entry[2], max(0.0, self.wall() - entry[1]))

    async def store(
        self, name: str, key: Hashable, generation: int, value: Any, age: float, expire: float
    ) -> None:
        blob = self.state.codec.encode((generation, self.wall() - age, value))
        await self.state.run(
            lambda redis: redis.set(self.key(name, key), blob, px=max(1, int(expire * 1000)))
        )

    async def bump(self) -> None:
        """A write went through: raise the generation (on Redis's return if it is away)."""
        try:
            self._saw(await self.state.run(self.incr))
        except RedisDown:
            self.state.unannounced(self)

    async def incr(self, redis: Redis) -> int:
        generation: int = await redis.incr(self.generation_key)
        return generation

    def _saw(self, generation: int) -> None:
        if self._seen is not None and generation != self._seen:
            for hook in self.on_write:
                hook()
        self._seen = generation
