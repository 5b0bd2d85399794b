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

Rate budgets: each tenant's documented windows are also held here (SharedBudget), as
sliding logs of grants checked and taken in one Lua step, so that the replicas
together never send more than the provider allows.

Redis down: each call has a short timeout; a failed one marks Redis degraded
(one log line) and the caches fall back to their local store. After
`retry_after` seconds the next call tries Redis again (one log line when it is
back). A write whose INCR failed raises the generation when Redis returns, so
no replica then reads what that write changed from before it; likewise each
replica tells Redis of its rate grants as soon as it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import pickle
import re
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from gateway.resilience import ANONYMOUS, current_share

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
        self._budgets: weakref.WeakSet[SharedBudget] = weakref.WeakSet()

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

    def keeps(self, budget: SharedBudget) -> None:
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


# One sorted set per window, of the grants made in it (score: the moment in ms; member: the
# client, a newline, a unique hex id), checked and added in one step, so replicas racing for
# the last slot cannot both take it. As RateLimiter._fair does in one process, a client at
# or above its weighted share of a window takes no slot while another client active in it
# is below its own: active means with grants there, or refused lately (the `active` set,
# client -> until when in ms), so an idle client's share is borrowed. Below its share, a
# client still yields to one refused lately that has had fewer for its weight, as the
# limiter's queue serves the least used first. A 429 a replica met
# pauses them all: the `pause` key holds the moment before which nothing is granted.
# The id's first 12 digits name the replica that took the grant.
# KEYS: the windows' sets, then `pause`, `active`, `weights` (client -> weight).
# ARGV: now in ms ('' for the server's clock: replicas' clocks may differ), the unique id,
# the client, its weight, how long (ms) a refusal keeps it active past its retry, each
# window's limit and span in ms, then each window's cap: the most this client may hold in it
# (the limit less the reserve kept for clients that come later).
# Answers {ms until this client may try again (0: a slot taken in every window), 1 when
# only its share stood in the way, then per window how many grants of other replicas it
# holds}.
_RESERVE = """
local n = #KEYS - 3
local pause, active, weights = KEYS[n + 1], KEYS[n + 2], KEYS[n + 3]
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local id, client, weight, linger = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local replica = string.sub(id, 1, 12)
local longest = 0
for i = 1, n do
  longest = math.max(longest, tonumber(ARGV[2 * i + 5]))
end
redis.call('HSET', weights, client, ARGV[4])
redis.call('PEXPIRE', weights, longest + linger)
redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
local function weight_of(c)
  return tonumber(redis.call('HGET', weights, c)) or 1
end
-- A whole share (4 of 24 for weights 1 : 5) must not let one more through by rounding.
local function below(usage, share)
  return usage < share - 1e-9
end

local wait, by_share, others, usages, firsts = 0, 0, {}, {}, {}
local paused = tonumber(redis.call('GET', pause))
if paused and paused > now then
  wait = paused - now
end
for i = 1, n do
  local key, limit, span = KEYS[i], tonumber(ARGV[2 * i + 4]), tonumber(ARGV[2 * i + 5])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  -- One pass over the window: what the other replicas hold here (this replica keeps to
  -- the rest should Redis go away), and each client's grants (for the shares).
  local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  others[i], usages[i], firsts[i] = 0, {}, {}
  for j = 1, #members, 2 do
    local member = members[j]
    if string.sub(member, -32, -21) ~= replica then
      others[i] = others[i] + 1
    end
    local c = string.sub(member, 1, -34)
    usages[i][c] = (usages[i][c] or 0) + 1
    firsts[i][c] = firsts[i][c] or tonumber(members[j + 1])
  end
  if #members / 2 >= limit then
    local oldest = redis.call('ZRANGE', key, -limit, -limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + span - now)
  end
end
-- At its cap the client waits for its own oldest grant to leave, whoever else is there.
if wait == 0 then
  for i = 1, n do
    local span, cap = tonumber(ARGV[2 * i + 5]), tonumber(ARGV[2 * n + 5 + i])
    if (usages[i][client] or 0) >= cap then
      wait = math.max(wait, 1, firsts[i][client] + span - now)
      by_share = 1
    end
  end
end
if wait == 0 then
  local marked = redis.call('ZRANGE', active, 0, -1)
  for i = 1, n do
    local key, limit, span = KEYS[i], tonumber(ARGV[2 * i + 4]), tonumber(ARGV[2 * i + 5])
    local usage, clients = usages[i], {[client] = true}
    for c in pairs(usage) do
      clients[c] = true
    end
    local waiting = {}
    for _, c in ipairs(marked) do
      clients[c] = true
      waiting[c] = true
    end
    local total, count = 0, 0
    for c in pairs(clients) do
      total = total + weight_of(c)
      count = count + 1
    end
    local per_weight = limit / total
    local mine = (usage[client] or 0) / weight
    local over = not below(usage[client] or 0, per_weight * weight)
    if count > 1 then
      for c in pairs(clients) do
        local theirs = (usage[c] or 0) / weight_of(c)
        -- Over its share, a client yields to any other below theirs. Below it, it still
        -- yields to a waiting client less served for its weight: as the local limiter's
        -- queue does, so that a share under one request does not lose every race.
        if c ~= client and below(usage[c] or 0, per_weight * weight_of(c))
            and (over or (waiting[c] and theirs < mine)) then
          -- Shares change as grants leave the window or others take theirs: look again
          -- when the oldest leaves, or after a slot's average spacing if sooner.
          local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
          local leaves = span
          if oldest[2] then
            leaves = tonumber(oldest[2]) + span - now
          end
          wait = math.max(wait, math.max(1, math.min(leaves, math.ceil(span / limit))))
          by_share = 1
          break
        end
      end
    end
  end
end
if wait > 0 then
  local until_ms = now + wait + linger
  local before = tonumber(redis.call('ZSCORE', active, client))
  if not before or before < until_ms then
    redis.call('ZADD', active, until_ms, client)
  end
  redis.call('PEXPIRE', active, wait + linger)
  return {wait, by_share, unpack(others)}
end
local member = client .. '\\n' .. id
for i = 1, n do
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i + 5])
end
return {0, 0, unpack(others)}
"""

