"""Rate budgets shared by gateway replicas through Redis.

Each tenant's documented windows are held in Redis as sliding logs of grants, checked and
taken in one Lua step, so that the replicas together never send more than the provider
allows, share each window fairly between the clients (by weight) and pause together after
a 429. While Redis is away each replica keeps to its share of every window (its limiter
does); once Redis is back each tells it the grants it made meanwhile (`tell`).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable

from redis.asyncio import Redis

from gateway.limiter import ANONYMOUS, current_share
from gateway.shared import NAMESPACE, RedisDown, RedisState

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