# Sets the moment before which no replica is granted a slot, unless a later one is set.
# KEYS: `pause`. ARGV: now in ms ('' for the server's clock), the pause in ms.
_PAUSE = """
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local ms = tonumber(ARGV[2])
local before = tonumber(redis.call('GET', KEYS[1]))
if not before or before < now + ms then
  redis.call('SET', KEYS[1], now + ms, 'PX', ms)
end
return 0
"""

# How long past its retry time a refused client still counts as active: its next try may
# come a little late (its process is busy, Redis is a round trip away).
LINGER = 0.5


class SharedBudget:
    """One tenant's rate windows held in Redis, so that all replicas together keep to them,
    share them fairly between the clients (by weight) and pause together after a 429.

    Each window is a sliding log of grants (`crm-gateway:<tenant>:budget:<n>/<seconds>`).
    `windows` are (requests, span in seconds) pairs. Each process's own limiter still
    orders its requests; this is asked once it grants one, for the current `Share`'s
    client. `clock` (Unix seconds) is for tests: by default Redis's own clock counts.
    """

    def __init__(
        self,
        state: RedisState,
        tenant: str,
        windows: tuple[tuple[int, float], ...],
        *,
        cap: Callable[[int, str], int] = lambda requests, client: requests,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        # A window's limit and a client -> the most the client may hold in it.
        self.cap = cap
        self._requests = [requests for requests, _ in windows]
        prefix = f"{NAMESPACE}:{tenant}:budget"
        self.keys = [f"{prefix}:{n}/{span:g}" for n, span in windows]
        self.keys += [f"{prefix}:pause", f"{prefix}:active", f"{prefix}:weights"]
        self.limits: list[int | str] = []
        for requests, span in windows:
            self.limits += [requests, max(1, math.ceil(span * 1000))]
        self._longest = max((span for _, span in windows), default=0.0)
        # Names this replica's grants in the windows (the first digits of their ids).
        self._replica = uuid.uuid4().hex[:12]
        # How many grants of other replicas each window held at Redis's last answer.
        self.others: tuple[int, ...] = ()
        # This replica's grants still in a window (moment in ms, member), told to Redis after
        # an outage: those made meanwhile, and those a restarted Redis has lost, still count
        # at the provider, so the other replicas' windows must hold them too.
        self._mine: deque[tuple[int, str]] = deque()
        state.keeps(self)

    def _now(self) -> str:
        return "" if self.clock is None else str(round(self.clock() * 1000))

    def _wall_ms(self) -> int:
        # Redis's clock is not at hand while it is away: this host's, close enough under NTP.
        return round((time.time() if self.clock is None else self.clock()) * 1000)

    async def reserve(self) -> float:
        """0 when a slot was taken for this request, else the seconds until it may try
        again; RedisDown when Redis cannot say (the caller keeps to its local share)."""
        wait, _ = await self.take()
        return wait

    async def take(self) -> tuple[float, bool]:
        """As `reserve`, and whether only the client's share refused it (the windows had
        room and no pause held)."""
        share = current_share.get() or ANONYMOUS
        oldest = self._wall_ms() - math.ceil(self._longest * 1000)
        while self._mine and self._mine[0][0] <= oldest:  # appended in time order
            self._mine.popleft()
        member = f"{share.client}\n{self._replica}{uuid.uuid4().hex[:20]}"
        args: list[int | str] = [
            self._now(),
            member[-32:],
            share.client,
            repr(float(share.weight)),
            int(LINGER * 1000),
            *self.limits,
            *(self.cap(requests, share.client) for requests in self._requests),
        ]

        async def reserve(redis: Redis) -> list[int]:
            answer: list[int] = await redis.register_script(_RESERVE)(keys=self.keys, args=args)
            return answer

        try:
            wait, by_share, *others = await self.state.run(reserve)
        except RedisDown:
            # The caller sends it on its local share: Redis is told when it is back.
            self._mine.append((self._wall_ms(), member))
            raise
        self.others = tuple(int(n) for n in others)
        if wait == 0:
            self._mine.append((self._wall_ms(), member))
        return int(wait) / 1000, bool(by_share)

    def unsent(self) -> None:
        """The grant `take` has just recorded before its RedisDown was not sent after all
        (nothing else may have run in between)."""
        self._mine.pop()

    async def tell(self, redis: Redis) -> None:
        """Hand Redis this replica's grants still in a window (it is back after an outage)."""
        oldest = self._wall_ms() - math.ceil(self._longest * 1000)
        grants = {member: moment for moment, member in self._mine if moment > oldest}
        if grants:
            async with redis.pipeline(transaction=True) as pipe:
                for key, span in zip(self.keys[:-3], self.limits[1::2], strict=True):
                    pipe.zadd(key, grants)
                    pipe.pexpire(key, int(span))
                await pipe.execute()

    async def pause(self, seconds: float) -> None:
        """The provider said its budget is spent: no replica sends for `seconds`."""
        args: list[int | str] = [self._now(), max(1, math.ceil(seconds * 1000))]

        async def pause(redis: Redis) -> None:
            await redis.register_script(_PAUSE)(keys=self.keys[-3:-2], args=args)

        await self.state.run(pause)
